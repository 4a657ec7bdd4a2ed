"""alertmanager.py: the webhook payload as frozen Structs, its decoder, and its semantic checks.

Knows the wire format of Alertmanager's webhook (version 4) and nothing about destinations.
Unknown fields are allowed (Grafana and others add some); Alertmanager's acronyms are spelled
exactly as on the wire (``externalURL``, ``generatorURL``), which ``rename="camel"`` gets wrong.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec

from .errors import PayloadError

# Alertmanager writes Go's zero time for an alert that has not ended.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
STATUSES = ("firing", "resolved")


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    status: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class Payload(msgspec.Struct, frozen=True, kw_only=True):
    version: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0
    status: str = ""
    receiver: str = ""
    groupLabels: dict[str, str] = {}
    commonLabels: dict[str, str] = {}
    commonAnnotations: dict[str, str] = {}
    externalURL: str = ""
    alerts: tuple[Alert, ...] = ()


_DECODER = msgspec.json.Decoder(Payload)
_PATH_RE = re.compile(r"\s*- at `\$\.?(.*)`$")


def _msgspec_message(exc: msgspec.ValidationError | msgspec.DecodeError) -> str:
    """Turn msgspec's "Expected `str`, got `int` - at `$.alerts[1].status`" into
    "alerts[1].status: expected `str`, got `int`"."""
    text = str(exc)
    match = _PATH_RE.search(text)
    if not match:
        return "body: " + text[:1].lower() + text[1:]
    head = text[: match.start()]
    head = head[:1].lower() + head[1:]
    return f"{match.group(1) or 'body'}: {head}"


def decode(body: bytes) -> Payload:
    """Decode and validate a webhook body. Raises PayloadError naming the field and reason."""
    try:
        payload = _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise PayloadError(_msgspec_message(exc)) from None
    except msgspec.DecodeError as exc:
        raise PayloadError(f"body: malformed JSON: {exc}") from None
    validate(payload)
    return payload


def validate(payload: Payload) -> None:
    """The rules Alertmanager's own payloads always satisfy; the first broken one is raised."""
    if not payload.version:
        raise PayloadError("version: missing")
    if not payload.groupKey:
        raise PayloadError("groupKey: missing")
    if payload.status not in STATUSES:
        raise PayloadError(_status_message("status", payload.status))
    if not payload.alerts:
        raise PayloadError("alerts: must not be empty")
    if payload.truncatedAlerts < 0:
        raise PayloadError("truncatedAlerts: must be >= 0")
    for i, alert in enumerate(payload.alerts):
        where = f"alerts[{i}]"
        if alert.status not in STATUSES:
            raise PayloadError(_status_message(f"{where}.status", alert.status))
        if not alert.fingerprint:
            raise PayloadError(f"{where}.fingerprint: missing")
        # Naive times cannot be compared with aware ones: check the zone first.
        if alert.startsAt is not None and alert.startsAt.tzinfo is None:
            raise PayloadError(f"{where}.startsAt: needs a time zone (RFC 3339)")
        if alert.startsAt is None or alert.startsAt <= ZERO_TIME:
            raise PayloadError(f"{where}.startsAt: missing")
        ends = alert.endsAt
        if ends is not None and ends.tzinfo is None:
            raise PayloadError(f"{where}.endsAt: needs a time zone (RFC 3339)")
        if ends is not None and ends > ZERO_TIME and ends < alert.startsAt:
            raise PayloadError(
                f"{where}.endsAt: {ends.isoformat()} is before startsAt "
                f"{alert.startsAt.isoformat()}"
            )


def _status_message(where: str, got: str) -> str:
    if not got:
        return f"{where}: missing"
    return f"{where}: expected one of firing, resolved, got {got[:64]!r}"


def has_ended(alert: Alert) -> bool:
    return alert.endsAt is not None and alert.endsAt > ZERO_TIME
