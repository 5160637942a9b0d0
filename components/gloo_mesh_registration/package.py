"""The component as a Pulumi package: its name, version and inferred schema, in one place.

``provider/__main__.py`` serves this package to other Pulumi languages; the schema snapshot test and
``scripts/update_schema.py`` build the schema the same way, so what is tested is what is served.
"""

import json
import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pulumi

from .facts import COMPONENT_TYPE
from .registration import RemoteClusterRegistration
from .sdk_internals import mark_hosting_component_provider

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


_PROVIDER_RESOURCE_REF = re.compile(r"^(?P<schema>[^#]*)#/resources/pulumi:providers:(?P<package>[^/]+)$")


def supported_provider_refs(value: Any) -> Any:
    """``value`` with every ``$ref`` to a package's provider resource (``<schema>#/resources/pulumi:providers:<pkg>``,
    which the SDK's inference emits and schema binding reports as deprecated: pulumi/pulumi
    ``pkg/codegen/schema/bind.go``, pulumi/pulumi#20029) in the supported form ``<schema>#/provider``."""
    if isinstance(value, dict):
        return {
            key: (
                _PROVIDER_RESOURCE_REF.sub(r"\g<schema>#/provider", item)
                if key == "$ref" and isinstance(item, str)
                else supported_provider_refs(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [supported_provider_refs(item) for item in value]
    return value


def component_provider() -> Any:
    """The SDK's component provider for this package (schema inferred from the type annotations), its schema's
    provider references in the supported form. ``provider/__main__.py`` serves exactly this."""
    from pulumi.provider.experimental.component import ComponentProvider

    provider = ComponentProvider(COMPONENTS, PACKAGE_NAME, version=package_version())
    if provider.schema is None:
        raise RuntimeError("the component provider inferred no schema")
    provider.schema = json.dumps(supported_provider_refs(json.loads(provider.schema)))
    return provider


def serve(args: list[str]) -> None:
    """Serve the package to the engine as ``component_provider_host`` does (which cannot adjust the schema)."""
    from pulumi.provider import main

    mark_hosting_component_provider()  # what component_provider_host does; discovery reads it (one Construct each)
    main(component_provider(), args)


def inferred_schema() -> dict[str, Any]:
    """The package schema the engine gets from GetSchema."""
    schema: dict[str, Any] = json.loads(component_provider().schema)
    return schema


def render_schema() -> str:
    """The schema as committed in ``provider/schema.json``: sorted keys, two-space indent, final newline."""
    return json.dumps(inferred_schema(), indent=2, sort_keys=True) + "\n"
