"""The webhook's answers to Alertmanager, in-process: the app with a mock outbound transport.

Every status code here is a promise to Alertmanager: 2xx only when delivered, 4xx only when
retrying cannot help, 5xx otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import trio

from support.app import Built, build_app

DATA = Path(__file__).parent / "data"
GROUP = (DATA / "firing-group-unicode.json").read_bytes()
FINGERPRINTS = [a["fingerprint"] for a in json.loads(GROUP)["alerts"]]

CONFIG = """
server: {address: "127.0.0.1:0", max_body_bytes: 64KiB}
destinations:
  - name: hook
    url: http://sink.test/hook
    template: '{"title": "{{title}}", "n": {{alerts_count}}}'
  - name: split
    url: http://sink.test/split
    split_alerts: true
    template: '{"fp": "{{alert.fingerprint}}", "summary": "{{alert.summary}}"}'
  - name: slow
    url: http://sink.test/slow
    timeout: 2s
  - name: paused
    url: http://sink.test/off
    enabled: false
  - name: raw
    url: http://sink.test/raw
    template: '{"d": "{{{commonLabels.raw}}}"}'
"""


class Recorder:
    """A mock transport that records requests and fails the fingerprints it is told to."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.fail_fingerprints: set[str] = set()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/slow":
            await trio.sleep(60)
        body = request.content.decode()
        if any(fp in body for fp in self.fail_fingerprints):
            return httpx.Response(503, text="upstream busy")
        return httpx.Response(200, text="ok")


def make(config: str = CONFIG) -> tuple[Built, Recorder]:
    rec = Recorder()
    return build_app(config, httpx.MockTransport(rec)), rec


async def post(built: Built, path: str, body: bytes = GROUP, method: str = "POST") -> Any:
    client = built.app.test_client()
    return await client.open(path, method=method, data=body)


async def test_delivered_is_200_with_summary_and_one_request() -> None:
    built, rec = make()
    response = await post(built, "/webhook/hook")
    body = await response.get_json()
    assert response.status_code == 200
    assert body["status"] == "success"
    assert body["destination"] == "hook"
    assert body["alerts_count"] == 3
    assert body["group_key"] == json.loads(GROUP)["groupKey"]
    assert isinstance(body["processing_ms"], float)
    assert "results" not in body
    assert len(rec.requests) == 1
    sent = rec.requests[0]
    assert json.loads(sent.content) == {"title": "[FIRING:3] HighLatency", "n": 3}
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"].startswith("alertmanager-gateway/")
    assert built.sample("gateway_webhooks_total", destination="hook", code="200") == 1
    assert built.sample("gateway_alerts_total", destination="hook", status="firing") == 3
    assert built.sample("gateway_deliveries_total", destination="hook", outcome="success") == 1
    assert "msg=delivered destination=hook" in built.log_text()


async def test_split_reports_every_part() -> None:
    built, rec = make()
    response = await post(built, "/webhook/split")
    body = await response.get_json()
    assert response.status_code == 200
    assert body["mode"] == "split"
    assert [r["alerts"] for r in body["results"]] == [[fp] for fp in FINGERPRINTS]
    assert body["summary"] == {"total": 3, "successful": 3, "failed": 0}
    assert sorted(json.loads(r.content)["fp"] for r in rec.requests) == sorted(FINGERPRINTS)
    # The annotation's quotes, <, & and newline arrive intact inside valid JSON.
    summaries = {json.loads(r.content)["summary"] for r in rec.requests}
    assert "P99 latency above 2s on api-1" in summaries


async def test_partial_split_failure_is_502_naming_the_failed_part(
    autojump_clock: trio.abc.Clock,
) -> None:
    built, rec = make()
    rec.fail_fingerprints = {FINGERPRINTS[1]}
    response = await post(built, "/webhook/split")
    body = await response.get_json()
    assert response.status_code == 502
    assert body["status"] == "error"
    assert body["summary"] == {"total": 3, "successful": 2, "failed": 1}
    failed = [r for r in body["results"] if r["status"] == "error"]
    assert failed == [
        {
            "alerts": [FINGERPRINTS[1]],
            "status": "error",
            "response_code": 503,
            "error": "HTTP 503: upstream busy",
            "attempts": 3,  # the default retry policy, all within the deadline
        }
    ]
    assert "1 of 3 part(s) not delivered" in body["error"]
    assert built.sample("gateway_webhooks_total", destination="split", code="502") == 1
    assert built.sample("gateway_deliveries_total", destination="split", outcome="failure") == 1


async def test_deadline_passed_is_504(autojump_clock: trio.abc.Clock) -> None:
    built, _ = make()
    started = trio.current_time()
    response = await post(built, "/webhook/slow")
    body = await response.get_json()
    assert response.status_code == 504
    assert body["error"] == "not delivered: delivery deadline of 2s passed"
    assert trio.current_time() - started == 2.0
    assert built.sample("gateway_deliveries_total", destination="slow", outcome="timeout") == 1


async def test_template_output_that_is_not_json_sends_nothing() -> None:
    # {{{x}}} is unescaped: fine for the built-in samples (checked at load), but this
    # payload's label carries a quote, so the body would not be JSON.
    built, rec = make()
    data = json.loads(GROUP)
    data["commonLabels"]["raw"] = 'say "hi"'
    response = await post(built, "/webhook/raw", json.dumps(data).encode())
    body = await response.get_json()
    assert response.status_code == 500
    assert body["error"].startswith("destination raw: part 1/1: ")
    assert rec.requests == []


async def test_invalid_payload_is_400_naming_the_field() -> None:
    built, rec = make()
    data = json.loads(GROUP)
    del data["alerts"][1]["fingerprint"]
    response = await post(built, "/webhook/hook", json.dumps(data).encode())
    assert response.status_code == 400
    assert await response.get_json() == {
        "status": "error",
        "error": "alerts[1].fingerprint: missing",
    }
    response = await post(built, "/webhook/hook", b"{not json")
    assert response.status_code == 400
    assert (await response.get_json())["error"].startswith("body: malformed JSON")
    assert rec.requests == []


async def test_unknown_and_disabled_destinations_are_404() -> None:
    built, rec = make()
    for name in ("nope", "paused"):
        response = await post(built, f"/webhook/{name}")
        assert response.status_code == 404
        assert (await response.get_json())["error"] == (
            f"destination '{name}': not configured or disabled"
        )
    assert rec.requests == []
    assert built.sample("gateway_webhooks_total", destination="_unknown", code="404") == 1


async def test_other_methods_are_405_with_allow() -> None:
    built, _ = make()
    response = await post(built, "/webhook/hook", method="GET")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert (await response.get_json())["status"] == "error"


async def test_body_over_the_limit_is_413() -> None:
    built, rec = make()
    response = await post(built, "/webhook/hook", b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert (await response.get_json())["error"] == (
        "body: larger than max_body_bytes (65536 bytes)"
    )
    assert rec.requests == []


async def test_draining_answers_503_with_retry_after() -> None:
    built, rec = make()
    built.state.draining = True
    response = await post(built, "/webhook/hook")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    ready = await built.app.test_client().get("/ready")
    assert ready.status_code == 503
    assert rec.requests == []


async def test_health_ready_metrics() -> None:
    built, _ = make()
    client = built.app.test_client()
    for path in ("/health", "/-/healthy"):
        body = await (await client.get(path)).get_json()
        assert body["status"] == "ok"
        assert body["destinations"] == 4  # "paused" is disabled
    for path in ("/ready", "/-/ready"):
        assert (await client.get(path)).status_code == 200
    await post(built, "/webhook/hook")
    text = (await (await client.get("/metrics")).get_data()).decode()
    assert 'gateway_webhooks_total{code="200",destination="hook"} 1.0' in text
    assert "gateway_template_cache_hits_total" in text
    assert "gateway_build_info" in text
    assert "process_resident_memory_bytes" in text
    missing = await client.get("/nothing")
    assert missing.status_code == 404
    assert (await missing.get_json())["status"] == "error"
