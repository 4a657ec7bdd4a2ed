"""dispatch.py: split one notification into parts and send them — sequentially, in
parallel, in batches, or batches in parallel, exactly as the Go gateway's
``split_alerts`` / ``batch_size`` / ``parallel_requests`` describe.

Every part is rendered and encoded *before* anything is sent, so a template that produces
an invalid body sends nothing. Parts run inside the destination's deadline in a local
nursery that joins before ``dispatch`` returns; parallelism is bounded by a local
``CapacityLimiter(parallel_requests)`` and by the destination's pool limiter. The result
says, per part, which alerts it carried and what happened.
With a ``Dedup`` memory, a part delivered before (within its window) is not sent again and
is reported as a success with ``duplicate=True``.
Must not: retry (delivery policy) or know about HTTP answers to Alertmanager (web.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import msgspec
import trio

from . import formats, limits, templates
from .dedup import part_key
from .delivery import Attempt, Request, deliver
from .errors import TemplateError

if TYPE_CHECKING:
    from .alertmanager import Alert, Payload
    from .config import DestinationConfig
    from .dedup import Dedup
    from .logs import Logger
    from .metrics import Metrics
    from .runtime import Destination

Mode = Literal["single", "sequential", "parallel", "batch", "batch-parallel"]


class PartResult(msgspec.Struct, frozen=True):
    alerts: tuple[str, ...]  # fingerprints
    status: Literal["success", "error"]
    outcome: str
    response_code: int | None = None
    error: str | None = None
    retryable: bool = True  # False: the destination refused it (a 4xx other than 429)
    duplicate: bool = False  # delivered before; not sent again
    attempts: int = 1
    retry_after_s: float | None = None  # what the destination last asked us to wait


class DispatchResult(msgspec.Struct, frozen=True):
    mode: Mode
    parts: tuple[PartResult, ...]

    @property
    def ok(self) -> bool:
        return all(p.status == "success" for p in self.parts)

    @property
    def timed_out(self) -> bool:
        return any(p.outcome == "timeout" for p in self.parts)

    @property
    def failed(self) -> int:
        return sum(p.status != "success" for p in self.parts)

    @property
    def duplicate(self) -> bool:
        """Every part had been delivered before: nothing was sent."""
        return all(p.duplicate for p in self.parts)

    @property
    def retryable(self) -> bool:
        """Sending the failed parts again may succeed."""
        return all(p.retryable for p in self.parts if p.status != "success")


def mode_of(cfg: DestinationConfig) -> Mode:
    if not cfg.split_alerts:
        return "single"
    batched = cfg.batch_size > 1
    parallel = cfg.parallel_requests > 1
    if batched:
        return "batch-parallel" if parallel else "batch"
    return "parallel" if parallel else "sequential"


def plan_parts(alerts: Sequence[Alert], cfg: DestinationConfig) -> list[tuple[Alert, ...]]:
    if not cfg.split_alerts:
        return [tuple(alerts)]
    size = max(1, cfg.batch_size)
    return [tuple(alerts[i : i + size]) for i in range(0, len(alerts), size)]


def render_part(
    dest: Destination,
    tokens: templates.Tokens,
    payload: Payload,
    part: tuple[Alert, ...],
    index: int,
    count: int,
) -> Request:
    cfg = dest.cfg
    view = templates.build_view(
        payload, part, part_index=index, part_count=count, params=cfg.params
    )
    try:
        if dest.jq is not None:
            rendered = dest.jq.render(payload, part, view)
        else:
            rendered = templates.render(tokens, view, cfg.format, markup=cfg.markup)
        url = dest.targets.render_url(view)
        encoded = formats.encode(cfg.format, rendered, method=cfg.method, url=url)
    except TemplateError as exc:
        raise TemplateError(f"destination {dest.name}: part {index + 1}/{count}: {exc}") from None
    headers = dest.targets.render_headers(dict(dest.headers), view)
    if encoded.content_type is None:
        headers.pop("Content-Type", None)
    return Request(cfg.method, encoded.url, headers, encoded.body)


def plan_requests(dest: Destination, tokens: templates.Tokens, payload: Payload) -> limits.Plan:
    """Every part as configured, re-split or truncated where the destination's limits ask."""
    cfg = dest.cfg

    def render(part: tuple[Alert, ...], index: int, count: int) -> Request:
        return render_part(dest, tokens, payload, part, index, count)

    try:
        parts = plan_parts(payload.alerts, cfg)
        return limits.plan(parts, render, cfg.limits, cfg.format, cfg.method)
    except TemplateError as exc:
        prefix = f"destination {dest.name}: "
        if str(exc).startswith(prefix):  # from render_part, which says which part
            raise
        raise TemplateError(prefix + str(exc)) from None


async def dispatch(
    dest: Destination,
    payload: Payload,
    *,
    tokens: templates.Tokens,
    metrics: Metrics,
    logger: Logger,
    deadline_s: float | None = None,
    dedup: Dedup | None = None,
) -> DispatchResult:
    """Render, then send every part within the deadline. Raises TemplateError (nothing
    sent) if any part renders to an invalid body."""
    cfg = dest.cfg
    t0 = time.perf_counter()
    planned = plan_requests(dest, tokens, payload)
    parts = [part for part, _ in planned.parts]
    requests = [request for _, request in planned.parts]
    metrics.render_seconds.labels(dest.name).observe((time.perf_counter() - t0) / len(parts))
    _record_limits(dest, payload, planned, metrics, logger)

    results: list[PartResult | None] = [None] * len(parts)
    mode = mode_of(cfg)
    deadline = float(cfg.timeout) if deadline_s is None else min(deadline_s, float(cfg.timeout))

    async def run_part(i: int, limiter: trio.CapacityLimiter | None) -> None:
        fingerprints = tuple(a.fingerprint for a in parts[i])
        key = None
        if dedup is not None and dedup.enabled:
            key = part_key(dest.name, payload.groupKey, payload.status, parts[i])
            if dedup.delivered(key):
                metrics.duplicates.labels(dest.name).inc()
                results[i] = PartResult(fingerprints, "success", "success", duplicate=True)
                return
        started = time.perf_counter()
        if limiter is None:
            attempt = await _send(dest, requests[i], logger, payload.groupKey, metrics)
        else:
            async with limiter:
                attempt = await _send(dest, requests[i], logger, payload.groupKey, metrics)
        results[i] = _record(dest, payload, fingerprints, attempt, started, metrics, logger)
        if key is not None and attempt.outcome == "success":
            assert dedup is not None
            dedup.remember(key)

    with trio.move_on_after(deadline):
        if mode in ("parallel", "batch-parallel"):
            limiter = trio.CapacityLimiter(dest.parallel)
            async with trio.open_nursery() as nursery:
                for i in range(len(parts)):
                    nursery.start_soon(run_part, i, limiter)
        else:
            for i in range(len(parts)):
                await run_part(i, None)

    final = []
    for i, res in enumerate(results):
        if res is None:  # the deadline passed before this part finished
            attempt = Attempt("timeout", error=f"delivery deadline of {deadline:g}s passed")
            res = _record(
                dest,
                payload,
                tuple(a.fingerprint for a in parts[i]),
                attempt,
                None,
                metrics,
                logger,
            )
        final.append(res)
    return DispatchResult(mode, tuple(final))


def _record_limits(
    dest: Destination, payload: Payload, planned: limits.Plan, metrics: Metrics, logger: Logger
) -> None:
    if planned.split:
        metrics.limit_actions.labels(dest.name, "split").inc()
    if planned.truncated:
        metrics.limit_actions.labels(dest.name, "truncate").inc(planned.truncated)
    if planned.split or planned.truncated:
        logger.warning(
            "over size limits",
            destination=dest.name,
            group_key=payload.groupKey,
            parts=len(planned.parts),
            added_parts=planned.split,
            truncated_parts=planned.truncated,
        )


async def _send(
    dest: Destination, request: Request, logger: Logger, group_key: str, metrics: Metrics
) -> Attempt:
    if dest.cfg.kind == "log":
        body = request.body.decode() if request.body is not None else request.url
        logger.info("notification", destination=dest.name, group_key=group_key, body=body)
        return Attempt("success")
    assert dest.client is not None, "http destinations get a client in runtime.build"

    def on_retry(attempt: Attempt, delay_s: float) -> None:
        metrics.retries.labels(dest.name).inc()
        logger.info(
            "retrying",
            destination=dest.name,
            group_key=group_key,
            code=attempt.status_code,
            error=attempt.error,
            delay_s=round(delay_s, 3),
        )

    return await deliver(
        dest.client,
        request,
        dest.policy,
        check=dest.check,
        rand=dest.rand,
        client_timeout_s=dest.client_timeout_s,
        limiter=dest.pool_limiter,
        on_retry=on_retry,
    )


def _record(
    dest: Destination,
    payload: Payload,
    fingerprints: tuple[str, ...],
    attempt: Attempt,
    started: float | None,
    metrics: Metrics,
    logger: Logger,
) -> PartResult:
    duration_s = time.perf_counter() - started if started is not None else None
    metrics.deliveries.labels(dest.name, attempt.outcome).inc()
    if duration_s is not None:
        metrics.delivery_seconds.labels(dest.name).observe(duration_s)
    ok = attempt.outcome == "success"
    logger.log(
        "info" if ok else "warning",
        "delivered" if ok else "delivery failed",
        destination=dest.name,
        group_key=payload.groupKey,
        status=payload.status,
        alerts=len(fingerprints),
        outcome=attempt.outcome,
        code=attempt.status_code,
        attempts=attempt.attempts if attempt.attempts > 1 else None,
        duration_ms=round(duration_s * 1000, 1) if duration_s is not None else None,
        error=attempt.error,
    )
    return PartResult(
        alerts=fingerprints,
        status="success" if ok else "error",
        outcome=attempt.outcome,
        response_code=attempt.status_code,
        error=attempt.error,
        retryable=attempt.retryable,
        attempts=attempt.attempts,
        retry_after_s=attempt.retry_after_s,
    )
