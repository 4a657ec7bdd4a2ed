"""The admin API against the real daemon (in-process, real sockets): destinations, info,
config validation, reload — and no secret from the config in any answer, log line or metric."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client import CollectorRegistry

from gateway.api import show_url, validate_text
from gateway.daemon import Daemon
from gateway.logs import Logger
from gateway.metrics import Metrics
from support.sink import Behaviour, Sink

GROUP = (Path(__file__).parent / "data" / "firing-group-unicode.json").read_bytes()
GUARD_S = 30
ADMIN = {"Authorization": "Bearer admin-inline-secret-0001"}

# Every one of these must never be seen outside the process.
ENV_SECRETS = {
    "GW_URL_TOKEN": "env-url-token-s3cr3t-aaaa",
    "GW_HEADER": "env-header-s3cr3t-bbbb",
    "GW_PASS": "env-basic-pass-s3cr3t-cccc",
    "GW_PROXY_PASS": "env-proxy-pass-dddd",
}
INLINE_SECRETS = [
    "admin-inline-secret-0001",
    "inline-webhook-token-0002",
    "inline-url-pass-0003",
    "inline-path-token-0004",
    "inline-query-token-0005",
    "inline-api-key-0006",
    "inline-team-token-0007",
]


def secret_config(sink: Sink) -> str:
    host = sink.url.removeprefix("http://")
    return f"""
server:
  address: "127.0.0.1:0"
  admin: {{bearer_tokens: [admin-inline-secret-0001]}}
  auth: {{username: am, password: "${{env:GW_PASS}}", bearer_tokens: [inline-webhook-token-0002]}}
destinations:
  - name: env-secrets
    url: "{sink.url}/hook/${{env:GW_URL_TOKEN}}?token=${{env:GW_URL_TOKEN}}"
    headers: {{Authorization: "Bearer ${{env:GW_HEADER}}", X-Team: ops}}
  - name: inline-secrets
    url: "http://user:inline-url-pass-0003@{host}/services/inline-path-token-0004?api_key=inline-query-token-0005"
    headers: {{X-Api-Key: inline-api-key-0006}}
    auth: {{bearer_tokens: [inline-team-token-0007]}}
  - name: proxied
    url: "https://example.invalid/x"
    proxy_url: "http://proxyuser:${{env:GW_PROXY_PASS}}@127.0.0.1:9/"
    enabled: false
"""


@asynccontextmanager
async def running(
    tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Daemon, httpx.AsyncClient, Path]]:
    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    log = tmp_path / "log.txt"
    with log.open("w") as stream, trio.fail_after(GUARD_S):
        daemon = Daemon(
            str(path),
            logger=Logger(stream=stream, journal=False, level="debug"),
            metrics=Metrics(CollectorRegistry()),
        )
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(daemon.run)
            async with httpx.AsyncClient(base_url=binds[0], trust_env=False) as client:
                yield daemon, client, log
            daemon.stop("test over")


async def test_no_secret_appears_in_any_answer_log_line_or_metric(
    sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink.behave("/services", Behaviour(status=500, body=b"boom"))
    seen: list[str] = []
    async with running(tmp_path, secret_config(sink), monkeypatch) as (_daemon, client, log):
        env_auth = httpx.BasicAuth("am", ENV_SECRETS["GW_PASS"])
        ok = await client.post("/webhook/env-secrets", content=GROUP, auth=env_auth)
        assert ok.status_code == 200, ok.text
        team = {"Authorization": "Bearer inline-team-token-0007"}
        failed = await client.post("/webhook/inline-secrets", content=GROUP, headers=team)
        assert failed.status_code == 502
        seen += [ok.text, failed.text]
        wrong = await client.post(
            "/webhook/env-secrets", content=GROUP, headers={"Authorization": "Bearer nope"}
        )
        seen.append(wrong.text)
        for path in ("/api/v1/destinations", "/api/v1/info", "/metrics", "/health"):
            answer = await client.get(path, headers=ADMIN)
            assert answer.status_code == 200, path
            seen.append(answer.text)
        for name in ("env-secrets", "inline-secrets", "proxied"):
            answer = await client.get(f"/api/v1/destinations/{name}", headers=ADMIN)
            seen.append(answer.text)
        for name in ("env-secrets", "inline-secrets"):  # the previews (api_preview.py)
            for path in (f"/api/v1/test/{name}", f"/api/v1/emulate/{name}"):
                answer = await client.post(path, headers=ADMIN)
                assert answer.status_code == 200, (path, answer.text)
                seen.append(answer.text)
        # A reload that fails on a value next to a secret, then one that succeeds.
        config_path = tmp_path / "gateway.yaml"
        good = config_path.read_text()
        config_path.write_text(good.replace("X-Team: ops", 'X-Team: "${env:GW_HEADER}\\n"'))
        failed_reload = await client.post("/-/reload", headers=ADMIN)
        assert failed_reload.status_code == 400
        seen.append(failed_reload.text)
        config_path.write_text(good)
        assert (await client.post("/-/reload", headers=ADMIN)).status_code == 200
        seen.append((await client.get("/api/v1/info", headers=ADMIN)).text)
        seen.append((await client.get("/metrics")).text)

        dests = (await client.get("/api/v1/destinations", headers=ADMIN)).json()["destinations"]
    seen.append(log.read_text())
    everything = "\n".join(seen)
    for secret in [*ENV_SECRETS.values(), *INLINE_SECRETS]:
        assert secret not in everything, secret
    # ...and what is shown is still useful.
    by_name = {d["name"]: d for d in dests}
    env = by_name["env-secrets"]
    assert env["url"] == f"{sink.url}/***"
    assert env["headers"]["Authorization"] == "Bearer ***"
    assert env["headers"]["X-Team"] == "ops"
    assert env["counts"]["webhooks"] == {"200": 1.0, "401": 1.0}
    assert env["counts"]["deliveries"] == {"success": 1.0}
    inline = by_name["inline-secrets"]
    assert inline["url"] == f"http://***@{sink.url.removeprefix('http://')}/***"
    assert inline["headers"]["X-Api-Key"] == "***"
    assert inline["auth"] == {"basic": False, "bearer_tokens": 1}
    assert inline["counts"]["webhooks"] == {"502": 1.0}
    assert by_name["proxied"]["proxy_url"] == "http://***@127.0.0.1:9/"
    # The failed reload named the problem, without the value.
    assert "destinations[0].headers.X-Team: value must not contain CR, LF or NUL" in everything


async def test_info_reports_config_hash_uptime_and_last_reload(
    sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(tmp_path, secret_config(sink), monkeypatch) as (_daemon, client, _):
        info = (await client.get("/api/v1/info", headers=ADMIN)).json()
        config_path = tmp_path / "gateway.yaml"
        assert info["config"]["path"] == str(config_path)
        assert info["config"]["sha256"] == hashlib.sha256(config_path.read_bytes()).hexdigest()
        assert info["version"] == "0.1.0"
        assert info["uptime_s"] >= 0
        assert info["ready"] is True
        assert info["last_reload"]["result"] == "success"
        config_path.write_text("server: {address: nonsense}\n")
        answer = await client.post("/-/reload", headers=ADMIN)
        assert answer.status_code == 400
        assert answer.json()["errors"] == [
            "server.address: expected host:port or :port, got 'nonsense'"
        ]
        info = (await client.get("/api/v1/info", headers=ADMIN)).json()
        assert info["last_reload"]["result"] == "failure"
        assert "server.address" in info["last_reload"]["error"]
        # Still serving the old config: the hash did not change.
        assert info["config"]["sha256"] != hashlib.sha256(config_path.read_bytes()).hexdigest()
        missing = await client.get("/api/v1/destinations/nope", headers=ADMIN)
        assert missing.status_code == 404


async def post_validate(client: httpx.AsyncClient, text: str) -> tuple[int, Any]:
    answer = await client.post("/api/v1/config/validate", content=text, headers=ADMIN)
    return answer.status_code, answer.json()


async def test_validate_lists_every_error_with_its_path_and_reads_nothing(
    sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("file-secret-never-read")
    async with running(tmp_path, secret_config(sink), monkeypatch) as (_, client, _log):
        code, body = await post_validate(
            client,
            f"""
server: {{address: "127.0.0.1:0", read_timeout: soon}}
destinations:
  - name: a
    url: ftp://x
    method: post
  - name: b
    url: "${{env:GW_URL_TOKEN}}"
    headers: {{Authorization: "${{file:{secret_file}}}"}}
  - name: c
    url: http://x/
    template: "{{{{#alerts}}}}unclosed"
""",
        )
        assert code == 422
        assert body["valid"] is False
        paths = [e["path"] for e in body["errors"]]
        assert paths == [
            "server.read_timeout",
            "destinations[0].url",
            "destinations[0].method",
            "destinations[2].template",
        ]
        # ${env:..} and ${file:..} were not resolved: listed, never read or judged.
        assert body["unresolved"] == [
            "destinations[1].url",
            "destinations[1].headers.Authorization",
        ]
        assert "file-secret-never-read" not in json.dumps(body)
        assert ENV_SECRETS["GW_URL_TOKEN"] not in json.dumps(body)

        code, body = await post_validate(
            client, json.dumps({"destinations": [{"name": "j", "url": "http://x/"}]})
        )
        assert (code, body) == (200, {"valid": True, "errors": [], "unresolved": []})
        code, body = await post_validate(client, "destinations: [\n")
        assert code == 422
        assert body["errors"][0]["message"].startswith("invalid YAML at line")


def test_validate_text_treats_a_config_with_only_references_as_valid() -> None:
    valid, errors, unresolved = validate_text(
        "destinations: [{name: s, url: '${env:SLACK_URL}', headers: {X: '${cred:tok}'}}]"
    )
    assert (valid, errors) == (True, [])
    assert unresolved == ["destinations[0].url", "destinations[0].headers.X"]


def test_show_url_keeps_only_scheme_and_host() -> None:
    secrets = frozenset({"s3cr3t"})
    assert show_url("https://hooks.slack.com/services/T0/B0/XyZ", secrets) == (
        "https://hooks.slack.com/***"
    )
    assert show_url("http://u:p@h:8080/", secrets) == "http://***@h:8080/"
    assert show_url("http://h", secrets) == "http://h"
    assert show_url("http://s3cr3t.example/", secrets) == "http://***.example/"


async def test_destinations_show_the_circuit_breaker(autojump_clock: trio.abc.Clock) -> None:
    from support.app import build_app

    async def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    built = build_app(
        """
server: {admin: {bearer_tokens: [admin-inline-secret-0001]}}
defaults:
  retry: {max_attempts: 1}
  breaker: {failure_threshold: 2, open_duration: 10s}
destinations:
  - {name: down, url: "http://sink.test/down"}
  - {name: idle, url: "http://sink.test/idle"}
""",
        httpx.MockTransport(down),
    )
    client = built.app.test_client()
    for _ in range(2):
        assert (await client.post("/webhook/down", data=GROUP)).status_code == 502
    await trio.sleep(4)
    answer = await client.get("/api/v1/destinations", headers=ADMIN)
    by_name = {d["name"]: d for d in (await answer.get_json())["destinations"]}
    assert by_name["down"]["breaker"] == {
        "state": "open",
        "consecutive_failures": 2,
        "retry_after_s": 6.0,
    }
    assert "breaker" not in by_name["idle"]  # no traffic yet: no breaker to show
