"""make loadtest's machinery, tiny: sink, driver and a real gateway for about a second; the
report must exist and account for every alert (nothing lost). Not a speed measurement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_a_one_second_loadtest_reports_every_alert_delivered(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "loadtest", "--scenario", "group", "--duration", "1",
        "--concurrency", "2", "--driver-procs", "1", "--rate", "50", "--no-floor",
        "--no-calibrate", "--results", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = tmp_path.iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    gateway = report["gateway"]
    assert gateway["ok"] >= 10
    assert gateway["lost"] == 0 and gateway["duplicates"] == 0
    assert gateway["alerts_delivered"] == 3 * gateway["ok"]  # the group sample has 3 alerts
    assert (run_dir / "report.html").read_text().count("<svg") == 2
