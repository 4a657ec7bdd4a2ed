"""Slow and oversized clients against the real server (in-process daemon, raw sockets):
they cannot hold a connection open or send an unbounded request head."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from support.daemon import log_destination_config, run_daemon

GUARD_S = 20
ANSWER_WAIT_S = 10  # for the server to answer or close; above every timeout set below


@asynccontextmanager
async def serving(tmp_path: Path, server_yaml: str) -> AsyncIterator[tuple[str, int]]:
    config_text = log_destination_config(server_yaml)
    async with run_daemon(tmp_path, config_text, guard_s=GUARD_S) as (_daemon, url):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)


async def read_all(stream: trio.SocketStream) -> bytes:
    """Until the server closes, or a whole response head has arrived."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := await stream.receive_some(65536)):
        data += chunk
    return data


async def exchange(host: str, port: int, data: bytes) -> bytes:
    """Send `data` on a new connection; what the server answers, read as `read_all` does
    (within ANSWER_WAIT_S)."""
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(data)
        with trio.fail_after(ANSWER_WAIT_S):
            return await read_all(stream)


async def test_a_client_that_stops_sending_headers_is_disconnected(tmp_path: Path) -> None:
    async with serving(tmp_path, "read_timeout: 1s, keep_alive_timeout: 1s") as (host, port):
        # A head that never ends: the server closes the connection by itself (ANSWER_WAIT_S
        # is far above 1s).
        answer = await exchange(host, port, b"POST /webhook/log HTTP/1.1\r\nHost: x\r\n")
    assert answer == b""  # closed without an answer


async def test_a_body_that_never_completes_gets_408(tmp_path: Path) -> None:
    async with serving(tmp_path, "read_timeout: 1s") as (host, port):
        answer = await exchange(
            host, port, b"POST /webhook/log HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
        )
    # Both hypercorn's read_timeout (closes) and Quart's BODY_TIMEOUT (answers 408) are 1s
    # here; whichever fires first, the slow client is cut off.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer


async def test_an_oversized_request_head_is_refused(tmp_path: Path) -> None:
    async with serving(tmp_path, "max_header_bytes: 4KiB") as (host, port):
        # A head still growing past the limit (h11 judges incomplete heads; one that
        # arrives complete in a single read is parsed whole).
        answer = await exchange(
            host, port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192
        )
        small = await exchange(
            host, port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Small: " + b"a" * 1024 + b"\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 431")
    assert small.startswith(b"HTTP/1.1 200")


async def test_a_refusal_before_the_body_arrived_closes_the_connection(tmp_path: Path) -> None:
    # The guard's 401/503/429 are sent before the client finished sending its body. Such a
    # connection must not be reused: hypercorn would not serve the next request on it, and
    # the client (Alertmanager keeps connections alive) would wait in vain.
    auth = "read_timeout: 5s, auth: {bearer_tokens: [the-right-token]}"
    async with serving(tmp_path, auth) as (host, port):
        answer = await exchange(
            host, port, b"POST /webhook/log HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 401")
    assert b"\r\nconnection: close" in head
