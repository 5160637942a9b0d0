// Registers a cluster this program already manages: its provider and kubeconfig come from elsewhere in the
// program (here: stack config), the management cluster is reached through a context.
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import * as glooMeshRelay from "@pulumi/gloo-mesh-relay";

const config = new pulumi.Config();
const workloadKubeconfig = config.requireSecret("workloadKubeconfig");

const management = new k8s.Provider("management", { context: "mgmt-eu-west-1" });
const workload = new k8s.Provider("eu-west-1-a", { kubeconfig: workloadKubeconfig });

const registration = new glooMeshRelay.RemoteClusterRegistration("eu-west-1-a", {
    clusterName: "eu-west-1-a",
    mgmtProvider: management,
    mgmtContext: "mgmt-eu-west-1",
    remoteProvider: workload,
    remoteKubeconfig: workloadKubeconfig,
    relayServerAddress: "relay.eu-west-1.example.com:9900",
    agentVersion: "1.1.6",
});

export const releaseStatus = registration.releaseStatus;
export const relayServerAddress = registration.relayServerAddress;
