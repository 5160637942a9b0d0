"""The reference cannot drift: ``docs/reference.md`` and Pulumi.yaml's descriptions are what ``scripts/reference.py``
renders from the code, and what it renders says what the code does: every key a stack file may set, the defaults the
validation fills in (each generation's where they differ), the secret keys, the arguments and outputs of the package
schema, and every policy and setting of the pack."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from gloo_mesh_registration.agent_generation import (
    GENERATIONS,
    GLOO_MESH_ENTERPRISE_1X,
    GLOO_PLATFORM_2X,
    AgentGeneration,
)
from gloo_mesh_registration.args import ARGUMENTS, ARGUMENTS_BY_NAME, FromGeneration, RegistrationSettings, StackObject
from gloo_mesh_registration.stack_config import CLUSTER_KEYS, MANAGEMENT_KEYS
from gloo_mesh_registration.validation import validate_registration_args
from policy.gloo_mesh_policies import policies
from scripts import reference
from scripts.reference import literal, series

ROOT = Path(__file__).resolve().parents[1]
REFRESH = "out of date: run .venv/bin/python scripts/reference.py"
STACK_HEADINGS = {StackObject.MANAGEMENT: "### `management`", StackObject.CLUSTER: "### `clusters`"}
ARGUMENTS_HEADING = "## The component's arguments"
OUTPUTS_HEADING = "## The component's outputs"
POLICIES_HEADING = "## The policy pack"
SETTINGS_HEADING = "### Settings"


def committed() -> str:
    return (ROOT / reference.REFERENCE).read_text()


def project() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def table(heading: str) -> list[list[str]]:
    """The body rows of the first table after the heading that starts with ``heading`` (cells stripped)."""
    lines = committed().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    rows = []
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def by_name(rows: list[list[str]]) -> dict[str, list[str]]:
    """Rows by the name in their first cell's code span."""
    found = {}
    for row in rows:
        match = re.match(r"`([^`]+)`", row[0])
        assert match, row
        found[match.group(1)] = row
    return found


def listed_keys(description: str) -> list[str]:
    """The keys a Pulumi.yaml description lists (``Keys: a, b (notes), c.``), notes dropped."""
    keys = description.split("Keys: ", 1)[1].split(". ", 1)[0]
    return re.sub(r" \([^)]*\)", "", keys).split(", ")


def config_description(stack_object: StackObject) -> str:
    config = project()["config"]
    assert isinstance(config, dict)
    description = config[stack_object.value]["description"]
    assert isinstance(description, str)
    return description


# -- the committed files are what the code renders ---------------------------------------------------------------


def test_the_committed_reference_is_what_the_code_renders() -> None:
    assert committed() == reference.render_reference(), REFRESH


def test_pulumi_yaml_has_the_descriptions_the_code_renders() -> None:
    current = (ROOT / "Pulumi.yaml").read_text()
    assert current == reference.render_pulumi_yaml(current), REFRESH


def test_the_check_shows_a_difference_and_writing_repairs_only_the_rendered_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    for path in (reference.REFERENCE, reference.PROJECT_FILE):
        shutil.copy(ROOT / path, tmp_path / path)
    assert reference.check(tmp_path) == 0
    project_file = tmp_path / reference.PROJECT_FILE
    original = project_file.read_text()
    kept = original.replace("name: python", "name: python  # a comment the writer keeps")
    edited = kept.replace("The management object:", "The management:")
    assert kept.count("a comment the writer keeps") == 1 and edited != kept
    project_file.write_text(edited)
    (tmp_path / reference.REFERENCE).write_text(committed().replace("| `adopt` |", "| `adopted` |"))
    assert reference.check(tmp_path) == 1
    diff = capsys.readouterr().out
    assert "-      The management: the management plane" in diff and "+      The management object: the" in diff
    assert "-| `adopted` |" in diff and "+| `adopt` |" in diff
    reference.write(tmp_path)
    assert reference.check(tmp_path) == 0
    assert project_file.read_text() == kept
    assert (tmp_path / reference.REFERENCE).read_text() == committed()


def test_a_changed_default_changes_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference follows ARGUMENTS: one changed row is a different file (so the first test would fail)."""
    changed = tuple(
        dataclasses.replace(a, default=FromGeneration(lambda gen: f"relay.{gen.server_deployment}"))
        if a.name == "relay_authority"
        else a
        for a in ARGUMENTS
    )
    monkeypatch.setattr(reference, "ARGUMENTS", changed)
    rendered = reference.render_reference()
    assert rendered != committed()
    assert (
        "| `relayAuthority` | string | 1.x: `relay.enterprise-networking`; 2.x: `relay.gloo-mesh-mgmt-server` |"
        in rendered
    )


# -- what the reference says is what the code does ---------------------------------------------------------------


@pytest.mark.parametrize("stack_object", list(StackObject), ids=lambda o: o.value)
def test_every_key_a_stack_file_accepts_is_in_the_reference_and_in_pulumi_yaml(stack_object: StackObject) -> None:
    accepted = {StackObject.MANAGEMENT: MANAGEMENT_KEYS, StackObject.CLUSTER: CLUSTER_KEYS}[stack_object]
    assert list(by_name(table(STACK_HEADINGS[stack_object]))) == list(accepted)
    assert listed_keys(config_description(stack_object)) == list(accepted)


def test_secret_keys_are_marked_and_only_they() -> None:
    for stack_object in StackObject:
        rows = by_name(table(STACK_HEADINGS[stack_object]))
        description = config_description(stack_object)
        for key, name in stack_keys(stack_object).items():
            secret = ARGUMENTS_BY_NAME[name].secret
            assert rows[key][0].endswith("(secret)") == secret, key
            assert (f"{key} (contents as a secret)" in description) == secret, key
    assert {a.name for a in ARGUMENTS if a.secret} == {"mgmt_kubeconfig", "remote_kubeconfig"}


def stack_keys(stack_object: StackObject) -> dict[str, str]:
    return MANAGEMENT_KEYS if stack_object is StackObject.MANAGEMENT else CLUSTER_KEYS


def test_a_default_that_depends_on_the_generation_shows_each_generations_value() -> None:
    arguments = by_name(table(ARGUMENTS_HEADING))
    management = by_name(table(STACK_HEADINGS[StackObject.MANAGEMENT]))
    expected = f"1.x: `{GLOO_MESH_ENTERPRISE_1X.default_authority}`; 2.x: `{GLOO_PLATFORM_2X.default_authority}`"
    assert arguments["relay_authority"][2] == management["relayAuthority"][2] == expected
    assert expected == "1.x: `enterprise-networking.gloo-mesh`; 2.x: `gloo-mesh-mgmt-server.gloo-mesh`"
    per_generation = [a for a in ARGUMENTS if isinstance(a.default, FromGeneration)]
    assert {a.name for a in per_generation} >= {"relay_authority", "chart_repo", "agent_release_name"}
    for argument in per_generation:
        assert isinstance(argument.default, FromGeneration)
        for gen in GENERATIONS.values():
            value = f"`{literal(argument.default.of(gen))}`"
            assert shows(arguments[argument.name][2], gen, value, argument.default), (argument.name, gen.label)
    assert sorted(map(series, GENERATIONS.values())) == ["1.x", "2.x"]


def shows(shown: str, gen: AgentGeneration, value: str, default: FromGeneration) -> bool:
    """``shown`` gives ``value`` for ``gen``: as ``<series>: <value>``, or alone where every generation has it."""
    if len({str(default.of(each)) for each in GENERATIONS.values()}) == 1:
        return shown == value
    return f"{series(gen)}: {value}" in shown


def minimal_settings(generation: str) -> RegistrationSettings:
    return validate_registration_args(
        {"cluster_name": "east", "mgmt_context": "mgmt", "remote_context": "east", "agent_generation": generation}
    )


@pytest.mark.parametrize("gen", list(GENERATIONS.values()), ids=lambda g: g.name.value)
def test_the_defaults_shown_are_what_the_validation_fills_in(gen: AgentGeneration) -> None:
    """Each default the reference gives is the value of an argument left out, for each generation; an argument the
    validation fills in without a declared default says how (never "unset")."""
    settings = minimal_settings(gen.name)
    arguments = by_name(table(ARGUMENTS_HEADING))
    fields = {f.name for f in dataclasses.fields(RegistrationSettings)}
    checked = set()
    for argument in ARGUMENTS:
        if argument.name not in fields:
            continue
        value = getattr(settings, argument.name)
        shown = arguments[argument.name][2]
        if isinstance(argument.default, FromGeneration) or isinstance(argument.derived, FromGeneration):
            code = "`" if argument.default is not None else ""
            per_generation = argument.default if isinstance(argument.default, FromGeneration) else argument.derived
            assert isinstance(per_generation, FromGeneration)
            assert shows(shown, gen, f"{code}{literal(value)}{code}", per_generation), (argument.name, shown)
        elif argument.default is not None:
            assert shown == f"`{literal(value)}`", argument.name
        elif value is not None and argument.name != "cluster_name":
            assert argument.derived is not None and shown == argument.derived, argument.name
        else:
            continue
        checked.add(argument.name)
    assert {"relay_authority", "insecure", "wait_for_client_cert", "remove_bootstrap_token", "telemetry"} <= checked


def test_the_removal_of_the_bootstrap_token_is_shown_per_generation() -> None:
    row = by_name(table(STACK_HEADINGS[StackObject.CLUSTER]))["removeBootstrapToken"]
    assert minimal_settings(GLOO_MESH_ENTERPRISE_1X.name).remove_bootstrap_token is True
    assert minimal_settings(GLOO_PLATFORM_2X.name).remove_bootstrap_token is False
    assert row[2] == "1.x: true while waiting for the client certificate; 2.x: false"


def test_the_arguments_and_outputs_are_those_of_the_package_schema() -> None:
    """The reference reads the docstrings and annotations with ast; the SDK infers the schema from the same class:
    both must say the same (names, meanings, types), so neither reading can be wrong unnoticed."""
    schema = json.loads((ROOT / "provider" / "schema.json").read_text())
    resource = schema["resources"]["gloo-mesh-relay:index:RemoteClusterRegistration"]
    arguments = by_name(table(ARGUMENTS_HEADING))
    inputs = resource["inputProperties"]
    assert sorted(reference.camel(name) for name in arguments) == sorted(inputs)
    assert [reference.camel(n) for n, row in arguments.items() if row[2] == "required"] == resource["requiredInputs"]
    for name, row in arguments.items():
        schema_input = inputs[reference.camel(name)]
        assert row[4].replace("\\|", "|") == " ".join(schema_input["description"].split()), name
        if "$ref" in schema_input and schema_input["$ref"].startswith("#/types/"):
            values = [v["value"] for v in schema["types"][schema_input["$ref"][len("#/types/") :]]["enum"]]
            assert row[1].endswith("(" + " or ".join(f"`{v}`" for v in values) + ")"), name
    for stack_object in StackObject:
        for key, row in by_name(table(STACK_HEADINGS[stack_object])).items():
            schema_input = inputs[reference.camel(stack_keys(stack_object)[key])]
            if "type" in schema_input:
                assert row[1] == schema_input["type"], key
    outputs = by_name(table(OUTPUTS_HEADING))
    assert sorted(row[1].strip("`") for row in outputs.values()) == sorted(resource["properties"])
    for row in outputs.values():
        output = resource["properties"][row[1].strip("`")]
        assert row[3] == " ".join(output["description"].split())
        assert row[2].startswith("`pulumi.Output[")


def test_the_policy_tables_list_every_policy_and_setting_the_pack_registers() -> None:
    pack = policies()
    rows = by_name(table(POLICIES_HEADING))
    assert list(rows) == [p.name for p in pack]
    for policy in pack:
        assert policy.enforcement_level is not None
        assert rows[policy.name][2] == policy.enforcement_level.value
        assert rows[policy.name][4] == policy.description
    settings = {(row[0].strip("`"), row[1].strip("`")): row for row in table(SETTINGS_HEADING)}
    declared = {
        (p.name, key): schema
        for p in pack
        if p.config_schema is not None
        for key, schema in p.config_schema.properties.items()
    }
    assert list(settings) == list(declared)
    for where, schema in declared.items():
        assert settings[where][3] == (f"`{json.dumps(schema['default'])}`" if "default" in schema else "unset")
        assert settings[where][4] == schema["description"]
    example = json.loads((ROOT / "policy" / "config.example.json").read_text())
    assert set(example) <= set(rows)


def test_the_policy_pack_names_each_generations_default_authority() -> None:
    rows = by_name(table(POLICIES_HEADING))
    setting = {row[1].strip("`"): row for row in table(SETTINGS_HEADING)}["allowedAuthorities"]
    for gen in GENERATIONS.values():
        assert f"{gen.label} ({gen.chart}): {gen.default_authority}" in setting[4]
        assert gen.default_authority in rows["relay-authority-allowed"][4]


def test_pulumi_yaml_names_every_generation_and_no_longer_one() -> None:
    description = project()["description"]
    assert isinstance(description, str)
    for gen in GENERATIONS.values():
        assert gen.label in description
    for stack_object in StackObject:
        assert "docs/reference.md" in config_description(stack_object)
    assert "agentGeneration (gloo-mesh-enterprise-1 | gloo-platform-2)" in config_description(StackObject.MANAGEMENT)
