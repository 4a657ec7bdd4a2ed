"""Retries, Retry-After, success bodies and deadlines — exact virtual times under
autojump_clock with a mock transport; what Alertmanager is answered each time."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from gateway import config
from gateway.delivery import RetryPolicy, retry_after_s
from gateway.errors import ConfigError
from support.app import Built, build_app

DATA = Path(__file__).parent / "data"
SINGLE = (DATA / "firing-single.json").read_bytes()

CONFIG = """
server: {address: "127.0.0.1:0"}
defaults:
  retry: {max_attempts: 4, initial_delay: 1s, max_delay: 3s, multiplier: 2}
destinations:
  - name: hook
    url: http://sink.test/hook
    timeout: 30s
  - name: short
    url: http://sink.test/short
    timeout: 5s
    retry: {max_attempts: 10, initial_delay: 2s, max_delay: 60s}
  - name: teams
    url: http://sink.test/teams
    success_body: {contains: "1"}
  - name: slack
    url: http://sink.test/slack
    success_body: {json_path: ok, equals: true}
"""


class Script:
    """A transport answering from a per-path script of responses; records request times."""

    def __init__(self, script: dict[str, list[httpx.Response]]) -> None:
        self.script = script
        self.times: dict[str, list[float]] = {}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.times.setdefault(path, []).append(trio.current_time())
        answers = self.script[path]
        return answers.pop(0) if len(answers) > 1 else answers[0]


def make(script: dict[str, list[httpx.Response]], config: str = CONFIG) -> tuple[Built, Script]:
    transport = Script(script)
    built = build_app(config, httpx.MockTransport(transport))
    for dest in built.state.runtime.destinations.values():
        dest.rand = lambda: 1.0  # the top of every jitter range: exact, predictable delays
    return built, transport


async def post(built: Built, path: str, body: bytes = SINGLE) -> tuple[int, Any, Any]:
    response = await built.app.test_client().post(path, data=body)
    return response.status_code, await response.get_json(), response.headers


async def test_backoff_is_exponential_capped_and_exact(autojump_clock: trio.abc.Clock) -> None:
    built, script = make(
        {
            "/hook": [
                httpx.Response(503),
                httpx.Response(502),
                httpx.Response(500),
                httpx.Response(200),
            ]
        }
    )
    start = trio.current_time()
    code, body, _ = await post(built, "/webhook/hook")
    assert code == 200, body
    # 1s, 2s, then 4s capped at max_delay 3s.
    assert [t - start for t in script.times["/hook"]] == [0, 1, 3, 6]
    assert built.sample("gateway_delivery_retries_total", destination="hook") == 3
    assert built.sample("gateway_deliveries_total", destination="hook", outcome="success") == 1


async def test_full_jitter_uses_the_random_source() -> None:
    policy = RetryPolicy(max_attempts=5, initial_delay_s=1.0, max_delay_s=10.0, multiplier=3.0)
    assert policy.backoff_s(1, lambda: 0.5) == 0.5
    assert policy.backoff_s(3, lambda: 0.5) == 4.5
    assert policy.backoff_s(50, lambda: 0.25) == 2.5
    assert policy.backoff_s(2, lambda: 0.0) == 0.0


async def test_retry_after_header_and_slack_body_are_honoured_and_capped(
    autojump_clock: trio.abc.Clock,
) -> None:
    built, script = make(
        {
            "/hook": [
                httpx.Response(429, headers={"Retry-After": "2"}),
                httpx.Response(429, headers={"Retry-After": "120"}),  # capped at max_delay 3s
                httpx.Response(429, json={"ok": False, "retry_after": 1}),
                httpx.Response(200),
            ]
        }
    )
    start = trio.current_time()
    code, _, _ = await post(built, "/webhook/hook")
    assert code == 200
    assert [t - start for t in script.times["/hook"]] == [0, 2, 5, 6]


def test_retry_after_parses_seconds_http_dates_and_json() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    clock = now.timestamp
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": "7"}), now=clock) == 7
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": later}), now=clock) == 30
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": "soon"}), now=clock) is None
    assert retry_after_s(httpx.Response(429, json={"retry_after": 4}), now=clock) == 4
    assert retry_after_s(httpx.Response(429, json={"retry_after": True}), now=clock) is None
    assert retry_after_s(httpx.Response(503, text="{"), now=clock) is None


async def test_other_4xx_is_never_retried(autojump_clock: trio.abc.Clock) -> None:
    built, script = make({"/hook": [httpx.Response(400, text="invalid_payload")]})
    code, body, _ = await post(built, "/webhook/hook")
    assert code == 502  # Alertmanager retries later: a fixed template may then succeed
    assert body["error"] == "not delivered: HTTP 400: invalid_payload"
    assert len(script.times["/hook"]) == 1
    assert built.sample("gateway_delivery_retries_total", destination="hook") is None


async def test_no_retry_starts_that_cannot_finish_before_the_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    # timeout 5s, delays 2s then 4s: attempts at 0 and 2; one at 6 would pass the deadline,
    # so the webhook answers at 2s with the destination's own error, not a timeout.
    built, script = make({"/short": [httpx.Response(503, text="busy")]})
    start = trio.current_time()
    code, body, _ = await post(built, "/webhook/short")
    assert code == 502
    assert body["error"] == "not delivered: HTTP 503: busy"
    assert [t - start for t in script.times["/short"]] == [0, 2]
    assert trio.current_time() - start == 2


async def test_a_200_with_an_error_body_is_a_failure_and_retried(
    autojump_clock: trio.abc.Clock,
) -> None:
    built, script = make(
        {
            "/teams": [
                httpx.Response(200, text="Webhook message delivery failed"),
                httpx.Response(200, text="1"),
            ],
            "/slack": [httpx.Response(200, json={"ok": False, "error": "x"})],
        }
    )
    code, _, _ = await post(built, "/webhook/teams")
    assert code == 200
    assert len(script.times["/teams"]) == 2
    code, body, _ = await post(built, "/webhook/slack")
    assert code == 502
    assert body["error"] == "not delivered: HTTP 200 but body has ok=False, expected True"
    assert len(script.times["/slack"]) == 4


async def test_connection_errors_are_retried(autojump_clock: trio.abc.Clock) -> None:
    calls = 0

    async def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    built = build_app(CONFIG, httpx.MockTransport(flaky))
    code, _, _ = await post(built, "/webhook/hook")
    assert code == 200
    assert calls == 3


def test_retry_config_errors_name_the_key() -> None:
    bad = CONFIG.replace("max_attempts: 10", "max_attempts: 0")
    with pytest.raises(ConfigError) as info:
        config.load_text(bad, environ={})
    assert "destinations[1].retry.max_attempts: expected int >= 1, got 0" in str(info.value)


def test_inconsistent_delivery_settings_are_config_errors() -> None:
    bad = CONFIG.replace("max_delay: 3s", "max_delay: 100ms").replace(
        'success_body: {contains: "1"}', "success_body: {}"
    )
    with pytest.raises(ConfigError) as info:
        config.load_text(bad, environ={})
    assert info.value.problems == [
        "defaults.retry.max_delay: must not be less than retry.initial_delay",
        "destinations[2].success_body: set contains or json_path (or remove it)",
    ]


async def test_an_error_that_echoes_a_secret_is_masked_in_the_answer(
    autojump_clock: trio.abc.Clock,
) -> None:
    built, _ = make({"/hook": [httpx.Response(401, text="bad token t0ken-123")]})
    built.state.runtime.secrets = frozenset({"t0ken-123"})  # as if from ${env:...}
    code, body, _ = await post(built, "/webhook/hook")
    assert code == 502
    assert body["error"] == "not delivered: HTTP 401: bad token ***"
