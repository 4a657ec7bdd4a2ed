"""sink.py: a real loopback HTTP/1.1 server for tests, on trio + h11 and nothing else.

Owns: accepting connections on 127.0.0.1:<random port>, parsing requests (keep-alive,
chunked or Content-Length bodies), recording every request, and answering according to a
per-path-prefix `Behaviour` (status, delay, first-N failures with their own headers and
body, reset, hang).
Must not: know anything about the gateway or Alertmanager payloads — tests decode bodies.

A request is recorded as soon as its body has been read, *before* any delay, reset or hang,
so `wait_for` sees requests whose answer is still pending (or will never come).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

import h11
import trio

HOST = "127.0.0.1"
RECEIVE_CHUNK_BYTES = 65_536
DEFAULT_BEHAVIOUR_PATH = "/"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str  # without the "?"; "" if none
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    at: float  # trio.current_time() when the body had been read


@dataclass
class Behaviour:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering
    fail_first: int = 0  # answer `fail_status` to the first N requests matching this behaviour
    fail_status: int = 503
    reset: bool = False  # close the connection without answering
    hang: bool = False  # never answer (until the sink is cancelled)
    # The first `fail_first` answers also carry these (e.g. 429 + Retry-After) / this body
    # (e.g. 200 + an error text, as Teams does: set fail_status=200).
    fail_headers: dict[str, str] = field(default_factory=dict)
    fail_body: bytes | None = None
    fail_reset: bool = False  # the first `fail_first` connections are closed unanswered
    fail_hang: bool = False  # the first `fail_first` requests are never answered


class _PeerGone(Exception):
    """The client closed the connection, or spoke something that is not HTTP/1.1."""


class Sink:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.url = ""  # set by run() once listening
        self._behaviours: dict[str, Behaviour] = {DEFAULT_BEHAVIOUR_PATH: Behaviour()}
        self._matched: dict[str, int] = {}  # path prefix -> requests it has answered so far
        self._changed = trio.Event()  # set and replaced each time a request is recorded

    def behave(self, path: str, behaviour: Behaviour) -> None:
        """Answer requests whose path starts with `path` like this (longest prefix wins).

        Resets that prefix's `fail_first` count.
        """
        self._behaviours[path] = behaviour
        self._matched[path] = 0

    def for_path(self, path: str) -> list[Received]:
        """Requests received so far whose path is exactly `path` (query not included)."""
        return [r for r in self.received if r.path == path]

    async def wait_for(self, count: int, *, path: str | None = None) -> list[Received]:
        """Wait until at least `count` requests (to `path`, if given) arrived; return them all.

        No timeout of its own: callers wrap it in `trio.fail_after`.
        """
        while True:
            got = list(self.received) if path is None else self.for_path(path)
            if len(got) >= count:
                return got
            await self._changed.wait()

    async def run(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        task_status: trio.TaskStatus[Sink] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve plain HTTP, or HTTPS (url https://...) when given a server ``ssl_context``."""
        tcp = await trio.open_tcp_listeners(0, host=HOST)
        port = tcp[0].socket.getsockname()[1]
        self.url = f"{'https' if ssl_context else 'http'}://{HOST}:{port}"
        listeners: list[trio.abc.Listener[trio.abc.Stream]] = list(tcp)
        if ssl_context is not None:
            listeners = [
                trio.SSLListener(listener, ssl_context, https_compatible=True) for listener in tcp
            ]
        async with trio.open_nursery() as nursery:
            # serve_listeners runs one task per connection and closes listeners on cancel.
            await nursery.start(trio.serve_listeners, self._serve_connection, listeners)
            task_status.started(self)

    # -- one connection ----------------------------------------------------------------

    async def _serve_connection(self, stream: trio.abc.Stream) -> None:
        # serve_listeners closes `stream` when this returns; an escaping exception would
        # tear down the whole sink, so a misbehaving client only ends its own connection.
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await _next_event(conn, stream)
                if not isinstance(request, h11.Request):
                    return  # ConnectionClosed between requests: normal end of keep-alive
                body = bytearray()
                while not isinstance(event := await _next_event(conn, stream), h11.EndOfMessage):
                    if isinstance(event, h11.Data):
                        body += event.data
                self._record(request, bytes(body))
                if not await self._answer(conn, stream, request.target):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return  # Connection: close, or HTTP/1.0
                conn.start_next_cycle()
        except (_PeerGone, trio.BrokenResourceError, trio.ClosedResourceError):
            return  # includes failed TLS handshakes (trio raises BrokenResourceError)

    def _record(self, request: h11.Request, body: bytes) -> None:
        path, _, query = request.target.decode("latin-1").partition("?")
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.received.append(
            Received(
                method=request.method.decode("ascii"),
                path=path,
                query=query,
                headers=headers,
                body=body,
                at=trio.current_time(),
            )
        )
        self._changed.set()
        self._changed = trio.Event()

    async def _answer(self, conn: h11.Connection, stream: trio.abc.Stream, target: bytes) -> bool:
        """Send the response; False if the connection must be dropped instead."""
        prefix, behaviour = self._behaviour_for(target.decode("latin-1").partition("?")[0])
        nth = self._matched.get(prefix, 0)
        self._matched[prefix] = nth + 1
        failing = nth < behaviour.fail_first
        if behaviour.hang or (failing and behaviour.fail_hang):
            await trio.sleep_forever()
        if behaviour.delay_s:
            await trio.sleep(behaviour.delay_s)
        if behaviour.reset or (failing and behaviour.fail_reset):
            return False
        status = behaviour.fail_status if failing else behaviour.status
        body = behaviour.body
        extra: dict[str, str] = {}
        if failing:
            extra = behaviour.fail_headers
            body = behaviour.body if behaviour.fail_body is None else behaviour.fail_body
        headers = [
            *behaviour.headers.items(),
            *extra.items(),
            ("content-length", str(len(body))),
        ]
        await _send(conn, stream, h11.Response(status_code=status, headers=headers))
        await _send(conn, stream, h11.Data(data=body))
        await _send(conn, stream, h11.EndOfMessage())
        return True

    def _behaviour_for(self, path: str) -> tuple[str, Behaviour]:
        matching = [prefix for prefix in self._behaviours if path.startswith(prefix)]
        prefix = max(matching, key=len, default=DEFAULT_BEHAVIOUR_PATH)
        return prefix, self._behaviours[prefix]


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> h11.Event:
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise _PeerGone(str(exc)) from exc
        if event is h11.NEED_DATA:
            # b"" at EOF tells h11 the peer closed; it then yields ConnectionClosed or raises.
            conn.receive_data(await stream.receive_some(RECEIVE_CHUNK_BYTES))
            continue
        if event is h11.PAUSED:  # cannot happen: we call start_next_cycle() after each answer
            raise _PeerGone("h11 paused")
        assert isinstance(event, h11.Event)
        return event


async def _send(conn: h11.Connection, stream: trio.abc.Stream, event: h11.Event) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)
