"""app.py: build the gateway's pieces in-process for tests — a runtime from YAML text, the
Quart app around it, with an injected httpx transport and a fresh metrics registry — or
the problems a config that must not build is refused with."""

from __future__ import annotations

import io
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry
from quart_trio import QuartTrio

from gateway import config, runtime
from gateway.errors import ConfigError
from gateway.logs import Logger
from gateway.metrics import Metrics
from gateway.web import AppState, create_app


@dataclass
class Built:
    app: QuartTrio
    state: AppState
    registry: CollectorRegistry
    log: io.StringIO

    def log_text(self) -> str:
        return self.log.getvalue()

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def build_app(
    yaml_text: str,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    environ: dict[str, str] | None = None,
) -> Built:
    loaded = config.load_text(yaml_text, environ=environ or {})
    rt = runtime.build(loaded, transport=transport)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.watch_template_cache(rt.templates.statistics)
    log = io.StringIO()
    logger = Logger(stream=log, level="debug", journal=False)
    logger.configure(secrets=loaded.secrets)
    state = AppState(runtime=rt, metrics=metrics, logger=logger, ready=True)
    return Built(create_app(state), state, registry, log)


def build_problems(yaml_text: str) -> list[str]:
    """The problems `runtime.build` reports for this config (no environment variables, no
    HTTP clients); fails the test if it builds without a ConfigError."""
    with pytest.raises(ConfigError) as info:
        runtime.build(config.load_text(yaml_text, environ={}), clients=False)
    return info.value.problems


def build_recording_app(yaml_text: str) -> tuple[Built, list[httpx.Request]]:
    """`build_app` with a mock transport that answers every outbound request 200 (no body)
    and records it: returns the app and the list of requests its destinations were sent."""
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    return build_app(yaml_text, httpx.MockTransport(record)), sent
