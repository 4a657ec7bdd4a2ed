"""Shared fixtures: a loopback HTTP sink, the sample Alertmanager payloads, and the
Alertmanager binary for the end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import trio

from support import load_sample
from support.procs import find_alertmanager
from support.sink import Sink


@pytest.fixture
async def sink(nursery: trio.Nursery) -> Sink:
    """A running `Sink` on 127.0.0.1:<random port>; stopped when the test ends."""
    started: Sink = await nursery.start(Sink().run)
    return started


@pytest.fixture
def samples() -> Callable[[str], bytes]:
    """`samples("firing-single")` -> the bytes of tests/data/firing-single.json."""
    return load_sample


@pytest.fixture
def alertmanager_binary() -> str:
    """The path of the Alertmanager binary; skips the test without one, or fails it when
    GATEWAY_REQUIRE_ALERTMANAGER is set (as in CI)."""
    # A sync fixture: pytest.skip inside the trio test would lose its reason in the
    # exception group.
    binary = find_alertmanager()
    if binary is None:
        reason = "prometheus-alertmanager is not installed (Debian package of that name)"
        if os.environ.get("GATEWAY_REQUIRE_ALERTMANAGER", "") not in ("", "0"):
            pytest.fail(f"{reason}, and GATEWAY_REQUIRE_ALERTMANAGER is set")
        pytest.skip(reason)
    return binary
