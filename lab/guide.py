"""Registrations by hand, as shell scripts: what a platform team ran before this program, and what it takes over.

:data:`GUIDE_STEPS` is the registration guide's Helm path for Gloo Mesh 1.x, with the guide's defects fixed as the
program fixes them (a relay address, the cluster name and ``--version`` given; a KubernetesCluster that parses);
:data:`PLATFORM_STEPS` the same for a Gloo Platform 2.x management plane (the ``gloo-platform-crds`` and
``gloo-platform`` charts). Both ``helm install`` as the guide has them, without ``--wait``: a script waits for the agent
only in its ``kubectl wait`` for the client certificate. Tests (adoption) and the fleet benchmark (its by-hand baseline)
run them with the real kubectl and helm against the lab's servers (:func:`register_by_hand`). Inputs are environment
variables: ``KUBECONFIG_FILE``, ``MGMT``/``REMOTE`` (contexts), ``MGMT_NS`` (2.x), ``NS``, ``WORK``, ``REPO``,
``VERSION``, ``RELAY``, ``CLUSTER``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .cluster import ControlPlanes
from .gloo import MGMT_NAMESPACE, ChartRepository, ManagementPlane
from .scenarios import Lab

GUIDE_STEPS = """\
set -eu
k_mgmt() { kubectl --kubeconfig "$KUBECONFIG_FILE" --context "$MGMT" "$@"; }
k_remote() { kubectl --kubeconfig "$KUBECONFIG_FILE" --context "$REMOTE" "$@"; }
k_remote create namespace "$NS"
k_mgmt get secret relay-root-tls-secret -n gloo-mesh -o jsonpath='{.data.ca\\.crt}' | base64 -d > "$WORK/ca.crt"
k_remote create secret generic relay-root-tls-secret -n "$NS" --from-file=ca.crt="$WORK/ca.crt"
k_mgmt get secret relay-identity-token-secret -n gloo-mesh -o jsonpath='{.data.token}' | base64 -d > "$WORK/token"
k_remote create secret generic relay-identity-token-secret -n "$NS" --from-file=token="$WORK/token"
helm --kubeconfig "$KUBECONFIG_FILE" --kube-context "$REMOTE" install enterprise-agent enterprise-agent \\
  --repo "$REPO" --version "$VERSION" -n "$NS" \\
  --set relay.serverAddress="$RELAY" --set relay.authority=enterprise-networking.gloo-mesh \\
  --set relay.cluster="$CLUSTER" --set relay.rootTlsSecret.name=relay-root-tls-secret \\
  --set relay.tokenSecret.name=relay-identity-token-secret
k_mgmt apply -f - <<EOF
apiVersion: multicluster.solo.io/v1alpha1
kind: KubernetesCluster
metadata:
  name: $CLUSTER
  namespace: gloo-mesh
spec:
  clusterDomain: cluster.local
EOF
k_remote wait --for=create secret/relay-client-tls-secret -n "$NS" --timeout=120s
k_remote delete secret relay-identity-token-secret -n "$NS"
"""


PLATFORM_STEPS = """\
set -eu
k_mgmt() { kubectl --kubeconfig "$KUBECONFIG_FILE" --context "$MGMT" "$@"; }
k_remote() { kubectl --kubeconfig "$KUBECONFIG_FILE" --context "$REMOTE" "$@"; }
h_remote() { helm --kubeconfig "$KUBECONFIG_FILE" --kube-context "$REMOTE" "$@"; }
k_remote create namespace "$NS"
k_mgmt get secret relay-root-tls-secret -n "$MGMT_NS" -o jsonpath='{.data.ca\\.crt}' | base64 -d > "$WORK/ca.crt"
k_remote create secret generic relay-root-tls-secret -n "$NS" --from-file=ca.crt="$WORK/ca.crt"
k_mgmt get secret relay-identity-token-secret -n "$MGMT_NS" -o jsonpath='{.data.token}' | base64 -d > "$WORK/token"
k_remote create secret generic relay-identity-token-secret -n "$NS" --from-file=token="$WORK/token"
h_remote install gloo-platform-crds gloo-platform-crds --repo "$REPO" --version "$VERSION" -n "$NS"
h_remote install gloo-platform-agent gloo-platform --repo "$REPO" --version "$VERSION" -n "$NS" \\
  --set common.cluster="$CLUSTER" --set glooAgent.enabled=true \\
  --set glooAgent.relay.serverAddress="$RELAY" --set glooAgent.relay.authority=gloo-mesh-mgmt-server.gloo-mesh \\
  --set glooAgent.relay.rootTlsSecret.name=relay-root-tls-secret \\
  --set glooAgent.relay.tokenSecret.name=relay-identity-token-secret
k_mgmt apply -f - <<EOF
apiVersion: admin.gloo.solo.io/v2
kind: KubernetesCluster
metadata:
  name: $CLUSTER
  namespace: $MGMT_NS
spec:
  clusterDomain: cluster.local
EOF
k_remote wait --for=create secret/relay-client-tls-secret -n "$NS" --timeout=120s
"""


def guide_environment(
    planes: ControlPlanes, chart_repo: ChartRepository, plane: ManagementPlane, *, home: Path
) -> dict[str, str]:
    """What every run of the scripts above needs from the lab: its kubectl and helm, kubeconfig and management
    context, the chart repository, the agent version and relay address (the cluster's own inputs come on top)."""
    return {
        "PATH": f"{planes.bin_dir}:/usr/bin:/bin",
        "KUBECONFIG_FILE": str(planes.kubeconfig),
        "MGMT": planes.clusters["mgmt"].context,
        "REPO": chart_repo.url,
        "VERSION": plane.agent_version,
        "RELAY": plane.relay_address,
        "HOME": str(home),
    }


def register_by_hand(
    lab: Lab, script: str, work_name: str, *, cluster: str, namespace: str, plane: ManagementPlane, mgmt_ns: str = ""
) -> None:
    """Runs ``script`` (one of the above) for ``cluster`` into agent namespace ``namespace`` on the ``remote`` server,
    with the lab's kubectl and helm, in a work folder of its own; fails with the script's error output."""
    work = lab.work / work_name
    work.mkdir(parents=True, exist_ok=True)
    environment = {
        **guide_environment(lab.planes, lab.chart_repo, plane, home=work),
        "REMOTE": lab.planes.clusters["remote"].context,
        "MGMT_NS": mgmt_ns or MGMT_NAMESPACE,
        "NS": namespace,
        "CLUSTER": cluster,
        "WORK": str(work),
    }
    done = subprocess.run(["/bin/sh", "-c", script], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
