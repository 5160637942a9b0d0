// Registers a cluster this program already manages: its provider and kubeconfig come from elsewhere in the
// program (here: stack config), the management cluster is reached through a context.
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import * as glooMeshRelay from "@pulumi/gloo-mesh-relay";

const config = new pulumi.Config();
const workloadKubeconfig = config.requireSecret("workloadKubeconfig");
// The management cluster's kubeconfig context, and a chart mirror if the clusters cannot reach Solo's repository.
const managementContext = config.get("managementContext") ?? "mgmt-eu-west-1";
const chartRepo = config.get("chartRepo");

const management = new k8s.Provider("management", { context: managementContext });
const workload = new k8s.Provider("eu-west-1-a", { kubeconfig: workloadKubeconfig });

const registration = new glooMeshRelay.RemoteClusterRegistration("eu-west-1-a", {
    clusterName: "eu-west-1-a",
    mgmtProvider: management,
    mgmtContext: managementContext,
    remoteProvider: workload,
    remoteKubeconfig: workloadKubeconfig,
    // Both discovered from the management plane when absent.
    relayServerAddress: config.get("relayServerAddress"),
    agentVersion: config.get("agentVersion"),
    clientCertTimeoutSeconds: 600,
    ...(chartRepo ? { chartRepo } : {}),
});

export const releaseStatus = registration.releaseStatus;
export const relayServerAddress = registration.relayServerAddress;
export const agentVersion = registration.agentVersion;
