"""A stand-in for ``pulumi-resource-command`` 1.2.1: ``command:local:Command`` and ``command:local:run`` only.

Why a stand-in: the Go module proxy here serves no version of ``github.com/pulumi/pulumi-command/provider`` (nor
``pulumi-go-provider``, which it is built on), so the real provider cannot be built on this machine. This is the one
double in the real-engine suite; everything around it (the CLI, the engine, the language host, the kubernetes
provider, Helm, the API servers, kubectl) is real.

What it emulates, from pulumi/pulumi-command v1.2.1 (commit 7f3eb6f3b77c), ``provider/pkg/provider/local``:

* ``commandOutputs.go`` ``run``: ``/bin/sh -c <script>`` (or ``interpreter``) in ``dir`` or the provider's working
  directory; the provider's environment plus ``environment``; ``PULUMI_COMMAND_STDOUT``/``_STDERR`` from the previous
  run unless ``addPreviousOutputInEnv`` is false; ``stdin`` when non-empty; stdout and stderr captured (one trailing
  newline trimmed) and, per ``logging`` (default both), each line sent to the engine as an info diagnostic of the
  resource; a failure is ``<exit error>: running "<script>":\\n<combined output>``.
* ``commandController.go``: Create does nothing in preview and runs ``create``; Update does nothing in preview and
  runs ``update`` if set, else ``create``; Delete runs ``delete`` if set. IDs are ``<name>`` plus 8 random hex digits.
* Diffs are pulumi-go-provider's ``infer`` defaults: any changed input is an update, a change of ``triggers``
  (``replaceOnChanges`` in ``common/inputs.go``) a replacement. Secret inputs stay secret in the outputs.
* ``runController.go``: the ``run`` invoke always runs its command, in preview too.
* Cancel (pulumi-go-provider v1.3.0 ``middleware/cancel``, which ``infer`` wraps every provider in): the engine's
  Cancel cancels the context of every request in flight, and ``exec.CommandContext`` then kills each running
  script with SIGKILL, the shell process only (not its process group), so its EXIT trap does not run; the request
  fails. ``cmd.Wait`` returns only once every holder of the captured stdout/stderr has closed them, as here.

Not emulated (this project does not use them): ``assetPaths``/``archivePaths``, ``remote:*``, ``local:Command``'s
``interpreter`` on Windows. An unsupported input is an error, not silently ignored.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from google.protobuf.json_format import MessageToDict
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, plugin_pb2, provider_pb2, provider_pb2_grpc

VERSION = "1.2.1"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE_SIG = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
INPUT_KEYS = frozenset(
    {
        "create",
        "update",
        "delete",
        "triggers",
        "stdin",
        "logging",
        "interpreter",
        "dir",
        "environment",
        "addPreviousOutputInEnv",
    }
)
RUN_INPUT_KEYS = (INPUT_KEYS - {"create", "update", "delete", "triggers"}) | {"command"}
UNSUPPORTED_KEYS = frozenset({"assetPaths", "archivePaths"})


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE_SIG


def reveal(value: Any) -> Any:
    """The plain value of a (possibly secret, possibly nested) property value."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def secret(value: Any) -> dict[str, Any]:
    return {SECRET_SIG: SECRET_VALUE_SIG, "value": value}


def to_struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(values))
    return message


def from_struct(message: struct_pb2.Struct) -> dict[str, Any]:
    return dict(MessageToDict(message))


class CommandFailedError(Exception):
    pass


class CommandProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, engine_address: str) -> None:
        self._engine = engine_pb2_grpc.EngineStub(grpc.insecure_channel(engine_address)) if engine_address else None
        self._running: set[subprocess.Popen[str]] = set()
        self._running_lock = threading.Lock()
        self._cancelled = threading.Event()

    # --- plugin plumbing ---

    def GetPluginInfo(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=VERSION)

    def Handshake(self, request: Any, context: grpc.ServicerContext) -> Any:
        return provider_pb2.ProviderHandshakeResponse(accept_secrets=True, accept_resources=True, accept_outputs=False)

    def Configure(self, request: Any, context: grpc.ServicerContext) -> Any:
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=True, acceptResources=True)

    def CheckConfig(self, request: Any, context: grpc.ServicerContext) -> Any:
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request: Any, context: grpc.ServicerContext) -> Any:
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    def GetSchema(self, request: Any, context: grpc.ServicerContext) -> Any:
        return provider_pb2.GetSchemaResponse(schema='{"name":"command","version":"' + VERSION + '"}')

    def Cancel(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:
        self._cancelled.set()
        with self._running_lock:
            running = list(self._running)
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.kill()  # SIGKILL to the script's own process, as exec.CommandContext does
        return empty_pb2.Empty()

    # --- local:Command ---

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        news = from_struct(request.news)
        failures = [
            provider_pb2.CheckFailure(property=key, reason=f"{key} is not supported by the e2e stand-in provider")
            for key in sorted(UNSUPPORTED_KEYS & news.keys())
        ]
        return provider_pb2.CheckResponse(inputs=request.news, failures=failures)

    def Diff(self, request: Any, context: grpc.ServicerContext) -> Any:
        olds = from_struct(request.old_inputs) if request.HasField("old_inputs") else from_struct(request.olds)
        news = from_struct(request.news)
        changed = sorted(
            k for k in INPUT_KEYS if reveal(olds.get(k)) != reveal(news.get(k)) and k in olds.keys() | news.keys()
        )
        if not changed:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        replaces = [k for k in changed if k == "triggers"]
        detailed = {
            k: provider_pb2.PropertyDiff(
                kind=(provider_pb2.PropertyDiff.UPDATE_REPLACE if k in replaces else provider_pb2.PropertyDiff.UPDATE),
                inputDiff=True,
            )
            for k in changed
        }
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME,
            diffs=changed,
            replaces=replaces,
            detailedDiff=detailed,
            hasDetailedDiff=True,
        )

    def Create(self, request: Any, context: grpc.ServicerContext) -> Any:
        inputs = from_struct(request.properties)
        name = request.name or request.urn.rsplit("::", 1)[-1]
        resource_id = f"{name}{secrets.token_hex(4)}"
        if request.preview:
            return provider_pb2.CreateResponse(
                id=resource_id, properties=to_struct({**inputs, "stdout": UNKNOWN, "stderr": UNKNOWN})
            )
        outputs = {**inputs, "stdout": "", "stderr": ""}
        if "create" in inputs:
            self._run_or_abort(context, request.urn, reveal(inputs["create"]), inputs, outputs)
        return provider_pb2.CreateResponse(id=resource_id, properties=to_struct(outputs))

    def Update(self, request: Any, context: grpc.ServicerContext) -> Any:
        olds = from_struct(request.olds)
        news = from_struct(request.news)
        outputs = {**news, "stdout": olds.get("stdout", ""), "stderr": olds.get("stderr", "")}
        if request.preview:
            return provider_pb2.UpdateResponse(properties=to_struct(outputs))
        script = news.get("update", news.get("create"))
        if script is not None:
            self._run_or_abort(context, request.urn, reveal(script), news, outputs)
        return provider_pb2.UpdateResponse(properties=to_struct(outputs))

    def Read(self, request: Any, context: grpc.ServicerContext) -> Any:
        # infer's default Read: the state is what it was (a command has nothing to read back).
        return provider_pb2.ReadResponse(id=request.id, properties=request.properties, inputs=request.inputs)

    def Delete(self, request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:
        state = from_struct(request.properties)
        if "delete" in state:
            self._run_or_abort(context, request.urn, reveal(state["delete"]), state, dict(state))
        return empty_pb2.Empty()

    # --- local:run ---

    def Invoke(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.tok != "command:local:run":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{request.tok} is not emulated by the e2e stand-in")
        args = from_struct(request.args)
        outputs = {**{k: v for k, v in args.items() if k in RUN_INPUT_KEYS}, "stdout": "", "stderr": ""}
        try:
            self._run(None, reveal(args["command"]), args, outputs)
        except CommandFailedError as failure:
            return provider_pb2.InvokeResponse(failures=[provider_pb2.CheckFailure(reason=str(failure))])
        return provider_pb2.InvokeResponse(**{"return": to_struct(outputs)})

    # --- running a script ---

    def _run_or_abort(
        self, context: grpc.ServicerContext, urn: str, script: str, inputs: Mapping[str, Any], outputs: dict[str, Any]
    ) -> None:
        try:
            self._run(urn, script, inputs, outputs)
        except CommandFailedError as failure:
            context.abort(grpc.StatusCode.UNKNOWN, str(failure))

    def _run(self, urn: str | None, script: str, inputs: Mapping[str, Any], outputs: dict[str, Any]) -> None:
        plain = reveal(dict(inputs))
        argv = [*(plain.get("interpreter") or ["/bin/sh", "-c"]), script]
        env = {**os.environ, **(plain.get("environment") or {})}
        if plain.get("addPreviousOutputInEnv", True):
            for key, variable in (("stdout", "PULUMI_COMMAND_STDOUT"), ("stderr", "PULUMI_COMMAND_STDERR")):
                previous = reveal(outputs.get(key, ""))
                if previous and previous != UNKNOWN:
                    env[variable] = previous
        logging = plain.get("logging", "stdoutAndStderr")
        log_stdout = logging in ("stdout", "stdoutAndStderr")
        log_stderr = logging in ("stderr", "stdoutAndStderr")
        stdin = plain.get("stdin") or None
        process = subprocess.Popen(
            argv,
            cwd=plain.get("dir") or os.getcwd(),
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with self._running_lock:
            self._running.add(process)
        if self._cancelled.is_set():
            process.kill()  # a request that arrives after Cancel starts with its context already cancelled
        combined: list[str] = []
        captured: dict[str, list[str]] = {"stdout": [], "stderr": []}
        lock = threading.Lock()

        def pump(stream: Any, key: str, log: bool) -> None:
            for line in stream:
                with lock:
                    captured[key].append(line)
                    combined.append(line)
                if log:
                    self._log(urn, line.rstrip("\n"))

        readers = [
            threading.Thread(target=pump, args=(process.stdout, "stdout", log_stdout)),
            threading.Thread(target=pump, args=(process.stderr, "stderr", log_stderr)),
        ]
        for reader in readers:
            reader.start()
        if stdin and process.stdin is not None:
            try:
                process.stdin.write(stdin)
                process.stdin.close()
            except BrokenPipeError:
                pass
        code = process.wait()
        for reader in readers:
            reader.join()
        with self._running_lock:
            self._running.discard(process)
        if code == -signal.SIGKILL and self._cancelled.is_set():
            raise CommandFailedError(f"context canceled: running {script!r}:\n{''.join(combined)}")
        if code != 0:
            raise CommandFailedError(f"exit status {code}: running {script!r}:\n{''.join(combined)}")
        for key in ("stdout", "stderr"):
            text = "".join(captured[key]).removesuffix("\n")
            outputs[key] = secret(text) if is_secret(outputs.get(key)) else text

    def _log(self, urn: str | None, message: str) -> None:
        if self._engine is None or not message:
            return
        with contextlib.suppress(grpc.RpcError):
            self._engine.Log(engine_pb2.LogRequest(severity=engine_pb2.INFO, message=message, urn=urn or ""))


def main(argv: list[str], workers: int = 8) -> None:
    """Serve on a free port of 127.0.0.1 and print it, as a plugin does; ``workers`` threads serve the calls (each
    Create and each run holds one for as long as its script runs)."""
    engine_address = next((a for a in argv[1:] if not a.startswith("-")), "")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(CommandProvider(engine_address), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main(sys.argv)
