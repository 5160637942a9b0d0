"""A stand-in for ``pulumi-resource-command`` 1.2.1: ``command:local:Command`` and ``command:local:run`` only.

Why a stand-in: the Go module proxy here serves no version of ``github.com/pulumi/pulumi-command/provider`` (nor
``pulumi-go-provider``, which it is built on), so the real provider cannot be built on this machine. This is the one
double in the real-engine suite; everything around it (the CLI, the engine, the language host, the kubernetes
provider, Helm, the API servers, kubectl) is real.

What it emulates, from pulumi/pulumi-command v1.2.1 (commit 7f3eb6f3b77c, built on pulumi/pulumi-go-provider
v1.3.0, commit 3bfb720d763c), ``provider/pkg/provider/local`` unless said otherwise:

* ``commandOutputs.go`` ``run``: ``/bin/sh -c <script>`` (or ``interpreter``) in ``dir`` or the provider's working
  directory; the provider's environment plus ``environment``; ``PULUMI_COMMAND_STDOUT``/``_STDERR`` from the previous
  run unless ``addPreviousOutputInEnv`` is false; ``stdin`` when non-empty; stdout and stderr captured (one trailing
  newline trimmed).
* Logging: per ``logging`` (default both), each output line goes to ``util/util.go`` ``LogOutput`` at ``diag.Info``,
  which calls pulumi-go-provider's ``Logger.InfoStatus`` (``logging.go``), whose host sink is pulumi ``pkg/v3``
  ``resource/provider/host.go`` ``HostClient.LogStatus``: a ``LogRequest`` with ``ephemeral: true``, severity INFO
  (stderr lines too), the resource's URN, and for the ``run`` invoke no URN (``provider.go`` ``Invoke`` builds its
  context with ``p.ctx(ctx, "")``). The CLI shows such a status message in the progress display only: the
  interactive tree's info column while the step runs, the row's line in ``--non-interactive`` output; the final
  "Diagnostics" section skips it (pulumi/pulumi ``pkg/backend/display/progress.go`` ``printDiagnostics``, ``rows.go``
  ``recordDiagEventPayload`` counts no ephemeral message). Lines are Go ``bufio.Scanner`` lines (empty ones too, a
  trailing ``\\r`` dropped).
* A failure is Go's ``fmt.Errorf("%w: running %q:\\n%s", err, command, <combined output>)``: ``exit status 1:
  running "ensure-client-certificate":`` and the output, ``signal: killed: running ...`` for a script killed by a
  cancelled request, and ``context canceled: running ...:`` (no output: ``exec.Cmd.Start`` refuses a done context
  before starting anything) for a request that arrives after Cancel; ``%q`` is Go's quoting (``strconv.Quote``).
* ``commandController.go``: Create does nothing in preview and runs ``create``; Update does nothing in preview and
  runs ``update`` if set, else ``create``; Delete runs ``delete`` if set. IDs are ``<name>`` plus 8 random hex digits.
  A failed Create, Update or Delete is a gRPC error with the failure text.
* ``runController.go``: the ``run`` invoke always runs its command, in preview too; a failure is a gRPC error
  (pulumi-go-provider ``infer/function.go`` returns the receiver's error as the call's error; only argument decoding
  problems are ``failures``), which the engine reports as ``invocation of command:local:run returned an error: ...``
  (pulumi/pulumi ``pkg/resource/deploy/source_eval.go``) and the Python SDK raises as ``invoke of
  command:local:run failed: ...``.
* Preview outputs (pulumi-go-provider ``infer/resource.go`` ``markComputed``, default wiring: every output depends on
  every input): a Create's ``stdout``/``stderr`` are unknown; an Update's are unknown when any input is unknown or
  differs from the old inputs (an Update always has such an input), else the old values.
* Diffs are pulumi-go-provider's ``infer`` defaults: any changed input is an update, a change of ``triggers``
  (``replaceOnChanges`` in ``common/inputs.go``) a replacement. Secret inputs stay secret in the outputs.
* Cancellation (pulumi-go-provider ``middleware/cancel/cancel.go``, which ``infer`` wraps every provider in, and its
  ``internal/evict/pool.go``): the engine's Cancel cancels the context of every request in flight, and of every
  request that comes after it; ``exec.CommandContext`` kills a running script with SIGKILL, the shell process only
  (not its process group), so its EXIT trap does not run. Create, Update and Delete carry their ``customTimeouts``
  (``timeout``, whole seconds: ``time.Second*time.Duration(timeout)``; 0 is none) as a context deadline, which kills
  the script the same way. A call the client cancels (its gRPC context) kills its script too. ``cmd.Wait`` returns
  only once every holder of the captured stdout/stderr has closed them, as here.

What differs: the real provider writes stdout and stderr lines into one pipe, so two lines written at the same moment
may interleave there; here each stream is read line by line.

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
import time
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


def inputs_changed(olds: Mapping[str, Any] | None, news: Mapping[str, Any]) -> bool:
    """Whether a preview of an Update marks the outputs unknown (``infer/resource.go`` ``markComputed``): an input is
    unknown, or differs from its old value where the old inputs have it."""
    for key in INPUT_KEYS:
        if _has_unknown(news.get(key)):
            return True
        if olds is not None and key in olds and reveal(olds[key]) != reveal(news.get(key)):
            return True
    return False


def _has_unknown(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def to_struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(values))
    return message


def from_struct(message: struct_pb2.Struct) -> dict[str, Any]:
    return dict(MessageToDict(message))


class CommandFailedError(Exception):
    pass


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}

GO_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGINT: "interrupt",
    signal.SIGHUP: "hangup",
    signal.SIGPIPE: "broken pipe",
    signal.SIGQUIT: "quit",
    signal.SIGABRT: "aborted",
    signal.SIGSEGV: "segmentation fault",
}
"""Go's names of the signals (``syscall`` ``signals`` table on Linux), as ``ProcessState.String`` prints them."""


def go_quote(text: str) -> str:
    r"""Go's ``%q`` of a string (``strconv.Quote``): double quotes, ``\`` and ``\"`` escaped, C escapes for control
    characters that have one, ``\xNN`` for other ASCII control characters, ``\uNNNN``/``\UNNNNNNNN`` for other
    unprintable runes."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def exit_error(code: int) -> str:
    """Go's ``*exec.ExitError`` text for a process that ended with ``code`` (Popen's: negative for a signal)."""
    if code < 0:
        number = -code
        with contextlib.suppress(ValueError):
            name = GO_SIGNAL_NAMES.get(signal.Signals(number))
            if name:
                return f"signal: {name}"
        return f"signal: signal {number}"
    return f"exit status {code}"


def failure(error: str, command: str, combined: str) -> str:
    """``fmt.Errorf("%w: running %q:\\n%s", err, command, stdouterrbuf.String())`` of ``commandOutputs.go``."""
    return f"{error}: running {go_quote(command)}:\n{combined}"


class Request:
    """The context of one request, as pulumi-go-provider's cancel middleware gives it: done after Cancel (also when
    the request came later), at its deadline (``customTimeouts``), or when the client cancels the call."""

    def __init__(self, provider: CommandProvider, context: grpc.ServicerContext | None, timeout: float = 0) -> None:
        self._provider = provider
        seconds = int(timeout)  # time.Second * time.Duration(timeout): whole seconds
        self.deadline = time.monotonic() + seconds if timeout else None
        self.context = context

    def error(self) -> str | None:
        """``ctx.Err()``: why the context is done, or None."""
        if self._provider.cancelled.is_set():
            return "context canceled"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "context deadline exceeded"
        if self.context is not None and not self.context.is_active():
            return "context canceled"
        return None


class CommandProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, engine_address: str) -> None:
        self._engine = engine_pb2_grpc.EngineStub(grpc.insecure_channel(engine_address)) if engine_address else None
        self._running: set[subprocess.Popen[str]] = set()
        self._running_lock = threading.Lock()
        self.cancelled = threading.Event()
        self.cancel_lock = threading.Lock()

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
        with self.cancel_lock:  # evict.Pool.Close: every context in flight is cancelled, and every later one
            self.cancelled.set()
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
            ctx = Request(self, context, request.timeout)
            self._run_or_abort(ctx, request.urn, reveal(inputs["create"]), inputs, outputs)
        return provider_pb2.CreateResponse(id=resource_id, properties=to_struct(outputs))

    def Update(self, request: Any, context: grpc.ServicerContext) -> Any:
        olds = from_struct(request.olds)
        news = from_struct(request.news)
        outputs = {**news, "stdout": olds.get("stdout", ""), "stderr": olds.get("stderr", "")}
        if request.preview:
            old_inputs = from_struct(request.old_inputs) if request.HasField("old_inputs") else None
            if inputs_changed(old_inputs, news):
                outputs.update(stdout=UNKNOWN, stderr=UNKNOWN)
            return provider_pb2.UpdateResponse(properties=to_struct(outputs))
        script = news.get("update", news.get("create"))
        if script is not None:
            ctx = Request(self, context, request.timeout)
            self._run_or_abort(ctx, request.urn, reveal(script), news, outputs)
        return provider_pb2.UpdateResponse(properties=to_struct(outputs))

    def Read(self, request: Any, context: grpc.ServicerContext) -> Any:
        # infer's default Read: the state is what it was (a command has nothing to read back).
        return provider_pb2.ReadResponse(id=request.id, properties=request.properties, inputs=request.inputs)

    def Delete(self, request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:
        state = from_struct(request.properties)
        if "delete" in state:
            ctx = Request(self, context, request.timeout)
            self._run_or_abort(ctx, request.urn, reveal(state["delete"]), state, dict(state))
        return empty_pb2.Empty()

    # --- local:run ---

    def Invoke(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.tok != "command:local:run":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{request.tok} is not emulated by the e2e stand-in")
        args = from_struct(request.args)
        outputs = {**{k: v for k, v in args.items() if k in RUN_INPUT_KEYS}, "stdout": "", "stderr": ""}
        self._run_or_abort(Request(self, context), None, reveal(args["command"]), args, outputs)
        return provider_pb2.InvokeResponse(**{"return": to_struct(outputs)})

    # --- running a script ---

    def _run_or_abort(
        self, ctx: Request, urn: str | None, script: str, inputs: Mapping[str, Any], outputs: dict[str, Any]
    ) -> None:
        """Run ``script``; its failure is the call's error (a Go error from a gRPC method: status UNKNOWN)."""
        try:
            self._run(ctx, urn, script, inputs, outputs)
        except CommandFailedError as failed:
            assert ctx.context is not None
            ctx.context.abort(grpc.StatusCode.UNKNOWN, str(failed))

    def _run(
        self, ctx: Request, urn: str | None, script: str, inputs: Mapping[str, Any], outputs: dict[str, Any]
    ) -> None:
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
        with self.cancel_lock:
            done = ctx.error()
            if done is not None:  # exec.Cmd.Start: a done context starts nothing
                raise CommandFailedError(failure(done, script, ""))
            process = self._start(argv, plain, env, stdin)
        kill = threading.Event()

        def watch() -> None:  # exec.CommandContext's watchCtx: a done context kills the process
            while not kill.wait(0.1):
                if ctx.error() is not None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        combined: list[str] = []
        captured: dict[str, list[str]] = {"stdout": [], "stderr": []}
        lock = threading.Lock()

        def pump(stream: Any, key: str, log: bool) -> None:
            for line in stream:
                with lock:
                    captured[key].append(line)
                    combined.append(line)
                if log:  # bufio.ScanLines: the line without its newline and a trailing carriage return
                    self._log(urn, line.removesuffix("\n").removesuffix("\r"))

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
        kill.set()
        for reader in readers:
            reader.join()
        with self._running_lock:
            self._running.discard(process)
        if code != 0:
            raise CommandFailedError(failure(exit_error(code), script, "".join(combined)))
        for key in ("stdout", "stderr"):
            text = "".join(captured[key]).removesuffix("\n")
            outputs[key] = secret(text) if is_secret(outputs.get(key)) else text

    def _start(
        self, argv: list[str], plain: Mapping[str, Any], env: Mapping[str, str], stdin: str | None
    ) -> subprocess.Popen[str]:
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
        return process

    def _log(self, urn: str | None, message: str) -> None:
        """``Logger.InfoStatus``: an ephemeral INFO message, with the resource's URN (none for an invoke)."""
        if self._engine is None:
            return
        request = engine_pb2.LogRequest(severity=engine_pb2.INFO, message=message, urn=urn or "", ephemeral=True)
        with contextlib.suppress(grpc.RpcError):
            self._engine.Log(request)


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
