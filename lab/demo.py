"""The main job, for real, on this machine: ``scripts/demo.sh`` runs this (see README, "No clusters? The demo").

Starts two real API servers with the simulated Gloo management plane (lab/gloo.py), runs the real
``pulumi up`` of a local stack of this project, prints what was registered and how to look at it, then waits.
Ctrl-C (or ``scripts/demo.sh --down`` from another shell) runs ``pulumi destroy`` and stops the servers.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from .pulumi_cli import ROOT, PulumiProject, project_copy
from .scenarios import CLUSTER, REMOTE_NAMESPACE, standalone_lab


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=Path, required=True, help="the folder scripts/e2e-tools.sh printed")
    parser.add_argument("--work", type=Path, required=True, help="where the demo keeps its servers and state")
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--once", action="store_true", help="destroy and stop right after showing the registration")
    options = parser.parse_args(argv)
    work: Path = options.work
    work.mkdir(parents=True, exist_ok=True)
    options.pid_file.write_text(str(os.getpid()))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    print("== starting two API servers (management: e2e-mgmt, remote: e2e-remote)", flush=True)
    with standalone_lab(options.tools, work, providers_on_path=False) as (lab, plane), lab.agent():
        # Pulumi as a user's machine holds it: the language hosts beside the CLI, the providers in the plugin cache.
        config = lab.one_cluster_config()
        project = PulumiProject(
            lab.bin_dir, work / "home", project_copy(ROOT, work / "project", "demo", config), "demo"
        )
        try:
            project.install_sdk_plugins()
            project.init()
            print("== pulumi up (real CLI, real kubernetes provider and Helm)", flush=True)
            result = project.run("up", "--yes", "--skip-preview")
            print(result.output, flush=True)
            if result.returncode == 0:
                print(
                    f"\n== registered {CLUSTER} with the simulated management plane (agent {plane.agent_version}, "
                    f"relay {plane.relay_address})",
                    flush=True,
                )
                if not options.once:
                    kubectl = f"{options.tools / 'kubectl'} --kubeconfig {lab.planes.kubeconfig}"
                    print(
                        f"""Look at it:
  {kubectl} --context e2e-mgmt get kubernetesclusters -n gloo-mesh
  {kubectl} --context e2e-remote get secrets,configmaps -n {REMOTE_NAMESPACE}
  PULUMI_HOME={project.home / "pulumi-home"} PULUMI_BACKEND_URL={(project.home / "state").as_uri()} \\
    PULUMI_CONFIG_PASSPHRASE=e2e-passphrase-not-a-secret {project.bin_dir / "pulumi"} stack --cwd {project.project_dir}
Ctrl-C here, or scripts/demo.sh --down, destroys the registration and stops the servers.""",
                        flush=True,
                    )
                    stop.wait()
            print("== pulumi destroy", flush=True)
            print(project.run("destroy", "--yes", "--skip-preview").output, flush=True)
            return result.returncode
        finally:
            options.pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
