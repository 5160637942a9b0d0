"""The real-engine suite: real pulumi, real providers, real kube-apiservers (see CONTRIBUTING.md, "How this is verified")."""
