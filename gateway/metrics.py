"""metrics.py: every Prometheus metric of the gateway, on an injected registry.

One ``Metrics`` object per daemon; tests make their own ``CollectorRegistry``. Destination
names are bounded by the config, so they are safe label values; webhooks for names the
config does not know are counted under ``destination="_unknown"`` so a client cannot grow
the label set.
Must not: read config files or talk HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .templates import CacheStats

if TYPE_CHECKING:
    from .spool import SpoolStats

UNKNOWN_DESTINATION = "_unknown"
# Webhook latencies span a fast log sink (~1 ms) to retried slow APIs (tens of seconds).
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RENDER_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


class _TemplateCacheCollector(Collector):
    def __init__(self, stats: Callable[[], CacheStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        yield CounterMetricFamily(
            "gateway_template_cache_hits", "Template cache lookups that found tokens.", s.hits
        )
        yield CounterMetricFamily(
            "gateway_template_cache_misses", "Template cache lookups that compiled.", s.misses
        )
        yield CounterMetricFamily(
            "gateway_template_cache_evictions", "Entries dropped by size or TTL.", s.evictions
        )
        yield GaugeMetricFamily("gateway_template_cache_size", "Entries in the cache.", s.size)


class _SpoolCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, SpoolStats]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "gateway_spool_depth", "Notifications waiting in the spool.", labels=["destination"]
        )
        oldest = GaugeMetricFamily(
            "gateway_spool_oldest_age_seconds",
            "Age of the oldest notification waiting in the spool.",
            labels=["destination"],
        )
        dead = GaugeMetricFamily(
            "gateway_dead_letters_stored", "Dead letters stored now.", labels=["destination"]
        )
        for name, stat in sorted(self._stats().items()):
            depth.add_metric([name], stat.depth)
            oldest.add_metric([name], stat.oldest_age_s)
            dead.add_metric([name], stat.dead)
        yield depth
        yield oldest
        yield dead


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.webhooks = Counter(
            "gateway_webhooks",
            "Webhooks answered, by destination and HTTP status code.",
            ["destination", "code"],
            registry=registry,
        )
        self.alerts = Counter(
            "gateway_alerts",
            "Alerts received in webhooks, by destination and alert status.",
            ["destination", "status"],
            registry=registry,
        )
        self.deliveries = Counter(
            "gateway_deliveries",
            "Outbound requests (one per split part), by destination and outcome "
            "(success, failure, timeout, invalid).",
            ["destination", "outcome"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "gateway_webhook_duration_seconds",
            "Time from webhook received to answer, by destination.",
            ["destination"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.render_seconds = Histogram(
            "gateway_render_duration_seconds",
            "Template render and body encoding time per part, by destination.",
            ["destination"],
            buckets=RENDER_BUCKETS_S,
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "gateway_delivery_duration_seconds",
            "Outbound request time per part, by destination.",
            ["destination"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.in_flight = Gauge(
            "gateway_webhooks_in_flight", "Webhooks being processed now.", registry=registry
        )
        self.reloads = Counter(
            "gateway_config_reloads",
            "Configuration reloads by result (success, failure).",
            ["result"],
            registry=registry,
        )
        self.last_reload_success = Gauge(
            "gateway_config_last_reload_successful",
            "1 if the last configuration load or reload succeeded.",
            registry=registry,
        )
        self.limit_actions = Counter(
            "gateway_limit_actions",
            "Notifications over a destination's size limits, by action: split (sent as more "
            "parts than configured; counted once per notification) or truncate (per part cut).",
            ["destination", "action"],
            registry=registry,
        )
        self.retries = Counter(
            "gateway_delivery_retries",
            "Attempts repeated after a transient failure, by destination.",
            ["destination"],
            registry=registry,
        )
        self.duplicates = Counter(
            "gateway_duplicate_parts",
            "Parts not sent because they had been delivered before (dedup), by destination.",
            ["destination"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "gateway_breaker_state",
            "Circuit breaker state by destination: 0 closed, 1 open, 2 half_open.",
            ["destination"],
            registry=registry,
        )
        self.breaker_transitions = Counter(
            "gateway_breaker_transitions",
            "Circuit breaker state changes, by destination and new state.",
            ["destination", "state"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "gateway_dead_letters",
            "Spooled notifications moved to the dead-letter table, by destination.",
            ["destination"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "gateway_auth_failures",
            "Requests refused for missing or wrong credentials, by scope (webhook, admin).",
            ["scope"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "gateway_requests_limited",
            "Requests refused by a limit, by reason (client, destination, concurrency, lockout).",
            ["reason"],
            registry=registry,
        )
        self.lockouts = Counter(
            "gateway_auth_lockouts",
            "Client addresses locked out after repeated authentication failures.",
            registry=registry,
        )
        Info("gateway_build", "Version of the gateway.", registry=registry).info(
            {"version": __version__}
        )
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)

    def watch_spool(self, stats: Callable[[], dict[str, SpoolStats]]) -> None:
        self.registry.register(_SpoolCollector(stats))

    def watch_template_cache(self, stats: Callable[[], CacheStats]) -> None:
        self.registry.register(_TemplateCacheCollector(stats))
