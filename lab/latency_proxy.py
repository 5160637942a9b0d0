"""A TCP proxy on 127.0.0.1 that puts a server a fixed round-trip time away: what a bucket in another building costs
a client, measured on one machine.

Why: the self-managed (diy) backend writes the whole state at every checkpoint, one write after the other, and each
write is several requests to the bucket (pulumi ``pkg/backend/diy/state.go``, ``saveCheckpoint``: the listing that
finds the stack's file, an existence check, the copy to ``.bak``, the upload). On loopback a request costs well under
a millisecond, so the S3 server of ``lab/object_store.py`` hides what a team's bucket, tens of milliseconds away,
adds to a ``pulumi up``; this proxy puts the round trips back, so that the cost is measured rather than guessed.

What it simulates: latency alone, a fixed round-trip time ``rtt``. Each chunk read from the client reaches the server
``rtt / 2`` after it arrived, and each chunk of the answer reaches the client ``rtt / 2`` after it arrived, so one
request and its response cost one ``rtt`` more than without the proxy. The chunks of one direction keep their order and
each is delayed from its own arrival, not from the delivery of the one before: a body of many chunks costs one
one-way delay, not one per chunk (no bandwidth limit). A new connection costs one ``rtt`` before its first byte goes
on (TCP's handshake); a kept-alive connection costs nothing more. It counts what passed (:class:`ProxyCounts`): the
connections, the bytes, and the round trips (a chunk from the client after the server has answered).

What it does not simulate: bandwidth (the state crosses at loopback speed, where a real link takes size / bandwidth
more), TCP's slow start (a large upload on a new or idle connection takes several round trips on a real link), loss
and retransmission, jitter, TLS (an HTTPS bucket's new connection costs one or two round trips more; the proxy forwards
what it gets, plain HTTP here), DNS, and the service's own time per request (much of a real S3 PUT's tens of
milliseconds is the service, not the network). A measurement through it is a lower bound of a real bucket's cost at
that round-trip time.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import TracebackType

CHUNK = 64 * 1024
START_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ProxyCounts:
    """What went through the proxy so far (subtract two of them for what one run sent)."""

    connections: int = 0
    round_trips: int = 0
    """Chunks from the client that followed an answer of the server on their connection (or opened it): the requests
    that each paid one round trip, pipelined ones counted once."""
    bytes_to_server: int = 0
    bytes_to_client: int = 0

    def __sub__(self, other: ProxyCounts) -> ProxyCounts:
        return ProxyCounts(
            self.connections - other.connections,
            self.round_trips - other.round_trips,
            self.bytes_to_server - other.bytes_to_server,
            self.bytes_to_client - other.bytes_to_client,
        )


@dataclass
class _Connection:
    """Which side spoke last on one proxied connection (a client chunk after the server's opens a round trip)."""

    client_spoke_last: bool = False


@dataclass
class LatencyProxy:
    """Forwards 127.0.0.1:``port`` (chosen by the kernel unless given) to ``target_host``:``target_port``, ``rtt``
    seconds of round trip away. :meth:`start` runs it on an event loop of its own, in a thread, until :meth:`stop`;
    also a context manager."""

    target_port: int
    rtt: float
    target_host: str = "127.0.0.1"
    port: int = 0
    _counts: ProxyCounts = field(default_factory=ProxyCounts, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _stopping: asyncio.Event | None = field(default=None, repr=False)
    _failure: Exception | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``: where clients connect instead of the target."""
        return f"127.0.0.1:{self.port}"

    def counts(self) -> ProxyCounts:
        """Connections, round trips and bytes so far."""
        with self._lock:
            return self._counts

    def start(self) -> LatencyProxy:
        """Listen (the port is known when this returns) and forward until :meth:`stop`."""
        if self.rtt < 0:
            raise ValueError(f"a round-trip time is not negative: {self.rtt}")
        started = threading.Event()
        name = f"latency-proxy-{self.rtt}"
        self._thread = threading.Thread(target=self._run, args=(started,), name=name, daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError(f"the latency proxy did not listen within {START_TIMEOUT_SECONDS:.0f} s")
        if self._failure is not None:
            raise RuntimeError(f"the latency proxy did not start: {self._failure}") from self._failure
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and end the thread (nothing if it is not running)."""
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stopping.set)
        if thread is not None:
            thread.join(timeout=START_TIMEOUT_SECONDS)
        self._thread = None

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self, started: threading.Event) -> None:
        try:
            asyncio.run(self._main(started))
        except Exception as error:  # reported by start(), which waits for it (the listen failed)
            self._failure = error
        finally:
            started.set()

    async def _main(self, started: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        connections: set[asyncio.Task[None]] = set()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await self._serve(reader, writer)
            except asyncio.CancelledError:
                pass  # stopped: ends quietly (3.11's start_server callback would report a cancelled task)
            finally:
                connections.discard(task)

        server = await asyncio.start_server(serve, "127.0.0.1", self.port)
        self.port = int(server.sockets[0].getsockname()[1])
        started.set()
        await self._stopping.wait()
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()

    def _count(self, **added: int) -> None:
        with self._lock:
            self._counts = replace(self._counts, **{k: getattr(self._counts, k) + v for k, v in added.items()})

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        """One client connection: the handshake's round trip, then both directions, each chunk one way late."""
        self._count(connections=1)
        server_writer: asyncio.StreamWriter | None = None
        try:
            await asyncio.sleep(self.rtt)  # SYN to the server and its SYN-ACK back, before the client's first byte
            server_reader, server_writer = await asyncio.open_connection(self.target_host, self.target_port)
            connection = _Connection()
            writers = (client_writer, server_writer)

            def abort() -> None:  # one side failed: drop both, so that the other direction's read ends too
                for writer in writers:
                    writer.transport.abort()

            await asyncio.gather(
                self._pipe(client_reader, server_writer, connection, to_server=True, abort=abort),
                self._pipe(server_reader, client_writer, connection, to_server=False, abort=abort),
            )
        except OSError:
            pass
        finally:
            for writer in (client_writer, server_writer):
                if writer is not None:
                    writer.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: _Connection,
        *,
        to_server: bool,
        abort: Callable[[], None],
    ) -> None:
        """Forward one direction: every chunk (and the end of the stream) written ``rtt / 2`` after it was read,
        in order; reading goes on meanwhile, so a long body is not slowed down chunk by chunk."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if (delay := due - loop.time()) > 0:
                    await asyncio.sleep(delay)
                if not chunk:
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(CHUNK):
                if to_server:
                    self._count(bytes_to_server=len(chunk), round_trips=0 if connection.client_spoke_last else 1)
                else:
                    self._count(bytes_to_client=len(chunk))
                connection.client_spoke_last = to_server
                queue.put_nowait((loop.time() + self.rtt / 2, chunk))
            queue.put_nowait((loop.time() + self.rtt / 2, b""))
            await delivering
        except OSError:
            abort()
        finally:
            delivering.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await delivering
