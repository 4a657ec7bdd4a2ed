"""http.py: the smallest HTTP/1.1 framing the load-test sink and driver need.

Only Content-Length bodies (what httpx, hypercorn and our own processes send); anything
else is a protocol error. Written for speed, not generality: the sink and driver must be
several times faster than the gateway they measure.
Must not: be used by the gateway itself.
"""

from __future__ import annotations

import asyncio

_CL = b"content-length:"


class ProtocolError(Exception):
    pass


def split_message(buf: bytearray) -> tuple[bytes, bytes] | None:
    """Take one complete message (head, body) off the front of ``buf``, or None if more
    bytes are needed."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65_536:
            raise ProtocolError("header too large")
        return None
    head = bytes(buf[:end])
    lower = head.lower()
    at = lower.find(_CL)
    length = 0
    if at >= 0:
        stop = lower.find(b"\r\n", at)
        length = int(lower[at + len(_CL) : stop if stop >= 0 else None])
    elif b"transfer-encoding:" in lower:
        raise ProtocolError("chunked bodies are not supported")
    total = end + 4 + length
    if len(buf) < total:
        return None
    body = bytes(buf[end + 4 : total])
    del buf[:total]
    return head, body


def status_of(head: bytes) -> int:
    """b"HTTP/1.1 200 OK..." -> 200"""
    return int(head[9:12])


def target_of(head: bytes) -> bytes:
    """b"POST /in HTTP/1.1..." -> b"/in" """
    first = head.split(b"\r\n", 1)[0]
    return first.split(b" ", 2)[1]


def response(status: int, body: bytes, reason: bytes = b"OK") -> bytes:
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        reason,
        len(body),
        body,
    )


def post(path: str, host: str, body: bytes) -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (path.encode(), host.encode(), len(body), body)
    )


class MessageProtocol(asyncio.Protocol):
    """An asyncio protocol that cuts what it receives into whole HTTP/1.1 messages and hands
    each to ``message(head, body)``. Bytes ``split_message`` cannot frame, or a ValueError
    out of ``message``, go to ``bad_stream(exc)`` instead. Subclasses implement both."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            while (msg := split_message(self.buf)) is not None:
                self.message(*msg)
        except (ProtocolError, ValueError) as exc:
            self.bad_stream(exc)

    def message(self, head: bytes, body: bytes) -> None:
        raise NotImplementedError

    def bad_stream(self, exc: Exception) -> None:
        raise NotImplementedError
