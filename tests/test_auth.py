"""Inbound security, in-process: who may call which route, lockout, rate and concurrency
limits — and the status codes Alertmanager and operators see for each."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from gateway.auth import client_address
from support.app import Built, build_app

GROUP = (Path(__file__).parent / "data" / "firing-group-unicode.json").read_bytes()
_PEERS = (f"10.77.{n // 250}.{n % 250 + 1}" for n in itertools.count())

CONFIG = """
server:
  address: "127.0.0.1:0"
  auth: {username: am, password: am-pass-1, bearer_tokens: [global-token-1]}
  admin: {bearer_tokens: [admin-token-1]}
  trusted_proxies: [10.9.0.0/16]
  lockout: {failures: 3, window: 1m, duration: 5m}
destinations:
  - name: shared
    url: http://sink.test/shared
  - name: team-a
    url: http://sink.test/a
    auth: {bearer_tokens: [team-a-token]}
  - name: team-b
    url: http://sink.test/b
    auth: {username: b, password: team-b-pass}
"""


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make(config: str = CONFIG) -> Built:
    async def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="ok")

    return build_app(config, httpx.MockTransport(ok))


async def call(
    built: Built,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    peer: str | None = None,
    body: bytes = GROUP,
) -> Any:
    """One request from ``peer`` (default: an address no other call used, so the lockout
    only matters to tests that name their peer)."""
    peer = peer or next(_PEERS)
    client = built.app.test_client()
    return await client.open(
        path,
        method=method,
        headers=headers or {},
        data=body if method == "POST" else None,
        scope_base={"client": (peer, 40000)},
    )


async def test_webhook_accepts_global_basic_and_bearer_and_refuses_the_rest() -> None:
    built = make()
    assert (await call(built, "/webhook/shared", basic("am", "am-pass-1"))).status_code == 200
    assert (await call(built, "/webhook/shared", bearer("global-token-1"))).status_code == 200
    for headers in (
        None,
        basic("am", "wrong"),
        basic("other", "am-pass-1"),
        bearer("global-token-"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Digest x"},
    ):
        response = await call(built, "/webhook/shared", headers)
        assert response.status_code == 401, headers
        body = await response.get_json()
        # Says only that credentials are missing or wrong — not which part.
        assert body == {"status": "error", "error": "credentials missing or wrong"}
        challenge = response.headers["WWW-Authenticate"]
        assert 'Basic realm="alertmanager-gateway"' in challenge and "Bearer" in challenge
    assert built.sample("gateway_webhooks_total", destination="shared", code="401") == 6
    assert built.sample("gateway_auth_failures_total", scope="webhook") == 6


async def test_destination_auth_replaces_global_so_teams_cannot_cross_post() -> None:
    built = make()
    assert (await call(built, "/webhook/team-a", bearer("team-a-token"))).status_code == 200
    assert (await call(built, "/webhook/team-b", basic("b", "team-b-pass"))).status_code == 200
    # Team A's token is no good for team B, and the global credentials open neither.
    assert (await call(built, "/webhook/team-b", bearer("team-a-token"))).status_code == 401
    assert (await call(built, "/webhook/team-a", basic("b", "team-b-pass"))).status_code == 401
    assert (await call(built, "/webhook/team-a", bearer("global-token-1"))).status_code == 401
    response = await call(built, "/webhook/team-a", basic("am", "am-pass-1"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="alertmanager-gateway"'


async def test_open_routes_and_admin_credentials_per_route() -> None:
    built = make()
    for path in ("/health", "/ready", "/-/healthy", "/-/ready", "/metrics"):
        assert (await call(built, path, method="GET")).status_code == 200, path
    for path in ("/api/v1/info", "/api/v1/destinations", "/api/v1/destinations/shared"):
        assert (await call(built, path, method="GET")).status_code == 401, path
        # Webhook credentials are not admin credentials.
        response = await call(built, path, bearer("global-token-1"), method="GET")
        assert response.status_code == 401
        response = await call(built, path, bearer("admin-token-1"), method="GET")
        assert response.status_code == 200, path
    # A route another module adds under an admin prefix is covered without asking.
    assert (await call(built, "/debug/pprof", method="GET")).status_code == 401
    assert (await call(built, "/api/v2/new-thing", method="GET")).status_code == 401
    assert (await call(built, "/-/reload")).status_code == 401
    # Admin credentials do not open webhooks.
    assert (await call(built, "/webhook/shared", bearer("admin-token-1"))).status_code == 401


async def test_admin_endpoints_are_disabled_without_admin_credentials() -> None:
    built = make(CONFIG.replace("  admin: {bearer_tokens: [admin-token-1]}\n", ""))
    response = await call(built, "/api/v1/info", bearer("admin-token-1"), method="GET")
    assert response.status_code == 403
    assert "configure server.admin" in (await response.get_json())["error"]
    assert (await call(built, "/-/reload")).status_code == 403


async def test_metrics_can_require_admin_credentials() -> None:
    built = make(CONFIG.replace("  trusted_proxies", "  metrics_auth: true\n  trusted_proxies"))
    assert (await call(built, "/metrics", method="GET")).status_code == 401
    response = await call(built, "/metrics", bearer("admin-token-1"), method="GET")
    assert response.status_code == 200
    assert b"gateway_webhooks_in_flight" in await response.get_data()
    assert (await call(built, "/health", method="GET")).status_code == 200


async def test_no_auth_configured_means_open_webhooks() -> None:
    built = make("destinations: [{name: open, url: 'http://sink.test/'}]")
    assert (await call(built, "/webhook/open")).status_code == 200


async def test_repeated_failures_lock_the_address_out_then_it_expires(
    autojump_clock: trio.testing.MockClock,
) -> None:
    built = make()
    attacker, other = "192.0.2.7", "192.0.2.8"
    for _ in range(3):
        assert (
            await call(built, "/webhook/shared", bearer("guess"), peer=attacker)
        ).status_code == 401
    # Locked out: even the right credentials are not checked now. Webhooks get 503 (so a
    # real Alertmanager whose password was just fixed retries).
    response = await call(built, "/webhook/shared", bearer("global-token-1"), peer=attacker)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "300"
    # Admin failures count apart (and answer 429): mistyping the admin token on the
    # Alertmanager host must not stop its webhooks, nor the reverse.
    response = await call(
        built, "/api/v1/info", bearer("admin-token-1"), method="GET", peer=attacker
    )
    assert response.status_code == 200
    for _ in range(3):
        await call(built, "/api/v1/info", bearer("typo"), method="GET", peer=other)
    response = await call(built, "/api/v1/info", bearer("admin-token-1"), method="GET", peer=other)
    assert response.status_code == 429
    assert (
        await call(built, "/webhook/shared", bearer("global-token-1"), peer=other)
    ).status_code == 200
    # Other addresses are not affected.
    assert (
        await call(built, "/webhook/shared", bearer("global-token-1"), peer="192.0.2.9")
    ).status_code == 200
    assert built.sample("gateway_auth_lockouts_total") == 2
    assert "client locked out" in built.log_text()
    assert "remote=192.0.2.7 scope=webhook" in built.log_text()
    await trio.sleep(301)
    response = await call(built, "/webhook/shared", bearer("global-token-1"), peer=attacker)
    assert response.status_code == 200


async def test_failures_outside_the_window_do_not_add_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    built = make()
    for _ in range(5):
        assert (
            await call(built, "/webhook/shared", bearer("x"), peer="192.0.2.9")
        ).status_code == 401
        await trio.sleep(31)  # at most 2 failures inside any 60 s window
    assert built.sample("gateway_auth_lockouts_total") == 0


async def test_lockout_follows_forwarded_for_only_from_trusted_proxies(
    autojump_clock: trio.testing.MockClock,
) -> None:
    built = make()
    proxy = "10.9.1.1"
    for _ in range(3):
        headers = {**bearer("guess"), "X-Forwarded-For": "198.51.100.1"}
        await call(built, "/webhook/shared", headers, peer=proxy)
    # The client behind the proxy is locked out, not the proxy itself.
    locked = {**bearer("global-token-1"), "X-Forwarded-For": "198.51.100.1"}
    assert (await call(built, "/webhook/shared", locked, peer=proxy)).status_code == 503
    fine = {**bearer("global-token-1"), "X-Forwarded-For": "198.51.100.2"}
    assert (await call(built, "/webhook/shared", fine, peer=proxy)).status_code == 200
    # An untrusted peer cannot escape its own lockout by writing the header.
    for _ in range(3):
        await call(built, "/webhook/shared", bearer("guess"), peer="203.0.113.5")
    spoofed = {**bearer("global-token-1"), "X-Forwarded-For": "198.51.100.3"}
    assert (await call(built, "/webhook/shared", spoofed, peer="203.0.113.5")).status_code == 503


def test_client_address_takes_the_rightmost_untrusted_hop() -> None:
    trusted = ["10.0.0.0/8", "fd00::/8"]
    assert client_address("10.0.0.1", "1.1.1.1, 2.2.2.2, 10.0.0.2", trusted) == "2.2.2.2"
    assert client_address("10.0.0.1", "", trusted) == "10.0.0.1"
    assert client_address("8.8.8.8", "1.1.1.1", trusted) == "8.8.8.8"
    assert client_address("fd00::1", "2001:db8::1", trusted) == "2001:db8::1"
    assert client_address("10.0.0.1", "10.0.0.3", trusted) == "10.0.0.1"


RATE_CONFIG = """
server:
  rate_limit:
    client: {rate: 1, burst: 3}
  admin: {bearer_tokens: [admin-token-1]}
destinations:
  - name: a
    url: http://sink.test/a
    rate_limit: {rate: 0.5, burst: 2}
  - name: b
    url: http://sink.test/b
"""


async def test_client_rate_limit_answers_503_on_webhooks_and_429_on_admin(
    autojump_clock: trio.testing.MockClock,
) -> None:
    built = make(RATE_CONFIG)
    codes = [(await call(built, "/webhook/b", peer="192.0.2.1")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 503]
    response = await call(built, "/webhook/b", peer="192.0.2.1")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "rate limit exceeded for this client" in (await response.get_json())["error"]
    response = await call(
        built, "/api/v1/info", bearer("admin-token-1"), method="GET", peer="192.0.2.1"
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    # Another client has its own bucket; the bucket refills at the configured rate.
    assert (await call(built, "/webhook/b", peer="192.0.2.2")).status_code == 200
    await trio.sleep(1.0)
    assert (await call(built, "/webhook/b", peer="192.0.2.1")).status_code == 200
    assert built.sample("gateway_requests_limited_total", reason="client") == 3
    assert built.sample("gateway_webhooks_total", destination="b", code="503") == 2


async def test_destination_rate_limit_is_shared_by_all_clients(
    autojump_clock: trio.testing.MockClock,
) -> None:
    built = make(RATE_CONFIG)
    codes = [
        (await call(built, "/webhook/a", peer=f"192.0.2.{i}")).status_code for i in range(1, 4)
    ]
    assert codes == [200, 200, 503]
    response = await call(built, "/webhook/a", peer="192.0.2.50")
    assert response.headers["Retry-After"] == "2"  # 0.5 tokens/s
    assert (await call(built, "/webhook/b", peer="192.0.2.51")).status_code == 200
    await trio.sleep(2.0)
    assert (await call(built, "/webhook/a", peer="192.0.2.52")).status_code == 200


async def test_concurrency_cap_sheds_webhooks_with_503() -> None:
    release = trio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200)

    built = build_app(
        "server: {max_concurrent_requests: 2}\ndestinations: [{name: a, url: 'http://s.test/'}]",
        httpx.MockTransport(slow),
    )
    codes: list[int] = []

    async def one() -> None:
        codes.append((await call(built, "/webhook/a")).status_code)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            response = await call(built, "/webhook/a")
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
            release.set()
    assert codes == [200, 200]
    assert (await call(built, "/webhook/a")).status_code == 200  # slots were given back


async def test_lockout_tables_stay_bounded_under_an_address_spray(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import auth

    monkeypatch.setattr(auth, "MAX_TRACKED_ADDRESSES", 50)
    built = make(CONFIG.replace("failures: 3", "failures: 1"))
    for i in range(200):
        await call(built, "/webhook/shared", bearer("guess"), peer=f"2001:db8::{i:x}")
    guard = built.app.extensions["gateway_gatekeeper"]
    assert len(guard.lockout._until) <= 50
    assert built.sample("gateway_auth_lockouts_total") == 200
    # The most recent ones are still locked out.
    response = await call(built, "/webhook/shared", bearer("global-token-1"), peer="2001:db8::c7")
    assert response.status_code == 503
