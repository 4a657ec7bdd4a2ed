"""templates.py: compile, escaping per format, helpers, the view model, the cache, and every
shipped template (built-in defaults and config/*.yaml) against every sample payload."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qs, urlsplit

import chevron.renderer
import msgspec
import pytest
import yaml

from gateway import alertmanager
from gateway.config import Format
from gateway.errors import TemplateError
from gateway.formats import encode, split_stream
from gateway.templates import (
    DEFAULT_TEMPLATES,
    FORMATS,
    TemplateCache,
    build_view,
    compile_template,
    human_duration,
    render,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SAMPLES = sorted(DATA.glob("*.json"))
CONFIGS = [
    ROOT / "config" / "gateway.yaml",
    ROOT / "config" / "examples" / "slack.yaml",
    ROOT / "config" / "examples" / "webhook-json.yaml",
]
NOW = datetime(2026, 12, 4, 16, 0, 0, tzinfo=UTC)
NASTY = "say \"hi\"\n<b>&amp;</b> \\ / \t tab — Ünï 日本 🚨 'q'"


def load(name: str) -> alertmanager.Payload:
    return alertmanager.decode((DATA / name).read_bytes())


def tpl(source: str) -> tuple[tuple[str, str], ...]:
    return compile_template(source, where="test")


def encoded_text(fmt: str, rendered: str) -> Any:
    """Encode like the daemon does, and return what a receiver would decode."""
    enc = encode(fmt, rendered, method="POST", url="http://sink.test/hook?a=1")
    if fmt == "json":
        assert enc.body is not None
        return json.loads(enc.body)
    if fmt == "xml":
        assert enc.body is not None
        return ET.fromstring(enc.body)
    if fmt == "form":
        assert enc.body is not None
        return parse_qs(enc.body.decode("ascii"), keep_blank_values=True)
    if fmt == "query":
        return parse_qs(urlsplit(enc.url).query, keep_blank_values=True)
    if fmt == "json_stream":
        assert enc.body is not None
        return split_stream(enc.body)
    assert enc.body is not None
    return enc.body.decode("utf-8")


# ---------------------------------------------------------------------------------------
# compile


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{#alerts}}\n{{summary}}\n", "never closed"),
        ("{{#alerts}}{{/firing}}", 'last open tag is "alerts"'),
        ("x\n{{/alerts}}", "not opened"),
        ("line 1\n{{summary", "unclosed tag at line 2"),
        ("{{> header}}", "partials"),
        ("{{{summary}}", "expected {{{summary}}}"),
        ("{{}}", "malformed tag"),
        ("{{ }}", "empty tag"),
        ("{{upper}}", "helper"),
        ("{{#truncate}}{{summary}}{{/truncate}}", "truncate needs its argument"),
        ("{{#truncate}}eighty {{summary}}{{/truncate}}", "truncate needs its argument"),
        ("{{#date}}{{startsAt}}{{/date}}", "date needs its argument"),
        (
            "{{#upper}}a{{#trim}}{{#upper}}b{{/upper}}{{/trim}}{{/upper}}",
            "upper cannot be used inside upper",
        ),
    ],
)
def test_compile_errors_name_the_template_and_problem(source: str, expected: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_template(source, where="destinations[1].template")
    message = str(info.value)
    assert message.startswith("destinations[1].template: ")
    assert expected in message
    assert "\n" not in message


def test_formats_are_the_configs() -> None:
    assert get_args(Format) == FORMATS


def test_compile_unclosed_section_reports_its_line() -> None:
    with pytest.raises(TemplateError, match="opened at line 3"):
        compile_template("a\nb\n{{#alerts}}\n{{summary}}\n", where="t")


def test_compile_returns_a_reusable_token_tuple() -> None:
    tokens = tpl("{{#alerts}}{{summary}};{{/alerts}}")
    assert isinstance(tokens, tuple)
    view = build_view(load("mixed-status.json"), now=NOW)
    first = render(tokens, view, "text")
    assert first == render(tokens, view, "text")
    assert first.count(";") == 3


# ---------------------------------------------------------------------------------------
# escaping


def nasty_view() -> dict[str, Any]:
    return {"v": NASTY, "n": 3, "zero": 0}


def test_json_escaping_round_trips_any_text() -> None:
    out = render(tpl('{"v": "{{v}}", "n": {{n}}, "zero": {{zero}}}'), nasty_view(), "json")
    assert json.loads(out) == {"v": NASTY, "n": 3, "zero": 0}
    assert "🚨" in out  # not \u-escaped: the body is UTF-8


@pytest.mark.parametrize("fmt", ["form", "query"])
def test_form_and_query_escape_as_json(fmt: str) -> None:
    out = render(tpl('{"v": "{{v}}"}'), nasty_view(), fmt)
    assert encoded_text(fmt, out)["v"] == [NASTY]


def test_xml_escaping_in_text_and_attributes() -> None:
    value = NASTY.replace("\n", " ").replace("\t", " ")  # parsers normalize these in attributes
    out = render(tpl("<a b=\"{{v}}\" c='{{v}}'>{{t}}</a>"), {"v": value, "t": NASTY}, "xml")
    root = ET.fromstring(out.encode())
    assert root.text == NASTY
    assert root.get("b") == value
    assert root.get("c") == value


def test_xml_replaces_characters_xml_cannot_hold_and_keeps_carriage_returns() -> None:
    out = render(tpl("<a>{{v}}</a>"), {"v": "bell\x07 nul\x00 cr\r\n ok"}, "xml")
    assert ET.fromstring(out.encode()).text == "bell\ufffd nul\ufffd cr\r\n ok"


def test_text_is_not_escaped() -> None:
    assert render(tpl("{{v}}"), nasty_view(), "text") == NASTY


def test_triple_mustache_and_ampersand_are_raw_in_every_format() -> None:
    for fmt in FORMATS:
        assert render(tpl("{{{v}}}|{{& v}}"), {"v": '<"&'}, fmt) == '<"&|<"&'


def test_render_restores_chevrons_functions_even_when_a_helper_fails() -> None:
    escape, get_key = chevron.renderer._html_escape, chevron.renderer._get_key

    def boom(text: str, render: Any) -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        render(tpl("{{#boom}}x{{/boom}}"), {"boom": boom}, "json")
    assert chevron.renderer._html_escape is escape
    assert chevron.renderer._get_key is get_key
    assert chevron.render("{{v}}", {"v": "<"}) == "&lt;"  # chevron itself is untouched


def test_unknown_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(tpl("x"), {}, "yaml")


def test_empty_view_still_renders_literals() -> None:
    assert render(tpl("hello {{missing}}!"), {}, "text") == "hello !"


def test_sections_over_strings_do_not_expose_str_methods() -> None:
    # chevron alone resolves {{title}} inside {{#summary}} to str.title and crashes on
    # {{#upper}} there (str.upper(text, render)).
    view = build_view(load("firing-single.json"), now=NOW)
    out = render(
        tpl("{{#summary}}{{title}}|{{#upper}}{{summary}}{{/upper}}|{{index}}{{/summary}}"),
        view["alerts"][0] | {"title": "T"},
        "text",
    )
    assert out == "T|DISK /VAR 95% FULL ON DB-1|0"


# ---------------------------------------------------------------------------------------
# helpers


def test_upper_of_a_value_with_a_newline_stays_valid_json() -> None:
    out = render(tpl('{"v": "{{#upper}}{{v}}{{/upper}}"}'), nasty_view(), "json")
    assert json.loads(out)["v"] == NASTY.upper()


@pytest.mark.parametrize(
    ("helper", "value", "expected"),
    [
        ("upper", "a\nb", "A\nB"),
        ("lower", "ÀB", "àb"),
        ("titlecase", "high LATENCY on api-1 don't", "High Latency On Api-1 Don't"),
        ("trim", "  \n x y \n", "x y"),
        ("urlencode", "a b&c=d/é", "a%20b%26c%3Dd%2F%C3%A9"),
    ],
)
def test_transform_helpers(helper: str, value: str, expected: str) -> None:
    source = '{"v": "{{#' + helper + "}}{{v}}{{/" + helper + '}}"}'
    assert json.loads(render(tpl(source), {"v": value}, "json"))["v"] == expected
    xml_source = "<a>{{#" + helper + "}}{{v}}{{/" + helper + "}}</a>"
    assert ET.fromstring(render(tpl(xml_source), {"v": value}, "xml")).text == expected


@pytest.mark.parametrize(
    ("limit", "value", "expected"),
    [
        (10, "short", "short"),
        (10, "exactly 10", "exactly 10"),
        (10, "a much longer text", "a much lo…"),
        (8, "ab     cdefgh", "ab…"),  # no dangling spaces before the ellipsis
        (1, "xy", "…"),
        (0, "xy", ""),
    ],
)
def test_truncate(limit: int, value: str, expected: str) -> None:
    source = '{"v": "{{#truncate}}' + str(limit) + ' {{v}}{{/truncate}}"}'
    out = json.loads(render(tpl(source), {"v": value}, "json"))["v"]
    assert out == expected
    assert len(out) <= limit


def test_truncate_counts_characters_before_escaping() -> None:
    out = render(tpl('{"v": "{{#truncate}}6 {{v}}{{/truncate}}"}'), {"v": '"\n"\n"\nxyz'}, "json")
    assert json.loads(out)["v"] == '"\n"\n"…'


def test_json_helper_writes_a_string_literal_for_the_surrounding_format() -> None:
    source = "{{#json}}{{v}}{{/json}}"
    as_json = render(tpl('{"v": ' + source + "}"), nasty_view(), "json")
    assert json.loads(as_json) == {"v": NASTY}
    as_xml = render(tpl("<a>" + source + "</a>"), nasty_view(), "xml")
    assert json.loads(ET.fromstring(as_xml).text or "") == NASTY
    as_text = render(tpl(source), {"v": 'a"b'}, "text")
    assert as_text == '"a\\"b"'


def test_helpers_nest_without_double_escaping() -> None:
    source = '{"v": "{{#truncate}}9 {{#upper}}{{v}}{{/upper}}{{/truncate}}", "j": {{#json}}'
    source += "{{#upper}}{{v}}{{/upper}}{{/json}}}"
    out = json.loads(render(tpl(source), {"v": 'a"\nbcdefghijk'}, "json"))
    assert out == {"v": 'A"\nBCDEF…', "j": 'A"\nBCDEFGHIJK'}


def test_literal_text_inside_a_helper_is_escaped_with_its_result() -> None:
    out = render(tpl('{"v": "{{#upper}}line "one"\nx{{/upper}}"}'), {}, "json")
    assert json.loads(out)["v"] == 'LINE "ONE"\nX'


def test_date_helper() -> None:
    view = build_view(load("resolved-single.json"), now=NOW)["alerts"][0]
    out = render(
        tpl(
            "{{#date}}%Y-%m-%d %H:%M|{{startsAt}}{{/date}};"
            "{{#date}}%H:%M:%S|{{endsAt_unix}}{{/date}};"
            "{{#date}}%H:%M|{{nothing}}{{/date}}"
        ),
        view,
        "text",
    )
    assert out == "2026-12-04 15:18;15:18:30;"


# ---------------------------------------------------------------------------------------
# view model


def test_view_of_a_mixed_group() -> None:
    payload = load("mixed-status.json")
    view = build_view(payload, now=NOW)
    assert view["receiver"] == "gw"
    assert view["groupKey"] == payload.groupKey
    assert view["externalURL"] == "http://vm:9193"
    assert view["version"] == "4"
    assert view["commonLabels"] == payload.commonLabels
    assert (view["alerts_count"], view["firing_count"], view["resolved_count"]) == (3, 2, 1)
    assert view["has_firing"] and view["has_resolved"]
    assert view["is_firing"] and not view["is_resolved"]
    assert view["alertname"] == "HighLatency"
    assert view["title"] == "[FIRING:2] HighLatency"
    assert [a["index"] for a in view["alerts"]] == [0, 1, 2]
    assert [a["number"] for a in view["alerts"]] == [1, 2, 3]
    assert [a["first"] for a in view["alerts"]] == [True, False, False]
    assert [a["last"] for a in view["alerts"]] == [False, False, True]
    # The firing and resolved lists know their own positions.
    assert [(a["fingerprint"], a["last"]) for a in view["firing"]] == [
        ("1fd755d213c9eb32", False),
        ("0802839356dcb79b", True),
    ]
    assert [(a["index"], a["first"], a["last"]) for a in view["resolved"]] == [(0, True, True)]
    assert view["group_label_list"] == [
        {"name": "alertname", "value": "HighLatency", "index": 0, "first": True, "last": False},
        {"name": "cluster", "value": "prod-eu", "index": 1, "first": False, "last": True},
    ]
    assert [p["name"] for p in view["common_label_list"]] == ["alertname", "cluster", "job"]
    assert view["common_annotation_list"] == []
    assert view["part"] == {"index": 0, "number": 1, "count": 1, "first": True, "last": True}
    assert view["split"] is False
    assert view["alert"] is None
    assert (view["more_count"], view["has_more"]) == (0, False)
    out = render(tpl("{{#firing}}{{number}}{{^last}},{{/last}}{{/firing}}"), view, "text")
    assert out == "1,2"


def test_alert_fields() -> None:
    payload = load("mixed-status.json")
    firing, _, resolved = build_view(payload, now=NOW)["alerts"]
    assert firing["labels"] is payload.alerts[0].labels
    assert firing["annotations"]["runbook_url"] == "https://runbooks.example.com/HighLatency"
    assert [p["name"] for p in firing["label_list"]] == sorted(payload.alerts[0].labels)
    assert [p["name"] for p in firing["annotation_list"]] == [
        "description",
        "runbook_url",
        "summary",
    ]
    assert firing["annotation_list"][-1]["last"] is True
    assert (firing["alertname"], firing["severity"]) == ("HighLatency", "critical")
    assert firing["summary"] == "P99 latency above 2s on api-1"
    assert firing["description"].startswith('Latency is "high"')
    assert firing["startsAt"] == "2026-12-04T15:18:26Z"
    assert firing["startsAt_unix"] == 1796397506
    assert (firing["endsAt"], firing["endsAt_unix"]) == ("", 0)
    assert firing["duration"] == "41m 34s"  # to NOW
    assert (firing["firing"], firing["resolved"]) == (True, False)
    assert resolved["endsAt"] == "2026-12-04T15:18:39Z"
    assert resolved["endsAt_unix"] == 1796397519
    assert resolved["duration"] == "13s"  # to endsAt
    assert resolved["description"] == ""
    assert (resolved["firing"], resolved["resolved"]) == (False, True)
    assert resolved["generatorURL"] == ""
    assert resolved["fingerprint"] == "e68b036ebea7206b"


def test_offsets_are_kept_and_utc_is_written_as_z() -> None:
    payload = load("firing-single.json")
    alert = msgspec.structs.replace(
        payload.alerts[0], startsAt=datetime.fromisoformat("2026-12-04T16:18:26.5+01:00")
    )
    view = build_view(msgspec.structs.replace(payload, alerts=(alert,)), now=NOW)
    assert view["alerts"][0]["startsAt"] == "2026-12-04T16:18:26.500000+01:00"
    assert view["alerts"][0]["duration"] == "41m 33s"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (45.9, "45s"),
        (60, "1m"),
        (185, "3m 5s"),
        (3600, "1h"),
        (3720, "1h 2m"),
        (3 * 86400 + 7200 + 5, "3d 2h"),
        (-5, "0s"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_split_part_view_distinguishes_alert_and_group_status() -> None:
    payload = load("mixed-status.json")
    resolved = payload.alerts[2]
    view = build_view(payload, [resolved], part_index=2, part_count=3, now=NOW)
    assert view["split"] is True
    assert view["part"] == {"index": 2, "number": 3, "count": 3, "first": False, "last": True}
    assert view["alert"] is view["alerts"][0]
    assert (view["alerts_count"], view["firing_count"], view["resolved_count"]) == (1, 0, 1)
    assert view["title"] == "[RESOLVED] HighLatency"
    out = render(
        tpl("{{alert.status}} in a {{status}} group ({{part.number}}/{{part.count}})"),
        view,
        "text",
    )
    assert out == "resolved in a firing group (3/3)"


def test_a_subset_is_split_even_as_one_part() -> None:
    payload = load("mixed-status.json")
    view = build_view(payload, payload.alerts[:2], now=NOW)
    assert view["split"] is True
    assert view["alert"] is None
    assert view["alerts_count"] == 2


def test_alertname_and_severity_fall_back_to_the_first_alert() -> None:
    view = build_view(load("mixed-status.json"), now=NOW)  # no common severity
    assert view["severity"] == "critical"
    view = build_view(load("truncated-max-alerts.json"), now=NOW)
    assert (view["more_count"], view["has_more"]) == (1, True)


# ---------------------------------------------------------------------------------------
# cache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_memoizes_and_counts() -> None:
    cache = TemplateCache(max_size=4, ttl_s=60.0, clock=FakeClock())
    first = cache.get("{{a}}", where="t")
    assert cache.get("{{a}}", where="other") is first
    stats = cache.statistics()
    assert (stats.hits, stats.misses, stats.size, stats.evictions) == (1, 1, 1, 0)


def test_cache_evicts_least_recently_used() -> None:
    cache = TemplateCache(max_size=2, ttl_s=60.0, clock=FakeClock())
    a = cache.get("a", where="t")
    cache.get("b", where="t")
    assert cache.get("a", where="t") is a  # a is now the most recent
    cache.get("c", where="t")  # evicts b
    assert cache.get("a", where="t") is a
    stats = cache.statistics()
    assert (stats.size, stats.evictions, stats.misses) == (2, 1, 3)
    cache.get("b", where="t")
    assert cache.statistics().misses == 4


def test_cache_expires_unused_entries() -> None:
    clock = FakeClock()
    cache = TemplateCache(max_size=10, ttl_s=60.0, clock=clock)
    a = cache.get("a", where="t")
    cache.get("b", where="t")
    clock.now += 59
    assert cache.get("a", where="t") is a  # used: lives another 60 s
    clock.now += 30
    assert cache.cleanup() == 1  # b, unused for 89 s
    assert cache.statistics().size == 1
    clock.now += 60
    assert cache.get("a", where="t") is not a  # expired: compiled again
    stats = cache.statistics()
    assert (stats.hits, stats.misses, stats.expirations, stats.evictions) == (1, 3, 2, 2)
    assert cache.cleanup() == 0


def test_cache_does_not_keep_failures() -> None:
    cache = TemplateCache(max_size=10, ttl_s=60.0, clock=FakeClock())
    for _ in range(2):
        with pytest.raises(TemplateError, match=r"^dest: "):
            cache.get("{{#a}}", where="dest")
    assert cache.statistics().size == 0
    assert cache.statistics().misses == 2


# ---------------------------------------------------------------------------------------
# every shipped template x every sample payload, whole and split into single-alert parts


def views_of(path: Path) -> list[tuple[alertmanager.Payload, dict[str, Any]]]:
    payload = alertmanager.decode(path.read_bytes())
    n = len(payload.alerts)
    parts = [
        (payload, build_view(payload, [a], part_index=i, part_count=n, now=NOW))
        for i, a in enumerate(payload.alerts[:5])
    ]
    return [(payload, build_view(payload, now=NOW)), *parts]


def check_body(fmt: str, rendered: str, view: dict[str, Any]) -> None:
    """A valid body for ``fmt`` in which every annotation arrives exactly as sent."""
    decoded = encoded_text(fmt, rendered)
    if fmt == "json":
        assert [a["annotations"] for a in decoded["alerts"]] == [
            a["annotations"] for a in view["alerts"]
        ]
        assert [a["labels"] for a in decoded["alerts"]] == [a["labels"] for a in view["alerts"]]
        assert decoded["truncatedAlerts"] == view["truncatedAlerts"]
    elif fmt == "xml":
        assert len(decoded.findall("./alerts/alert")) == view["alerts_count"]
        for alert in view["alerts"][:3]:
            for name, value in alert["annotations"].items():
                found = decoded.find(
                    f".//alert[@fingerprint='{alert['fingerprint']}']"
                    f"/annotations/annotation[@name='{name}']"
                )
                assert found is not None and found.text == value
    elif fmt == "json_stream":
        assert [e["event"]["fingerprint"] for e in decoded] == [
            a["fingerprint"] for a in view["alerts"]
        ]
        assert [e["event"]["labels"] for e in decoded] == [a["labels"] for a in view["alerts"]]
    elif fmt in ("form", "query"):
        assert decoded["status"] == [view["status"]]
        assert decoded["title"] == [view["title"]]
    else:
        assert rendered.startswith(view["title"] + "\n")
        for alert in view["alerts"]:
            assert alert["summary"] in rendered


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
@pytest.mark.parametrize("fmt", FORMATS)
def test_default_templates_render_valid_bodies(fmt: str, sample: Path) -> None:
    tokens = tpl(DEFAULT_TEMPLATES[fmt])
    for _, view in views_of(sample):
        check_body(fmt, render(tokens, view, fmt), view)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_default_json_round_trips_the_tricky_description(sample: Path) -> None:
    payload = alertmanager.decode(sample.read_bytes())
    body = json.loads(render(tpl(DEFAULT_TEMPLATES["json"]), build_view(payload, now=NOW), "json"))
    for sent, got in zip(payload.alerts, body["alerts"], strict=True):
        assert got["description"] == sent.annotations.get("description", "")
        assert got["summary"] == sent.annotations.get("summary", "")


def test_samples_contain_the_characters_that_break_bodies() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in SAMPLES)
    payloads = [alertmanager.decode(p.read_bytes()) for p in SAMPLES]
    values = "".join(v for p in payloads for a in p.alerts for v in a.annotations.values())
    for needle in ('"', "\n", "<", "&", "é", "日本語", "🚨"):
        assert needle in values
    assert "truncatedAlerts" in text


def config_destinations() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in CONFIGS:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        for dest in config["destinations"]:
            if "preset" in dest:
                continue  # tests/test_presets.py checks presets against each service's shape
            found.append((f"{path.name}:{dest['name']}", dest))
    return found


def commented_destinations() -> list[tuple[str, dict[str, Any]]]:
    """The commented-out examples in config/gateway.yaml, as a user who uncomments one gets."""
    text = CONFIGS[0].read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"(  # - name:.*?)(?:\n\n|\Z)", text, re.DOTALL):
        uncommented = "\n".join(re.sub(r"^  # ?", "  ", line) for line in block.split("\n"))
        dest = yaml.safe_load("destinations:\n" + uncommented)["destinations"][0]
        found.append((f"gateway.yaml:#{dest['name']}", dest))
    return found


DESTINATIONS = config_destinations() + commented_destinations()


def test_configs_ship_the_expected_destinations() -> None:
    names = [name for name, _ in DESTINATIONS]
    assert names == [
        "gateway.yaml:log",
        "webhook-json.yaml:webhook",
        "gateway.yaml:#webhook",
        "gateway.yaml:#slack",
    ]
    default = yaml.safe_load(CONFIGS[0].read_text())
    assert default["server"]["address"] == "127.0.0.1:8080"
    assert default["destinations"][0]["kind"] == "log"


@pytest.mark.parametrize(("name", "dest"), DESTINATIONS, ids=[n for n, _ in DESTINATIONS])
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_config_templates_render_valid_bodies(
    name: str, dest: dict[str, Any], sample: Path
) -> None:
    fmt = dest.get("format", "json")
    tokens = compile_template(dest.get("template") or DEFAULT_TEMPLATES[fmt], where=name)
    for _, view in views_of(sample):
        rendered = render(tokens, view, fmt)
        decoded = encoded_text(fmt, rendered)
        if name.startswith("gateway.yaml:#"):
            assert decoded  # parsed as its format; the fuller versions are checked below
        elif name.endswith(":webhook"):
            assert [a["description"] for a in decoded["alerts"]] == [
                a["description"] for a in view["alerts"]
            ]
            assert decoded["truncated"] == view["truncatedAlerts"]
        elif name.endswith(":slack"):
            section = decoded["attachments"][0]["blocks"][1]["text"]["text"]
            assert len(section) <= 2900
            assert view["alerts"][0]["summary"][:20] in section
            colour = decoded["attachments"][0]["color"]
            assert colour == ("#d63232" if view["is_firing"] else "#2eb886")
        elif name.endswith(":log"):
            lines = decoded.splitlines()
            assert lines[0] == view["title"]
            assert len(lines) == 1 + view["alerts_count"] + (1 if view["has_more"] else 0)
            if view["has_more"]:
                assert lines[-1] == f"+{view['more_count']} more"


# ---------------------------------------------------------------------------------------
# Helpers and view fields added for presets (docs/templates.md shows each one).


def test_date_helper_with_a_time_zone() -> None:
    view = {"t": "2026-12-04T15:18:26Z", "u": 1796397506}
    assert render(tpl("{{#date}}%Y-%m-%d %H:%M %Z|Europe/Berlin|{{t}}{{/date}}"), view, "text") == (
        "2026-12-04 16:18 CET"
    )
    assert render(tpl("{{#date}}%H:%M|America/New_York|{{u}}{{/date}}"), view, "text") == "10:18"
    # An unknown zone name is taken as part of the format, not silently dropped.
    assert render(tpl("{{#date}}%H:%M|Mars/Base|{{t}}{{/date}}"), view, "text") == "15:18|Mars/Base"


def test_default_helper_picks_a_label_or_the_fallback() -> None:
    source = tpl('{"team": "{{#default}}unowned|{{labels.team}}{{/default}}"}')
    assert json.loads(render(source, {"labels": {"team": 'db "core"'}}, "json")) == {
        "team": 'db "core"'
    }
    assert json.loads(render(source, {"labels": {}}, "json")) == {"team": "unowned"}
    with pytest.raises(TemplateError, match="default needs its argument first"):
        compile_template("{{#default}}{{x}}{{/default}}", where="t")


def test_preset_view_fields() -> None:
    payload = alertmanager.decode((DATA / "mixed-status.json").read_bytes())
    view = build_view(
        payload, now=NOW, params={"severity_map": {"critical": "P1", "default": "P3"}}
    )
    assert view["silence_url"] == (
        "http://vm:9193/#/silences/new?filter=%7Balertname%3D%22HighLatency%22%2C"
        "cluster%3D%22prod-eu%22%2Cjob%3D%22api%22%7D"
    )
    assert view["common_labels_text"] == "alertname=HighLatency, cluster=prod-eu, job=api"
    assert view["mapped_severity"] == "P1"
    assert [a["mapped_severity"] for a in view["alerts"]] == ["P1", "P1", "P3"]
    assert (view["color"], view["color_decimal"], view["color_name"]) == (
        "#d63232",
        0xD63232,
        "attention",
    )
    assert [a["color_name"] for a in view["alerts"]] == ["attention", "attention", "good"]
    assert view["alerts"][0]["runbook_url"] == "https://runbooks.example.com/HighLatency"
    assert view["alerts"][2]["duration_seconds"] == 13
    assert len(view["group_key_hash"]) == 64 and view["params"]["severity_map"]["critical"] == "P1"


def test_markup_escapes_values_but_not_the_template() -> None:
    view = {"v": 'a <b> & "c"'}
    assert json.loads(render(tpl('{"t": "<i>{{v}}</i>"}'), view, "json", markup="html")) == {
        "t": "<i>a &lt;b&gt; &amp; &quot;c&quot;</i>"
    }
    assert json.loads(render(tpl('{"t": "*{{v}}*"}'), view, "json", markup="slack")) == {
        "t": '*a &lt;b&gt; &amp; "c"*'
    }
