"""template_helpers.py: what each Mustache helper does to its text (``{{#upper}}...{{/upper}}``).

Owns: the text transform behind every helper but ``json`` (whose literal depends on the
format, see templates.py), and the argument syntax the helpers that take one expect, which
compile_template checks.
Must not: import chevron or escape anything: each transform gets the helper's inner text
already rendered and unescaped, and templates.py escapes its result for where it lands.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ELLIPSIS = "…"

_TITLE_WORD = re.compile(r"\S+")


def titlecase(text: str) -> str:
    """Upper-case the first character of each whitespace-separated word, lower-case the rest
    (unlike str.title, "don't" stays "Don't" and "api-1" becomes "Api-1")."""
    return _TITLE_WORD.sub(lambda m: m[0][:1].upper() + m[0][1:].lower(), text)


def urlencode(text: str) -> str:
    return quote(text, safe="")


# {{#truncate}}80 {{summary}}{{/truncate}}: the first word of the inner text is the limit.
_TRUNCATE_ARGS = re.compile(r"\s*(\d+)\s(.*)\Z", re.DOTALL)


def truncate(text: str) -> str:
    """At most N characters (of the text, before escaping), the last one "…" when cut."""
    match = _TRUNCATE_ARGS.match(text)
    if match is None:  # compile_template refuses this; a hand-built token tuple might not
        return text
    limit, body = int(match[1]), match[2]
    if len(body) <= limit:
        return body
    if limit == 0:
        return ""
    return body[: limit - 1].rstrip() + ELLIPSIS


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def date(text: str) -> str:
    """{{#date}}%Y-%m-%d %H:%M|{{startsAt}}{{/date}}: strftime format, "|", then an RFC 3339
    time or unix seconds. Unix seconds are shown in UTC; an RFC 3339 time keeps its offset.
    {{#date}}%H:%M %Z|Europe/Berlin|{{startsAt}}{{/date}}: with an IANA time zone between
    the format and the time, the time is shown in that zone.
    An empty or unparsable time (endsAt of a firing alert) renders as ""."""
    fmt, sep, value = text.rpartition("|")
    value = value.strip()
    if not sep or not value:
        return ""
    zone = None
    head, zsep, zone_name = fmt.rpartition("|")
    if zsep and zone_name.strip():
        zone = _zone(zone_name.strip())
        if zone is not None:
            fmt = head
    try:
        if value.lstrip("-").isdigit():
            when = datetime.fromtimestamp(int(value), UTC)
        else:
            when = datetime.fromisoformat(value)
        if zone is not None:
            when = when.astimezone(zone)
        return when.strftime(fmt.strip())
    except (ValueError, OverflowError, OSError):
        return ""


def default(text: str) -> str:
    """{{#default}}unknown|{{labels.team}}{{/default}}: the value after the first "|", or the
    text before it when the value is empty or only whitespace."""
    fallback, _, value = text.partition("|")
    return value if value.strip() else fallback


# Every helper but json, by name (the json helper is built per format in templates.py).
TRANSFORMS: Mapping[str, Callable[[str], str]] = {
    "upper": str.upper,
    "lower": str.lower,
    "titlecase": titlecase,
    "trim": str.strip,
    "truncate": truncate,
    "urlencode": urlencode,
    "date": date,
    "default": default,
}

# Helpers that take an argument at the start of their inner text, checked at compile time.
HELPER_ARGS: Mapping[str, tuple[re.Pattern[str], str]] = {
    "truncate": (re.compile(r"\s*\d+\s"), "{{#truncate}}80 {{summary}}{{/truncate}}"),
    "date": (re.compile(r"[^|]*\|"), "{{#date}}%Y-%m-%d %H:%M|{{startsAt}}{{/date}}"),
    "default": (re.compile(r"[^|{]*\|"), "{{#default}}unknown|{{labels.team}}{{/default}}"),
}
