"""Glue in front of the real Python language host: everything is the real v3.68 host except ``RunPlugin``.

Why: the only Python language host that builds here is sdk v3.68.0's (see toolchain/language-python/go.mod). Its
``RunPlugin`` runs ``python <req.program> <args>`` in ``req.pwd``, but CLI 3.274 no longer sets ``program``: it sends
``info`` (a ProgramInfo: root and program directory, runtime options) and ``kind``. So ``pulumi preview --policy-pack``
made the old host run ``python ''`` in the project folder, i.e. the project's program instead of the pack, and a
Python component provider (``provider/PulumiPlugin.yaml``) cannot start either. And the old host reads the runtime
options (``virtualenv``) only from its command line, which CLI 3.274 no longer passes (it passes the engine address
only): the modern host reads them from each request.

What is real: the CLI starts this file as ``pulumi-language-python`` (a shim in the suite's plugin folder) with its
usual arguments; this file starts the real v3.68 host with exactly those arguments, and relays every LanguageRuntime
RPC but ``RunPlugin`` to it unchanged: the request and response bytes, the call's metadata (less transport headers),
deadline and cancellation, and an error's status, details and trailing metadata (so a rich error stays rich). Methods
the installed ``pulumi`` wheel's descriptor does not list are answered UNIMPLEMENTED, as the older host would. A call
whose request carries a program with a ``virtualenv`` option (``Pulumi.yaml``'s ``runtime.options``; ``venv`` by
default for a plugin's ``InstallDependencies``, as ``parseOptions`` does) goes to a real v3.68 host started with
``-root`` and ``-virtualenv`` for that program (:class:`RealHosts`), so ``GetRequiredPlugins`` makes a missing
virtualenv, ``InstallDependencies`` installs into it, ``Run`` runs the program with its ``bin/python`` (and fails with
the host's own "doesn't appear to be a virtual environment" error when it is not one), as for users.

What is emulated: ``RunPlugin``, following pulumi/pulumi at commit 1b5949891b3c (the Go sources are not copied):

* ``sdk/python/cmd/pulumi-language-python/main.go``, ``RunPlugin`` and ``parseOptions``: kind ``analyzer`` runs
  ``<python> -u -m pulumi.policy <req.args...> <program directory>`` in the program directory; any other kind runs
  ``<python> <program directory> <req.args...>`` in ``req.pwd``. Stdout and stderr go back as RunPluginResponse
  messages; a non-zero exit is sent as ``exitcode`` (-1 when a signal ended it, as Go's ``ExitStatus``), a zero exit
  ends the stream without one; a child that cannot start, or a pack that cannot be attached, fails the call.
  The environment is this process's own, then (analyzer) the stack's ``PULUMI_*`` variables, then ``req.env``; later
  entries win, as with Go's ``exec.Cmd.Env``.
* ``sdk/python/toolchain/pip.go`` and ``toolchain.go`` (``Command``, ``CommandPath``, ``resolveVirtualEnvironmentPath``,
  ``ActivateVirtualEnv``): the ``virtualenv`` runtime option, relative to the root directory, gives
  ``<venv>/bin/python`` with ``VIRTUAL_ENV`` set, ``<venv>/bin`` first on ``PATH`` and ``PYTHONHOME`` removed; without
  it, ``PULUMI_PYTHON_CMD`` or else ``python3`` / ``python`` from ``PATH``.
* ``sdk/policy_proxy.go`` (``PolicyProxy``), for kind ``analyzer``: an Analyzer server of our own whose port is the
  first line of the RunPlugin stdout. It answers ``Handshake`` (empty) and ``ConfigureStack`` itself; the pack starts
  once the engine's ``ConfigureStack`` arrived, with ``PULUMI_ORGANIZATION``, ``PULUMI_PROJECT``, ``PULUMI_STACK``,
  ``PULUMI_DRY_RUN`` and ``PULUMI_CONFIG`` (the config map as JSON) from it, each only when non-empty. The pack's
  first stdout line is its port; the stored ``ConfigureStack`` is sent to it (UNIMPLEMENTED is accepted), and every
  other Analyzer call is relayed to it from then on. A call that comes before ``ConfigureStack`` starts the pack
  without configuration, as ``awaitClient`` does.

  A plugin (any kind but ``analyzer``) without a ``virtualenv`` option runs from ``venv`` in its folder, as
  ``parseOptions`` defaults it (the CLI has made it with ``InstallDependencies`` first).

Not emulated (this project does not use them): the toolchains uv and poetry and the ``typechecker`` option,
``python -m pulumi.run.plugin`` for plugins without ``__main__.py``, and the debugger.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import IO, Any, NoReturn

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message_factory import GetMessageClass
from pulumi.runtime.proto import analyzer_pb2, language_pb2

LANGUAGE = language_pb2.DESCRIPTOR.services_by_name["LanguageRuntime"]
ANALYZER = analyzer_pb2.DESCRIPTOR.services_by_name["Analyzer"]
MAX_MESSAGE_BYTES = 400 * 1024 * 1024  # rpcutil's maxRPCMessageSize, on both ends of every connection
GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.max_send_message_length", -1)]
CHUNK_BYTES = 64 * 1024
NO_DEADLINE = 365 * 24 * 3600.0
CANNOT_RUN = "problem executing plugin program (could not run language executor)"

Channel = Any  # grpc ships no type information
# Where a relayed call goes: given the method's descriptor and the request's bytes (None for a client stream).
ChannelSource = Callable[[Any, bytes | None], Channel]


class NotStartedError(Exception):
    """A relayed Analyzer call found no pack to relay to."""


def serve(handler: Any, workers: int) -> tuple[Any, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=GRPC_OPTIONS)
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, int(port)


def relay_service(service: Any, channel_of: ChannelSource, own: Mapping[str, Any]) -> Any:
    """A handler for every method of ``service``: ``own[name]`` if given, else a relay to
    ``channel_of(method, request)``."""
    handlers = {
        method.name: own.get(method.name) or relay_method(f"/{service.full_name}/{method.name}", method, channel_of)
        for method in service.methods
    }
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def relay_method(path: str, method: Any, channel_of: ChannelSource) -> Any:
    """One method, bytes in and bytes out (no (de)serializers), of the streaming kind the descriptor gives."""
    kind = f"{'stream' if method.client_streaming else 'unary'}_{'stream' if method.server_streaming else 'unary'}"

    def relay(request: Any, context: Any) -> Any:
        try:
            target = getattr(channel_of(method, None if method.client_streaming else request), kind)(path)
        except NotStartedError as error:
            _abort(context, grpc.StatusCode.UNKNOWN, str(error))
        metadata = [
            (key, value)
            for key, value in context.invocation_metadata()
            if not key.startswith((":", "grpc-")) and key != "user-agent"
        ]
        remaining = context.time_remaining()  # no deadline reads as about 9.2e18 s, which a client call cannot take
        call_options = {"timeout": remaining if remaining < NO_DEADLINE else None, "metadata": metadata}
        if method.server_streaming:
            call = target(request, **call_options)
            context.add_callback(call.cancel)
            return _relay_stream(call, context)
        future = target.future(request, **call_options)
        context.add_callback(future.cancel)
        try:
            return future.result()
        except grpc.RpcError as error:
            _abort_like(error, context)
        except grpc.FutureCancelledError:
            _abort(context, grpc.StatusCode.CANCELLED, "cancelled")

    return getattr(grpc, f"{kind}_rpc_method_handler")(relay)


def _relay_stream(call: Any, context: Any) -> Iterator[bytes]:
    try:
        yield from call
    except grpc.RpcError as error:
        _abort_like(error, context)


def _abort_like(error: Any, context: Any) -> NoReturn:
    context.set_trailing_metadata(error.trailing_metadata() or ())
    _abort(context, error.code(), error.details() or "")


def _abort(context: Any, code: Any, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("unreachable: abort raises")


class PolicyProxy:
    """``sdk/policy_proxy.go``: our own Analyzer server until the pack is attached, then a relay to the pack."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configured = threading.Event()
        self._config: analyzer_pb2.AnalyzerStackConfigureRequest | None = None
        self._attached = threading.Event()
        self._channel: Channel = None
        self._failure = ""
        own = {
            "Handshake": grpc.unary_unary_rpc_method_handler(
                lambda request, context: analyzer_pb2.AnalyzerHandshakeResponse().SerializeToString()
            ),
            "ConfigureStack": grpc.unary_unary_rpc_method_handler(self._configure_stack),
        }
        self._server, self.port = serve(relay_service(ANALYZER, lambda *_: self._pack(), own), workers=32)

    def _fulfil(self, config: analyzer_pb2.AnalyzerStackConfigureRequest | None) -> None:
        with self._lock:
            if not self._configured.is_set():
                self._config = config
                self._configured.set()

    def _configure_stack(self, request: bytes, context: Any) -> bytes:
        self._fulfil(analyzer_pb2.AnalyzerStackConfigureRequest.FromString(request))
        response: bytes = analyzer_pb2.AnalyzerStackConfigureResponse().SerializeToString()
        return response

    def await_configuration(self) -> analyzer_pb2.AnalyzerStackConfigureRequest | None:
        self._configured.wait()
        return self._config

    def _pack(self) -> Channel:
        self._fulfil(None)  # awaitClient: a call before ConfigureStack starts the pack with no configuration
        self._attached.wait()
        if self._channel is None:
            raise NotStartedError(f"policy pack not started: {self._failure}")
        return self._channel

    def attach(self, port: int) -> None:
        """Connect to the pack, hand it the stored ConfigureStack, then let the relayed calls through."""
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS)
        if self._config is not None:
            try:
                channel.unary_unary(f"/{ANALYZER.full_name}/ConfigureStack")(self._config.SerializeToString())
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                    channel.close()
                    raise RuntimeError(f"policy pack configuration failed: {error.details()}") from error
        with self._lock:
            self._channel = channel
            self._attached.set()

    def fail(self, reason: str) -> None:
        with self._lock:
            if not self._attached.is_set():
                self._failure = reason
                self._attached.set()

    def stop(self) -> None:
        self._server.stop(None)
        self._fulfil(None)
        self.fail("the RunPlugin call ended")
        if self._channel is not None:
            self._channel.close()


def stack_environment(config: analyzer_pb2.AnalyzerStackConfigureRequest | None) -> dict[str, str]:
    """What the modern host adds to the pack's environment from ConfigureStack (non-empty values only)."""
    if config is None:
        return {}
    values = {
        "PULUMI_ORGANIZATION": config.organization,
        "PULUMI_PROJECT": config.project,
        "PULUMI_STACK": config.stack,
        "PULUMI_DRY_RUN": "true" if config.dry_run else "false",
        "PULUMI_CONFIG": json.dumps(dict(config.config), sort_keys=True, separators=(",", ":")),
    }
    if not config.config:  # an empty map arrives as nil in Go: no PULUMI_CONFIG
        del values["PULUMI_CONFIG"]
    return {key: value for key, value in values.items() if value}


def virtualenv_option(info: language_pb2.ProgramInfo, is_plugin: bool) -> str:
    """The ``virtualenv`` runtime option as the modern host reads it from a request (``parseOptions``): the program's
    ``Pulumi.yaml`` (or ``PulumiPlugin.yaml``/``PulumiPolicy.yaml``) option, else ``venv`` for a plugin (not a policy
    pack) with the pip toolchain or none, else none ("")."""
    options = MessageToDict(info.options)
    virtualenv = options.get("virtualenv", "")
    if not isinstance(virtualenv, str):
        raise RuntimeError("virtualenv option must be a string")
    if not virtualenv and is_plugin and options.get("toolchain", "pip") in ("pip", "auto"):
        return "venv"
    return virtualenv


def interpreter(request: language_pb2.RunPluginRequest) -> tuple[str, dict[str, str]]:
    """The Python to run and its base environment (``pip.go``: ``Command``, ``CommandPath``; ``ActivateVirtualEnv``)."""
    environment = dict(os.environ)
    virtualenv = virtualenv_option(request.info, is_plugin=request.kind != "analyzer")
    if virtualenv:
        venv = Path(request.info.root_directory, virtualenv)
        environment = {k: v for k, v in environment.items() if k.upper() not in ("PYTHONHOME", "VIRTUAL_ENV")}
        path = environment.get("PATH")
        environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{path}" if path is not None else str(venv / "bin")
        environment["VIRTUAL_ENV"] = str(venv)
        return str(venv / "bin" / "python"), environment
    candidates = [os.environ["PULUMI_PYTHON_CMD"]] if os.environ.get("PULUMI_PYTHON_CMD") else ["python3", "python"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found, environment
    raise RuntimeError(f"failed to locate any of {candidates} on your PATH. Have you installed Python 3.6 or greater?")


HostKey = tuple[str, str]  # (root directory, virtualenv option): the startup flags of one real host


class RealHosts:
    """The real v3.68 hosts behind the glue: one started with no options (for calls that carry no program), and one
    per ``(root, virtualenv)`` a request carries, started with ``-root`` and ``-virtualenv`` on first use.

    Why: the v3.68 host reads those options only from its command line (``main.go``: ``-virtualenv``, ``-root``,
    resolved by ``resolveVirtualEnvironmentPath``), which CLI 3.274 no longer passes (it passes the engine address
    only: ``buildArgsForNewPlugin`` in ``sdk/go/common/resource/plugin/langruntime_plugin.go``); the modern host reads
    them from each request's ``ProgramInfo`` instead. So a program with ``virtualenv: .venv`` runs from that
    virtualenv (made by ``pulumi install`` or, when missing or empty, by the host itself), and a bad one gives the
    real host's own error, as it would for users.
    """

    def __init__(self, argv: list[str]) -> None:
        self._argv = argv  # the real host, then the CLI's arguments (flags first, the engine address last)
        self._lock = threading.Lock()
        self._channels: dict[HostKey | None, Channel] = {}
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, key: HostKey | None) -> Channel:
        """The channel to the host for ``key``, starting it first if needed (raises RuntimeError if it fails)."""
        with self._lock:
            if key in self._channels:
                return self._channels[key]
            flags = [] if key is None else [f"-virtualenv={key[1]}", f"-root={key[0]}"]
            host = subprocess.Popen([self._argv[0], *flags, *self._argv[1:]], stdout=subprocess.PIPE)
            self.processes.append(host)
            assert host.stdout is not None
            first = host.stdout.readline()
            try:
                port = int(first)
            except ValueError:
                host.kill()
                raise RuntimeError(f"{self._argv[0]} printed {first!r} instead of its port") from None
            threading.Thread(target=_copy, args=(host.stdout, sys.stdout.buffer), daemon=True).start()
            channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS)
            self._channels[key] = channel
            return channel

    def route(self, method: Any, request: bytes | None) -> Channel:
        """The host for a call: by the ``ProgramInfo`` the request carries, if any (``parseOptions`` of each method:
        only ``InstallDependencies`` with ``is_plugin`` and ``RunPlugin`` treat the program as a plugin)."""
        key: HostKey | None = None
        if request is not None and "info" in method.input_type.fields_by_name:
            message = GetMessageClass(method.input_type).FromString(request)
            if message.HasField("info"):
                is_plugin = method.name == "InstallDependencies" and message.is_plugin
                virtualenv = virtualenv_option(message.info, is_plugin)
                if virtualenv:
                    key = (message.info.root_directory, virtualenv)
        try:
            return self.start(key)
        except RuntimeError as error:
            raise NotStartedError(str(error)) from error

    def stop(self) -> None:
        for host in self.processes:
            if host.poll() is None:
                host.kill()


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """What a child writes, as soon as it writes it (``read1``: no waiting for a full buffer)."""
    while chunk := stream.read1(CHUNK_BYTES):  # type: ignore[attr-defined]  # Popen's pipes are BufferedReaders
        yield chunk


Outputs = queue.Queue[language_pb2.RunPluginResponse | None]


def _pump(stream: IO[bytes], to_stderr: bool, outputs: Outputs) -> None:
    try:
        for chunk in _chunks(stream):
            response = language_pb2.RunPluginResponse
            outputs.put(response(stderr=chunk) if to_stderr else response(stdout=chunk))
    finally:
        outputs.put(None)


def _copy(stream: IO[bytes], to: IO[bytes]) -> None:
    for chunk in _chunks(stream):
        to.write(chunk)
        to.flush()


def run_plugin(request_bytes: bytes, context: Any) -> Iterator[bytes]:
    """``RunPlugin`` as the modern host does it (module docstring)."""
    request = language_pb2.RunPluginRequest.FromString(request_bytes)
    info = request.info
    analyzer = request.kind == "analyzer"
    try:
        python, environment = interpreter(request)
    except RuntimeError as error:
        _abort(context, grpc.StatusCode.UNKNOWN, str(error))
    proxy: PolicyProxy | None = None
    if analyzer:
        argv, cwd = [python, "-u", "-m", "pulumi.policy", *request.args, info.program_directory], info.program_directory
        proxy = PolicyProxy()
        if not context.add_callback(proxy.stop):
            proxy.stop()
            return
        yield language_pb2.RunPluginResponse(stdout=f"{proxy.port}\n".encode()).SerializeToString()
        config = proxy.await_configuration()
        if not context.is_active():
            return
        environment.update(stack_environment(config))
    else:
        argv, cwd = [python, info.program_directory, *request.args], request.pwd
    for entry in request.env:
        key, separator, value = entry.partition("=")
        if separator:
            environment[key] = value
    try:
        process = subprocess.Popen(
            argv, cwd=cwd or None, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as error:
        _abort(context, grpc.StatusCode.UNKNOWN, f"{CANNOT_RUN}: {error}")
    if not context.add_callback(process.kill):
        process.kill()
    assert process.stdout is not None and process.stderr is not None
    outputs: Outputs = queue.Queue()
    threading.Thread(target=_pump, args=(process.stderr, True, outputs), daemon=True).start()
    failure = ""
    if proxy is not None:
        first = process.stdout.readline()
        try:
            proxy.attach(int(first))
        except ValueError:
            failure = f"could not attach policy pack proxy: could not read policy pack port from {first!r}"
        except RuntimeError as error:
            failure = f"could not attach policy pack proxy: {error}"
        if failure:
            proxy.fail(failure)
            process.kill()
    threading.Thread(target=_pump, args=(process.stdout, False, outputs), daemon=True).start()
    open_streams = 2
    while open_streams:
        item = outputs.get()
        if item is None:
            open_streams -= 1
        else:
            yield item.SerializeToString()
    code = process.wait()
    if failure:
        _abort(context, grpc.StatusCode.UNKNOWN, f"{CANNOT_RUN}: {failure}")
    if code != 0:
        yield language_pb2.RunPluginResponse(exitcode=code if code > 0 else -1).SerializeToString()


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(f"usage: {argv[0]} <real pulumi-language-python> [its arguments...]", file=sys.stderr)
        return 2
    hosts = RealHosts(argv[1:])
    try:
        hosts.start(None)  # the host for calls without a program; it also tells the glue's lifetime
    except RuntimeError as error:
        print(f"language_host.py: {error}", file=sys.stderr)
        hosts.stop()
        return 1
    default = hosts.processes[0]
    own = {"RunPlugin": grpc.unary_stream_rpc_method_handler(run_plugin)}
    server, port = serve(relay_service(LANGUAGE, hosts.route, own), workers=64)
    print(port, flush=True)  # our port first, like any plugin; the real hosts' later output follows
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: default.terminate())
    try:
        code = default.wait()
    finally:
        server.stop(None)
        hosts.stop()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
