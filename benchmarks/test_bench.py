"""Hot-path costs, each in isolation: payload decode, template cache hit vs miss and render,
every format encoder, and the whole in-process pipeline with a mock transport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client import CollectorRegistry

from gateway import alertmanager, formats, templates
from gateway.dispatch import dispatch
from gateway.logs import Logger
from gateway.metrics import Metrics
from support.app import build_app

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
PAYLOADS = {
    name: (DATA / f"{file}.json").read_bytes()
    for name, file in [
        ("single", "firing-single"),
        ("group", "firing-group-unicode"),
        ("storm", "storm-250-alerts"),
    ]
}
FORMATS = ["json", "form", "query", "xml", "text"]


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_decode_msgspec(benchmark: Any, payload: str) -> None:
    benchmark.group = f"decode {payload}"
    benchmark(alertmanager.decode, PAYLOADS[payload])


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_decode_stdlib_json(benchmark: Any, payload: str) -> None:
    benchmark.group = f"decode {payload}"
    benchmark(json.loads, PAYLOADS[payload])


def test_template_cache_hit(benchmark: Any) -> None:
    benchmark.group = "template lookup"
    cache = templates.TemplateCache(max_size=16, ttl_s=3600.0)
    source = templates.DEFAULT_TEMPLATES["json"]
    cache.get(source, where="bench")
    benchmark(cache.get, source, where="bench")


def test_template_cache_miss_compiles(benchmark: Any) -> None:
    benchmark.group = "template lookup"
    source = templates.DEFAULT_TEMPLATES["json"]

    def miss() -> None:
        templates.TemplateCache(max_size=16, ttl_s=3600.0).get(source, where="bench")

    benchmark(miss)


def _view(payload: str) -> object:
    decoded = alertmanager.decode(PAYLOADS[payload])
    return templates.build_view(decoded, tuple(decoded.alerts), part_index=0, part_count=1)


@pytest.mark.parametrize("payload", ["single", "group"])
def test_build_view(benchmark: Any, payload: str) -> None:
    benchmark.group = "view + render"
    decoded = alertmanager.decode(PAYLOADS[payload])
    alerts = tuple(decoded.alerts)
    benchmark(templates.build_view, decoded, alerts, part_index=0, part_count=1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_render_cached_tokens(benchmark: Any, fmt: str) -> None:
    benchmark.group = "view + render"
    tokens = templates.TemplateCache(max_size=16, ttl_s=3600.0).get(
        templates.DEFAULT_TEMPLATES[fmt], where="bench"
    )
    benchmark(templates.render, tokens, _view("group"), fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode(benchmark: Any, fmt: str) -> None:
    benchmark.group = "encode"
    tokens = templates.TemplateCache(max_size=16, ttl_s=3600.0).get(
        templates.DEFAULT_TEMPLATES[fmt], where="bench"
    )
    rendered = templates.render(tokens, _view("group"), fmt)
    method = "GET" if fmt == "query" else "POST"
    benchmark(formats.encode, fmt, rendered, method=method, url="http://127.0.0.1/x")


PIPELINE_YAML = """
destinations:
  - name: mock
    url: http://127.0.0.1:9/hook
    split_alerts: {split}
    parallel_requests: {parallel}
"""
WEBHOOKS_PER_ROUND = 100


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ok")


@pytest.mark.parametrize("payload", ["single", "group", "storm"])
def test_pipeline_decode_render_send(benchmark: Any, payload: str) -> None:
    """decode -> template lookup -> dispatch (render, encode, send via MockTransport), for
    100 webhooks per round (storm: 5): divide the time by that."""
    benchmark.group = "pipeline per round (no HTTP server)"
    split = payload == "storm"
    built = build_app(
        PIPELINE_YAML.format(split=str(split).lower(), parallel=10 if split else 0),
        httpx.MockTransport(_ok),
    )
    rt = built.state.runtime
    dest = rt.destination("mock")
    metrics = Metrics(CollectorRegistry())
    logger = Logger(level="warning", journal=False)
    body = PAYLOADS[payload]
    per_round = 5 if split else WEBHOOKS_PER_ROUND
    benchmark.extra_info["webhooks_per_round"] = per_round

    async def rounds() -> None:
        for _ in range(per_round):
            decoded = alertmanager.decode(body)
            tokens = rt.templates.get(dest.template, where=dest.where)
            result = await dispatch(dest, decoded, tokens=tokens, metrics=metrics, logger=logger)
            assert result.ok

    benchmark(trio.run, rounds)
