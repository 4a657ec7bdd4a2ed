"""Shared fixtures: a loopback HTTP sink and the sample Alertmanager payloads."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from support import load_sample
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
