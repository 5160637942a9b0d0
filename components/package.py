"""The component as a Pulumi package: its name, version and inferred schema, in one place.

``provider/__main__.py`` serves this package to other Pulumi languages; the schema snapshot test and
``scripts/update_schema.py`` build the schema the same way, so what is tested is what is served.
"""

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pulumi

from .registration import COMPONENT_TYPE, RemoteClusterRegistration

DISTRIBUTION = "gloo-mesh-registration"
"""The Python distribution (pip) name."""
PACKAGE_NAME = COMPONENT_TYPE.split(":", 1)[0]
"""The Pulumi package name: the first part of every type token (``gloo-mesh-relay:index:RemoteClusterRegistration``)."""
COMPONENTS: list[type[pulumi.ComponentResource]] = [RemoteClusterRegistration]


def package_version() -> str:
    """The distribution's version (pyproject.toml): the Pulumi package version too."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError as missing:
        raise RuntimeError(
            f"{DISTRIBUTION} is not installed; install it (pip install -e .) so its version can be read"
        ) from missing


def inferred_schema() -> dict[str, Any]:
    """The package schema the engine gets from GetSchema, inferred from the component's type annotations."""
    from pulumi.provider.experimental.component import ComponentProvider

    provider = ComponentProvider(COMPONENTS, PACKAGE_NAME, version=package_version())
    if provider.schema is None:
        raise RuntimeError("the component provider inferred no schema")
    schema: dict[str, Any] = json.loads(provider.schema)
    return schema


def render_schema() -> str:
    """The schema as committed in ``provider/schema.json``: sorted keys, two-space indent, final newline."""
    return json.dumps(inferred_schema(), indent=2, sort_keys=True) + "\n"
