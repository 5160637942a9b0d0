"""The real-engine lab: real tools and simulated Gloo planes that tests, benchmarks and the demo run registrations in.

What each module holds (the layers run downwards: a module imports only those above it in this list):

- ``cluster``: real kube-apiservers (and etcd, kube-controller-manager) on 127.0.0.1, their CA, kubeconfigs, kubectl.
- ``observe``: what a test asks the servers: a small API client, watches, request counts from ``/metrics``.
- ``gloo``: the simulated Gloo pieces: the management planes of both generations, the stand-in chart repository, the
  simulated agent.
- ``command_provider``, ``language_host``: stand-ins for what the Go module proxy does not serve (pulumi-command, the
  modern Python language host), each citing the source it follows; they run as plugins of the real CLI.
- ``pulumi_cli``: the real ``pulumi`` CLI around a copy of a project: plugin folders, stacks, runs and their results.
- ``registration_checks``, ``scenarios``, ``guide``, ``policy_pack``: what a registration looks like on the servers,
  the stack files of the suite's scenarios, the guide's shell steps as data, the policy pack under the CLI.
- ``demo``, ``upgrade_check``: the two command-line entry points (``python -m lab.demo``,
  ``python -m lab.upgrade_check``).

It is a package of its own (``lab/pyproject.toml``, installed editable by ``requirements-dev.txt``), so tests,
benchmarks and the plugins the CLI starts import it with no path set-up; it is never part of the component's wheel.
"""
