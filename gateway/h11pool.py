"""h11pool.py: a small HTTP/1.1 keep-alive connection pool over trio streams, as an httpx
transport for plain ``http://`` destinations.

Why: in a profile of the forwarding path about a quarter of all CPU went to httpcore's pool
bookkeeping, which polls *every* pooled connection (``is_readable`` via ``has_expired`` /
``is_idle``) on every request. This pool keeps idle connections per origin in a LIFO stack,
drops expired ones by timestamp, and polls only the one connection it is about to reuse.
Measured before/after in docs/performance.md.

What it keeps correct: httpx's connect/read/write/pool timeouts (from the request's
``timeout`` extension, mapped to httpx's exception classes); ``httpx.Limits``
(max_connections bounds requests in flight through this transport, max_keepalive_connections
and keepalive_expiry bound idle connections); cancellation — a connection is returned to
the pool only after a complete response, so a request cancelled at any point just closes
its socket and can never leave the pool unusable (httpcore issue #1093).
What it does not do — and hands to ``fallback`` (httpcore) instead: https, proxies, HTTP/2.
Response bodies are read whole (they are small acknowledgements), at most
``MAX_RESPONSE_BYTES``; a longer body is cut there and its connection closed.
Must not: retry, follow redirects, or know about destinations.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import h11
import httpx
import trio

if TYPE_CHECKING:
    from types import TracebackType

MAX_RESPONSE_BYTES = 1024 * 1024
RECEIVE_CHUNK_BYTES = 65_536

Origin = tuple[str, int]


class _Connection:
    __slots__ = ("h11", "idle_since", "stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def close(self) -> None:
        # Synchronous on purpose: safe in a cancelled scope and in ``finally`` blocks.
        self.stream.socket.close()

    def reusable(self) -> bool:
        """Not closed or half-closed by the server while idle: an idle keep-alive socket
        that polls readable has either EOF or unexpected bytes on it."""
        return not self.stream.socket.is_readable()


def _timeouts(request: httpx.Request) -> dict[str, float | None]:
    value: dict[str, float | None] = request.extensions.get("timeout", {})
    return value


def _raise(exc_type: type[httpx.TransportError], message: str, request: httpx.Request) -> NoReturn:
    raise exc_type(message, request=request)


class H11Transport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        limits: httpx.Limits,
        fallback: httpx.AsyncBaseTransport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fallback = fallback
        self._idle: dict[Origin, list[_Connection]] = {}
        self._max_keepalive = (
            limits.max_keepalive_connections
            if limits.max_keepalive_connections is not None
            else 1_000_000
        )
        self._expiry_s = limits.keepalive_expiry
        max_connections = limits.max_connections or 1_000_000
        self._slots = trio.Semaphore(max_connections)
        self._clock = clock
        self._closed = False

    # -- the pool ---------------------------------------------------------------------

    def _checkout(self, origin: Origin) -> _Connection | None:
        stack = self._idle.get(origin)
        if not stack:
            return None
        now = self._clock()
        while stack:
            conn = stack.pop()  # most recently used first: the one least likely to be stale
            expired = self._expiry_s is not None and now - conn.idle_since > self._expiry_s
            if not expired and conn.reusable():
                return conn
            conn.close()
        return None

    def _checkin(self, origin: Origin, conn: _Connection) -> None:
        stack = self._idle.setdefault(origin, [])
        if self._closed or len(stack) >= self._max_keepalive:
            conn.close()
            return
        conn.idle_since = self._clock()
        stack.append(conn)

    def idle_connections(self) -> int:
        return sum(len(stack) for stack in self._idle.values())

    # -- one request ------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            return await self._fallback.handle_async_request(request)
        if self._closed:
            _raise(httpx.ConnectError, "transport is closed", request)
        timeouts = _timeouts(request)
        with trio.move_on_after(_or_inf(timeouts.get("pool"))) as pool_scope:
            await self._slots.acquire()
        if pool_scope.cancelled_caught:
            _raise(httpx.PoolTimeout, "no connection slot free in time", request)
        try:
            return await self._send(request, timeouts)
        finally:
            self._slots.release()

    async def _send(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        url = request.url
        origin = (url.host, url.port or 80)
        conn = self._checkout(origin)
        if conn is None:
            conn = await self._connect(origin, request, timeouts.get("connect"))
        done = False
        try:
            response, reusable = await self._exchange(conn, request, timeouts)
            done = True
        finally:
            if not done:  # an error or a cancellation mid-exchange: the socket is unusable
                conn.close()
        if reusable:
            conn.h11.start_next_cycle()
            self._checkin(origin, conn)
        else:
            conn.close()
        return response

    async def _connect(
        self, origin: Origin, request: httpx.Request, connect_s: float | None
    ) -> _Connection:
        with trio.move_on_after(_or_inf(connect_s)) as scope:
            try:
                stream = await trio.open_tcp_stream(*origin)
            except OSError as exc:
                # trio's message names host:port; like httpcore's, ours names neither (a
                # destination's address may be sensitive): only the reason.
                _raise(httpx.ConnectError, f"connect failed: {_reason(exc)}", request)
        if scope.cancelled_caught:
            _raise(httpx.ConnectTimeout, "connect timed out", request)
        return _Connection(stream)

    async def _exchange(
        self, conn: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> tuple[httpx.Response, bool]:
        body = await request.aread()
        target = request.url.raw_path
        h11_request = h11.Request(method=request.method, target=target, headers=request.headers.raw)
        try:
            data = conn.h11.send(h11_request) or b""
            if body:
                data += conn.h11.send(h11.Data(data=body)) or b""
            data += conn.h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            _raise(httpx.LocalProtocolError, str(exc), request)
        with trio.move_on_after(_or_inf(timeouts.get("write"))) as scope:
            try:
                await conn.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                _raise(httpx.WriteError, f"{type(exc).__name__}: connection lost", request)
        if scope.cancelled_caught:
            _raise(httpx.WriteTimeout, "write timed out", request)

        read_timeout = _or_inf(timeouts.get("read"))
        head: h11.Response | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event(conn, request, read_timeout)
            if isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
                size += len(event.data)
                if size > MAX_RESPONSE_BYTES:
                    break
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                _raise(httpx.RemoteProtocolError, "server closed the connection", request)
        assert head is not None  # h11 yields Response before Data/EndOfMessage
        reusable = (
            size <= MAX_RESPONSE_BYTES
            and conn.h11.our_state is h11.DONE
            and conn.h11.their_state is h11.DONE
        )
        response = httpx.Response(
            head.status_code,
            headers=head.headers,
            content=b"".join(chunks)[:MAX_RESPONSE_BYTES],
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": bytes(head.reason)},
        )
        return response, reusable

    async def _next_event(
        self, conn: _Connection, request: httpx.Request, read_timeout: float
    ) -> Any:
        while True:
            try:
                event = conn.h11.next_event()
            except h11.RemoteProtocolError as exc:
                _raise(httpx.RemoteProtocolError, str(exc), request)
            if event is not h11.NEED_DATA:
                return event
            with trio.move_on_after(read_timeout) as scope:
                try:
                    data = await conn.stream.receive_some(RECEIVE_CHUNK_BYTES)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    _raise(httpx.ReadError, f"{type(exc).__name__}: connection lost", request)
            if scope.cancelled_caught:
                _raise(httpx.ReadTimeout, "read timed out", request)
            conn.h11.receive_data(data)  # b"" = EOF: h11 turns it into ConnectionClosed

    async def aclose(self) -> None:
        self._closed = True
        for stack in self._idle.values():
            for conn in stack:
                conn.close()
        self._idle.clear()
        await self._fallback.aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()


def _reason(exc: OSError) -> str:
    """ "Connection refused" from trio's OSError (whose cause groups one error per address
    tried), without the address."""
    cause = exc.__cause__
    errors = cause.exceptions if isinstance(cause, BaseExceptionGroup) else (cause,)
    for error in errors:
        if isinstance(error, OSError) and error.errno:
            return os.strerror(error.errno)  # trio's own strerror names the address
    return "failed"


def _or_inf(timeout: float | None) -> float:
    return float("inf") if timeout is None else timeout
