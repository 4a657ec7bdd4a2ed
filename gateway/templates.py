"""templates.py: Mustache templates — compile, cache, view model, helpers, format-aware escaping.

Owns: tokenizing a template once (which validates it), the memoized token cache, the view model
built from an Alertmanager payload, the helper lambdas, the escaping of ``{{x}}`` for each
output format, and the built-in default template of each format. It is the only module that
imports chevron.
Must not: encode or check bodies (formats.py does, after rendering), read anything from disk
(partials are refused), decide how alerts are split into parts (dispatch.py passes the part
in), or know about destinations and HTTP.

Why this module is larger than ~400 lines: chevron has quirks we must work around — escaping
has no hook, lookups fall back to getattr (so str methods leak into templates), and lambdas
receive re-assembled template text — and the compile-time checks, the helpers, the view model
and the default templates all depend on exactly how those workarounds behave. Keeping them
together keeps every piece of chevron knowledge in one file; about a third of it is the
default templates and docstrings.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chevron
import chevron.renderer
import chevron.tokenizer
import msgspec

from .alertmanager import has_ended
from .errors import TemplateError

if TYPE_CHECKING:
    from .alertmanager import Alert, Payload

Tokens = tuple[tuple[str, str], ...]
Escaper = Callable[[str], str]
# chevron calls a lambda as fn(inner_template_text, render) and inserts its result unescaped.
Helper = Callable[[str, Callable[[str], str]], str]

FORMATS = ("json", "form", "query", "xml", "text", "json_stream")
# What a destination's text means to the service beyond its format: values are escaped for
# the markup first, then for the format (see MARKUP_ESCAPERS).
MARKUPS = ("none", "html", "slack")

# chevron keeps the tokens of every lambda section it meets in a module-level dict that it never
# prunes; templates submitted through the render-preview API could grow it without bound. It is
# only a cache (each entry is rewritten right before its lambda runs), so clearing it between
# renders is safe.
CHEVRON_LAMBDA_CACHE_MAX = 1024

ELLIPSIS = "…"

# ---------------------------------------------------------------------------------------
# Escaping


def _identity(text: str) -> str:
    return text


def _json_escape(text: str) -> str:
    """The content of a JSON string literal: exactly json.dumps(text, ensure_ascii=False)[1:-1],
    through the C function json.dumps itself uses for a str."""
    return encode_basestring(text)[1:-1]


# XML 1.0 allows only these characters (https://www.w3.org/TR/xml/#charsets); anything else
# (control characters, U+FFFE/U+FFFF, lone surrogates) makes the document unparsable, so it
# becomes U+FFFD instead.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_escape(text: str) -> str:
    """Safe in element text and in attribute values quoted with ' or ". A carriage return is
    written as a character reference because parsers normalize a literal one away."""
    text = _XML_INVALID.sub("\ufffd", text)
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
        .replace("\r", "&#13;")
    )


# form and query templates render a JSON object (formats.py turns it into fields), so their
# values are escaped exactly like JSON.
ESCAPERS: Mapping[str, Escaper] = {
    "json": _json_escape,
    "form": _json_escape,
    "query": _json_escape,
    "xml": _xml_escape,
    "text": _identity,
    "json_stream": _json_escape,
}


def _html_text_escape(text: str) -> str:
    """HTML text and double-quoted attribute values (Telegram's HTML parse mode accepts exactly
    these four entities)."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _slack_escape(text: str) -> str:
    """Slack mrkdwn treats only &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


MARKUP_ESCAPERS: Mapping[str, Escaper] = {
    "none": _identity,
    "html": _html_text_escape,
    "slack": _slack_escape,
}


# URL path and query values (targets.py renders URL templates with this): everything but
# letters, digits and "-_~:" is percent-encoded, dots included, so a value can never add a
# path segment, a "..", a query, a fragment or userinfo.
def url_value_escape(text: str) -> str:
    return quote(text, safe="-_~:").replace(".", "%2E")


_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def header_value_escape(text: str) -> str:
    """A header value cannot hold CR, LF or other control characters: each becomes a space."""
    return _HEADER_UNSAFE.sub(" ", text)


# How the json helper's output (a complete JSON string literal, quotes included) is written
# where it lands: as a JSON value as it is; inside XML escaped; in text as it is.
_LITERAL_ESCAPERS: Mapping[str, Escaper] = {
    "json": _identity,
    "form": _identity,
    "query": _identity,
    "xml": _xml_escape,
    "text": _identity,
    "json_stream": _identity,
}

# ---------------------------------------------------------------------------------------
# Helper lambdas
#
# Rationale: a helper must transform the *value* of its inner text, not an already escaped
# form of it (upper-casing "\n" in JSON would give "\N"), and its result must then be escaped
# for wherever it lands. So each helper renders its inner text with the identity escaper and
# escapes its result with the escaper that was active when chevron called it: the format's
# escaper at the top level, or the identity when nested inside another helper (whose own result
# is escaped once, by that outer helper). Literal template text inside a helper section is part
# of that result, so it is escaped too: inside {{#upper}}...{{/upper}} in a JSON template, write
# a newline as a real newline, not as \n.


def _render_raw(text: str, render: Callable[[str], str]) -> tuple[str, Escaper]:
    """Render a helper's inner text unescaped; return it and the escaper active before."""
    outer: Escaper = chevron.renderer._html_escape
    chevron.renderer._html_escape = _identity
    try:
        return render(text), outer
    finally:
        chevron.renderer._html_escape = outer


def _transform_helper(transform: Callable[[str], str]) -> Helper:
    def helper(text: str, render: Callable[[str], str]) -> str:
        raw, outer = _render_raw(text, render)
        return outer(transform(raw))

    return helper


def _json_helper(literal_escape: Escaper) -> Helper:
    def helper(text: str, render: Callable[[str], str]) -> str:
        raw, outer = _render_raw(text, render)
        literal = encode_basestring(raw)
        # Nested in another helper (outer is the identity): that helper escapes the result.
        return literal if outer is _identity else literal_escape(literal)

    return helper


_TITLE_WORD = re.compile(r"\S+")


def _titlecase(text: str) -> str:
    """Upper-case the first character of each whitespace-separated word, lower-case the rest
    (unlike str.title, "don't" stays "Don't" and "api-1" becomes "Api-1")."""
    return _TITLE_WORD.sub(lambda m: m[0][:1].upper() + m[0][1:].lower(), text)


def _urlencode(text: str) -> str:
    return quote(text, safe="")


# {{#truncate}}80 {{summary}}{{/truncate}}: the first word of the inner text is the limit.
_TRUNCATE_ARGS = re.compile(r"\s*(\d+)\s(.*)\Z", re.DOTALL)


def _truncate(text: str) -> str:
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


def _date(text: str) -> str:
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


def _default(text: str) -> str:
    """{{#default}}unknown|{{labels.team}}{{/default}}: the value after the first "|", or the
    text before it when the value is empty or only whitespace."""
    fallback, _, value = text.partition("|")
    return value if value.strip() else fallback


def _build_helpers(fmt: str) -> dict[str, Helper]:
    return {
        "upper": _transform_helper(str.upper),
        "lower": _transform_helper(str.lower),
        "titlecase": _transform_helper(_titlecase),
        "trim": _transform_helper(str.strip),
        "truncate": _transform_helper(_truncate),
        "urlencode": _transform_helper(_urlencode),
        "date": _transform_helper(_date),
        "default": _transform_helper(_default),
        "json": _json_helper(_LITERAL_ESCAPERS[fmt]),
    }


# Stateless, so built once per format.
_HELPERS: Mapping[str, Mapping[str, Helper]] = {fmt: _build_helpers(fmt) for fmt in FORMATS}
HELPER_NAMES = frozenset(_HELPERS["json"])

# ---------------------------------------------------------------------------------------
# Compile and render

# The token types chevron's renderer acts on. "no escape?" is what chevron yields for a
# "{{{x}}" missing its third brace, which its renderer then silently ignores.
_KNOWN_TOKENS = frozenset(
    {"literal", "variable", "no escape", "section", "inverted section", "end", "set delimiter"}
)
# Helpers that take an argument at the start of their inner text, checked at compile time.
_HELPER_ARGS: Mapping[str, tuple[re.Pattern[str], str]] = {
    "truncate": (re.compile(r"\s*\d+\s"), "{{#truncate}}80 {{summary}}{{/truncate}}"),
    "date": (re.compile(r"[^|]*\|"), "{{#date}}%Y-%m-%d %H:%M|{{startsAt}}{{/date}}"),
    "default": (re.compile(r"[^|{]*\|"), "{{#default}}unknown|{{labels.team}}{{/default}}"),
}


def compile_template(source: str, *, where: str) -> Tokens:
    """Tokenize and check a template once; the tokens are what render() takes.

    Raises TemplateError starting with ``where`` for a syntax error (with the line chevron
    reports), a partial (``{{> name}}``: nothing may be read from disk), or a helper used
    wrongly.
    """
    try:
        tokens: Tokens = tuple(chevron.tokenizer.tokenize(source))
    except chevron.tokenizer.ChevronError as exc:
        message = ", ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise TemplateError(f"{where}: Mustache syntax error: {message}") from None
    except (IndexError, ValueError):  # chevron trips over "{{}}" and "{{= =}}" this way
        raise TemplateError(f"{where}: Mustache syntax error: empty or malformed tag") from None
    open_sections: list[str] = []
    for i, (kind, key) in enumerate(tokens):
        if kind == "literal":
            continue
        if kind == "end":
            open_sections.pop()  # the tokenizer has checked that sections match
        elif kind in ("section", "inverted section"):
            # chevron ends a helper's text at the first {{/name}}, so the same helper inside
            # itself would cut the outer one short and unbalance the scopes after it.
            if key in HELPER_NAMES and key in open_sections:
                raise TemplateError(f"{where}: {key} cannot be used inside {key}")
            open_sections.append(key)
        if kind == "partial":
            raise TemplateError(f"{where}: partials ({{{{> {key}}}}}) are not supported")
        if kind not in _KNOWN_TOKENS:
            tag = "{{{" + key + "}}}"
            raise TemplateError(f"{where}: malformed tag {tag[:-1]}: expected {tag}")
        if not key:
            raise TemplateError(f"{where}: empty tag {{{{ }}}}")
        if kind in ("variable", "no escape") and key in HELPER_NAMES:
            usage = "{{#" + key + "}}...{{/" + key + "}}"
            raise TemplateError(f"{where}: {key} is a helper; use it as a section: {usage}")
        if kind == "section" and key in _HELPER_ARGS:
            pattern, usage = _HELPER_ARGS[key]
            following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
            if not (following[0] == "literal" and pattern.match(following[1])):
                raise TemplateError(f"{where}: {key} needs its argument first: {usage}")
    return tokens


_MISSING: Any = object()


def _get_key(key: str, scopes: list[Any], warn: bool = False) -> Any:
    """chevron.renderer._get_key without its getattr fallback.

    chevron falls back to getattr() when a scope is not a dict, so inside a section over a
    string, {{title}} or {{index}} resolve to str methods (rendered as "<built-in method ...>")
    and {{#upper}} calls str.upper(text, render) and crashes. Here only dicts (and list indexes,
    "alerts.0.status") are looked into; the rest of chevron's rules are kept: the innermost
    scope that has the whole dotted path wins, 0 and False are returned as they are, other
    falsy values and misses become "".
    """
    if key == ".":
        return scopes[0]
    if "." not in key:  # the common case, kept fast: render time is mostly key lookups
        for scope in scopes:
            if isinstance(scope, dict):
                value = scope.get(key, _MISSING)
                if value is not _MISSING:
                    return value if value in (0, False) else (value or "")
        return ""
    path = key.split(".")
    for scope in scopes:
        value = scope
        for part in path:
            if isinstance(value, dict):
                value = value.get(part, _MISSING)
            elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                value = _MISSING
            if value is _MISSING:
                break
        else:
            return value if value in (0, False) else (value or "")
    return ""


def render(tokens: Tokens, view: dict[str, Any], fmt: str, *, markup: str = "none") -> str:
    """Render compiled tokens against a view, escaping ``{{x}}`` for ``fmt``.

    With a ``markup`` other than "none" (MARKUPS), values are first escaped for that markup
    (Telegram's HTML, Slack's mrkdwn) and then for the format, while the template's own text
    is left alone: ``<b>{{alertname}}</b>`` stays bold and a ``<`` in the alert name cannot
    open a tag. The helpers for ``fmt`` are the outermost scope, so they are visible
    everywhere. ``{{{x}}}`` and ``{{& x}}`` insert the value unescaped: unsafe in json, xml,
    form and query templates unless the value is known to be safe there.
    """
    escape = ESCAPERS.get(fmt)
    if escape is None:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    markup_escape = MARKUP_ESCAPERS.get(markup)
    if markup_escape is None:
        raise ValueError(f"unknown markup {markup!r}; expected one of {', '.join(MARKUPS)}")
    if markup_escape is not _identity:
        format_escape = escape

        def escape(text: str) -> str:
            return format_escape(markup_escape(text))

    return _render(tokens, view, escape, _HELPERS[fmt])


def render_value(tokens: Tokens, view: dict[str, Any], escape: Escaper) -> str:
    """Render a URL or header template: every ``{{x}}`` through ``escape``
    (url_value_escape, header_value_escape), helpers as in text templates."""
    return _render(tokens, view, escape, _HELPERS["text"])


def _render(
    tokens: Tokens, view: dict[str, Any], escape: Escaper, helpers: Mapping[str, Helper]
) -> str:
    # Rationale: chevron escapes every {{x}} through the module-level function
    # chevron.renderer._html_escape and offers no parameter or hook for another escaper, so we
    # swap that function (and, for the reason in _get_key, its key lookup) for the duration of
    # this call. This is safe because chevron.render is synchronous (no checkpoint can
    # interleave another render) and the daemon runs one thread (trio); `finally` restores
    # both even when the render raises. If rendering ever moves to worker threads, this needs
    # a lock or a chevron fork.
    saved_escape, saved_get_key = chevron.renderer._html_escape, chevron.renderer._get_key
    chevron.renderer._html_escape = escape
    chevron.renderer._get_key = _get_key
    try:
        # chevron skips everything when the first of several scopes is falsy: an empty view.
        scopes = [view, helpers] if view else [helpers]
        output = chevron.render(tokens, partials_path=None, scopes=scopes)
    finally:
        chevron.renderer._html_escape = saved_escape
        chevron.renderer._get_key = saved_get_key
        if len(chevron.renderer.g_token_cache) > CHEVRON_LAMBDA_CACHE_MAX:
            chevron.renderer.g_token_cache.clear()
    return str(output)


# ---------------------------------------------------------------------------------------
# Cache


class CacheStats(msgspec.Struct, frozen=True, kw_only=True):
    hits: int
    misses: int
    size: int
    evictions: int  # entries dropped, for either reason below
    expirations: int  # of those, dropped because unused for ttl_s; the rest because it was full


class TemplateCache:
    """Memoized compile_template: template source -> tokens.

    Bounded to ``max_size`` entries (least recently used evicted first); an entry unused for
    ``ttl_s`` seconds expires. No background task: the daemon calls cleanup() periodically.
    """

    def __init__(
        self,
        *,
        max_size: int = 256,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        self._max_size = max_size
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Tokens, float]] = OrderedDict()  # -> last use
        self._hits = self._misses = self._evictions = self._expirations = 0

    def get(self, source: str, *, where: str) -> Tokens:
        """The tokens of ``source``, compiled on a miss. A failed compile is not cached."""
        now = self._clock()
        entry = self._entries.get(source)
        if entry is not None:
            if now - entry[1] < self._ttl_s:
                self._hits += 1
                self._entries[source] = (entry[0], now)
                self._entries.move_to_end(source)
                return entry[0]
            del self._entries[source]
            self._expirations += 1
        self._misses += 1
        tokens = compile_template(source, where=where)
        self._entries[source] = (tokens, now)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)
            self._evictions += 1
        return tokens

    def cleanup(self) -> int:
        """Drop expired entries; return how many."""
        now = self._clock()
        expired = [src for src, (_, used) in self._entries.items() if now - used >= self._ttl_s]
        for source in expired:
            del self._entries[source]
        self._expirations += len(expired)
        return len(expired)

    def statistics(self) -> CacheStats:
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            size=len(self._entries),
            evictions=self._evictions + self._expirations,
            expirations=self._expirations,
        )


# ---------------------------------------------------------------------------------------
# View model
#
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


# ---------------------------------------------------------------------------------------
# Built-in templates, used when a destination has none. Each renders a valid body for its
# format from any payload (tests/test_templates.py renders every sample through each).

_DEFAULT_JSON = """\
{
  "receiver": "{{receiver}}",
  "status": "{{status}}",
  "title": "{{title}}",
  "groupKey": "{{groupKey}}",
  "externalURL": "{{externalURL}}",
  "truncatedAlerts": {{truncatedAlerts}},
  "part": {"number": {{part.number}}, "count": {{part.count}}},
  "groupLabels": { {{#group_label_list}}"{{name}}": "{{value}}"{{^last}}, {{/last}}\
{{/group_label_list}} },
  "commonLabels": { {{#common_label_list}}"{{name}}": "{{value}}"{{^last}}, {{/last}}\
{{/common_label_list}} },
  "alerts": [
{{#alerts}}
    {
      "status": "{{status}}",
      "alertname": "{{alertname}}",
      "severity": "{{severity}}",
      "summary": "{{summary}}",
      "description": "{{description}}",
      "labels": { {{#label_list}}"{{name}}": "{{value}}"{{^last}}, {{/last}}{{/label_list}} },
      "annotations": { {{#annotation_list}}"{{name}}": "{{value}}"{{^last}}, {{/last}}\
{{/annotation_list}} },
      "startsAt": "{{startsAt}}",
      "endsAt": "{{endsAt}}",
      "duration": "{{duration}}",
      "generatorURL": "{{generatorURL}}",
      "fingerprint": "{{fingerprint}}"
    }{{^last}},{{/last}}
{{/alerts}}
  ]
}
"""

_DEFAULT_TEXT = """\
{{title}}
{{#alerts}}
{{number}}. [{{status}}]{{#severity}} {{severity}}{{/severity}} {{alertname}}: {{summary}}\
{{#labels.instance}} ({{labels.instance}}){{/labels.instance}} since {{startsAt}} for {{duration}}
{{/alerts}}
{{#has_more}}
+{{more_count}} more
{{/has_more}}
"""

_DEFAULT_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<notification receiver="{{receiver}}" status="{{status}}" part="{{part.number}}" \
parts="{{part.count}}">
  <title>{{title}}</title>
  <groupKey>{{groupKey}}</groupKey>
  <externalURL>{{externalURL}}</externalURL>
  <truncatedAlerts>{{truncatedAlerts}}</truncatedAlerts>
  <groupLabels>
{{#group_label_list}}
    <label name="{{name}}">{{value}}</label>
{{/group_label_list}}
  </groupLabels>
  <alerts>
{{#alerts}}
    <alert status="{{status}}" fingerprint="{{fingerprint}}">
      <labels>
{{#label_list}}
        <label name="{{name}}">{{value}}</label>
{{/label_list}}
      </labels>
      <annotations>
{{#annotation_list}}
        <annotation name="{{name}}">{{value}}</annotation>
{{/annotation_list}}
      </annotations>
      <startsAt>{{startsAt}}</startsAt>
      <endsAt>{{endsAt}}</endsAt>
      <duration>{{duration}}</duration>
      <generatorURL>{{generatorURL}}</generatorURL>
    </alert>
{{/alerts}}
  </alerts>
</notification>
"""

# form and query: a flat JSON object (see formats.py). The message is truncated so that a
# storm of alerts cannot produce a URL that servers refuse; inside the truncate section the
# newline is a real one, because a helper's whole result is escaped.
_DEFAULT_FIELDS = """\
{
  "status": "{{status}}",
  "title": "{{title}}",
  "alertname": "{{alertname}}",
  "severity": "{{severity}}",
  "alerts": {{alerts_count}},
  "firing": {{firing_count}},
  "resolved": {{resolved_count}},
  "groupKey": "{{groupKey}}",
  "externalURL": "{{externalURL}}",
  "message": "{{#truncate}}1000 {{#alerts}}[{{status}}] {{summary}}{{^last}}
{{/last}}{{/alerts}}{{/truncate}}"
}
"""

# json_stream: one JSON object per alert, one after another (Splunk HEC's batch shape).
_DEFAULT_JSON_STREAM = """\
{{#alerts}}
{"time": {{startsAt_unix}}, "event": {"status": "{{status}}", "alertname": "{{alertname}}", \
"severity": "{{severity}}", "summary": "{{summary}}", "labels": { {{#label_list}}"{{name}}": \
"{{value}}"{{^last}}, {{/last}}{{/label_list}} }, "fingerprint": "{{fingerprint}}", \
"groupKey": "{{groupKey}}"}}
{{/alerts}}
"""

DEFAULT_TEMPLATES: dict[str, str] = {
    "json": _DEFAULT_JSON,
    "text": _DEFAULT_TEXT,
    "xml": _DEFAULT_XML,
    "form": _DEFAULT_FIELDS,
    "query": _DEFAULT_FIELDS,
    "json_stream": _DEFAULT_JSON_STREAM,
}
