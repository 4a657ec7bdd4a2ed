"""POST /api/v1/test/<destination> and /api/v1/emulate/<destination>, and the render command:
what would be sent, per part, with secrets masked — and one real send on request."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import trio

from support.app import Built, build_app
from support.sink import Behaviour, Sink

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
RESOLVED = (DATA / "resolved-single.json").read_bytes()
# The preview routes live under /api/, so they need the admin credentials (auth.py).
ADMIN = {"Authorization": "Bearer preview-admin-token"}
CONFIG = """
server: {admin: {bearer_tokens: [preview-admin-token]}}
destinations:
  - name: og
    preset: opsgenie
    params: {api_key: "${env:OG_KEY:-s3cret-genie-key}"}
  - name: split
    url: "http://sink.test/x?token=abcd1234"
    split_alerts: true
    template: '{"fp": "{{alert.fingerprint}}"}'
"""


def never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"preview sent a request to {request.url}")


def make(config: str = CONFIG, transport: httpx.AsyncBaseTransport | None = None) -> Built:
    return build_app(config, transport or httpx.MockTransport(never_called))


async def post(built: Built, path: str, body: bytes = b"") -> tuple[int, Any]:
    response = await built.app.test_client().post(path, data=body, headers=ADMIN)
    return response.status_code, await response.get_json()


async def test_bare_payload_shows_each_request_masked_and_sends_nothing() -> None:
    code, body = await post(make(), "/api/v1/test/og", RESOLVED)
    assert code == 200
    (req,) = body["requests"]
    assert req["method"] == "POST"
    assert req["url"].startswith("https://api.opsgenie.com/v2/alerts/")
    assert req["url"].endswith("/close?identifierType=alias")
    assert req["headers"]["Authorization"] == "GenieKey ***"
    assert json.loads(req["body"])["note"].startswith("Resolved: ")
    assert "s3cret" not in json.dumps(body)


async def test_webhook_data_wrapper_and_empty_body_use_a_payload_and_a_sample() -> None:
    built = make()
    wrapped = json.dumps({"webhook_data": json.loads(RESOLVED)}).encode()
    assert (await post(built, "/api/v1/test/og", wrapped))[1] == (
        await post(built, "/api/v1/test/og", RESOLVED)
    )[1]
    code, body = await post(built, "/api/v1/test/split")
    assert code == 200 and body["alerts_count"] == 3  # the built-in mixed-status sample
    assert [r["part"] for r in body["requests"]] == [1, 2, 3]
    assert body["requests"][0]["url"] == "http://sink.test/x?token=***"


async def test_bad_input_answers_like_the_webhook() -> None:
    built = make()
    assert (await post(built, "/api/v1/test/nope", RESOLVED))[0] == 404
    code, body = await post(built, "/api/v1/test/og", b'{"version": "4"}')
    assert code == 400 and body["error"].startswith("groupKey")


async def test_emulate_dry_run_by_default_then_one_real_send(sink: Sink) -> None:
    sink.behave(
        "/",
        Behaviour(
            status=202,
            body=b'{"result": "Request will be processed"}',
            headers={"X-Request-Id": "r-1"},
        ),
    )
    config = CONFIG.replace("http://sink.test", sink.url)
    built = build_app(config)
    try:
        with trio.fail_after(10):
            code, body = await post(built, "/api/v1/emulate/split")
            assert code == 200 and body["dry_run"] is True and len(body["requests"]) == 3
            assert sink.received == []
            code, body = await post(built, "/api/v1/emulate/split?dry_run=false")
    finally:
        await built.state.runtime.aclose()
    assert code == 200 and body["dry_run"] is False
    assert body["sent"]["status_code"] == 202 and body["sent"]["outcome"] == "success"
    assert body["sent"]["headers"]["x-request-id"] == "r-1"
    assert "Request will be processed" in body["sent"]["body_excerpt"]
    assert len(sink.received) == 1  # one request, the first part
    assert json.loads(sink.received[0].body)["fp"] == body["requests"][0]["alerts"][0]


async def test_render_command_prints_what_the_test_endpoint_answers(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(CONFIG)
    command = [sys.executable, "-m", "gateway", "render", "--config", str(cfg), "-d", "og",
               "--payload", str(DATA / "resolved-single.json"), "--json"]  # fmt: skip
    with trio.fail_after(60):
        result = await trio.run_process(
            command,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    assert result.returncode == 0, result.stderr.decode()
    _, answer = await post(make(), "/api/v1/test/og", RESOLVED)
    assert json.loads(result.stdout) == answer


async def test_a_named_sample_and_a_template_that_breaks_on_the_payload() -> None:
    built = make(
        CONFIG
        + """  - name: raw
    url: http://sink.test/raw
    template: '{"d": "{{{commonLabels.raw}}}"}'
"""
    )
    code, body = await post(built, "/api/v1/test/split?sample=many-alerts")
    assert code == 200 and body["alerts_count"] == 60
    payload = json.loads(RESOLVED)
    payload["commonLabels"]["raw"] = 'say "hi"'
    code, body = await post(built, "/api/v1/test/raw", json.dumps(payload).encode())
    assert code == 422
    assert body["error"].startswith("destination raw: part 1/1: json output is not valid JSON")
    assert (await post(built, "/api/v1/test/split?sample=nope"))[0] == 400
