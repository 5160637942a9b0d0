"""The real-engine lab: real tools and simulated Gloo planes that tests, benchmarks and the demo run registrations in.

What each module holds, by layer, top first (a module imports only from the layers below its own, and modules of one
layer do not import each other: the contract is pyproject.toml's ``[tool.importlinter]``, checked by ``lint-imports``):

- ``demo``, ``upgrade_check``: the two command-line entry points (``python -m lab.demo``,
  ``python -m lab.upgrade_check``).
- ``guide``, ``policy_pack``, ``registration_checks``: registrations by hand (the guide's Helm path, and the 2.x one)
  as scripts; the policy pack as the CLI runs it; what the servers hold of a registration.
- ``scenarios``: stack files for the lab's servers, and :class:`~lab.scenarios.Lab` (projects, agents, configs).
- ``pulumi_cli``, ``gloo``, ``observe``, ``object_store``: the real ``pulumi`` CLI around a copy of a project; the
  simulated Gloo pieces (both generations' management planes, the stand-in chart repository, the simulated agent);
  what a test asks the servers (an API client, watches, request counts); a real S3 server for the state (SeaweedFS).
- ``cluster``, ``command_provider``, ``language_host``, ``engine_double``, ``latency_proxy``: real kube-apiservers
  (and etcd, kube-controller-manager) on 127.0.0.1; stand-ins for what the Go module proxy does not serve
  (pulumi-command, the modern Python language host), each citing the source it follows, run as plugins of the real
  CLI; the recording engine of the mock-runtime tests; a TCP proxy that puts a server a round-trip time away.

It is a package of its own (``lab/pyproject.toml``, installed editable by ``requirements-dev.txt``), so tests,
benchmarks and the plugins the CLI starts import it with no path set-up; it is never part of the component's wheel.
"""
