"""Log lines: one per event, logfmt or JSON, journald priorities, secrets masked."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from gateway.logs import Logger, stderr_is_journal


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_logfmt_quotes_only_what_needs_it() -> None:
    out = io.StringIO()
    log = Logger(stream=out, journal=False, clock=lambda: 0.0)
    log.info("delivered", destination="slack", group_key='{}:{a="b c"}', code=200, skipped=None)
    assert lines(out) == [
        "ts=1970-01-01T00:00:00.000+00:00 level=info msg=delivered destination=slack "
        'group_key="{}:{a=\\"b c\\"}" code=200'
    ]


def test_json_lines_parse_and_newlines_never_split_a_line() -> None:
    out = io.StringIO()
    log = Logger(stream=out, fmt="json", journal=False)
    log.warning("delivery failed", error="line one\nline two")
    [line] = lines(out)
    record = json.loads(line)
    assert record["level"] == "warning"
    assert record["error"] == "line one\nline two"


def test_journal_gets_priority_prefix_and_no_timestamp() -> None:
    out = io.StringIO()
    log = Logger(stream=out, journal=True)
    log.error("reload failed")
    log.info("reloaded")
    log.debug("hidden")  # below the default level
    assert lines(out) == ['<3>level=error msg="reload failed"', "<6>level=info msg=reloaded"]


def test_level_filters_and_changes() -> None:
    out = io.StringIO()
    log = Logger(stream=out, level="warning", journal=False)
    log.info("quiet")
    log.configure(level="debug")
    log.debug("loud")
    assert [line.split(" ", 1)[1] for line in lines(out)] == ["level=debug msg=loud"]


def test_secrets_are_masked_wherever_they_appear() -> None:
    out = io.StringIO()
    log = Logger(stream=out, journal=False)
    log.configure(secrets={"hunter2-token", "hunter2"})
    log.error("failed", url="https://x/?t=hunter2-token", body='{"k":"hunter2"}')
    text = out.getvalue()
    assert "hunter2" not in text
    assert "t=***" in text and '\\"k\\":\\"***\\"' in text


def test_journal_detection_compares_device_and_inode(tmp_path: Path) -> None:
    path = tmp_path / "stream"
    with path.open("w") as stream:
        st = os.fstat(stream.fileno())
        os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        try:
            assert stderr_is_journal(stream)
            os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + 1}"
            assert not stderr_is_journal(stream)
        finally:
            del os.environ["JOURNAL_STREAM"]


def test_static_fields_are_on_every_line() -> None:
    out = io.StringIO()
    log = Logger(stream=out, journal=False, static={"worker": 1})
    log.info("delivered", destination="d")
    log.configure(fmt="json")
    log.info("stopped")
    first, second = lines(out)
    assert first.endswith("level=info msg=delivered worker=1 destination=d")
    assert json.loads(second)["worker"] == 1
