"""Every preset against every payload: the requests it produces have the service's documented
shape (tests/support/service_shapes.py), fit the service's limits after splitting, carry every
alert exactly once, and say what a person on call needs (status colour, alert names, links,
"+N more")."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway import config, presets, preview, runtime
from gateway.alertmanager import Payload, decode
from gateway.formats import split_stream
from support import service_shapes as shapes

jsonschema = pytest.importorskip("jsonschema", reason="pip install -e '.[dev]' (jsonschema)")

DATA = Path(__file__).parent / "data"
ROUTING_KEY = "R" * 32

# name -> (destination keys, schema)
PRESETS: dict[str, tuple[str, Any]] = {
    "slack": ('url: "https://hooks.slack.com/services/T0/B0/XX"', shapes.SLACK),
    "teams": ('url: "https://prod.example.logic.azure.com/workflows/1/run"', shapes.TEAMS),
    "discord": ('url: "https://discord.com/api/webhooks/1/tok"', shapes.DISCORD),
    "telegram": (
        'params: {bot_token: "123456:ABC-def_1", chat_id: "-1001234567890"}',
        shapes.TELEGRAM,
    ),
    "google_chat": (
        'url: "https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=t"',
        shapes.GOOGLE_CHAT,
    ),
    "mattermost": ('url: "https://mm.example.com/hooks/abc"', shapes.MATTERMOST),
    "rocketchat": ('url: "https://rc.example.com/hooks/abc/def"', shapes.ROCKETCHAT),
    "pagerduty": (f'params: {{routing_key: "{ROUTING_KEY}"}}', shapes.PAGERDUTY),
    "opsgenie": ('params: {api_key: "0000-key"}', None),  # create or close, by URL
    "splunk_hec": (
        'url: "https://splunk.example.com:8088/services/collector/event"\n'
        '    params: {token: "hec-token"}',
        shapes.SPLUNK_EVENT,
    ),
    "ntfy": ("params: {topic: ops-alerts}", shapes.NTFY),
    "webhook": ('url: "http://127.0.0.1:9/alerts"', shapes.WEBHOOK),
}
CHAT = {"slack", "teams", "discord", "telegram", "google_chat", "mattermost", "rocketchat", "ntfy"}


def config_text() -> str:
    lines = ["destinations:"]
    for name, (keys, _) in PRESETS.items():
        lines += [f"  - name: {name}", f"    preset: {name}", f"    {keys}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def rt() -> runtime.Runtime:
    return runtime.build(config.load_text(config_text(), environ={}), clients=False)


def payloads() -> dict[str, Payload]:
    found = {f"data/{p.name}": decode(p.read_bytes()) for p in sorted(DATA.glob("*.json"))}
    found.update({f"sample/{n}": p for n, p in runtime.builtin_samples().items()})
    return found


PAYLOADS = payloads()


def test_every_shipped_preset_is_tested() -> None:
    assert set(presets.names()) == set(PRESETS)


def decoded_bodies(name: str, shown: dict[str, Any]) -> list[Any]:
    bodies = []
    for req in shown["requests"]:
        raw = req["body"].encode()
        bodies.append(split_stream(raw) if name == "splunk_hec" else json.loads(raw))
    return bodies


def check_shape(name: str, url: str, body: Any, payload: Payload) -> None:
    schema = PRESETS[name][1]
    if name == "opsgenie":
        path = urlsplit(url).path
        if payload.status == "resolved":
            assert path.endswith("/close") and "identifierType=alias" in url
            schema = shapes.OPSGENIE_CLOSE
        else:
            assert path == "/v2/alerts"
            schema = shapes.OPSGENIE_CREATE
    if name == "splunk_hec":
        for event in body:
            jsonschema.validate(event, shapes.SPLUNK_EVENT)
        return
    jsonschema.validate(body, schema)
    if name == "discord":
        assert shapes.discord_total_chars(body) <= 6000
    if name == "telegram":
        assert shapes.telegram_html_problems(body["text"]) == []


@pytest.mark.parametrize("payload_name", sorted(PAYLOADS))
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_renders_the_service_shape(
    rt: runtime.Runtime, name: str, payload_name: str
) -> None:
    payload = PAYLOADS[payload_name]
    shown = preview.preview(rt, name, payload)
    # Every alert exactly once, in order, however the limits split the notification.
    assert [fp for r in shown["requests"] for fp in r["alerts"]] == [
        a.fingerprint for a in payload.alerts
    ]
    bodies = decoded_bodies(name, shown)
    for req, body in zip(shown["requests"], bodies, strict=True):
        assert req["method"] == "POST"
        check_shape(name, req["url"], body, payload)
        if name == "teams":
            assert req["body_bytes"] <= shapes.TEAMS_MAX_BYTES
    text = "\n".join(r["body"] for r in shown["requests"])
    if name in CHAT and "hostile" not in payload_name:
        for alert in payload.alerts:  # every alert is visible by its name and instance
            assert alert.labels["alertname"] in text
            assert alert.labels.get("instance", "") in text
    if name in CHAT and payload.truncatedAlerts:
        assert f"+{payload.truncatedAlerts} more" in text
    if name in CHAT - {"ntfy"} and payload.externalURL and payload.status == "firing":
        assert "/#/silences/new?filter=%7B" in text


def test_splunk_sends_one_event_per_alert_in_one_request(rt: runtime.Runtime) -> None:
    payload = PAYLOADS["data/storm-250-alerts.json"]
    shown = preview.preview(rt, "splunk_hec", payload)
    assert len(shown["requests"]) == 1
    events = split_stream(shown["requests"][0]["body"].encode())
    assert [e["event"]["fingerprint"] for e in events] == [a.fingerprint for a in payload.alerts]
    assert shown["requests"][0]["headers"]["Authorization"] == "Splunk ***"


@pytest.mark.parametrize(
    ("payload_name", "color"),
    [
        ("data/firing-single.json", "#e8a317"),  # warning
        ("data/firing-group-unicode.json", "#d63232"),  # critical
        ("data/resolved-single.json", "#2eb886"),
        ("sample/resolved.json", "#2eb886"),
    ],
)
def test_slack_colour_follows_status_and_severity(
    rt: runtime.Runtime, payload_name: str, color: str
) -> None:
    body = json.loads(preview.preview(rt, "slack", PAYLOADS[payload_name])["requests"][0]["body"])
    assert body["attachments"][0]["color"] == color


def test_pagerduty_triggers_and_resolves_the_same_incident(rt: runtime.Runtime) -> None:
    firing = json.loads(
        preview.preview(rt, "pagerduty", PAYLOADS["data/firing-single.json"])["requests"][0]["body"]
    )
    resolved_payload = PAYLOADS["data/resolved-single.json"]
    resolved = json.loads(preview.preview(rt, "pagerduty", resolved_payload)["requests"][0]["body"])
    assert firing["event_action"] == "trigger" and resolved["event_action"] == "resolve"
    assert firing["payload"]["severity"] == "warning"
    assert PAYLOADS["data/firing-single.json"].groupKey == resolved_payload.groupKey
    assert firing["dedup_key"] == resolved["dedup_key"]
    # Alertmanager's own PagerDuty integration uses the SHA-256 of the group key.
    key = PAYLOADS["data/firing-single.json"].groupKey
    assert firing["dedup_key"] == hashlib.sha256(key.encode()).hexdigest()


def test_pagerduty_severity_map_is_overridden_key_by_key() -> None:
    text = f"""
destinations:
  - name: pd
    preset: pagerduty
    params:
      routing_key: "{ROUTING_KEY}"
      severity_map: {{critical: warning}}
"""
    rt = runtime.build(config.load_text(text, environ={}), clients=False)
    group = PAYLOADS["data/firing-group-unicode.json"]
    assert group.alerts[0].labels["severity"] == "critical"
    body = json.loads(preview.preview(rt, "pd", group)["requests"][0]["body"])
    assert body["payload"]["severity"] == "warning"  # overridden
    single = PAYLOADS["data/firing-single.json"]
    body = json.loads(preview.preview(rt, "pd", single)["requests"][0]["body"])
    assert body["payload"]["severity"] == "warning"  # the preset's other entries are kept
    hostile = PAYLOADS["sample/hostile-characters.json"]
    assert hostile.commonLabels.get("severity") is None
    body = json.loads(preview.preview(rt, "pd", hostile)["requests"][0]["body"])
    assert body["payload"]["severity"] == "warning"  # first alert's (critical), mapped


def test_telegram_escapes_alert_data_but_keeps_its_own_markup(rt: runtime.Runtime) -> None:
    shown = preview.preview(rt, "telegram", PAYLOADS["sample/hostile-characters.json"])
    text = json.loads(shown["requests"][0]["body"])["text"]
    assert "<b>" in text  # the template's bold
    assert "Hostile&lt;/b&gt;&lt;script&gt;" in text  # the alert's tags, inert
    assert "<script>" not in text
    assert "javascript:" not in text  # a non-http runbook never becomes a link
    # The bot token is the URL's secret: masked by shape even when typed into the YAML.
    assert shown["requests"][0]["url"] == "https://api.telegram.org/bot***/sendMessage"


@pytest.mark.parametrize(
    ("name", "shown_url"),
    [
        ("slack", "https://hooks.slack.com/services/***"),
        ("discord", "https://discord.com/api/webhooks/1/***"),
        ("mattermost", "https://mm.example.com/hooks/***"),
        ("google_chat", "https://chat.googleapis.com/v1/spaces/S/messages?key=***&token=***"),
    ],
)
def test_previews_mask_webhook_urls_whose_path_is_the_secret(
    rt: runtime.Runtime, name: str, shown_url: str
) -> None:
    shown = preview.preview(rt, name, PAYLOADS["data/firing-single.json"])
    assert shown["requests"][0]["url"] == shown_url
