"""Templated URLs and headers: alert data lands percent-encoded in the path or query, and can
never change the scheme or host, add a path segment, a query, a fragment or a header line."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from gateway.targets import Targets
from support.app import build_problems, build_recording_app

HOSTILE = [
    "../../admin",
    "@evil.com",
    "?x=1",
    "#frag",
    "a/b",
    "..",
    "x\r\nHost: evil",
    "%2e%2e",
    "é ✓",
]


def view(value: str) -> dict[str, object]:
    return {"labels": {"v": value}, "v": value}


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_stays_one_path_segment_on_the_configured_host(value: str) -> None:
    targets = Targets("https://api.example.com/v2/{{labels.v}}/close?id={{v}}&t=1", {})
    url = targets.render_url(view(value))
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "api.example.com")
    segments = parts.path.split("/")
    assert segments[:3] == ["", "v2", segments[2]] and segments[3] == "close" and len(segments) == 4
    assert unquote(segments[2]) == value  # arrives intact once decoded
    assert parts.query.startswith("id=") and parts.query.endswith("&t=1")
    assert parts.query.count("&") == 1 and not parts.fragment
    assert ".." not in url  # dots are encoded too, so no dot segment can form
    httpx.URL(url)  # and httpx accepts it as it is


def test_a_host_from_a_template_is_refused_at_load() -> None:
    assert build_problems("destinations:\n  - name: d\n    url: 'https://{{labels.host}}/x'\n") == [
        "destinations[0].url: the scheme and host of a URL template must be written literally"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com{{#v}}.evil.com{{/v}}/x",
        "{{scheme}}://api.example.com/x",
        "https://{{#v}}user@{{/v}}api.example.com/x",
    ],
)
def test_any_tag_in_the_scheme_or_host_is_refused(url: str) -> None:
    assert [key for key, _ in Targets(url, {}).problems] == ["url"]


def test_header_values_lose_control_characters_and_carry_unicode_encoded() -> None:
    targets = Targets("http://x/", {"X-Alert": "{{v}}", "X-Fixed": "a"})
    headers = targets.render_headers({"X-Alert": "{{v}}", "X-Fixed": "a"}, view("a\r\nEvil: 1"))
    assert headers == {"X-Alert": "a  Evil: 1", "X-Fixed": "a"}
    headers = targets.render_headers({"X-Alert": "{{v}}"}, view("Ünï"))
    assert headers["X-Alert"] == "=?UTF-8?B?" + base64.b64encode("Ünï".encode()).decode() + "?="
    httpx.Request("GET", "http://x/", headers=headers)


async def test_templated_url_and_header_reach_the_destination() -> None:
    built, seen = build_recording_app(
        """
destinations:
  - name: d
    url: "http://sink.test/alerts/{{commonLabels.alertname}}?instance={{#alert}}{{labels.instance}}{{/alert}}"
    split_alerts: true
    headers: {X-Status: "{{status}}/{{alert.status}}"}
    template: '{"fp": "{{alert.fingerprint}}"}'
"""
    )
    body = await (
        await built.app.test_client().post(
            "/webhook/d", data=(Path(__file__).parent / "data" / "mixed-status.json").read_bytes()
        )
    ).get_json()
    assert body["status"] == "success"
    assert [r.url.raw_path.decode() for r in seen] == [
        "/alerts/HighLatency?instance=api-1:8080",
        "/alerts/HighLatency?instance=api-2:8080",
        "/alerts/HighLatency?instance=api-3:8080",
    ]
    assert [r.headers["x-status"] for r in seen] == [
        "firing/firing",
        "firing/firing",
        "firing/resolved",
    ]
    assert [json.loads(r.content)["fp"] for r in seen] == [r["alerts"][0] for r in body["results"]]
