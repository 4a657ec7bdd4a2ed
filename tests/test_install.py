"""`make install` / `make uninstall` into a temporary tree, and `systemd-analyze verify` on
the unit it installs (skipped, with the reason, where systemd-analyze is missing)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = "alertmanager-gateway.service"
MAKE_TIMEOUT_S = 240


def make(target: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # PREFIX etc. instead of DESTDIR: the installed unit then names paths that exist, so
    # systemd-analyze can check that ExecStart= is executable.
    return subprocess.run(
        [
            "make",
            "-C",
            str(REPO),
            target,
            f"PREFIX={tmp_path}/opt/alertmanager-gateway",
            f"SYSCONFDIR={tmp_path}/etc/alertmanager-gateway",
            f"UNITDIR={tmp_path}/etc/systemd/system",
            "SYSTEMCTL=false",  # must never be needed: these are not the real paths
        ],
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_S,
        env={**os.environ, "DESTDIR": ""},
    )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_install_verify_and_uninstall(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "alertmanager-gateway"
    etc.mkdir(parents=True)
    mine = etc / "gateway.yaml"
    mine.write_text("server: {address: '127.0.0.1:9999'}\ndestinations: []\n")

    result = make("install", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    binary = tmp_path / "opt" / "alertmanager-gateway" / "bin" / "alertmanager-gateway"
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("alertmanager-gateway 0.1.0")
    # An existing config is never overwritten; the installed gateway can read it.
    assert mine.read_text().startswith("server: {address: '127.0.0.1:9999'}")
    check = subprocess.run(
        [binary, "check-config", "--config", mine], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stderr
    assert stat.S_IMODE((etc / "credentials").stat().st_mode) == 0o700
    unit = tmp_path / "etc" / "systemd" / "system" / UNIT
    text = unit.read_text()
    assert f"ExecStart={binary} run --config {mine}\n" in text
    assert "Type=notify" in text and "ExecReload=/bin/kill -HUP $MAINPID" in text

    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        verify = subprocess.run(
            [analyze, "verify", unit], capture_output=True, text=True, timeout=60
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert verify.stderr == ""  # no warning either

    result = make("uninstall", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "opt" / "alertmanager-gateway").exists()
    assert not unit.exists()
    assert mine.exists()  # edited by the operator: kept, and said so
    assert f"kept {etc}" in result.stdout
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd): unit not verified")


def test_unit_has_the_required_settings() -> None:
    settings: dict[str, list[str]] = {}
    for line in (REPO / "systemd" / UNIT).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    required = {
        "Type": "notify",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "Restart": "on-failure",
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet": "",
        "StateDirectory": "alertmanager-gateway",
        "ConfigurationDirectory": "alertmanager-gateway",
    }
    for key, value in required.items():
        assert value in settings.get(key, []), key
    assert "@system-service" in settings["SystemCallFilter"]
    # TimeoutStopSec must leave room for the default drain: requests, then spooled
    # deliveries in flight, each up to server.drain_timeout.
    from gateway.config import ServerConfig

    stop_s = int(settings["TimeoutStopSec"][0].removesuffix("s"))
    assert stop_s > 2 * float(ServerConfig().drain_timeout) + 10
    assert "WatchdogSec" in settings


def test_unit_exposure_stays_low() -> None:
    # `systemd-analyze security` rates the unit 1.1 ("OK"; 0 is the best, 10 the worst). The
    # threshold is in tenths: the test fails if a change raises the exposure above 1.5.
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=15", str(REPO / "systemd" / UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
