"""Payload decoding and every semantic rule: a bad payload gets a message naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway import alertmanager
from gateway.errors import PayloadError

DATA = Path(__file__).parent / "data"


def good() -> dict[str, Any]:
    return json.loads((DATA / "firing-group-unicode.json").read_text())


def expect_error(payload: dict[str, Any] | bytes, message: str) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(PayloadError) as info:
        alertmanager.decode(body)
    assert str(info.value) == message


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.name)
def test_every_captured_payload_decodes(path: Path) -> None:
    raw = json.loads(path.read_text())
    payload = alertmanager.decode(path.read_bytes())
    assert len(payload.alerts) == len(raw["alerts"])
    assert payload.externalURL == raw["externalURL"]
    assert payload.truncatedAlerts == raw.get("truncatedAlerts", 0)
    assert payload.alerts[0].generatorURL == raw["alerts"][0]["generatorURL"]
    assert payload.alerts[0].annotations == raw["alerts"][0]["annotations"]


def test_unknown_fields_are_allowed() -> None:
    data = good()
    data["orgId"] = 1
    data["alerts"][0]["valueString"] = "x"
    assert alertmanager.decode(json.dumps(data).encode()).groupKey == data["groupKey"]


def test_zero_ends_at_means_not_ended() -> None:
    payload = alertmanager.decode(json.dumps(good()).encode())
    assert not alertmanager.has_ended(payload.alerts[0])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("version"), "version: missing"),
        (lambda d: d.pop("groupKey"), "groupKey: missing"),
        (
            lambda d: d.update(status="pending"),
            "status: expected one of firing, resolved, got 'pending'",
        ),
        (lambda d: d.update(alerts=[]), "alerts: must not be empty"),
        (lambda d: d["alerts"][1].pop("fingerprint"), "alerts[1].fingerprint: missing"),
        (
            lambda d: d["alerts"][2].update(status="weird"),
            "alerts[2].status: expected one of firing, resolved, got 'weird'",
        ),
        (lambda d: d["alerts"][0].pop("status"), "alerts[0].status: missing"),
        (lambda d: d["alerts"][0].pop("startsAt"), "alerts[0].startsAt: missing"),
        (
            lambda d: d["alerts"][0].update(endsAt="2026-12-04T15:00:00Z"),
            "alerts[0].endsAt: 2026-12-04T15:00:00+00:00 is before startsAt "
            "2026-12-04T15:18:26+00:00",
        ),
        (
            lambda d: d["alerts"][0].update(startsAt="2026-12-04T15:18:26"),
            "alerts[0].startsAt: needs a time zone (RFC 3339)",
        ),
        (lambda d: d.update(truncatedAlerts=-1), "truncatedAlerts: must be >= 0"),
    ],
)
def test_semantic_rules(mutate: Any, message: str) -> None:
    data = good()
    mutate(data)
    expect_error(data, message)


def test_wrong_types_name_the_field() -> None:
    data = good()
    data["alerts"][1]["labels"] = {"severity": 3}
    expect_error(data, "alerts[1].labels[...]: expected `str`, got `int`")
    data = good()
    data["alerts"] = {"not": "a list"}
    expect_error(data, "alerts: expected `array`, got `object`")
    data = good()
    data["alerts"][0]["startsAt"] = "yesterday"
    expect_error(data, "alerts[0].startsAt: invalid RFC3339 encoded datetime")


def test_malformed_json_and_non_objects() -> None:
    with pytest.raises(PayloadError, match=r"^body: malformed JSON"):
        alertmanager.decode(b'{"version": "4",')
    expect_error(b"[]", "body: expected `object`, got `array`")
    with pytest.raises(PayloadError, match=r"^body: malformed JSON"):
        alertmanager.decode(b"\xff\xfe")
