"""formats.py: a rendered template becomes a request body (or URL) for one of the five formats.

Owns: checking that rendered output is valid for its format before anything is sent (a JSON
body must parse; an XML body must parse and declare no DTD or entities), the form/query
convention (the template renders a flat JSON object whose members become fields), and the
content type of each format.
Must not: render templates (templates.py), know destinations or their names (the caller adds
the destination to error messages), or send anything (delivery.py).

    format  body                                  content type
    json    the rendered text, checked            application/json
    xml     the rendered text, checked            application/xml
    text    the rendered text                     text/plain; charset=utf-8
    form    fields, url-encoded                   application/x-www-form-urlencoded
            (with method GET: in the URL, as an HTML form does)
    query   none: fields appended to the URL      none
    json_stream  one or more JSON values one      application/json
            after another, each checked (Splunk HEC's batch: concatenated event objects)
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import msgspec

from .errors import TemplateError

JSON_CONTENT_TYPE = "application/json"
XML_CONTENT_TYPE = "application/xml"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

EXCERPT_CHARS = 80  # at most this much of the offending output goes into an error message


class Encoded(msgspec.Struct, frozen=True):
    url: str
    body: bytes | None
    content_type: str | None


Scalar = str | int | float | bool | None
Fields = dict[str, Scalar | list[Scalar]]

_JSON_DECODER = msgspec.json.Decoder()
# A flat object: scalars, or lists of scalars for repeated keys. Anything nested is an error
# (_shape_problem names the member, which msgspec's "$[...]" path does not).
_FIELDS_DECODER = msgspec.json.Decoder(Fields)
_BYTE_POSITION = re.compile(r"\(byte (\d+)\)")
# A DTD can define entities that expand without bound ("billion laughs") or refer to files;
# a notification never needs one.
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def encode(fmt: str, rendered: str, *, method: str, url: str) -> Encoded:
    """Check ``rendered`` for ``fmt`` and build what is sent. Raises TemplateError naming the
    format, the parser's message and a short excerpt of the output around the error."""
    if fmt == "query":
        return Encoded(url=_with_query(url, _fields(fmt, rendered)), body=None, content_type=None)
    if fmt == "form":
        fields = _fields(fmt, rendered)
        if method.upper() == "GET":
            return Encoded(url=_with_query(url, fields), body=None, content_type=None)
        return Encoded(
            url=url, body=urlencode(fields).encode("ascii"), content_type=FORM_CONTENT_TYPE
        )
    body = _utf8(fmt, rendered)
    if fmt == "json":
        _check_json(body)
        return Encoded(url=url, body=body, content_type=JSON_CONTENT_TYPE)
    if fmt == "xml":
        _check_xml(body)
        return Encoded(url=url, body=body, content_type=XML_CONTENT_TYPE)
    if fmt == "text":
        return Encoded(url=url, body=body, content_type=TEXT_CONTENT_TYPE)
    if fmt == "json_stream":
        split_stream(body)
        return Encoded(url=url, body=body, content_type=JSON_CONTENT_TYPE)
    raise ValueError(f"unknown format {fmt!r}")


def _utf8(fmt: str, rendered: str) -> bytes:
    try:
        return rendered.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate; payload decoding normally rejects it
        raise TemplateError(
            f"{fmt} output is not valid UTF-8: {exc.reason} near {_excerpt(rendered, exc.start)}"
        ) from None


def _check_json(body: bytes) -> None:
    try:
        _JSON_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise TemplateError(
            f"json output is not valid JSON: {_decode_message(exc, body)}"
        ) from None


_STREAM_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"\s*")


def split_stream(body: bytes) -> list[object]:
    """The JSON values of a json_stream body (at least one; only whitespace between them).
    Raises TemplateError like a json body that does not parse."""
    text = body.decode("utf-8")
    values: list[object] = []
    pos = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    while pos < len(text):
        try:
            value, end = _STREAM_DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise TemplateError(
                f"json_stream output is not a sequence of JSON values: {exc.msg} near "
                f"{_excerpt(text, exc.pos)}"
            ) from None
        values.append(value)
        pos = _SPACE.match(text, end).end()  # type: ignore[union-attr]
    if not values:
        raise TemplateError("json_stream output is empty: expected at least one JSON value")
    return values


def _check_xml(body: bytes) -> None:
    dtd = _DTD.search(body)
    if dtd is not None:
        raise TemplateError(
            "xml output must not contain DTD or entity declarations near "
            f"{_excerpt_bytes(body, dtd.start())}"
        )
    try:
        # Parsing the bytes (not the str) checks them as sent, declared encoding included.
        ET.fromstring(body)
    except ET.ParseError as exc:
        line, column = exc.position
        text = body.decode("utf-8", errors="replace")
        lines = text.split("\n")
        offset = sum(len(x) + 1 for x in lines[: line - 1]) + column
        message = str(exc)
        raise TemplateError(
            f"xml output is not well-formed: {message} near {_excerpt(text, offset)}"
        ) from None


def _fields(fmt: str, rendered: str) -> list[tuple[str, str]]:
    """The JSON object a form/query template renders, as (name, value) pairs in order: lists
    repeat their key, None (and None in a list) is left out, booleans are true/false."""
    body = _utf8(fmt, rendered)
    try:
        fields = _FIELDS_DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise TemplateError(
            f"{fmt} output must be a JSON object of strings, numbers, booleans, null or lists "
            f"of those (see docs/templates.md): {_shape_problem(body) or exc}"
        ) from None
    except msgspec.DecodeError as exc:
        raise TemplateError(
            f"{fmt} output is not valid JSON: {_decode_message(exc, body)}"
        ) from None
    pairs: list[tuple[str, str]] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else (value,):
            if item is None:
                continue
            if isinstance(item, bool):
                pairs.append((name, "true" if item else "false"))
            else:
                pairs.append((name, str(item)))
    return pairs


def _shape_problem(body: bytes) -> str | None:
    """Which member is nested (msgspec's path stops at ``$[...]`` for dict values)."""
    value = _JSON_DECODER.decode(body)
    if not isinstance(value, dict):
        return f"got {_json_kind(value)}"
    for name, member in value.items():
        for item in member if isinstance(member, list) else (member,):
            if isinstance(item, dict | list):
                where = "a list in member" if isinstance(member, list) else "member"
                return f"{where} {name!r} holds {_json_kind(item)}"
    return None


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "null" if value is None else "a number"


def _with_query(url: str, fields: list[tuple[str, str]]) -> str:
    """``url`` with ``fields`` appended to its query string; what is there is kept verbatim."""
    if not fields:
        return url
    # %20 rather than "+" for spaces: every server decodes %20 in a URL, not every one "+".
    added = urlencode(fields, quote_via=quote)
    parts = urlsplit(url)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))


def _decode_message(exc: msgspec.DecodeError, body: bytes) -> str:
    message = str(exc)
    match = _BYTE_POSITION.search(message)
    if match is not None:
        return f"{message} near {_excerpt_bytes(body, int(match[1]))}"
    if message == "Input data was truncated":  # msgspec's word for "ended too early"
        return f"{message} (it ends too early) near {_excerpt_bytes(body, len(body))}"
    return message


def _excerpt_bytes(body: bytes, position: int) -> str:
    before = body[:position].decode("utf-8", errors="replace")
    return _excerpt(before + body[position:].decode("utf-8", errors="replace"), len(before))


def _excerpt(text: str, position: int) -> str:
    """At most EXCERPT_CHARS of ``text`` around ``position``, quoted, newlines visible."""
    half = EXCERPT_CHARS // 2
    start = max(0, min(position - half, len(text) - EXCERPT_CHARS))
    piece = text[start : start + EXCERPT_CHARS]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + EXCERPT_CHARS < len(text) else ""
    return f"{prefix}{piece!r}{suffix}"
