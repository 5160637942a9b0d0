"""Bad input fails before any resource is declared, naming the field, the value and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi_kubernetes as k8s
import pytest
from builders import registration_inputs

from gloo_mesh_registration import RegistrationConfigError, RemoteClusterRegistration
from gloo_mesh_registration.validation import validate_registration_args
from lab.engine_double import KUBECONFIG_CONTENTS, FakeClusters, RecordingMonitor, run_program


def base(**overrides: Any) -> dict[str, Any]:
    """Good input with the generation named (nothing to discover offline), untyped so that a test can spoil it."""
    return registration_inputs(
        "remote-cluster", "mgmt", "remote", **{"agent_generation": "gloo-mesh-enterprise-1", **overrides}
    )


BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "uppercase name",
        base(cluster_name="Remote-Cluster"),
        r"cluster_name: 'Remote-Cluster' is not a valid cluster name.*Fix: use a name such as 'remote-cluster'",
    ),
    ("underscore name", base(cluster_name="remote_cluster"), r"cluster_name: 'remote_cluster' .*DNS-1123 label"),
    ("empty name", base(cluster_name=""), r"cluster_name: '' is not a valid cluster name"),
    ("long name", base(cluster_name="a" * 64), r"cluster_name: 'a{64}' is not a valid cluster name"),
    ("missing name", {"mgmt_context": "m", "remote_context": "r"}, r"cluster_name: None is not a valid cluster name"),
    (
        "no port",
        base(relay_server_address="relay.example.com"),
        r"relay_server_address: 'relay.example.com' has no valid port.*Fix: give host:port",
    ),
    ("port zero", base(relay_server_address="relay.example.com:0"), r"has no valid port"),
    ("port too big", base(relay_server_address="10.0.0.1:65536"), r"has no valid port"),
    ("bad host", base(relay_server_address="relay_example:9900"), r"has no valid host name"),
    ("bad ipv6", base(relay_server_address="[zz::1]:9900"), r"has an invalid IPv6 host"),
    (
        "bad version",
        base(agent_version="latest"),
        r"agent_version: 'latest' is not a valid agent version.*Fix: give the enterprise-networking version",
    ),
    ("partial version", base(agent_version="1.1"), r"agent_version: '1.1' is not a valid agent version"),
    (
        "bad domain",
        base(cluster_domain="Cluster_Local"),
        r"cluster_domain: 'Cluster_Local' is not a DNS domain.*'cluster.local'",
    ),
    ("bad namespace", base(remote_namespace="Gloo-Mesh"), r"remote_namespace: 'Gloo-Mesh' is not a valid namespace"),
    ("bad mgmt namespace", base(mgmt_namespace="gloo mesh"), r"mgmt_namespace: 'gloo mesh' is not a valid namespace"),
    (
        "bad authority",
        base(relay_authority="enterprise networking"),
        r"relay_authority: 'enterprise networking' is not a DNS name",
    ),
    (
        "bad repo",
        base(chart_repo="storage.googleapis.com/x"),
        r"chart_repo: 'storage.googleapis.com/x' is not a Helm repository URL",
    ),
    (
        "no mgmt access",
        {"cluster_name": "c", "remote_context": "r"},
        r"mgmt_context: nothing was given for the management cluster.*Fix: set mgmt_context, mgmt_kubeconfig or mgmt_provider",
    ),
    (
        "no remote access",
        {"cluster_name": "c", "mgmt_context": "m"},
        r"remote_context: nothing was given for the remote cluster",
    ),
    (
        "missing kubeconfig file",
        base(remote_kubeconfig="/nonexistent/kubeconfig"),
        r"remote_kubeconfig: '/nonexistent/kubeconfig' is not an existing kubeconfig file",
    ),
    ("empty kubeconfig", base(mgmt_kubeconfig="  "), r"mgmt_kubeconfig: '' is empty"),
    (
        "unknown key",
        base(relay_adress="x:1"),
        r"relay_adress: 'relay_adress' is not a registration argument.*relay_server_address",
    ),
    (
        "timeout zero",
        base(client_cert_timeout_seconds=0),
        r"client_cert_timeout_seconds: 0 is not a whole number of seconds",
    ),
    (
        "timeout fraction",
        base(client_cert_timeout_seconds=1.5),
        r"client_cert_timeout_seconds: 1.5 is not a whole number of seconds",
    ),
    (
        "timeout text",
        base(client_cert_timeout_seconds="300"),
        r"client_cert_timeout_seconds: '300' is not a whole number",
    ),
    ("bool as text", base(insecure="yes"), r"insecure: 'yes' is not a boolean.*Fix: use true or false"),
    (
        "provider by name",
        base(remote_provider="kind-remote"),
        r"^remote_provider: str is not a pulumi_kubernetes.Provider. Fix: pass a kubernetes Provider$",
    ),
    ("discovery mode", base(relay_discovery="nodeport"), r"relay_discovery: 'nodeport' is not a discovery mode"),
    (
        "nodeport needs node",
        base(relay_discovery="istio-ingress-nodeport"),
        r"relay_node_name: nothing is needed to discover",
    ),
    (
        "token removal without wait",
        base(wait_for_client_cert=False, remove_bootstrap_token=True),
        r"remove_bootstrap_token: true needs wait_for_client_cert",
    ),
    (
        "override cluster",
        base(agent_values={"relay": {"cluster": "other"}}),
        r"agent_values.relay.cluster: a value would override the registration's value \('remote-cluster'\).*set cluster_name instead",
    ),
    (
        "override address",
        base(relay_server_address="r:1", agent_values={"relay": {"serverAddress": "x:2"}}),
        r"agent_values.relay.serverAddress.*set relay_server_address instead",
    ),
    (
        "override token ref",
        base(agent_values={"relay": {"tokenSecret": {"key": "other"}}}),
        r"agent_values.relay.tokenSecret.key",
    ),
    (
        "insecure via values",
        base(agent_values={"global": {"insecure": True}}),
        r"agent_values.global.insecure.*set insecure instead",
    ),
    ("values not a map", base(agent_values=["a"]), r"agent_values: list is not a mapping"),
    (
        "bad generation",
        base(agent_generation="gloo-mesh-2"),
        r"agent_generation: 'gloo-mesh-2' is not an agent generation.*gloo-mesh-enterprise-1, gloo-platform-2",
    ),
    (
        "telemetry on 1.x",
        base(telemetry=True),
        r"telemetry: set needs a telemetry gateway, which Gloo Mesh Enterprise 1.x does not have",
    ),
    (
        "telemetry address on 1.x",
        base(telemetry_gateway_address="otel.example.com:4317"),
        r"telemetry_gateway_address: set needs a telemetry gateway",
    ),
    (
        "telemetry address while off",
        base(agent_generation="gloo-platform-2", telemetry=False, telemetry_gateway_address="otel.example.com:4317"),
        r"telemetry_gateway_address: set is given while telemetry is off",
    ),
    (
        "bad telemetry address",
        base(agent_generation="gloo-platform-2", telemetry_gateway_address="otel.example.com"),
        r"telemetry_gateway_address: 'otel.example.com' has no valid port",
    ),
    (
        "2.x cluster value override",
        base(agent_generation="gloo-platform-2", agent_values={"common": {"cluster": "other"}}),
        r"agent_values.common.cluster: .*set cluster_name instead",
    ),
    (
        "2.x authority override",
        base(agent_generation="gloo-platform-2", agent_values={"glooAgent": {"relay": {"authority": "x"}}}),
        r"agent_values.glooAgent.relay.authority: .*set relay_authority instead",
    ),
]


@pytest.mark.parametrize(("case", "bad", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_rejected_before_any_resource(case: str, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistrationConfigError, match=message):
        validate_registration_args(bad)
    declared: list[str] = []

    def program() -> None:
        try:
            RemoteClusterRegistration("r", bad)  # type: ignore[arg-type]
        except RegistrationConfigError:
            declared.append("raised")
            raise

    monitor = RecordingMonitor(FakeClusters())
    with pytest.raises(RegistrationConfigError):
        run_program(program, monitor=monitor)
    assert declared == ["raised"]
    assert monitor.records == [], f"{case}: resources were declared before the input was rejected"


def test_nothing_is_declared_when_the_component_rejects_its_input() -> None:
    monitor = RecordingMonitor(FakeClusters())
    with pytest.raises(RegistrationConfigError):
        run_program(lambda: RemoteClusterRegistration("r", base(cluster_name="Bad")), monitor=monitor)  # type: ignore[arg-type]
    assert monitor.records == []


def test_kubeconfig_contents_never_appear_in_an_error() -> None:
    with pytest.raises(RegistrationConfigError) as raised:
        validate_registration_args(base(remote_kubeconfig=KUBECONFIG_CONTENTS, cluster_name="Bad_Name"))
    assert "kubeconfig-bearer" not in str(raised.value)
    with pytest.raises(RegistrationConfigError) as raised:
        validate_registration_args(base(agent_values={"relay": {"authority": "secret-ish-value"}}))
    assert "secret-ish-value" not in str(raised.value)


def test_provider_only_remote_needs_kubectl_access_for_the_shell_steps() -> None:
    import pulumi

    pulumi.runtime.settings.reset_options(project="p", stack="s")
    pulumi.runtime.set_mocks(FakeClusters(), project="p", stack="s")
    provider = k8s.Provider("remote", context="remote")
    with pytest.raises(
        RegistrationConfigError,
        match=r"remote_provider: a Provider object gives the shell steps .* also set remote_context",
    ):
        validate_registration_args(base(cluster_name="c", remote_context=None, remote_provider=provider))
    insecure = validate_registration_args(
        base(cluster_name="c", remote_context=None, remote_provider=provider, insecure=True)
    )
    assert insecure.remote.provider is provider


def test_a_kubeconfig_path_is_checked_expanded_and_kept_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As written, so the same stack file on a machine with another home (a CI runner) changes no input: the Provider
    (pulumi-kubernetes expands `~/`) and the steps (their preamble does) expand it where they run."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "kc").write_text(KUBECONFIG_CONTENTS)
    assert validate_registration_args(base(remote_kubeconfig="~/kc")).remote.kubeconfig == "~/kc"
    with pytest.raises(RegistrationConfigError, match=r"remote_kubeconfig: '~/other' is not an existing kubeconfig"):
        validate_registration_args(base(remote_kubeconfig="~/other"))
    assert (
        validate_registration_args(base(remote_kubeconfig=KUBECONFIG_CONTENTS)).remote.kubeconfig == KUBECONFIG_CONTENTS
    )


def test_timeout_from_another_language() -> None:
    """A number sent by a YAML or TypeScript program reaches Construct as a double (found by the YAML example on the
    real engine): a whole one is the same number of seconds, a fraction is still refused (above)."""
    assert validate_registration_args(base(client_cert_timeout_seconds=600.0)).client_cert_timeout_seconds == 600
    assert type(validate_registration_args(base(client_cert_timeout_seconds=600.0)).client_cert_timeout_seconds) is int


@pytest.mark.parametrize(
    "repository",
    ["https://charts.example.com/gloo", "http://charts.internal:8080", "oci://registry.example.com/gloo-charts"],
)
def test_a_chart_repository_may_be_https_http_or_oci(repository: str) -> None:
    """Helm pulls from classic repositories over https or http and from OCI registries (`helm pull oci://...`)."""
    assert validate_registration_args(base(chart_repo=repository)).chart_repo == repository


def test_defaults() -> None:
    s = validate_registration_args(base())
    assert (s.mgmt_namespace, s.remote_namespace, s.cluster_domain) == ("gloo-mesh", "gloo-mesh", "cluster.local")
    assert (s.relay_authority, s.relay_discovery) == ("enterprise-networking.gloo-mesh", "loadbalancer")
    assert (s.wait_for_client_cert, s.remove_bootstrap_token, s.client_cert_timeout_seconds) == (True, True, 300)
    assert s.create_remote_namespace is True and s.insecure is False
    no_wait = validate_registration_args(base(wait_for_client_cert=False))
    assert no_wait.remove_bootstrap_token is False
    ipv6 = validate_registration_args(base(relay_server_address="[2001:db8::1]:9900"))
    assert ipv6.relay_server_address == "[2001:db8::1]:9900"
    for port in ("1", "65535"):
        assert validate_registration_args(base(relay_server_address=f"relay.example.com:{port}")).relay_server_address
    with pytest.raises(RegistrationConfigError, match="has no valid port"):
        validate_registration_args(base(relay_server_address="relay.example.com:65536"))


def test_gloo_platform_2_defaults_follow_the_generation() -> None:
    s = validate_registration_args(base(agent_generation="gloo-platform-2"))
    assert s.generation.name == "gloo-platform-2"
    assert s.relay_authority == "gloo-mesh-mgmt-server.gloo-mesh"
    assert s.chart_repo == "https://storage.googleapis.com/gloo-platform/helm-charts"
    # The workshops keep the token, and the agent keeps pointing at it: 2.x keeps it unless told otherwise.
    assert (s.wait_for_client_cert, s.remove_bootstrap_token) == (True, False)
    assert validate_registration_args(base(agent_generation="gloo-platform-2", remove_bootstrap_token=True))
    assert s.telemetry is False
    with_gateway = validate_registration_args(
        base(agent_generation="gloo-platform-2", telemetry_gateway_address="otel.example.com:4317")
    )
    assert with_gateway.telemetry is True


def test_without_a_generation_and_no_discovery_the_argument_is_required() -> None:
    with pytest.raises(RegistrationConfigError, match=r"agent_generation: nothing was given, and here it cannot"):
        validate_registration_args(base(agent_generation=None))


WHOLE_MESSAGES: list[tuple[str, Any, str]] = [
    (
        "agent version not a string",
        base(agent_version=116),
        "agent_version: 116 is not a string. Fix: give a version such as '1.1.6'",
    ),
    (
        "args not a mapping",
        "remote-cluster",
        "args: str is not a mapping. Fix: pass a RemoteClusterRegistrationArgs dict",
    ),
    (
        "generation neither given nor discoverable",
        {k: v for k, v in base().items() if k != "agent_generation"},
        "agent_generation: nothing was given, and here it cannot be discovered from the management cluster. "
        "Fix: set it to one of gloo-mesh-enterprise-1, gloo-platform-2",
    ),
    (
        "context not a string",
        base(mgmt_context=5),
        "mgmt_context: 5 is not a non-empty string. Fix: give a string or leave it unset",
    ),
    (
        "telemetry address not a string",
        base(agent_generation="gloo-platform-2", telemetry_gateway_address=5),
        "telemetry_gateway_address: 5 is not a string. Fix: give host:port",
    ),
    (
        "telemetry address while telemetry is off",
        base(agent_generation="gloo-platform-2", telemetry=False, telemetry_gateway_address="otel.example.com:4317"),
        "telemetry_gateway_address: set is given while telemetry is off. "
        "Fix: set telemetry to true, or remove telemetry_gateway_address",
    ),
    (
        "relay address without a valid host",
        base(relay_server_address="bad_host!:9900"),
        "relay_server_address: 'bad_host!:9900' has no valid host name or IPv4 address. Fix: give host:port, for "
        "example '203.0.113.10:9900' or 'relay.example.com:443' ('[2001:db8::1]:9900' for IPv6)",
    ),
    (
        "relay address not a string",
        base(relay_server_address=9900),
        "relay_server_address: 9900 is not a string. Fix: give host:port",
    ),
    (
        "relay discovery mode unknown",
        base(relay_discovery="dns"),
        "relay_discovery: 'dns' is not a discovery mode. Fix: use one of loadbalancer, istio-ingress-nodeport",
    ),
    (
        "wait flag not a boolean",
        base(wait_for_client_cert="yes"),
        "wait_for_client_cert: 'yes' is not a boolean. Fix: use true or false",
    ),
    (
        "telemetry flag not a boolean",
        base(agent_generation="gloo-platform-2", telemetry="on"),
        "telemetry: 'on' is not a boolean. Fix: use true or false",
    ),
    (
        "chart repository without a host",
        base(chart_repo="https:///charts"),
        "chart_repo: 'https:///charts' is not a Helm repository URL. Fix: give an https:// or oci:// URL such as "
        "'https://storage.googleapis.com/gloo-mesh-enterprise/enterprise-agent'",
    ),
    (
        "chart repository not a string",
        base(chart_repo=5),
        "chart_repo: 5 is not a Helm repository URL. Fix: give an https:// or oci:// URL such as "
        "'https://storage.googleapis.com/gloo-mesh-enterprise/enterprise-agent'",
    ),
    (
        "namespace not a DNS-1123 label",
        base(remote_namespace="Bad_NS"),
        "remote_namespace: 'Bad_NS' is not a valid namespace: it must be a DNS-1123 label (1 to 63 characters of "
        "a-z, 0-9 and '-', starting and ending with a letter or digit). Fix: use a name such as 'bad-ns'",
    ),
    (
        "telemetry on a 1.x management plane",
        base(telemetry_gateway_address="otel.example.com:4317"),
        "telemetry_gateway_address: set needs a telemetry gateway, which Gloo Mesh Enterprise 1.x does not have. "
        "Fix: remove it, or register with a Gloo Platform 2.x management plane (agent_generation)",
    ),
    (
        "a key under the root CA reference",
        base(agent_values={"relay": {"rootTlsSecret": {"name": "mine"}}}),
        "agent_values.relay.rootTlsSecret.name: a value would override the registration's value "
        "('relay-root-tls-secret'); registration-critical values are not silently overridden. "
        "Fix: remove it from agent_values and set the registration's own arguments instead",
    ),
    (
        "a root CA reference while insecure (the registration sets none)",
        base(insecure=True, agent_values={"relay": {"rootTlsSecret": {"name": "mine"}}}),
        "agent_values.relay.rootTlsSecret: a value would override the registration's value (None); "
        "registration-critical values are not silently overridden. "
        "Fix: remove it from agent_values and set the registration's own arguments instead",
    ),
    (
        "relay address with an invalid IPv6 host",
        base(relay_server_address="[2001:db8::zz]:9900"),
        "relay_server_address: '[2001:db8::zz]:9900' has an invalid IPv6 host. Fix: give host:port, for example "
        "'203.0.113.10:9900' or 'relay.example.com:443' ('[2001:db8::1]:9900' for IPv6)",
    ),
    (
        "token removal without the wait",
        base(wait_for_client_cert=False, remove_bootstrap_token=True),
        "remove_bootstrap_token: true needs wait_for_client_cert: the token can only be removed once the agent holds "
        "its client certificate. Fix: set wait_for_client_cert to true, or remove_bootstrap_token to false",
    ),
    (
        "a telemetry endpoint while telemetry is off (the registration sets none)",
        base(
            agent_generation="gloo-platform-2",
            agent_values={"telemetryCollector": {"config": {"exporters": {"otlp": {"endpoint": "other:4317"}}}}},
        ),
        "agent_values.telemetryCollector.config.exporters.otlp.endpoint: a value would override the registration's "
        "value (None); registration-critical values are not silently overridden. "
        "Fix: remove it from agent_values and set telemetry_gateway_address instead",
    ),
    (
        "a key under the token reference",
        base(agent_values={"relay": {"tokenSecret": {"optional": True}}}),
        "agent_values.relay.tokenSecret.optional: a value would override the registration's value (None); "
        "registration-critical values are not silently overridden. "
        "Fix: remove it from agent_values and set the registration's own arguments instead",
    ),
    (
        "the telemetry endpoint given twice",
        base(
            agent_generation="gloo-platform-2",
            telemetry_gateway_address="otel.example.com:4317",
            agent_values={"telemetryCollector": {"config": {"exporters": {"otlp": {"endpoint": "other:4317"}}}}},
        ),
        "agent_values.telemetryCollector.config.exporters.otlp.endpoint: a value would override the registration's "
        "value ('otel.example.com:4317'); registration-critical values are not silently overridden. "
        "Fix: remove it from agent_values and set telemetry_gateway_address instead",
    ),
]


@pytest.mark.parametrize(("case", "bad", "message"), WHOLE_MESSAGES, ids=[c[0] for c in WHOLE_MESSAGES])
def test_the_whole_message_names_the_field_the_value_and_the_fix(case: str, bad: Any, message: str) -> None:
    """The message a user reads, word for word: the field (as the user spells it), the value, what is wrong, the fix;
    the registration's own value where the user's would override it."""
    with pytest.raises(RegistrationConfigError) as raised:
        validate_registration_args(bad)
    assert str(raised.value) == message


def test_a_cluster_reached_only_through_a_provider_is_described_as_such() -> None:
    """Discovery and preflight messages say how the cluster was reached; a Provider object is all there is to say."""
    import pulumi

    from gloo_mesh_registration.args import ClusterAccess

    pulumi.runtime.settings.reset_options(project="p", stack="s")
    pulumi.runtime.set_mocks(FakeClusters(), project="p", stack="s")
    provider = k8s.Provider("mgmt", context="mgmt")
    assert (
        ClusterAccess("management", context=None, kubeconfig=None, provider=provider).describe() == "the given provider"
    )
    assert (
        ClusterAccess("management", context="mgmt", kubeconfig=None, provider=provider).describe() == "context 'mgmt'"
    )
    assert ClusterAccess("management", context=None, kubeconfig=None, provider=None).describe() == "no cluster access"


def test_with_two_bad_arguments_the_first_reported_is_the_one_checked_first_since_the_first_release() -> None:
    """The order of the checks is part of what users see (one error at a time): moving the validation into
    validation.py kept it. The agent release's name is checked before the booleans of the registered cluster."""
    bad = base(create_remote_namespace="yes", agent_release_name="BAD_NAME", adopt="no")
    with pytest.raises(RegistrationConfigError, match=r"^agent_release_name: 'BAD_NAME' is not a Helm release name"):
        validate_registration_args(bad)
    with pytest.raises(RegistrationConfigError, match=r"^create_remote_namespace: 'yes' is not a boolean"):
        validate_registration_args(base(create_remote_namespace="yes", adopt="no"))
