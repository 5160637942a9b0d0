"""Registers two clusters of a larger platform program, with providers the program already has."""

import pulumi
import pulumi_kubernetes as k8s

from components import RemoteClusterRegistration

config = pulumi.Config()
management = k8s.Provider("management", context="mgmt-eu-west-1")

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
                "mgmt_context": "mgmt-eu-west-1",
                "remote_provider": workload,
                "remote_kubeconfig": kubeconfig,
                "agent_values": {"enterpriseAgent": {"resources": {"requests": {"cpu": "100m"}}}},
            },
        )
    )

pulumi.export("releaseStatus", [registration.release_status for registration in registrations])
