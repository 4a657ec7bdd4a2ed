"""targets.py: templated URLs and header values — where a request goes, safely.

Owns: compiling a destination's ``url`` and ``headers`` when they contain Mustache tags,
rendering them per part with values escaped for where they land (URL values percent-encoded,
dots included; header values without control characters), and the rule that the scheme and
host of a URL always come from the configuration, never from alert data: the URL template's
scheme and host must be literal text, and every rendered URL is checked against them.
Must not: render bodies (templates.py), encode bodies (formats.py) or send (delivery.py).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from . import templates
from .errors import TemplateError

TAG = "{{"


def _base(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _rfc2047(value: str) -> str:
    """HTTP header values are ASCII on the wire; anything else travels as an RFC 2047 encoded
    word (ntfy and mail-style APIs decode it; others at least receive it intact)."""
    if value.isascii():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


class Targets:
    """The compiled URL and header templates of one destination."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers
        self.problems: list[tuple[str, str]] = []  # (key, reason), for template_problems
        self.url_tokens: templates.Tokens | None = None
        self.base = _base(url) if url else ("", "")
        if TAG in url:
            scheme, netloc = self.base
            if TAG in scheme or TAG in netloc or not netloc:
                self.problems.append(
                    ("url", "the scheme and host of a URL template must be written literally")
                )
            else:
                self.url_tokens = self._compile(url, "url")
        self.header_tokens: dict[str, templates.Tokens] = {}
        for name, value in headers.items():
            if TAG in value:
                tokens = self._compile(value, f"headers.{name}")
                if tokens is not None:
                    self.header_tokens[name] = tokens

    def _compile(self, source: str, key: str) -> templates.Tokens | None:
        try:
            return templates.compile_template(source, where=key)
        except TemplateError as exc:
            self.problems.append((key, str(exc).removeprefix(f"{key}: ")))
            return None

    def render_url(self, view: dict[str, Any]) -> str:
        """The URL for one part. Raises TemplateError if it would leave the configured
        scheme and host (which escaped values cannot do; a template's own sections could)."""
        if self.url_tokens is None:
            return self.url
        url = templates.render_value(self.url_tokens, view, templates.url_value_escape).strip()
        try:
            base = _base(url)
        except ValueError:
            raise TemplateError("url template renders an invalid URL") from None
        if base != self.base:
            raise TemplateError(
                f"url template renders a URL whose scheme or host is not the configured "
                f"{self.base[0]}://{self.base[1].rpartition('@')[2]}"
            )
        return url

    def render_headers(self, headers: dict[str, str], view: dict[str, Any]) -> dict[str, str]:
        """``headers`` with every templated value rendered for this part."""
        if not self.header_tokens:
            return headers
        rendered = dict(headers)
        for name, tokens in self.header_tokens.items():
            value = templates.render_value(tokens, view, templates.header_value_escape)
            rendered[name] = _rfc2047(value.strip())
        return rendered
