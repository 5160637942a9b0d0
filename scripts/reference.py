"""The reference (``docs/reference.md``) and the config descriptions of ``Pulumi.yaml``, rendered from the code's own
definitions, so that neither can drift from it (tests/test_reference.py fails when a committed file differs):

    .venv/bin/python scripts/reference.py           # write docs/reference.md and Pulumi.yaml's descriptions
    .venv/bin/python scripts/reference.py --check   # exit 1 with a diff when either differs from what the code gives

Where each fact comes from:

* the arguments: :data:`gloo_mesh_registration.args.ARGUMENTS` (stack-file key, where a stack file sets it, default,
  how an unset one is derived, secret-ness), with :class:`~gloo_mesh_registration.args.RemoteClusterRegistrationArgs`
  for the rest: its source, read with :mod:`ast`, gives each argument's Python type as written and its meaning (the
  attribute docstring: the one text the package schema's description is inferred from), its runtime annotations the
  value type a stack file gives (a string, a boolean, one of an enum's values, ...);
* defaults that depend on the generation: each :class:`~gloo_mesh_registration.agent_generation.AgentGeneration` of
  ``GENERATIONS``, asked through the argument's ``FromGeneration``;
* the outputs: :class:`~gloo_mesh_registration.registration.RemoteClusterRegistration`'s annotated attributes and their
  docstrings (ast again);
* the policy pack: the policies :func:`policy.gloo_mesh_policies.policies` builds (name, kind, enforcement level,
  severity, description) and their config schemas (each setting's type, default and description).

Pulumi.yaml is rewritten in three values only (the project's ``description`` and ``config.management.description``
and ``config.clusters.description``), each in the style it has (one line, or a folded ``>-`` block): every other byte
stays, and the result is parsed back with PyYAML to check that nothing else changed.
"""

from __future__ import annotations

import argparse
import ast
import collections.abc
import difflib
import inspect
import json
import re
import sys
import textwrap
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pulumi_policy import Policy, StackValidationPolicy

from gloo_mesh_registration.agent_generation import GENERATIONS, AgentGeneration
from gloo_mesh_registration.args import (
    ARGUMENTS,
    Argument,
    FromGeneration,
    RemoteClusterRegistrationArgs,
    StackObject,
)
from gloo_mesh_registration.registration import RemoteClusterRegistration

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run by its path: the policy pack is imported from the root, as the tests do it

from policy.gloo_mesh_policies import PACK_DESCRIPTION, PACK_NAME, policies  # noqa: E402

REFERENCE = Path("docs") / "reference.md"
PROJECT_FILE = Path("Pulumi.yaml")
WIDTH = 120
"""Pulumi.yaml's folded descriptions wrap at this width, as the repository's code does."""


# -- the code's own definitions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """One attribute of a class as its source declares it."""

    annotation: str
    """As written (``pulumi.Input[str]``); empty for a plain assignment (an enum member)."""
    doc: str
    """The docstring under it, on one line."""


def one_line(text: str) -> str:
    return " ".join(text.split())


def attributes(cls: type) -> dict[str, Attribute]:
    """Each attribute of ``cls`` with the docstring under it, read from ``cls``'s source file with :mod:`ast`."""
    source = inspect.getsourcefile(cls)
    assert source is not None, cls
    tree = ast.parse(Path(source).read_text())
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    found: dict[str, Attribute] = {}
    for statement, following in zip(node.body, [*node.body[1:], None], strict=True):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name, annotation = statement.target.id, ast.unparse(statement.annotation)
        elif (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            name, annotation = statement.targets[0].id, ""
        else:
            continue
        doc = ""
        if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            doc = following.value.value if isinstance(following.value.value, str) else ""
        found[name] = Attribute(annotation, one_line(doc))
    return found


def class_doc(cls: type) -> str:
    return one_line(inspect.getdoc(cls) or "")


def series(generation: AgentGeneration) -> str:
    """A generation's short name, the last word of its label: ``1.x``, ``2.x``."""
    return generation.label.rsplit(" ", 1)[-1]


def literal(value: object) -> str:
    """A default as a stack file writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):  # a StrEnum member is its value
        return str(value)
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    raise TypeError(f"no stack-file form for the default {value!r}: add one to literal()")


def choices(annotation: object) -> list[str] | None:
    """The values of an enum argument (``agentGeneration``, ``relayDiscovery``); None for any other."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    return None


def value_type(annotation: object) -> str:
    """The type of the value a stack file gives for an argument of this annotation (a JSON type)."""
    if typing.get_origin(annotation) is typing.Required:
        (annotation,) = typing.get_args(annotation)
    if choices(annotation) is not None:
        return "string"
    if typing.get_origin(annotation) is typing.Union and str in typing.get_args(annotation):
        return "string"  # pulumi.Input[str]: a string (a program may pass an Output)
    if typing.get_origin(annotation) is collections.abc.Mapping:
        return "object"
    for python, json_type in ((bool, "boolean"), (int, "integer"), (str, "string")):
        if annotation is python:
            return json_type
    raise TypeError(f"no stack-file type for {annotation!r}: add one to value_type()")


@dataclass(frozen=True)
class Row:
    """One argument with everything the reference says about it."""

    argument: Argument
    python_type: str
    meaning: str
    annotation: object
    required: bool

    @property
    def name(self) -> str:
        return self.argument.name

    @property
    def choices(self) -> list[str] | None:
        return choices(self.annotation)

    @property
    def default(self) -> str:
        """The default as the reference shows it: required, fixed, per generation, derived, or unset."""
        argument = self.argument
        if self.required:
            return "required"
        if isinstance(argument.default, FromGeneration):
            return per_generation(argument.default, lambda value: code(literal(value)))
        if argument.default is not None:
            return code(literal(argument.default))
        if isinstance(argument.derived, FromGeneration):
            return per_generation(argument.derived, str)
        return argument.derived if argument.derived is not None else "unset"


def per_generation(default: FromGeneration, show: Callable[[object], str]) -> str:
    """Each generation's value, or the one value when every generation has the same."""
    shown = [show(default.of(gen)) for gen in GENERATIONS.values()]
    if len(set(shown)) == 1:
        return shown[0]
    return "; ".join(f"{series(gen)}: {value}" for gen, value in zip(GENERATIONS.values(), shown, strict=True))


def rows() -> list[Row]:
    """Every argument, in the order of :data:`ARGUMENTS`."""
    declared = attributes(RemoteClusterRegistrationArgs)
    annotations = RemoteClusterRegistrationArgs.__annotations__
    return [
        Row(
            argument=argument,
            python_type=declared[argument.name].annotation,
            meaning=declared[argument.name].doc,
            annotation=annotations[argument.name],
            required=argument.name in RemoteClusterRegistrationArgs.__required_keys__,
        )
        for argument in ARGUMENTS
    ]


def stack_rows(stack_object: StackObject) -> list[Row]:
    return [row for row in rows() if stack_object in row.argument.stack_objects]


# -- docs/reference.md -------------------------------------------------------------------------------------------


_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def md(text: str) -> str:
    """Text for Markdown (a table cell too): reStructuredText's ``code`` and :class:`roles` as Markdown's code, pipes
    escaped."""
    return _RST_ROLE.sub(r"`\1`", text).replace("``", "`").replace("|", "\\|")


def code(text: str) -> str:
    return f"`{text}`"


def table(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(md(cell) for cell in line) + " |" for line in body),
    ]


def _stack_key_cell(row: Row) -> str:
    key = code(row.argument.stack_key)
    return f"{key} (secret)" if row.argument.secret else key


def _type_cell(row: Row) -> str:
    return " or ".join(map(code, row.choices)) if row.choices else value_type(row.annotation)


def _stack_section(stack_object: StackObject) -> list[str]:
    doc = attributes(StackObject)[stack_object.name].doc
    return [
        f"### `{stack_object.value}`",
        "",
        md(doc),
        "",
        *table(
            ("key", "type", "default", "meaning"),
            ((_stack_key_cell(r), _type_cell(r), r.default, r.meaning) for r in stack_rows(stack_object)),
        ),
        "",
    ]


def _where(argument: Argument) -> str:
    places = {StackObject.MANAGEMENT: "management.{}", StackObject.CLUSTER: "clusters[].{}"}
    found = [code(places[o].format(argument.stack_key)) for o in argument.stack_objects]
    return ", ".join(found) if found else "none (a program only)"


def _python_type_cell(row: Row) -> str:
    if row.choices:
        return f"{code(row.python_type)} ({' or '.join(map(code, row.choices))})"
    return code(row.python_type)


def _generations() -> list[str]:
    return [
        f"- {series(gen)}: {gen.label} (`agentGeneration: {gen.name.value}`): server `{gen.server_deployment}`, agent "
        f"chart `{gen.chart}`"
        for gen in GENERATIONS.values()
    ]


def _outputs() -> list[str]:
    declared = attributes(RemoteClusterRegistration)
    return table(
        ("output", "schema name", "Python type", "meaning"),
        ((code(name), code(camel(name)), code(a.annotation), a.doc) for name, a in declared.items()),
    )


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _setting_type(schema: Mapping[str, Any]) -> str:
    if schema.get("type") == "array":
        return f"array of {schema.get('items', {}).get('type', 'value')}s"
    return str(schema.get("type", "any"))


def _policy_kind(policy: Policy) -> str:
    return "stack" if isinstance(policy, StackValidationPolicy) else "resource"


def _level(policy: Policy) -> str:
    return policy.enforcement_level.value if policy.enforcement_level is not None else "the pack's"


def _settings(pack: Sequence[Policy]) -> list[tuple[str, str, str, str, str]]:
    found = []
    for policy in pack:
        properties = policy.config_schema.properties if policy.config_schema is not None else {}
        for key, schema in properties.items():
            default = code(json.dumps(schema["default"])) if "default" in schema else "unset"
            found.append((code(policy.name), code(key), _setting_type(schema), default, schema.get("description", "")))
    return found


def _policy_section() -> list[str]:
    pack = policies()
    return [
        f"## The policy pack: `{PACK_NAME}`",
        "",
        md(PACK_DESCRIPTION),
        "",
        "Run it with `--policy-pack policy`; set levels and settings with `--policy-pack-config` (a JSON file such as "
        "`policy/config.example.json`).",
        "",
        *table(
            ("policy", "kind", "enforcement level", "severity", "what it checks, and the fix"),
            (
                (
                    code(p.name),
                    _policy_kind(p),
                    _level(p),
                    p.severity.value if p.severity is not None else "",
                    p.description,
                )
                for p in pack
            ),
        ),
        "",
        "### Settings",
        "",
        *table(("policy", "setting", "type", "default", "meaning"), _settings(pack)),
    ]


def render_reference() -> str:
    """``docs/reference.md``."""
    python_rows = [(code(r.name), _python_type_cell(r), r.default, _where(r.argument), r.meaning) for r in rows()]
    lines = [
        "# Reference",
        "",
        "<!-- Generated by scripts/reference.py from the code; do not edit: change the code, then run "
        "`.venv/bin/python scripts/reference.py` (tests/test_reference.py fails while this file differs). -->",
        "",
        "The stack file's keys, the component's arguments and outputs, and the policy pack's policies and settings, "
        "as the code declares them. A default given per generation depends on the management plane's generation:",
        "",
        *_generations(),
        "",
        "## The stack file",
        "",
        "A stack file (`stacks/Pulumi.<stack>.yaml`) sets two keys of the project: `management` and `clusters`. A key "
        "marked (secret) may hold credentials (kubeconfig contents): set those with `pulumi config set --secret`; the "
        "component keeps them secret wherever they go.",
        "",
        *_stack_section(StackObject.MANAGEMENT),
        *_stack_section(StackObject.CLUSTER),
        "## The component's arguments: `RemoteClusterRegistrationArgs`",
        "",
        md(class_doc(RemoteClusterRegistrationArgs)),
        "",
        *table(("argument", "Python type", "default", "stack-file key", "meaning"), python_rows),
        "",
        "## The component's outputs",
        "",
        md(class_doc(RemoteClusterRegistration)),
        "",
        *_outputs(),
        "",
        *_policy_section(),
    ]
    return "\n".join(lines) + "\n"


# -- Pulumi.yaml -------------------------------------------------------------------------------------------------


def plain(text: str) -> str:
    """Text for Pulumi.yaml: no Markdown or reStructuredText code marks."""
    return _RST_ROLE.sub(r"\1", text).replace("`", "")


def project_description() -> str:
    labels = " or ".join(gen.label for gen in GENERATIONS.values())
    return (
        f"Registers Kubernetes clusters with a {labels} management plane over the relay (meshctl cluster register, "
        "declaratively)."
    )


def _key_summary(row: Row) -> str:
    notes = []
    if row.required:
        notes.append("required")
    if row.choices:
        notes.append(" | ".join(row.choices))
    if row.argument.secret:
        notes.append("contents as a secret")
    return f"{row.argument.stack_key} ({', '.join(notes)})" if notes else row.argument.stack_key


def stack_object_description(stack_object: StackObject) -> str:
    """The description of one config key of Pulumi.yaml: what it is, and its keys."""
    doc = plain(attributes(StackObject)[stack_object.name].doc)
    keys = ", ".join(_key_summary(row) for row in stack_rows(stack_object))
    return f"{doc} Keys: {keys}. Each key's type, default and meaning: docs/reference.md."


def descriptions() -> dict[tuple[str, ...], str]:
    """The values of Pulumi.yaml that are rendered, by their path."""
    return {
        ("description",): project_description(),
        **{("config", o.value, "description"): stack_object_description(o) for o in StackObject},
    }


def _indentation(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _value_lines(lines: Sequence[str], path: Sequence[str]) -> tuple[int, int, int]:
    """(first, end, indentation) of the block-style mapping entry at ``path``: its key's line and the lines under it
    that are indented more (blank lines between them too)."""
    start, end, indent = 0, len(lines), 0
    for key in path:
        prefix = " " * indent + key + ":"
        first = next(
            (i for i in range(start, end) if lines[i].startswith(prefix) and lines[i][len(prefix) :][:1] in ("", " ")),
            None,
        )
        if first is None:
            raise LookupError(f"Pulumi.yaml has no {'.'.join(path)}")
        last = first + 1
        while last < end and (not lines[last].strip() or _indentation(lines[last]) > indent):
            last += 1
        while not lines[last - 1].strip():
            last -= 1
        start, end, indent = first + 1, last, indent + 2
    return start - 1, end, indent - 2


def _entry(lines: Sequence[str], path: Sequence[str], value: str) -> tuple[int, int, list[str]]:
    """The lines that give ``path`` the value ``value``, in the style the entry has (folded ``>-`` or one line)."""
    first, end, indent = _value_lines(lines, path)
    key = " " * indent + path[-1] + ":"
    if lines[first].rstrip() == key + " >-":
        body = textwrap.wrap(value, WIDTH - indent - 2, break_long_words=False, break_on_hyphens=False)
        return first, end, [key + " >-", *(" " * (indent + 2) + line for line in body)]
    return first, end, [f"{key} {value}"]


def render_pulumi_yaml(current: str) -> str:
    """``current`` (Pulumi.yaml's text) with the rendered descriptions; every other byte as it was."""
    lines = current.split("\n")
    wanted = descriptions()
    # From the last line up, so that the lines of an entry still to be replaced stay where they are.
    for first, end, replacement in sorted((_entry(lines, p, v) for p, v in wanted.items()), reverse=True):
        lines[first:end] = replacement
    rendered = "\n".join(lines)
    expected = yaml.safe_load(current)
    for path, value in wanted.items():
        _set(expected, path, value)
    if yaml.safe_load(rendered) != expected:
        raise ValueError("the rendered Pulumi.yaml reads differently than its descriptions alone would make it")
    return rendered


def _set(document: Any, path: Sequence[str], value: str) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


# -- the command -------------------------------------------------------------------------------------------------


def rendered(root: Path = ROOT) -> dict[Path, str]:
    """Each generated file (relative to ``root``) and the text the code gives it."""
    return {REFERENCE: render_reference(), PROJECT_FILE: render_pulumi_yaml((root / PROJECT_FILE).read_text())}


def check(root: Path = ROOT) -> int:
    """0 when the committed files are what the code gives; else 1, each difference printed as a diff."""
    status = 0
    for path, text in rendered(root).items():
        committed = (root / path).read_text() if (root / path).exists() else ""
        if committed != text:
            status = 1
            diff = difflib.unified_diff(
                committed.splitlines(keepends=True), text.splitlines(keepends=True), f"a/{path}", f"b/{path}"
            )
            sys.stdout.writelines(diff)
    if status:
        print("\nout of date: run .venv/bin/python scripts/reference.py", file=sys.stderr)
    return status


def write(root: Path = ROOT) -> None:
    for path, text in rendered(root).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        if not (root / path).exists() or (root / path).read_text() != text:
            (root / path).write_text(text)
            print(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when a committed file differs")
    options = parser.parse_args(argv)
    if options.check:
        return check()
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
