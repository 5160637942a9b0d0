"""The real-engine suite: real pulumi, real providers, real kube-apiservers (see README, "How this is verified")."""
