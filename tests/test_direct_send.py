"""delivery.send hands plain-http requests straight to our h11 pool (skipping httpx's client
layer): the destination must receive exactly what the client path sends, connections must
be reused, and httpx's timeouts and error classes must still apply."""

from __future__ import annotations

import httpx
import trio

from gateway.clients import GatewayClient, make_client
from gateway.config import DestinationConfig
from gateway.delivery import Request, send
from gateway.h11pool import H11Transport
from support.sink import Behaviour, Sink

GUARD_S = 10.0
HEADERS = {"User-Agent": "alertmanager-gateway/test", "Content-Type": "application/json"}


def client_for(url: str) -> GatewayClient:
    return make_client(DestinationConfig(name="d", url=url), None, timeout_s=5.0)


async def test_direct_and_client_paths_deliver_the_same_request(sink: Sink) -> None:
    body = b'{"text": "disk full"}'
    with trio.fail_after(GUARD_S):
        async with client_for(sink.url) as client:
            assert isinstance(client.h11, H11Transport)
            direct = await send(client, Request("POST", f"{sink.url}/d?q=1", HEADERS, body))
            via_client = await client.post(f"{sink.url}/d?q=1", headers=HEADERS, content=body)
            assert client.h11.idle_connections() == 1  # both used the one kept-alive socket
    assert direct.outcome == "success" and via_client.status_code == 200
    first, second = sink.received
    assert (first.method, first.path, first.query, first.body) == ("POST", "/d", "q=1", body)
    assert (second.method, second.path, second.query, second.body) == (
        "POST",
        "/d",
        "q=1",
        body,
    )
    for name in ("host", "content-length", "content-type", "user-agent"):
        assert first.headers[name] == second.headers[name]


async def test_direct_path_reports_failures_and_timeouts_like_the_client(sink: Sink) -> None:
    sink.behave("/busy", Behaviour(status=503, body=b"later", headers={"Retry-After": "7"}))
    sink.behave("/hang", Behaviour(hang=True))
    with trio.fail_after(GUARD_S):
        async with client_for(sink.url) as client:
            busy = await send(client, Request("POST", f"{sink.url}/busy", HEADERS, b"{}"))
            hung = await send(
                client,
                Request("POST", f"{sink.url}/hang", HEADERS, b"{}"),
                httpx_timeout=httpx.Timeout(0.2),
            )
            after = await send(client, Request("POST", f"{sink.url}/ok", HEADERS, b"{}"))
    assert (busy.outcome, busy.status_code, busy.error) == ("failure", 503, "HTTP 503: later")
    assert (busy.retryable, busy.retry_after_s) == (True, 7.0)
    assert (hung.outcome, hung.error) == ("timeout", "timed out (ReadTimeout)")
    assert after.outcome == "success"  # the pool is still usable after the timeout


async def test_a_proxied_destination_has_no_direct_path() -> None:
    # (https:// never goes direct either: send() only takes http:// URLs to the pool, and
    # the outbound TLS tests in test_tls.py deliver through send() to real TLS servers.)
    proxied = make_client(
        DestinationConfig(name="p", url="http://x.test/", proxy_url="http://127.0.0.1:9"),
        None,
        timeout_s=5.0,
    )
    try:
        assert proxied.h11 is None  # the proxy transport carries everything through httpx
    finally:
        await proxied.aclose()
