"""The real-engine suite's pulumi-command stand-in (``lab/command_provider.py``) against what the real provider's
sources show, over gRPC, with a recording engine in place of the CLI's.

Sources (each test names the part it checks): pulumi/pulumi-command v1.2.1 (commit 7f3eb6f3b77c)
``provider/pkg/provider/local/{commandOutputs.go,commandController.go,runController.go}`` and
``provider/pkg/provider/util/util.go``; pulumi/pulumi-go-provider v1.3.0 (commit 3bfb720d763c) ``logging.go``,
``provider.go``, ``infer/function.go``, ``infer/resource.go``, ``middleware/cancel/cancel.go`` and its
``internal/evict/pool.go``; pulumi/pulumi ``pkg/resource/provider/host.go`` (``HostClient.LogStatus``) and Go's
``os/exec`` (``Cmd.Start`` refuses a done context; a killed process is ``signal: killed``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, provider_pb2, provider_pb2_grpc

from lab.command_provider import UNKNOWN, CommandProvider, go_quote, inputs_changed

URN = "urn:pulumi:test::project::command:local:Command::step"
SHELL = "/bin/sh"
SLEEP = "sleep 8 </dev/null >/dev/null 2>&1"
"""A wait that holds none of the step's pipes: a child holding them would keep ``cmd.Wait`` (and the stand-in)
waiting after the shell is killed, as it should."""


@dataclass
class RecordingEngine(engine_pb2_grpc.EngineServicer):
    """The engine's ``Log`` endpoint, recording each request."""

    logs: list[engine_pb2.LogRequest] = field(default_factory=list)

    def Log(self, request: engine_pb2.LogRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:  # noqa: N802
        self.logs.append(request)
        return empty_pb2.Empty()


@dataclass
class Served:
    stub: provider_pb2_grpc.ResourceProviderStub
    engine: RecordingEngine


@pytest.fixture
def served() -> Iterator[Served]:
    engine = RecordingEngine()
    engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, engine_server)
    engine_port = engine_server.add_insecure_port("127.0.0.1:0")
    engine_server.start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(CommandProvider(f"127.0.0.1:{engine_port}"), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(provider_pb2_grpc.ResourceProviderStub(channel), engine)
    finally:
        channel.close()
        server.stop(None)
        engine_server.stop(None)


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def step(program: str, **more: Any) -> dict[str, Any]:
    """Inputs as the component sends them: an explicit interpreter running ``program``, the verb as the command."""
    return {"interpreter": [SHELL, "-c", program, "step"], **more}


def run(stub: provider_pb2_grpc.ResourceProviderStub, program: str, verb: str = "the-step", **more: Any) -> Any:
    args = {**step(program, **more), "command": verb}
    return stub.Invoke(provider_pb2.InvokeRequest(tok="command:local:run", args=struct(args)))


def create(stub: provider_pb2_grpc.ResourceProviderStub, program: str, timeout: float = 0, **more: Any) -> Any:
    inputs = {**step(program, **more), "create": "the-step"}
    return stub.Create(provider_pb2.CreateRequest(urn=URN, name="step", properties=struct(inputs), timeout=timeout))


def wait_for(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- logging: util.go LogOutput -> Logger.InfoStatus -> HostClient.LogStatus (ephemeral) ------------------------------


def test_each_output_line_is_an_ephemeral_info_status_message_of_the_resource(served: Served) -> None:
    """``LogOutput`` (util/util.go) scans stdout and stderr lines alike at ``diag.Info`` into ``InfoStatus``; its host
    sink sends ``LogRequest{Ephemeral: true}`` with the request's URN. Empty lines are lines too; a CR is dropped."""
    create(served.stub, "echo out; echo err >&2; echo; printf 'dos\\r\\n'")
    assert sorted((log.message, log.severity, log.ephemeral, log.urn) for log in served.engine.logs) == sorted(
        [
            ("out", engine_pb2.INFO, True, URN),
            ("err", engine_pb2.INFO, True, URN),
            ("", engine_pb2.INFO, True, URN),
            ("dos", engine_pb2.INFO, True, URN),
        ]
    )


def test_an_invoke_logs_without_a_urn_and_logging_selects_the_stream(served: Served) -> None:
    """``provider.go`` ``Invoke`` builds its context with ``p.ctx(ctx, "")``; ``logging.go`` ``ShouldLogStderr``."""
    response = run(served.stub, "echo secret-free-stdout; echo progress >&2", logging="stderr")
    assert [(log.message, log.urn, log.ephemeral) for log in served.engine.logs] == [("progress", "", True)]
    returned = dict(getattr(response, "return").items())
    assert returned["stdout"] == "secret-free-stdout" and returned["stderr"] == "progress"


# -- failures: commandOutputs.go fmt.Errorf("%w: running %q:\n%s") ---------------------------------------------------


def test_a_failed_invoke_is_a_grpc_error_with_gos_text_not_failures(served: Served) -> None:
    """``infer/function.go`` returns the receiver's error as the call's error (status UNKNOWN from a Go gRPC server);
    ``run`` wraps it as ``%w: running %q:\\n%s`` with stdout and stderr combined (each stream is copied by a
    goroutine of its own in ``os/exec``, so the order across the two streams is not fixed: one stream here)."""
    with pytest.raises(grpc.RpcError) as raised:
        run(served.stub, "echo one >&2; echo two >&2; exit 3", verb="ensure-client-certificate")
    assert raised.value.code() == grpc.StatusCode.UNKNOWN
    assert raised.value.details() == 'exit status 3: running "ensure-client-certificate":\none\ntwo\n'


def test_a_failed_create_is_a_grpc_error_with_gos_text(served: Served) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        create(served.stub, "echo nope >&2; exit 1")
    assert raised.value.details() == 'exit status 1: running "the-step":\nnope\n'


def test_go_quoting_of_the_command() -> None:
    """``%q`` is ``strconv.Quote``: double quotes, Go escapes; Python's ``repr`` would use single quotes."""
    assert go_quote("place-bootstrap-token") == '"place-bootstrap-token"'
    assert go_quote('a"b\\c\n\t\x01é') == '"a\\"b\\\\c\\n\\t\\x01é"'


# -- cancellation: middleware/cancel + exec.CommandContext ------------------------------------------------------------


def test_cancel_kills_a_running_script_without_its_exit_trap_and_refuses_later_requests(
    served: Served, tmp_path: Path
) -> None:
    """``cancel.Wrap``: Cancel closes the pool of contexts, cancelling every request in flight; ``exec.CommandContext``
    SIGKILLs the shell (no EXIT trap), and ``Wait`` reports ``signal: killed``. The pool stays closed: a later request
    gets a done context, and ``Cmd.Start`` returns ``context canceled`` before starting anything."""
    started, trapped, later = tmp_path / "started", tmp_path / "trapped", tmp_path / "later"
    errors: list[grpc.RpcError] = []

    def in_flight() -> None:
        try:
            run(served.stub, f"trap 'touch {trapped}' EXIT; touch {started}; {SLEEP}")
        except grpc.RpcError as error:
            errors.append(error)

    thread = threading.Thread(target=in_flight)
    thread.start()
    wait_for(started.exists)
    served.stub.Cancel(empty_pb2.Empty())
    thread.join(10)
    assert not thread.is_alive()
    assert [e.details() for e in errors] == ['signal: killed: running "the-step":\n']
    assert not trapped.exists()
    with pytest.raises(grpc.RpcError) as refused:
        run(served.stub, f"touch {later}")
    assert refused.value.details() == 'context canceled: running "the-step":\n'
    with pytest.raises(grpc.RpcError) as refused_create:
        create(served.stub, f"touch {later}")
    assert refused_create.value.details() == 'context canceled: running "the-step":\n'
    assert not later.exists()


def test_custom_timeouts_kill_the_script_in_whole_seconds(served: Served, tmp_path: Path) -> None:
    """``cancel.Wrap`` gives Create, Update and Delete ``context.WithTimeout(time.Second*time.Duration(timeout))``:
    1.5 s is 1 s, and below one second the deadline has passed before the script could start."""
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as killed:
        create(served.stub, f"echo begun; {SLEEP}", timeout=1.5)
    assert killed.value.details() == 'signal: killed: running "the-step":\nbegun\n'
    assert time.monotonic() - started < 10
    marker = tmp_path / "ran"
    with pytest.raises(grpc.RpcError) as refused:
        create(served.stub, f"touch {marker}", timeout=0.5)
    assert refused.value.details() == 'context deadline exceeded: running "the-step":\n'
    assert not marker.exists()


def test_a_call_the_client_cancels_kills_its_script(served: Served, tmp_path: Path) -> None:
    """The request's context is the gRPC call's: a cancelled call cancels it, and ``exec.CommandContext`` kills."""
    started, finished = tmp_path / "started", tmp_path / "finished"
    args = {**step(f"touch {started}; sleep 3; touch {finished}"), "command": "the-step"}
    call = served.stub.Invoke.future(provider_pb2.InvokeRequest(tok="command:local:run", args=struct(args)))
    wait_for(started.exists)
    call.cancel()
    time.sleep(4)
    assert not finished.exists()


# -- preview outputs: infer/resource.go markComputed -----------------------------------------------------------------


def test_a_preview_of_a_create_or_an_update_has_unknown_stdout_and_stderr(served: Served) -> None:
    """``markComputed``: a create's outputs that do not mirror an input are computed; an update's when an input they
    depend on (by default every input) is computed or changed. ``commandController.go`` runs nothing in preview."""
    inputs = {**step("exit 1"), "create": "the-step", "environment": {"A": "old"}}
    created = served.stub.Create(
        provider_pb2.CreateRequest(urn=URN, name="step", properties=struct(inputs), preview=True)
    )
    assert created.properties["stdout"] == UNKNOWN and created.properties["stderr"] == UNKNOWN
    olds = {**inputs, "stdout": "old out", "stderr": "old err"}
    news = {**inputs, "environment": {"A": "changed"}}
    updated = served.stub.Update(
        provider_pb2.UpdateRequest(
            urn=URN, id="step1", olds=struct(olds), news=struct(news), old_inputs=struct(inputs), preview=True
        )
    )
    assert updated.properties["stdout"] == UNKNOWN and updated.properties["stderr"] == UNKNOWN
    assert updated.properties["create"] == "the-step"


def test_which_inputs_make_an_updates_outputs_unknown() -> None:
    base = {"create": "c", "environment": {"A": "1"}}
    assert not inputs_changed(base, dict(base))
    assert inputs_changed(base, {**base, "environment": {"A": "2"}})
    assert inputs_changed(base, {"create": "c"})  # an input that is gone
    assert inputs_changed(base, {**base, "stdin": UNKNOWN})  # an unknown input, old or not
    assert not inputs_changed(None, dict(base))
    # An input the old inputs lack does not count (markComputed compares only where ``oldInputs`` has the key).
    assert not inputs_changed(base, {**base, "stdin": "new"})
