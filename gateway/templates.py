"""templates.py: Mustache templates — compile, cache and render with format-aware escaping.

Owns: tokenizing a template once (which validates it), the memoized token cache, rendering
tokens against a view with the format's escaper, and wiring the helper lambdas into chevron.
It is the only module that imports chevron, so every workaround of chevron's quirks lives
here: escaping has no hook, lookups fall back to getattr (so str methods leak into templates),
and lambdas receive re-assembled template text.
Must not: encode or check bodies (formats.py does, after rendering), read anything from disk
(partials are refused), decide how alerts are split into parts (dispatch.py passes the part
in), or know about destinations and HTTP.

The pieces that need no chevron live next door and are re-exported here, so callers import
everything template-related from this module: escaping.py (the escapers), template_helpers.py
(what each helper does to its text), view.py (build_view) and default_templates.py.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring
from typing import Any

import chevron
import chevron.renderer
import chevron.tokenizer
import msgspec

from .default_templates import DEFAULT_TEMPLATES
from .errors import TemplateError
from .escaping import (
    ESCAPERS,
    FORMATS,
    LITERAL_ESCAPERS,
    MARKUP_ESCAPERS,
    MARKUPS,
    Escaper,
    header_value_escape,
    identity,
    url_value_escape,
)
from .template_helpers import ELLIPSIS, HELPER_ARGS, TRANSFORMS
from .view import (
    OTHER_COLOR,
    RESOLVED_COLOR,
    SEVERITY_COLORS,
    build_view,
    human_duration,
    labels_text,
    silence_url,
)

# What callers import from here (some of it defined in the modules above).
__all__ = [
    "CHEVRON_LAMBDA_CACHE_MAX",
    "DEFAULT_TEMPLATES",
    "ELLIPSIS",
    "ESCAPERS",
    "FORMATS",
    "HELPER_NAMES",
    "MARKUPS",
    "MARKUP_ESCAPERS",
    "OTHER_COLOR",
    "RESOLVED_COLOR",
    "SEVERITY_COLORS",
    "CacheStats",
    "Escaper",
    "Helper",
    "TemplateCache",
    "Tokens",
    "build_view",
    "compile_template",
    "header_value_escape",
    "human_duration",
    "labels_text",
    "render",
    "render_value",
    "silence_url",
    "url_value_escape",
]

Tokens = tuple[tuple[str, str], ...]
# chevron calls a lambda as fn(inner_template_text, render) and inserts its result unescaped.
Helper = Callable[[str, Callable[[str], str]], str]

# chevron keeps the tokens of every lambda section it meets in a module-level dict that it never
# prunes; templates submitted through the render-preview API could grow it without bound. It is
# only a cache (each entry is rewritten right before its lambda runs), so clearing it between
# renders is safe.
CHEVRON_LAMBDA_CACHE_MAX = 1024

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
    chevron.renderer._html_escape = identity
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
        return literal if outer is identity else literal_escape(literal)

    return helper


def _build_helpers(fmt: str) -> dict[str, Helper]:
    helpers = {name: _transform_helper(transform) for name, transform in TRANSFORMS.items()}
    helpers["json"] = _json_helper(LITERAL_ESCAPERS[fmt])
    return helpers


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
        if kind == "section" and key in HELPER_ARGS:
            pattern, usage = HELPER_ARGS[key]
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
    if markup_escape is not identity:
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
