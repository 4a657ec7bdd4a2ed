"""debug.py: the profiling endpoints, registered only when profiling is on
(``debug.profiling: true`` in the config, or ``ENABLE_PROFILING=true`` in the environment).

    GET /debug/profile?seconds=N&format=html|speedscope|text
                       a CPU profile of the whole process (every trio task) for N seconds
    GET /debug/memory?limit=N[&stop=1]
                       tracemalloc's top allocation sites; the first call starts tracing
    GET /debug/tasks   the trio task tree, as JSON

pyinstrument is an optional dependency (``pip install 'alertmanager-gateway[profiling]'``);
without it /debug/profile answers 501. Admin auth for /debug/* is applied by path prefix
elsewhere. Profiling costs CPU while it runs; tracemalloc costs a lot until stopped.
Must not: be reachable when profiling is off, or run two CPU profiles at once.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from typing import TYPE_CHECKING, Any

import msgspec
import trio
from quart import Blueprint, Response, request

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from .web import AppState

ENV_FLAG = "ENABLE_PROFILING"
MAX_PROFILE_S = 120.0
DEFAULT_PROFILE_S = 10.0
SAMPLE_INTERVAL_S = 0.001
TRACEMALLOC_FRAMES = 1  # the top list groups by line; deeper traces cost much more CPU
DEFAULT_TOP = 30
_encode = msgspec.json.Encoder().encode


def json_response(status: int, body: dict[str, Any]) -> Response:
    # web.json_response's twin: web.py imports this module, so it cannot import web.py.
    return Response(_encode(body), status=status, content_type="application/json")


def enabled(state: AppState) -> bool:
    if os.environ.get(ENV_FLAG, "").lower() in ("1", "true", "yes", "on"):
        return True
    return bool(state.runtime.config.debug.profiling)


def register(app: QuartTrio, state: AppState) -> None:
    if enabled(state):
        app.register_blueprint(blueprint())


def _task_tree(task: trio.lowlevel.Task) -> dict[str, Any]:
    children = [
        _task_tree(child) for nursery in task.child_nurseries for child in nursery.child_tasks
    ]
    node: dict[str, Any] = {"name": task.name}
    if children:
        node["children"] = children
    return node


def _count(node: dict[str, Any]) -> int:
    return 1 + sum(_count(child) for child in node.get("children", ()))


def blueprint() -> Blueprint:
    bp = Blueprint("debug", __name__, url_prefix="/debug")
    busy = trio.Lock()  # one CPU profile at a time

    @bp.get("/profile")
    async def profile() -> Response:
        try:
            from pyinstrument import Profiler
            from pyinstrument.renderers import SpeedscopeRenderer
        except ImportError:
            return json_response(
                501,
                {"status": "error", "error": "pyinstrument is not installed ([profiling] extra)"},
            )
        try:
            seconds = float(request.args.get("seconds", DEFAULT_PROFILE_S))
        except ValueError:
            seconds = -1.0
        fmt = request.args.get("format", "html")
        if not 0 < seconds <= MAX_PROFILE_S or fmt not in ("html", "speedscope", "text"):
            return json_response(
                400,
                {
                    "status": "error",
                    "error": f"want seconds in (0, {MAX_PROFILE_S:g}] and "
                    "format html|speedscope|text",
                },
            )
        if busy.locked():
            return json_response(409, {"status": "error", "error": "a profile is running"})
        async with busy:
            # async_mode="disabled": sample the thread, so every trio task is in the profile,
            # not only this request's.
            profiler = Profiler(interval=SAMPLE_INTERVAL_S, async_mode="disabled")
            profiler.start()
            try:
                await trio.sleep(seconds)
            finally:
                profiler.stop()
        if fmt == "speedscope":
            # Keep every node: on an event loop each sample is its own short call (tasks
            # interleave), and the default 1 % threshold drops nearly all of them one by one.
            renderer = SpeedscopeRenderer(processor_options={"filter_threshold": 0})
            return Response(profiler.output(renderer), content_type="application/json")
        if fmt == "text":
            return Response(profiler.output_text(unicode=True), content_type="text/plain")
        return Response(profiler.output_html(), content_type="text/html")

    @bp.get("/memory")
    async def memory() -> Response:
        if request.args.get("stop"):
            tracemalloc.stop()
            return json_response(200, {"status": "ok", "tracing": False})
        if not tracemalloc.is_tracing():
            tracemalloc.start(TRACEMALLOC_FRAMES)
            bp_state["tracing_since"] = time.time()
            return json_response(
                200,
                {
                    "status": "ok",
                    "tracing": True,
                    "note": "tracemalloc started now; call again to see allocations since",
                },
            )
        limit = int(request.args.get("limit", DEFAULT_TOP))
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.statistics("lineno")
        current, peak = tracemalloc.get_traced_memory()
        return json_response(
            200,
            {
                "status": "ok",
                "tracing": True,
                "tracing_since": bp_state.get("tracing_since"),
                "traced_kib": round(current / 1024, 1),
                "traced_peak_kib": round(peak / 1024, 1),
                "top": [
                    {
                        "where": str(stat.traceback[0]),
                        "size_kib": round(stat.size / 1024, 1),
                        "count": stat.count,
                    }
                    for stat in stats[:limit]
                ],
            },
        )

    bp_state: dict[str, float] = {}

    @bp.get("/tasks")
    async def tasks() -> Response:
        root = trio.lowlevel.current_root_task()
        assert root is not None  # we are running inside trio
        tree = _task_tree(root)
        return json_response(200, {"status": "ok", "count": _count(tree), "tree": tree})

    return bp
