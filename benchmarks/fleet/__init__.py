"""Fleet: `pulumi up`, preview and destroy of 1 to 50 registrations on the real engine, against the guide's shell steps.

Everything runs on this machine, started by the script: a control plane (``lab.cluster.control_planes``: one etcd, a
management kube-apiserver and ``--remotes`` remote kube-apiservers, each with its controller manager), the simulated
Gloo management plane and the stand-in chart repository of ``lab/gloo.py``, and one watch-based simulated agent per
remote server (``benchmarks/fleet/agent.py``: three watches per server instead of ``SimulatedAgent``'s kubectl polls; it
writes each registration's client certificate a wait W after the token and the values, drawn per cluster,
``--agent-wait``, ``--agent-spread``, ``--agent-seed``, at once by default, and then makes the agent's Pod Ready). The
stand-in chart holds the agent's Deployment, which Helm's await of the program's release waits for, and the servers'
controller managers run the deployment and replicaset controllers to make its Pod (``--no-agent-deployment``: neither).
A fleet of N registrations spreads over the remote servers (registration i on server i mod R), each in its own agent
namespace and under its own cluster name.

Measured for each N, in each repeat, in this order and on the same servers:

* the project's own program (``Pulumi.yaml``, ``__main__.py``, a copy made by ``lab.pulumi_cli.project_copy``)
  in one stack of N clusters, through the real CLI: ``pulumi up --skip-preview`` from an empty stack, ``pulumi
  preview --expect-no-changes``, ``pulumi up --skip-preview --expect-no-changes``, ``pulumi destroy --skip-preview``,
  each with the ``--parallel`` that ``scripts/up.sh`` passes (4 per cluster, at least 16) unless told;
* the guide's Helm path as a shell script per cluster (``lab.guide.GUIDE_STEPS``: create the namespace
  and the two secrets, ``helm install`` at the version, apply the KubernetesCluster, ``kubectl wait`` for the client
  certificate, delete the token), run one cluster after another (``xargs -P 1``, as meshctl registers) and with the
  clusters in parallel (``xargs -P <--xargs-parallel>``); what a script registered is removed afterwards (not timed).

During each no-change preview, the requests served by the management API server (its ``/metrics``, as
``lab/observe.py`` reads them), by the remote servers, and by the chart repository are counted. At
``--breakdown-size`` N, extra ``pulumi up`` runs from empty with ``--otel-traces`` (and their destroys) show where
the time goes (provider start-up, steps by kind, the certificate wait, checkpoint writes) and a sampler of ``/proc``
shows which processes used the CPU. ``--variants`` repeats Pulumi runs with a change (``parallel=engine@20``: the four
runs with the engine's default ``--parallel``, 4 x the cores, at N = 20; ``skip-checkpoints@50``: up and destroy with
``PULUMI_SKIP_CHECKPOINTS=true`` at N = 50; ``env=GOGC=50@20``: up and destroy with a variable in the ``pulumi``
run's environment, which every plugin inherits; ``provider-env=GOMEMLIMIT=40MiB@20``: in the kubernetes providers'
alone, through a shim; ``backend=s3@20``: the four runs with the state in a real S3 server on 127.0.0.1,
``lab/object_store.py``; ``backend=s3:rtt=30@20``: that server 30 ms of round trip away, through a latency proxy,
``lab/latency_proxy.py``, whose round trips each run counts), in the same repeat as the defaults. At
``--sample-sizes`` N, every ``pulumi`` run is sampled as the traced ones are, and the memory tables show the process
tree's peak PSS (``/proc/<pid>/smaps_rollup``: shared pages divided among the processes sharing them, where RSS counts
the providers' common binary once per process) by kind of process. ``python -m benchmarks.fleet.provider_memory``
takes one kubernetes provider apart (its memory before and after ``Configure``, against a server with more or fewer
CRDs).

The command provider is ``lab/command_provider.py`` (the real-engine suite's one double), served as wide as the
real Go provider (``benchmarks/fleet/plugins.py``). Every figure is the median of ``--repeats`` runs with its spread
(half the range); ratios are taken per repeat, from runs made minutes apart on the same servers. ``--json`` keeps
every run, the traced runs' work by kind included, so that ``--from-json`` prints the same tables and plot again.

    python -m benchmarks.fleet                       # N = 1, 5, 20, 50, 3 repeats, breakdown at 20 (about an hour)
    python -m benchmarks.fleet --quick               # N = 1 and 2, one repeat, breakdown at 2: the smoke test
    python -m benchmarks.fleet --from-json benchmarks/results/fleet.json   # the tables of a saved run, nothing run

(from the repository root)
"""

# The modules, by concern: cli (the options, the order of the measurements), bench (the fleet and what every run
# shares), runs (one pulumi run measured, its record), guide (the guide's steps as scripts), api_requests (requests
# the servers served), proc (CPU and processes from /proc), traces (the OTel breakdown), report (the tables and the
# targets), plot, agent (the simulated agents), plugins (the command provider's plugin folder). The servers, the
# simulated management plane, the CLI driver and the guide's steps come from the real-engine lab (the `lab` package).
