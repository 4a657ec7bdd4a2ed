"""Selecting a preset: its keys fill in what the destination leaves out, any key given wins
(headers, limits and params key by key), and mistakes are reported with their key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import cli, config
from support.app import build_problems

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "config" / "examples").glob("*.yaml"))


def load(text: str) -> config.Config:
    return config.load_text(text, environ={}).config


def test_preset_fills_in_and_explicit_keys_win() -> None:
    (dest,) = load(
        """
destinations:
  - name: t
    preset: telegram
    params: {bot_token: "1:a", chat_id: "7"}
    headers: {X-Extra: "1"}
    limits: {max_text_chars: 1000}
    split_alerts: true
"""
    ).destinations
    assert dest.url == "https://api.telegram.org/bot{{params.bot_token}}/sendMessage"
    assert (dest.format, dest.markup, dest.split_alerts) == ("json", "html", True)
    assert dest.limits.max_text_chars == 1000 and dest.limits.text_paths == ["text"]
    assert dest.headers == {"X-Extra": "1"}
    assert dest.params == {
        "bot_token": "1:a",
        "chat_id": "7",
        "message_thread_id": "",
        "timezone": "UTC",
    }
    assert "sendMessage" not in dest.template and '"parse_mode": "HTML"' in dest.template


def test_a_template_of_ones_own_replaces_the_presets() -> None:
    (dest,) = load(
        "destinations:\n  - name: n\n    preset: ntfy\n    params: {topic: t}\n"
        '    template: \'{"topic": "{{params.topic}}", "message": "{{title}}"}\'\n'
    ).destinations
    assert dest.template.startswith('{"topic"') and dest.url == "https://ntfy.sh/"


def test_preset_mistakes_are_reported_with_their_path() -> None:
    assert build_problems(
        """
destinations:
  - name: a
    preset: slak
    url: http://x/
  - name: b
    preset: telegram
    params: {chat_id: "1", chatid: "2"}
"""
    ) == [
        "destinations[0].preset: unknown preset 'slak'; did you mean slack? one of discord, "
        "google_chat, mattermost, ntfy, opsgenie, pagerduty, rocketchat, slack, splunk_hec, "
        "teams, telegram, webhook",
        "destinations[1].params.bot_token: missing (required by preset telegram)",
        "destinations[1].params.chatid: unknown parameter of preset telegram (known: bot_token, "
        "chat_id, message_thread_id, timezone)",
    ]


def test_a_broken_override_names_the_destination_sample_and_reason() -> None:
    (problem,) = build_problems(
        "destinations:\n  - name: s\n    preset: slack\n    url: http://x/\n"
        '    template: \'{"text": "{{title}}" \'\n'
    )
    assert problem.startswith("destinations[0].template: destination s, sample ")
    assert "json output is not valid JSON" in problem


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_passes_check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.check_config(str(path)) == 0, capsys.readouterr().err


def test_there_is_an_example_per_preset() -> None:
    from gateway import presets

    used = {line.split("preset:")[1].strip() for p in EXAMPLES for line in p.read_text().splitlines()
            if line.strip().startswith("preset:")}  # fmt: skip
    assert set(presets.names()) <= used


def test_numbers_and_booleans_in_params_are_text() -> None:
    (dest,) = load(
        "destinations:\n  - name: t\n    preset: telegram\n"
        "    params: {bot_token: '1:a', chat_id: -1001234567890, message_thread_id: 7,"
        " timezone: UTC}\n"
    ).destinations
    assert dest.params["chat_id"] == "-1001234567890" and dest.params["message_thread_id"] == "7"
    (dest,) = load(
        "destinations:\n  - name: n\n    preset: ntfy\n"
        "    params: {topic: t, severity_map: {critical: 5, flag: true}}\n"
    ).destinations
    assert dest.params["severity_map"] == {
        "critical": "5",
        "error": "4",
        "warning": "4",
        "info": "3",
        "default": "3",
        "flag": "true",
    }
