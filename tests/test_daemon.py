"""The real daemon: in-process against a real loopback sink, and as a real process for the
command line, signals (SIGTERM drain, SIGHUP reload) and logging."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client import CollectorRegistry

from gateway.daemon import Daemon
from gateway.logs import Logger
from gateway.metrics import Metrics
from support.procs import open_gateway
from support.sink import Behaviour, Sink

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
GROUP = (DATA / "firing-group-unicode.json").read_bytes()
GUARD_S = 30


def gateway_config(sink: Sink, **extra: str) -> str:
    options = "".join(f"\n    {k}: {v}" for k, v in extra.items())
    return f"""
server: {{address: "127.0.0.1:0", drain_timeout: 10s}}
destinations:
  - name: sink
    url: "{sink.url}/hook?team=ops"
    headers: {{X-Team: "ops"}}
    template: |
      {{"text": "{{{{title}}}}: {{{{#alerts}}}}{{{{summary}}}} / {{{{annotations.description}}}}; {{{{/alerts}}}}"}}{options}
"""


def expected_body() -> bytes:
    alerts = json.loads(GROUP)["alerts"]
    text = "[FIRING:3] HighLatency: " + "".join(
        f"{a['annotations'].get('summary', '')} / {a['annotations'].get('description', '')}; "
        for a in alerts
    )
    return (json.dumps({"text": text}, ensure_ascii=False) + "\n").encode()


async def test_in_process_daemon_delivers_byte_for_byte(sink: Sink, tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway_config(sink))
    log = tmp_path / "log.txt"
    with log.open("w") as stream:
        daemon = Daemon(
            str(path),
            logger=Logger(stream=stream, journal=False),
            metrics=Metrics(CollectorRegistry()),
        )
        with trio.fail_after(GUARD_S):
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(daemon.run)
                async with httpx.AsyncClient(base_url=binds[0], trust_env=False) as client:
                    response = await client.post("/webhook/sink", content=GROUP)
                    assert (await client.get("/ready")).status_code == 200
                daemon.stop("test over")
    assert response.status_code == 200, response.text
    [got] = sink.received
    assert got.method == "POST"
    assert got.path == "/hook"
    assert got.query == "team=ops"
    assert got.headers["x-team"] == "ops"
    assert got.headers["content-type"] == "application/json"
    assert got.body == expected_body()
    text = log.read_text()
    assert "msg=listening url=http://127.0.0.1:" in text
    assert "msg=delivered destination=sink" in text
    assert "msg=stopped" in text


async def test_chunked_body_over_the_limit_is_413_before_it_is_all_sent(
    sink: Sink, tmp_path: Path
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway_config(sink).replace("drain_timeout: 10s", "max_body_bytes: 1KiB"))
    daemon = Daemon(
        str(path), logger=Logger(stream=io.StringIO()), metrics=Metrics(CollectorRegistry())
    )
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"  # 64 KiB chunks, no Content-Length
    offered = 0
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(daemon.run)
            host, port = binds[0].removeprefix("http://").rsplit(":", 1)
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(
                b"POST /webhook/sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            answer = b""
            with trio.move_on_after(5):  # give up sending once the answer has arrived
                while b"\r\n\r\n" not in answer and offered < 64 * 2**20:
                    await stream.send_all(chunk)
                    offered += len(chunk)
                    with trio.move_on_after(0.001):
                        answer += await stream.receive_some()
            while b"}" not in answer:
                answer += await stream.receive_some()
            await stream.aclose()
            daemon.stop("test over")
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"error":"body: larger than max_body_bytes (1024 bytes)"' in answer
    assert offered < 64 * 2**20  # answered long before the client ran out of body
    assert sink.received == []


@pytest.mark.slow
async def test_sigterm_lets_in_flight_requests_finish(sink: Sink, tmp_path: Path) -> None:
    sink.behave("/hook", Behaviour(delay_s=1.5))
    with trio.fail_after(GUARD_S):
        async with open_gateway(tmp_path, gateway_config(sink)) as gw:
            async with httpx.AsyncClient(base_url=gw.url, trust_env=False, timeout=20) as client:
                answers: list[httpx.Response] = []

                async def post() -> None:
                    answers.append(await client.post("/webhook/sink", content=GROUP))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(post)
                    await sink.wait_for(1)  # the delivery is in flight now
                    gw.proc.send_signal(signal.SIGTERM)
            assert await gw.proc.wait() == 0
    assert answers[0].status_code == 200
    log = gw.log_text()
    assert "msg=stopping reason=SIGTERM" in log
    assert log.index("msg=delivered") < log.index("msg=stopped")


@pytest.mark.slow
async def test_sighup_reload_swaps_good_config_and_keeps_old_on_error(
    sink: Sink, tmp_path: Path
) -> None:
    with trio.fail_after(GUARD_S):
        async with open_gateway(tmp_path, gateway_config(sink)) as gw:
            config_path = tmp_path / "gateway.yaml"
            good = config_path.read_text()
            async with httpx.AsyncClient(base_url=gw.url, trust_env=False) as client:
                config_path.write_text(good + "  - name: broken\n    url: ftp://x\n")
                gw.proc.send_signal(signal.SIGHUP)
                await gw.wait_for_log("reload failed")
                assert (await client.post("/webhook/sink", content=GROUP)).status_code == 200

                config_path.write_text(good.replace("name: sink", "name: renamed"))
                gw.proc.send_signal(signal.SIGHUP)
                await gw.wait_for_log("msg=reloaded")
                assert (await client.post("/webhook/sink", content=GROUP)).status_code == 404
                assert (await client.post("/webhook/renamed", content=GROUP)).status_code == 200
                metrics = (await client.get("/metrics")).text
    assert 'gateway_config_reloads_total{result="failure"} 1.0' in metrics
    assert 'gateway_config_reloads_total{result="success"} 1.0' in metrics
    assert "destinations[1].url" in gw.log_text()


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        input=stdin.decode() if stdin else None,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """
destinations:
  - name: a
    url: http://x/
    method: post
  - name: b
    url: http://x/
    template: "{{#alerts}}unclosed"
  - name: a
    url: http://x/
    colour: red
"""
    )
    result = cli("check-config", "--config", str(bad))
    assert result.returncode == 2
    err = result.stderr
    assert (
        "destinations[0].method: expected one of GET, POST, PUT, PATCH, DELETE, got 'post'" in err
    )
    assert "destinations[2].colour: unknown key" in err
    assert "destinations[1].template: " in err
    assert "destinations[2].name: duplicate of destinations[0]" in err
    ok = cli("check-config", "--config", "config/gateway.yaml")
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout


def test_render_prints_requests_with_secrets_masked(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        """
destinations:
  - name: hook
    url: "https://user:hunter2-pass@example.test/hook?token=${env:TOKEN}"
    headers: {Authorization: "Bearer ${env:TOKEN}"}
    split_alerts: true
    batch_size: 2
    template: '{"n": {{alerts_count}}, "secret": "${env:TOKEN}"}'
"""
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "render",
            "--config",
            str(cfg),
            "--destination",
            "hook",
            "--payload",
            str(DATA / "firing-group-unicode.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO), "TOKEN": "s3cr3t-token-value"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "s3cr3t-token-value" not in out
    assert "hunter2-pass" not in out
    assert "### part 1/2: 2 alert(s)" in out and "### part 2/2: 1 alert(s)" in out
    assert "POST https://user:***@example.test/hook?token=***" in out
    assert "Authorization: Bearer ***" in out
    assert '{"n": 2, "secret": "***"}' in out


def test_help_and_version() -> None:
    help_text = cli("--help").stdout
    for word in ("check-config", "render", "SIGHUP", "/webhook/<name>", "--version"):
        assert word in help_text
    assert cli("--version").stdout.startswith("alertmanager-gateway 0.1.0")
    assert cli("run", "--help").returncode == 0


def test_bad_config_at_start_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {address: 'nonsense'}\n")
    result = cli("run", "--config", str(bad))
    assert result.returncode == 2
    assert "server.address" in result.stderr
