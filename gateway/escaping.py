"""escaping.py: how a value is escaped where a template inserts it, for each format and markup.

Owns: the escaper of ``{{x}}`` for each output format (json, form, query, xml, text,
json_stream), the markup escapers applied before it (Telegram HTML, Slack mrkdwn), the escapers
of URL and header templates, and how the json helper's literal lands in each format.
Must not: import chevron or render anything (templates.py swaps these into chevron), or check
a rendered body (formats.py does).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring
from urllib.parse import quote

Escaper = Callable[[str], str]

FORMATS = ("json", "form", "query", "xml", "text", "json_stream")
# What a destination's text means to the service beyond its format: values are escaped for
# the markup first, then for the format (see MARKUP_ESCAPERS).
MARKUPS = ("none", "html", "slack")


def identity(text: str) -> str:
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
    "text": identity,
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
    "none": identity,
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
LITERAL_ESCAPERS: Mapping[str, Escaper] = {
    "json": identity,
    "form": identity,
    "query": identity,
    "xml": _xml_escape,
    "text": identity,
    "json_stream": identity,
}
