"""engine: jq — a jq program instead of a template, for configs moved from the Go gateway.
Needs the optional extra: pip install 'alertmanager-gateway[jq]'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.app import build_problems, build_recording_app

pytest.importorskip("jq", reason="the jq extra is not installed: pip install -e '.[jq]'")

GROUP = (Path(__file__).parent / "data" / "mixed-status.json").read_bytes()


async def test_the_program_output_is_the_body_per_part() -> None:
    built, seen = build_recording_app(
        """
destinations:
  - name: d
    url: http://sink.test/
    engine: jq
    split_alerts: true
    batch_size: 2
    params: {channel: ops}
    transform: |
      {channel: $params.channel, part: $part.number, status: .status,
       alerts: [.alerts[] | {name: .labels.alertname, status, summary: .annotations.summary}]}
"""
    )
    response = await built.app.test_client().post("/webhook/d", data=GROUP)
    assert response.status_code == 200
    bodies = [json.loads(r.content) for r in seen]
    assert [b["part"] for b in bodies] == [1, 2]
    assert [len(b["alerts"]) for b in bodies] == [2, 1]
    assert bodies[0]["channel"] == "ops" and bodies[1]["alerts"][0]["status"] == "resolved"
    assert bodies[0]["alerts"][0]["summary"] == "P99 latency above 2s on api-1"


async def test_helper_definitions_and_a_trailing_comment_work() -> None:
    built, seen = build_recording_app(
        """
destinations:
  - name: d
    url: http://sink.test/
    engine: jq
    transform: |
      def names: [.alerts[].labels.alertname] | unique;
      {names: names, count: (.alerts | length)}  # the body
"""
    )
    response = await built.app.test_client().post("/webhook/d", data=GROUP)
    assert response.status_code == 200
    assert [json.loads(r.content) for r in seen] == [{"names": ["HighLatency"], "count": 3}]


def test_a_jq_syntax_error_stops_the_load() -> None:
    (problem,) = build_problems(
        "destinations:\n  - name: d\n    url: http://x/\n    engine: jq\n    transform: '{a: '\n"
    )
    assert problem.startswith("destinations[0].transform: jq program does not compile")


def test_a_program_whose_output_is_not_valid_for_the_format_fails_naming_the_sample() -> None:
    (problem,) = build_problems(
        "destinations:\n  - name: d\n    url: http://x/\n    engine: jq\n    format: form\n"
        "    transform: '{nested: {a: 1}}'\n"
    )
    assert problem.startswith("destinations[0].transform: destination d, sample ")
    assert "member 'nested' holds an object" in problem


def test_transform_without_engine_jq_is_a_mistake() -> None:
    assert build_problems(
        "destinations:\n  - name: d\n    url: http://x/\n    transform: '.'\n"
    ) == ["destinations[0].transform: only used with engine: jq"]
