"""view.py: the view model a template renders — plain dicts built from an Alertmanager payload.

Owns: the names a template can use (docs/templates.md lists them): the group's, each alert's,
the part's, and the derived ones (durations, colours, silence links, label text).
Must not: import chevron, render or escape anything (templates.py), or decide how alerts are
split into parts (dispatch.py passes the part in).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .alertmanager import has_ended

if TYPE_CHECKING:
    from .alertmanager import Alert, Payload

# Plain dicts and lists: chevron looks keys up with d[key] and falls back to getattr, and the
# dict path is the fast one. Every alert dict is built once per view.


def _rfc3339(when: datetime) -> str:
    text = when.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def human_duration(seconds: float) -> str:
    """The two largest units, a zero second unit left out: "2d 3h", "1h 2m", "1h", "3m 5s",
    "45s". Negative (clock skew) counts as zero."""
    s = max(0, int(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    for big, big_unit, small, small_unit in (
        (days, "d", hours, "h"),
        (hours, "h", minutes, "m"),
        (minutes, "m", s, "s"),
    ):
        if big:
            return f"{big}{big_unit} {small}{small_unit}" if small else f"{big}{big_unit}"
    return f"{s}s"


def _pairs(mapping: Mapping[str, str]) -> list[dict[str, Any]]:
    """[{name, value, index, first, last}] sorted by name."""
    items = sorted(mapping.items())
    last = len(items) - 1
    return [
        {"name": k, "value": v, "index": i, "first": i == 0, "last": i == last}
        for i, (k, v) in enumerate(items)
    ]


def labels_text(labels: Mapping[str, str]) -> str:
    """``alertname=HighLatency, instance=api-1:8080``: sorted by name."""
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def silence_url(external_url: str, labels: Mapping[str, str]) -> str:
    """Alertmanager's "new silence" page with a matcher per label filled in, or "" without an
    externalURL. Label values are escaped for the matcher, then the filter is URL-encoded."""
    if not external_url:
        return ""
    matchers = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return (
        f"{external_url.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}', safe='')}"
    )


# Colours by (status, severity); the hex ones for Slack, Mattermost and Rocket.Chat
# attachments, the decimal ones for Discord embeds, the names for Teams Adaptive Cards.
RESOLVED_COLOR = ("#2eb886", "good")
SEVERITY_COLORS: Mapping[str, tuple[str, str]] = {
    "critical": ("#d63232", "attention"),
    "error": ("#d63232", "attention"),
    "page": ("#d63232", "attention"),
    "warning": ("#e8a317", "warning"),
}
OTHER_COLOR = ("#439fe0", "accent")


def _colors(resolved: bool, severity: str) -> dict[str, Any]:
    hex_color, name = (
        RESOLVED_COLOR if resolved else SEVERITY_COLORS.get(severity.lower(), OTHER_COLOR)
    )
    return {"color": hex_color, "color_decimal": int(hex_color[1:], 16), "color_name": name}


def _mapped(severity: str, params: Mapping[str, Any]) -> str:
    mapping = params.get("severity_map")
    if not isinstance(mapping, dict):
        return severity
    return str(mapping.get(severity.lower()) or mapping.get("default") or severity)


def _http_url(value: str) -> str:
    """``value`` if it is an http(s) URL, else "" (a javascript: link must not become one)."""
    return value if value.lower().startswith(("http://", "https://")) else ""


def _alert_view(alert: Alert, index: int, count: int, now: datetime) -> dict[str, Any]:
    labels, annotations = alert.labels, alert.annotations
    starts = alert.startsAt
    ended = has_ended(alert)
    ends = alert.endsAt if ended else None
    firing = alert.status == "firing"
    if starts is None:
        duration, seconds = "", 0
    else:
        until = ends if ends is not None and not firing else now
        seconds = max(0, int((until - starts).total_seconds()))
        duration = human_duration(seconds)
    return {
        "status": alert.status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _rfc3339(starts) if starts is not None else "",
        "endsAt": _rfc3339(ends) if ends is not None else "",
        "generatorURL": alert.generatorURL,
        "fingerprint": alert.fingerprint,
        "label_list": _pairs(labels),
        "annotation_list": _pairs(annotations),
        "alertname": labels.get("alertname", ""),
        "severity": labels.get("severity", ""),
        "summary": annotations.get("summary", ""),
        "description": annotations.get("description", ""),
        "startsAt_unix": int(starts.timestamp()) if starts is not None else 0,
        "endsAt_unix": int(ends.timestamp()) if ends is not None else 0,
        "duration": duration,
        "duration_seconds": seconds,
        "runbook_url": _http_url(annotations.get("runbook_url") or annotations.get("runbook", "")),
        "labels_text": labels_text(labels),
        "index": index,
        "number": index + 1,
        "first": index == 0,
        "last": index == count - 1,
        "firing": firing,
        "resolved": alert.status == "resolved",
    }


def _renumbered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies whose index/number/first/last describe their place in ``items``."""
    last = len(items) - 1
    return [
        {**item, "index": i, "number": i + 1, "first": i == 0, "last": i == last}
        for i, item in enumerate(items)
    ]


def build_view(
    payload: Payload,
    alerts: Sequence[Alert] | None = None,
    *,
    part_index: int = 0,
    part_count: int = 1,
    now: datetime | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The view of one part of a notification (all of it when ``alerts`` is None).

    Top-level names describe the group (``status`` is the group's); ``alerts`` and the counts
    describe this part; ``alert`` is this part's alert when it has exactly one. docs/templates.md
    lists every field. ``now`` (default: the current time) measures firing alerts' durations.
    ``params`` are the destination's (or its preset's) parameters, under ``params``.
    """
    if now is None:
        now = datetime.now(UTC)
    params = params or {}
    part_alerts = payload.alerts if alerts is None else alerts
    count = len(part_alerts)
    views = [_alert_view(alert, i, count, now) for i, alert in enumerate(part_alerts)]
    external = payload.externalURL
    for view in views:
        view["silence_url"] = silence_url(external, view["labels"])
        view["mapped_severity"] = _mapped(view["severity"], params)
        view.update(_colors(view["resolved"], view["severity"]))
    firing = [v for v in views if v["firing"]]
    resolved = [v for v in views if v["resolved"]]
    # Positions in these lists must be their own ({{^last}} inside {{#firing}}); when every
    # alert of the part has one status, the list is the part's and can be shared.
    firing = views if len(firing) == count else _renumbered(firing)
    resolved = views if len(resolved) == count else _renumbered(resolved)

    common = payload.commonLabels
    first_labels = part_alerts[0].labels if part_alerts else {}
    alertname = common.get("alertname") or first_labels.get("alertname", "")
    severity = common.get("severity") or first_labels.get("severity", "")
    name = alertname or " ".join(v for _, v in sorted(payload.groupLabels.items()))
    state = f"FIRING:{len(firing)}" if firing else "RESOLVED"

    return {
        **_colors(not firing, severity),
        "receiver": payload.receiver,
        "status": payload.status,
        "groupKey": payload.groupKey,
        "groupLabels": payload.groupLabels,
        "commonLabels": common,
        "commonAnnotations": payload.commonAnnotations,
        "externalURL": payload.externalURL,
        "version": payload.version,
        "truncatedAlerts": payload.truncatedAlerts,
        "alerts": views,
        "firing": firing,
        "resolved": resolved,
        "alerts_count": count,
        "firing_count": len(firing),
        "resolved_count": len(resolved),
        "has_firing": bool(firing),
        "has_resolved": bool(resolved),
        "is_firing": payload.status == "firing",
        "is_resolved": payload.status == "resolved",
        "group_label_list": _pairs(payload.groupLabels),
        "common_label_list": _pairs(common),
        "common_annotation_list": _pairs(payload.commonAnnotations),
        "alertname": alertname,
        "severity": severity,
        "title": f"[{state}] {name}".rstrip(),
        "part": {
            "index": part_index,
            "number": part_index + 1,
            "count": part_count,
            "first": part_index == 0,
            "last": part_index == part_count - 1,
        },
        "split": part_count > 1 or count < len(payload.alerts),
        "alert": views[0] if count == 1 else None,
        "more_count": payload.truncatedAlerts,
        "has_more": payload.truncatedAlerts > 0,
        "group_key_hash": hashlib.sha256(payload.groupKey.encode()).hexdigest(),
        "silence_url": silence_url(external, common),
        "group_labels_text": labels_text(payload.groupLabels),
        "common_labels_text": labels_text(common),
        "mapped_severity": _mapped(severity, params),
        "params": dict(params),
    }
