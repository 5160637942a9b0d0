"""Registers two clusters of a larger platform program, with providers the program already has."""

import pulumi
import pulumi_kubernetes as k8s

from gloo_mesh_registration import RemoteClusterRegistration

config = pulumi.Config()
# The management cluster's kubeconfig context, and a chart mirror if the clusters cannot reach Solo's repository.
management_context = config.get("managementContext") or "mgmt-eu-west-1"
chart_repo = config.get("chartRepo")
management = k8s.Provider("management", context=management_context)

registrations = []
for cluster in ("eu-west-1-a", "eu-west-1-b"):
    kubeconfig = config.require_secret(f"{cluster}-kubeconfig")
    workload = k8s.Provider(cluster, kubeconfig=kubeconfig)
    registrations.append(
        RemoteClusterRegistration(
            cluster,
            {
                "cluster_name": cluster,
                "mgmt_provider": management,
                "mgmt_context": management_context,
                "remote_provider": workload,
                "remote_kubeconfig": kubeconfig,
                "agent_values": {"enterpriseAgent": {"resources": {"requests": {"cpu": "100m"}}}},
                **({"chart_repo": chart_repo} if chart_repo else {}),
            },
        )
    )

pulumi.export("releaseStatus", [registration.release_status for registration in registrations])
