"""delivery.py: one HTTP delivery to a destination — its attempts, retries and outcome.

``send`` makes one attempt; ``deliver`` repeats it under a ``RetryPolicy``: full-jitter
exponential backoff, ``Retry-After`` (seconds or HTTP date) and a JSON ``retry_after`` body
field honoured but capped by ``max_delay``, and never an attempt or a sleep that cannot end
before the caller's trio deadline (the destination's delivery deadline, set by dispatch).
Retried: connection errors, timeouts, 429, 5xx, and a 2xx whose body fails the destination's
``success_body`` check. Never retried: any other 4xx.
Knows nothing about splitting or templates: it gets a finished request and returns an
``Attempt``. Error texts are built from status codes and exception class names, never from
the URL (which may carry a token).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Literal

import httpx
import msgspec
import trio

from .clients import GatewayClient

if TYPE_CHECKING:
    from .config import RetryConfig, SuccessBodyConfig

Outcome = Literal["success", "failure", "timeout", "invalid"]
RESPONSE_EXCERPT_CHARS = 200
# An attempt is only started when at least this much of the deadline is left: less than
# that cannot reach a destination and get an answer back.
MIN_ATTEMPT_S = 0.05
# httpx's own timeout sits just under what is left of the trio deadline, so an attempt ends
# with a clean httpx timeout instead of a cancellation inside httpcore (httpcore #1093).
HTTPX_DEADLINE_FRACTION = 0.95
TIMEOUT_SLACK_S = 0.25  # the client's own timeout is used unless the deadline is this much nearer
_MISSING = object()


class Request(msgspec.Struct, frozen=True):
    """A rendered, encoded request, ready to send (or to show, in previews)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


class Attempt(msgspec.Struct, frozen=True):
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retryable: bool = True  # False: the destination refused it; sending again cannot help
    retry_after_s: float | None = None  # what the destination asked us to wait
    attempts: int = 1


class RetryPolicy(msgspec.Struct, frozen=True):
    max_attempts: int = 1
    initial_delay_s: float = 0.5
    max_delay_s: float = 10.0
    multiplier: float = 2.0
    attempt_timeout_s: float = 0.0  # 0: an attempt may use all that is left of the deadline

    @classmethod
    def from_config(cls, cfg: RetryConfig) -> RetryPolicy:
        return cls(
            cfg.max_attempts,
            float(cfg.initial_delay),
            float(cfg.max_delay),
            cfg.multiplier,
            float(cfg.attempt_timeout),
        )

    def backoff_s(self, failures: int, rand: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max_delay, initial * multiplier**(failures-1)))."""
        exponent = min(failures - 1, 64)  # 2**64 seconds is plenty and cannot overflow
        ceiling = min(self.max_delay_s, self.initial_delay_s * self.multiplier**exponent)
        return rand() * ceiling


class SuccessCheck:
    """``success_body``: a 2xx whose body does not match is a (retryable) failure."""

    def __init__(self, cfg: SuccessBodyConfig) -> None:
        self.contains = cfg.contains
        self.path = [p for p in cfg.json_path.split(".") if p]
        self.equals = cfg.equals

    def problem(self, response: httpx.Response) -> str | None:
        if self.contains and self.contains not in response.text:
            return f"body does not contain {self.contains!r}"
        if self.path:
            try:
                node: object = msgspec.json.decode(response.content)
            except msgspec.DecodeError:
                return "body is not JSON"
            for key in self.path:
                node = node.get(key, _MISSING) if isinstance(node, dict) else _MISSING
            if node is _MISSING:
                return f"body has no {'.'.join(self.path)}"
            if node != self.equals or type(node) is not type(self.equals):
                return f"body has {'.'.join(self.path)}={node!r}, expected {self.equals!r}"
        return None


def _excerpt(response: httpx.Response) -> str:
    text = response.text[:RESPONSE_EXCERPT_CHARS].strip()
    return f": {text}" if text else ""


def retry_after_s(
    response: httpx.Response, *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the destination asked us to wait: Retry-After (seconds or an HTTP date), else a
    JSON body's top-level ``retry_after`` (Slack). None if it said nothing usable."""
    header = response.headers.get("retry-after")
    if header:
        header = header.strip()
        try:
            seconds = float(header)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(header).timestamp() - now()
            except (TypeError, ValueError, IndexError):
                seconds = math.nan
        if math.isfinite(seconds):
            return max(0.0, seconds)
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            return None
        value = body.get("retry_after") if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if math.isfinite(value):
            return max(0.0, float(value))
    return None


async def send(
    client: httpx.AsyncClient,
    request: Request,
    *,
    check: SuccessCheck | None = None,
    httpx_timeout: httpx.Timeout | None = None,
) -> Attempt:
    """Send once. Any 2xx (that passes ``check``) is success; everything else is described,
    not raised."""
    try:
        # httpx's own timeout, not a trio deadline: the caller's deadline is a trio scope;
        # this only makes httpx give up cleanly just before it.
        h11 = client.h11 if isinstance(client, GatewayClient) else None
        if h11 is not None and request.url.startswith("http://"):
            timeout = httpx_timeout if httpx_timeout is not None else client.timeout
            # The same request the client would build for us (Host, Content-Length, our
            # headers, the timeout extension), minus the client layer's per-request work.
            # The h11 pool returns the response already read.
            response = await h11.handle_async_request(
                httpx.Request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    content=request.body,
                    extensions={"timeout": timeout.as_dict()},
                )
            )
        elif httpx_timeout is None:
            response = await client.request(
                request.method, request.url, headers=request.headers, content=request.body
            )
        else:
            response = await client.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body,
                timeout=httpx_timeout,
            )
    except httpx.TimeoutException as exc:
        return Attempt("timeout", error=f"timed out ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        detail = str(exc).replace(request.url, "<url>") if str(exc) else ""
        return Attempt("failure", error=f"{type(exc).__name__}: {detail}".rstrip(": "))
    code = response.status_code
    if 200 <= code < 300:
        problem = check.problem(response) if check is not None else None
        if problem is None:
            return Attempt("success", status_code=code)
        return Attempt("failure", status_code=code, error=f"HTTP {code} but {problem}")
    retryable = code == 429 or code >= 500
    return Attempt(
        "failure",
        status_code=code,
        error=f"HTTP {code}{_excerpt(response)}",
        retryable=retryable,
        retry_after_s=retry_after_s(response) if retryable else None,
    )


async def deliver(
    client: httpx.AsyncClient,
    request: Request,
    policy: RetryPolicy,
    *,
    check: SuccessCheck | None = None,
    rand: Callable[[], float] = random.random,
    client_timeout_s: float | None = None,
    limiter: trio.CapacityLimiter | None = None,
    on_retry: Callable[[Attempt, float], None] | None = None,
) -> Attempt:
    """Send, retrying transient failures as ``policy`` allows, inside the current trio
    deadline. Returns the last attempt (with ``attempts`` set)."""
    attempts = 0
    while True:
        attempts += 1
        deadline = trio.current_effective_deadline()
        timeout = None
        if client_timeout_s is not None and math.isfinite(deadline):
            left = (deadline - trio.current_time()) * HTTPX_DEADLINE_FRACTION
            # Only when it matters: a Timeout per request costs a little on the hot path.
            if left < client_timeout_s - TIMEOUT_SLACK_S:
                timeout = httpx.Timeout(max(left, 0.001))
        if limiter is None:
            attempt = await send(client, request, check=check, httpx_timeout=timeout)
        else:
            # Held per attempt, not across backoff sleeps, so waiting retries hold no slot.
            async with limiter:
                attempt = await send(client, request, check=check, httpx_timeout=timeout)
        if attempt.outcome == "success" or not attempt.retryable:
            break
        if attempts >= policy.max_attempts:
            break
        if attempt.retry_after_s is not None:
            delay = min(attempt.retry_after_s, policy.max_delay_s)
        else:
            delay = policy.backoff_s(attempts, rand)
        if trio.current_time() + delay + MIN_ATTEMPT_S > deadline:
            break  # the next attempt could not finish in time: answer now with this failure
        if on_retry is not None:
            on_retry(attempt, delay)
        await trio.sleep(delay)
    if attempts == 1:
        return attempt
    return msgspec.structs.replace(attempt, attempts=attempts)
