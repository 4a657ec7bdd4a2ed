"""Profiling endpoints: absent unless profiling is on; a CPU profile of the running app, a
tracemalloc top list and the trio task tree when it is."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import trio

from support.app import build_app

ADMIN = {"Authorization": "Bearer debug-admin-token"}  # /debug/* needs admin (auth.py)


class Client:
    """The app's test client, sending the admin credentials with every request."""

    def __init__(self, yaml_text: str) -> None:
        self._client = build_app(yaml_text).app.test_client()

    async def get(self, path: str) -> Any:
        return await self._client.get(path, headers=ADMIN)


YAML = """
server: {admin: {bearer_tokens: [debug-admin-token]}}
debug: {profiling: %s}
destinations:
  - name: log
    kind: log
    format: text
"""


async def test_debug_endpoints_are_404_when_profiling_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ENABLE_PROFILING", raising=False)
    client = Client(YAML % "false")
    for path in ("/debug/profile", "/debug/memory", "/debug/tasks"):
        assert (await client.get(path)).status_code == 404


async def test_enable_profiling_env_turns_them_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_PROFILING", "true")
    client = Client(YAML % "false")
    assert (await client.get("/debug/tasks")).status_code == 200


def busy_elsewhere_in_the_process() -> int:
    return sum(i * i for i in range(2_000))


def other_work() -> int:
    return sum(range(2_000))


async def keep_busy(work: Callable[[], int]) -> None:
    # Short calls interleaved with other tasks, as on a loaded event loop: each sample is a
    # node of its own, each far below 1 % of the profile.
    while True:
        work()
        await trio.lowlevel.checkpoint()


async def test_profile_returns_a_speedscope_profile_of_the_whole_process(
    nursery: trio.Nursery,
) -> None:
    pytest.importorskip("pyinstrument")
    client = Client(YAML % "true")
    nursery.start_soon(keep_busy, busy_elsewhere_in_the_process)  # other tasks: the profile
    nursery.start_soon(keep_busy, other_work)  # must show them, not only its own request
    response = await client.get("/debug/profile?seconds=0.3&format=speedscope")
    assert response.status_code == 200
    profile = json.loads(await response.get_data())
    assert profile["$schema"].startswith("https://www.speedscope.app/")
    frames = {frame["name"] for frame in profile["shared"]["frames"]}
    assert "busy_elsewhere_in_the_process" in frames
    html = await client.get("/debug/profile?seconds=0.1")
    assert html.content_type.startswith("text/html")
    bad = await client.get("/debug/profile?seconds=1000")
    assert bad.status_code == 400


async def test_memory_starts_tracing_then_lists_top_allocations() -> None:
    client = Client(YAML % "true")
    first = json.loads(await (await client.get("/debug/memory")).get_data())
    assert first["tracing"] is True and "top" not in first
    try:
        junk = [bytearray(1000) for _ in range(1000)]  # noqa: F841 -- something to find
        second = json.loads(await (await client.get("/debug/memory?limit=5")).get_data())
        assert len(second["top"]) == 5
        assert second["traced_kib"] > 900
        assert {"where", "size_kib", "count"} <= set(second["top"][0])
    finally:
        await client.get("/debug/memory?stop=1")


async def test_tasks_shows_the_trio_task_tree() -> None:
    client = Client(YAML % "true")
    body = json.loads(await (await client.get("/debug/tasks")).get_data())
    assert body["count"] >= 2
    assert body["tree"]["name"]  # the root task
    assert body["tree"]["children"]
