"""formats.py: each format's body, URL and content type, and refusals of invalid output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlsplit

import pytest

from gateway.errors import TemplateError
from gateway.formats import EXCERPT_CHARS, Encoded, encode

URL = "https://api.example.com/v1/notify"


def refusal(fmt: str, rendered: str) -> str:
    """The message of the TemplateError that encoding `rendered` as `fmt` must raise."""
    with pytest.raises(TemplateError) as info:
        encode(fmt, rendered, method="POST", url=URL)
    return str(info.value)


def test_json_body_is_the_rendered_text_as_utf8() -> None:
    rendered = '{"text": "Ünïcödé 🚨 \\"q\\"\\n<&>"}'
    enc = encode("json", rendered, method="POST", url=URL)
    assert enc == Encoded(url=URL, body=rendered.encode("utf-8"), content_type="application/json")
    assert json.loads(enc.body or b"")["text"] == 'Ünïcödé 🚨 "q"\n<&>'


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        ('{"a": 1,}', "trailing comma"),
        ('{"a": "line\nbreak"}', "invalid character"),
        ('{"a": ', "ends too early"),
        ('{"a": 1} extra', "trailing characters"),
    ],
)
def test_invalid_json_is_a_template_error(rendered: str, expected: str) -> None:
    message = refusal("json", rendered)
    assert message.startswith("json output is not valid JSON: ")
    assert expected in message
    assert "near " in message
    assert URL not in message


def test_error_excerpt_shows_the_neighbourhood_briefly() -> None:
    rendered = '{"padding": "' + "x" * 500 + '", "bad": tru, "more": "' + "y" * 500 + '"}'
    excerpt = refusal("json", rendered).split(" near ", 1)[1]
    assert '"bad": tru' in excerpt
    assert len(excerpt) <= EXCERPT_CHARS + 10  # quotes, ellipses and escapes aside
    assert excerpt.startswith("…") and excerpt.endswith("…")


def test_excerpt_counts_characters_not_bytes() -> None:
    rendered = '{"a": "日本語日本語日本語", "b": nope}'
    message = refusal("json", rendered)
    assert "nope" in message
    assert "\\x" not in message


def test_xml_body() -> None:
    rendered = '<?xml version="1.0" encoding="UTF-8"?>\n<a b="&quot;x&quot;">Ü &amp; 🚨</a>'
    enc = encode("xml", rendered, method="POST", url=URL)
    assert enc.content_type == "application/xml"
    assert enc.url == URL
    root = ET.fromstring(enc.body or b"")
    assert (root.text, root.get("b")) == ("Ü & 🚨", '"x"')


@pytest.mark.parametrize(
    "rendered",
    [
        '<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
        '<?xml version="1.0"?><!doctype a SYSTEM "file:///etc/passwd"><a/>',
        '<a><!ENTITY lol "lol"></a>',
    ],
)
def test_xml_with_a_dtd_is_refused(rendered: str) -> None:
    with pytest.raises(TemplateError, match=r"^xml output must not contain DTD"):
        encode("xml", rendered, method="POST", url=URL)


@pytest.mark.parametrize(
    ("rendered", "near"),
    [
        ("<a>\n  <b>x & y</b>\n</a>", "x & y"),
        ("<a>\n<b></a>", "</a>"),
        ("<a></a><b/>", "<b/>"),
        ("", ""),
    ],
)
def test_malformed_xml_is_a_template_error(rendered: str, near: str) -> None:
    message = refusal("xml", rendered)
    assert message.startswith("xml output is not well-formed: ")
    assert "line" in message
    assert near in message


def test_text_body() -> None:
    enc = encode("text", "[FIRING:1] Disk\n<&> 🚨", method="POST", url=URL)
    assert enc == Encoded(
        url=URL, body="[FIRING:1] Disk\n<&> 🚨".encode(), content_type="text/plain; charset=utf-8"
    )


def test_form_fields() -> None:
    rendered = json.dumps(
        {
            "title": "[FIRING:2] Ünï & co = 🚨",
            "count": 3,
            "ratio": 0.5,
            "urgent": True,
            "quiet": False,
            "skipped": None,
            "tag": ["a b", 1, None, "c"],
            "empty": "",
        }
    )
    enc = encode("form", rendered, method="POST", url=URL)
    assert enc.url == URL
    assert enc.content_type == "application/x-www-form-urlencoded"
    body = (enc.body or b"").decode("ascii")
    assert parse_qsl(body, keep_blank_values=True) == [
        ("title", "[FIRING:2] Ünï & co = 🚨"),
        ("count", "3"),
        ("ratio", "0.5"),
        ("urgent", "true"),
        ("quiet", "false"),
        ("tag", "a b"),
        ("tag", "1"),
        ("tag", "c"),
        ("empty", ""),
    ]
    assert "tag=a+b&tag=1&tag=c" in body


def test_form_with_get_goes_into_the_url_like_an_html_form() -> None:
    enc = encode("form", '{"a": "x y"}', method="GET", url=URL)
    assert enc == Encoded(url=URL + "?a=x%20y", body=None, content_type=None)


@pytest.mark.parametrize("fmt", ["form", "query"])
@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        ('{"ok": 1, "a": {"b": 1}}', "member 'a' holds an object"),
        ('{"a": [1, [1]]}', "a list in member 'a' holds an array"),
        ('["a", "b"]', "got an array"),
        ('"text"', "got a string"),
        ("3", "got a number"),
        ("null", "got null"),
    ],
)
def test_fields_must_be_a_flat_json_object(fmt: str, rendered: str, expected: str) -> None:
    message = refusal(fmt, rendered)
    assert message.startswith(f"{fmt} output must be a JSON object")
    assert expected in message


@pytest.mark.parametrize("fmt", ["form", "query"])
def test_fields_that_are_not_json_are_a_template_error(fmt: str) -> None:
    with pytest.raises(TemplateError, match=f"^{fmt} output is not valid JSON: .*near"):
        encode(fmt, "status=firing", method="POST", url=URL)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/p?a=1", "http://h/p?a=1&status=firing&msg=a%20b%26c%3Dd&n=2"),
        ("http://h/p", "http://h/p?status=firing&msg=a%20b%26c%3Dd&n=2"),
        ("http://h/p?", "http://h/p?status=firing&msg=a%20b%26c%3Dd&n=2"),
        (
            "http://h/p?a=1&a=%2F#frag",
            "http://h/p?a=1&a=%2F&status=firing&msg=a%20b%26c%3Dd&n=2#frag",
        ),
        ("http://u:pw@h:8080/p?x", "http://u:pw@h:8080/p?x&status=firing&msg=a%20b%26c%3Dd&n=2"),
    ],
)
def test_query_appends_to_the_existing_query_string(url: str, expected: str) -> None:
    rendered = '{"status": "firing", "msg": "a b&c=d", "n": 2}'
    for method in ("GET", "POST"):
        enc = encode("query", rendered, method=method, url=url)
        assert enc == Encoded(url=expected, body=None, content_type=None)


def test_query_with_unicode_and_repeated_keys() -> None:
    enc = encode("query", '{"t": ["Ü", "🚨"], "none": null}', method="GET", url=URL + "?a=1")
    assert enc.url == URL + "?a=1&t=%C3%9C&t=%F0%9F%9A%A8"
    assert parse_qsl(urlsplit(enc.url).query) == [("a", "1"), ("t", "Ü"), ("t", "🚨")]


def test_query_with_no_fields_leaves_the_url_alone() -> None:
    assert encode("query", '{"a": null}', method="GET", url=URL + "?x=1#f").url == URL + "?x=1#f"


def test_lone_surrogates_cannot_be_sent() -> None:
    with pytest.raises(TemplateError, match=r"^text output is not valid UTF-8"):
        encode("text", "a\ud800b", method="POST", url=URL)


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        encode("yaml", "a: 1", method="POST", url=URL)
