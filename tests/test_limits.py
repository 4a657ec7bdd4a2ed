"""Size limits: split first, truncate only what one alert alone makes too large, never drop.

Each strategy is driven through the real webhook path (the in-process app with a recording
transport), and the Telegram storm through a real loopback sink."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import trio

from gateway import config, runtime
from gateway.errors import ConfigError
from gateway.formats import split_stream
from gateway.limits import MARKER
from support import service_shapes as shapes
from support.app import Built, build_app
from support.sink import Sink

DATA = Path(__file__).parent / "data"
STORM = (DATA / "storm-250-alerts.json").read_bytes()
STORM_ALERTS = json.loads(STORM)["alerts"]
FPS_TEMPLATE = (
    '{"n": {{alerts_count}}, "fps": [{{#alerts}}"{{fingerprint}}"{{^last}},{{/last}}{{/alerts}}]}'
)


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.content)
        return httpx.Response(200)


def make(destination: str) -> tuple[Built, Recorder]:
    rec = Recorder()
    text = f"destinations:\n  - name: d\n    url: http://sink.test/\n{destination}"
    return build_app(text, httpx.MockTransport(rec)), rec


async def post(built: Built, body: bytes = STORM) -> Any:
    response = await built.app.test_client().post("/webhook/d", data=body)
    return response.status_code, await response.get_json()


def big_alert_payload(description_chars: int) -> bytes:
    payload = json.loads((DATA / "firing-single.json").read_bytes())
    payload["alerts"][0]["annotations"]["description"] = "x" * description_chars
    return json.dumps(payload).encode()


async def test_over_body_bytes_splits_every_alert_into_fitting_parts() -> None:
    built, rec = make(f"    template: '{FPS_TEMPLATE}'\n    limits: {{max_body_bytes: 2KiB}}\n")
    code, body = await post(built)
    assert code == 200
    assert len(rec.bodies) > 1 and all(len(b) <= 2048 for b in rec.bodies)
    sent = [fp for b in rec.bodies for fp in json.loads(b)["fps"]]
    assert sent == [a["fingerprint"] for a in STORM_ALERTS]  # each exactly once, in order
    # Alertmanager's answer names the parts, and the split is counted and logged.
    assert body["summary"]["total"] == len(rec.bodies)
    assert [fp for r in body["results"] for fp in r["alerts"]] == sent
    assert built.sample("gateway_limit_actions_total", destination="d", action="split") == 1
    assert 'msg="over size limits" destination=d' in built.log_text()


async def test_over_max_items_splits_lists() -> None:
    built, rec = make(
        f"    template: '{FPS_TEMPLATE}'\n    limits: {{max_items: 10, item_paths: [fps]}}\n"
    )
    assert (await post(built))[0] == 200
    sizes = [len(json.loads(b)["fps"]) for b in rec.bodies]
    assert sum(sizes) == 250 and max(sizes) <= 10


async def test_over_max_text_chars_splits_a_text_body() -> None:
    built, rec = make(
        "    format: text\n    limits: {max_text_chars: 1000}\n"
        '    template: "{{#alerts}}{{labels.instance}} {{summary}}\\n{{/alerts}}"\n'
    )
    assert (await post(built))[0] == 200
    texts = [b.decode() for b in rec.bodies]
    assert all(len(t) <= 1000 for t in texts)
    joined = "".join(texts)
    assert all(a["labels"]["instance"] in joined for a in STORM_ALERTS)


async def test_one_alert_too_large_is_truncated_with_a_marker() -> None:
    built, rec = make(
        '    template: \'{"summary": "{{alert.summary}}", "d": "{{#alerts}}{{description}}{{/alerts}}"}\'\n'
        "    limits: {max_text_chars: 500, text_paths: [d]}\n"
    )
    code, _ = await post(built, big_alert_payload(5000))
    assert code == 200
    (sent,) = rec.bodies
    doc = json.loads(sent)
    assert len(doc["d"]) <= 500 and doc["d"].endswith(MARKER)
    assert doc["summary"]  # other fields untouched
    assert built.sample("gateway_limit_actions_total", destination="d", action="truncate") == 1


async def test_body_bytes_truncate_cuts_the_longest_text_when_one_alert_is_too_big() -> None:
    built, rec = make(
        '    template: \'{"a": "{{#alerts}}{{description}}{{/alerts}}", "b": "short"}\'\n'
        "    limits: {max_body_bytes: 1000}\n"
    )
    assert (await post(built, big_alert_payload(20_000)))[0] == 200
    (sent,) = rec.bodies
    doc = json.loads(sent)
    assert len(sent) <= 1000 and doc["a"].endswith(MARKER) and doc["b"] == "short"


async def test_strategy_truncate_never_splits() -> None:
    built, rec = make(
        '    template: \'{"text": "{{#alerts}}{{summary}} {{/alerts}}"}\'\n'
        "    limits: {max_text_chars: 300, strategy: truncate}\n"
    )
    assert (await post(built))[0] == 200
    (sent,) = rec.bodies
    assert json.loads(sent)["text"].endswith(MARKER)


async def test_json_stream_is_split_by_its_number_of_values() -> None:
    built, rec = make("    format: json_stream\n    limits: {max_items: 100}\n")
    assert (await post(built))[0] == 200
    counts = [len(split_stream(b)) for b in rec.bodies]
    assert counts and max(counts) <= 100 and sum(counts) == 250


def check(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        runtime.build(config.load_text(text, environ={}), clients=False)
    return info.value.problems


def test_limits_that_cannot_be_met_fail_the_config_naming_sample_and_reason() -> None:
    problems = check(
        "destinations:\n  - name: tiny\n    url: http://x/\n    limits: {max_body_bytes: 20}\n"
    )
    assert len(problems) == 1
    assert problems[0].startswith("destinations[0].template: destination tiny, sample ")
    assert "over its limits" in problems[0]


def test_xml_cannot_be_truncated_so_an_unfittable_limit_fails_at_load() -> None:
    problems = check(
        "destinations:\n  - name: x\n    url: http://x/\n    format: xml\n"
        "    limits: {max_body_bytes: 300}\n"
    )
    assert "cannot be truncated" in problems[0] and "sample" in problems[0]


async def test_storm_to_telegram_arrives_as_several_valid_messages(sink: Sink) -> None:
    """250 alerts to a destination limited like Telegram: several messages, each a valid
    sendMessage body within 4096 characters, that together mention every alert."""
    built = build_app(
        f"""
destinations:
  - name: d
    preset: telegram
    url: "{sink.url}/bot{{{{params.bot_token}}}}/sendMessage"
    params: {{bot_token: "123:abc", chat_id: "42"}}
"""
    )
    try:
        with trio.fail_after(30):
            code, body = await post(built)
            assert code == 200, body
            received = await sink.wait_for(body["summary"]["total"])
    finally:
        await built.state.runtime.aclose()
    assert len(received) > 1
    assert {r.path for r in received} == {"/bot123:abc/sendMessage"}
    texts = []
    for request in received:
        doc = json.loads(request.body)
        shapes_problems = shapes.telegram_html_problems(doc["text"])
        assert shapes_problems == [] and len(doc["text"]) <= 4096 and doc["chat_id"] == "42"
        texts.append(doc["text"])
    joined = "\n".join(texts)
    for alert in STORM_ALERTS:
        assert alert["labels"]["instance"] in joined
    assert built.sample("gateway_deliveries_total", destination="d", outcome="success") == len(
        received
    )


async def test_form_fields_are_truncated_but_repeated_fields_are_never_rebuilt() -> None:
    built, rec = make(
        "    format: form\n    limits: {max_text_chars: 200}\n"
        '    template: \'{"d": "{{#alerts}}{{description}}{{/alerts}}", "t": "x"}\'\n'
    )
    assert (await post(built, big_alert_payload(1000)))[0] == 200
    (sent,) = rec.bodies
    fields = parse_qs(sent.decode())
    assert len(fields["d"][0]) <= 200 and fields["d"][0].endswith(MARKER) and fields["t"] == ["x"]
    problems = check(
        "destinations:\n  - name: f\n    url: http://x/\n    format: form\n"
        "    limits: {max_text_chars: 50}\n"
        '    template: \'{"tag": ["a", "{{#alerts}}{{description}}{{/alerts}}"]}\'\n'
    )
    assert "cannot be truncated" in problems[0]
