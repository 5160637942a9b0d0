"""Registers the stack's clusters with its Gloo Mesh Enterprise management plane (see README.md).

Thin on purpose: read and validate the stack config, declare one management Provider and one
RemoteClusterRegistration per cluster (from the settings the read validated), export what each registration resolved.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from gloo_mesh_registration import RemoteClusterRegistration
from gloo_mesh_registration.stack_config import current_config, read_stack_config

# Every cluster entry is validated before the first resource is declared.
stack = read_stack_config(pulumi.get_project(), current_config())

# One provider for the management cluster, shared by every registration: the one thing they share.
management = k8s.Provider(
    "management", context=stack.management.context, kubeconfig=stack.management.kubeconfig_input()
)

# Each cluster's settings were validated by the read: the component takes them as they are.
registrations = {
    settings.cluster_name: RemoteClusterRegistration.from_settings(
        settings.cluster_name, settings.with_management_provider(management)
    )
    for settings in stack.clusters
}

pulumi.export(
    "clusters",
    {
        name: {
            "relayServerAddress": registration.relay_server_address,
            "agentVersion": registration.agent_version,
            "remoteNamespace": registration.remote_namespace,
            "releaseStatus": registration.release_status,
            "clientCertificateIssued": registration.client_certificate_issued,
        }
        for name, registration in registrations.items()
    },
)
