"""run.py: the ``make loadtest`` orchestrator.

One invocation: start the sink; calibrate (driver against the sink alone, to show the driver
is not the bottleneck); run the floor (bare quart-trio on hypercorn); run the gateway with a
generated config; then write the report. Every child is stopped by its PID, also on errors
and Ctrl-C. Progress is printed once a second.
Must not: format reports (report.py) or speak HTTP by hand beyond the sink's stats.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import procs, report
from .collect import Collector
from .driver import SAMPLES

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = {
    # sink behaviour and gateway destination options per scenario
    "single": {"sink": [], "dest": {}},
    "group": {"sink": [], "dest": {}},
    "storm": {"sink": [], "dest": {"split_alerts": "true", "parallel_requests": "10"}},
    "slow": {"sink": ["--delay-ms", "100"], "dest": {}},
    "faults": {"sink": ["--fail-every", "20"], "dest": {}},
}
IDLE_SETTLE_S = 1.0
CALIBRATE_S = 3.0
PROGRESS_EVERY_S = 1.0
MAX_REQUESTS_PER_PROC = 2_000_000


def gateway_config(
    port: int,
    sink_port: int,
    scenario: str,
    workers: int,
    log_level: str,
    *,
    transport: str = "h11",
    max_connections: int = 64,
) -> str:
    dest = "".join(f"    {k}: {v}\n" for k, v in SCENARIOS[scenario]["dest"].items())
    workers_line = f"  workers: {workers}\n" if workers > 1 else ""
    return (
        "server:\n"
        f'  address: "127.0.0.1:{port}"\n'
        f"{workers_line}"
        "logging:\n"
        f"  level: {log_level}\n"
        "destinations:\n"
        "  - name: load\n"
        f'    url: "http://127.0.0.1:{sink_port}/in"\n'
        "    format: json\n"
        "    timeout: 30s\n"  # storm notifications queue behind each other
        "    pool:\n"
        f"      max_connections: {max_connections}\n"
        f"      max_keepalive_connections: {max_connections}\n"
        f"      transport: {transport}\n"
        f"{dest}"
    )


KNOBS = ("transport", "log_level", "workers", "max_connections")


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """ "h11:transport=h11,log_level=warning" -> ("h11", {...})"""
    name, _, rest = text.partition(":")
    knobs = dict(item.split("=", 1) for item in rest.split(",") if item)
    unknown = set(knobs) - set(KNOBS)
    if unknown or not name:
        raise SystemExit(f"--variant {text!r}: want NAME:knob=value,... with knobs {KNOBS}")
    return f"gateway:{name}", knobs


def run_gateway(
    args: argparse.Namespace,
    workdir: Path,
    out_dir: Path,
    sink_port: int,
    label: str,
    knobs: dict[str, str],
    children: list[procs.Child],
) -> dict[str, Any]:
    """One gateway process with this variant's knobs, driven for --duration; stopped."""
    sink_get(sink_port, "/reset", "POST")
    name = label.replace(":", "-")
    config_path = workdir / f"{name}.yaml"
    workers = int(knobs.get("workers", args.workers))
    # A free port rather than port 0: the log may be quiet (log_level=warning).
    gw_port = procs.free_port()
    config_path.write_text(
        gateway_config(
            gw_port,
            sink_port,
            args.scenario,
            workers,
            knobs.get("log_level", args.log_level),
            transport=knobs.get("transport", args.transport),
            max_connections=int(knobs.get("max_connections", 64)),
        )
    )
    env = dict(item.split("=", 1) for item in args.gateway_env)
    if args.profile:
        env["ENABLE_PROFILING"] = "true"
    print(f"{label}: {config_path} {knobs or ''}")
    gateway = procs.start(
        name, procs.python("gateway", "run", "--config", str(config_path)), workdir, env=env
    )
    children.append(gateway)
    procs.wait_ready(gateway, gw_port)
    phase = Phase(args, workdir, label).run(
        gw_port,
        args.duration,
        target_pid=gateway.pid,
        sink_port=sink_port,
        collect_to=out_dir if args.profile and label == "gateway" else None,
    )
    phase["exit_code"] = gateway.stop()
    phase["sink"] = sink_get(sink_port, "/stats")
    phase["knobs"] = knobs
    shutil.copy(gateway.log, out_dir / f"{name}.log")
    shutil.copy(config_path, out_dir / f"{name}.yaml")
    return phase


def sink_get(port: int, path: str, method: str = "GET") -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


class Phase:
    """One driver run against one target, with the target's CPU and RSS sampled."""

    def __init__(self, args: argparse.Namespace, workdir: Path, label: str) -> None:
        self.args = args
        self.workdir = workdir
        self.label = label

    def run(
        self,
        port: int,
        duration: float,
        *,
        target_pid: int | None,
        sink_port: int | None,
        collect_to: Path | None = None,
    ) -> dict[str, Any]:
        args = self.args
        procs_n = args.driver_procs
        per_proc = max(1, args.concurrency // procs_n)
        outs = [self.workdir / f"{self.label}-driver{i}.json" for i in range(procs_n)]
        idle_rss = None
        cpu0 = None
        if target_pid is not None:
            time.sleep(IDLE_SETTLE_S)
            cpu0, idle_rss, idle_per = procs.tree_usage(target_pid)
        drivers = [
            procs.start(
                f"{self.label}-driver{i}",
                procs.python(
                    "loadtest.driver",
                    "--port",
                    str(port),
                    "--scenario",
                    args.scenario,
                    "--duration",
                    str(duration),
                    "--concurrency",
                    str(per_proc),
                    "--rate",  # the calibration runs flat out: it shows the driver's ceiling
                    str(0 if self.label == "calibration" else args.rate),
                    "--procs",
                    str(procs_n),
                    "--proc",
                    str(i),
                    "--max-requests",
                    str(MAX_REQUESTS_PER_PROC),
                    "--out",
                    str(outs[i]),
                ),
                self.workdir,
            )
            for i in range(procs_n)
        ]
        collector = None
        if collect_to is not None:
            collector = Collector(port, duration, collect_to)
            collector.start()
        series: list[dict[str, float]] = []
        peak_rss = idle_rss or 0
        started = time.monotonic()
        try:
            while any(d.popen.poll() is None for d in drivers):
                time.sleep(PROGRESS_EVERY_S)
                elapsed = time.monotonic() - started
                line = f"  [{self.label}] {elapsed:5.1f}s"
                point: dict[str, float] = {"t": elapsed}
                if target_pid is not None and cpu0 is not None:
                    cpu, rss, _ = procs.tree_usage(target_pid)
                    peak_rss = max(peak_rss, rss)
                    point.update(cpu_s=cpu - cpu0, rss=rss)
                    line += f"  cpu {cpu - cpu0:6.1f}s  rss {rss / 2**20:6.1f} MB"
                if sink_port is not None:
                    count = sink_get(sink_port, "/count")
                    point["delivered"] = count["alerts"]
                    line += f"  delivered {count['alerts']:>8} alerts"
                series.append(point)
                print(line, flush=True)
                if elapsed > duration + 60:
                    raise RuntimeError(f"{self.label}: drivers still running after {elapsed:.0f}s")
        finally:
            for d in drivers:
                d.stop()
        if collector is not None:
            collector.join(timeout=60)
            if collector.errors:
                print("profile collection errors:", *collector.errors, sep="\n  ")
        results = []
        for d, out in zip(drivers, outs, strict=True):
            if not out.exists():
                raise RuntimeError(f"{d.name} wrote no result; log {d.log}:\n{d.log.read_text()}")
            results.append(json.loads(out.read_text()))
        phase: dict[str, Any] = {"label": self.label, "drivers": results, "series": series}
        if target_pid is not None and cpu0 is not None:
            cpu, _, _ = procs.tree_usage(target_pid)
            phase.update(
                cpu_s=cpu - cpu0,
                rss_idle=idle_rss,
                rss_peak=peak_rss,
                rss_idle_per_process=sorted(idle_per.values()),
            )
        return phase


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    parser.add_argument("--scenario", choices=sorted(SAMPLES), default="single")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in total")
    parser.add_argument("--rate", type=float, default=0.0, help="notifications/s; 0 = max")
    parser.add_argument("--workers", type=int, default=1, help="gateway server.workers")
    parser.add_argument("--driver-procs", type=int, default=2)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument("--no-floor", action="store_true", help="skip the floor run")
    parser.add_argument("--no-calibrate", action="store_true", help="skip driver vs sink")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="collect /debug/profile, /debug/memory, /debug/tasks and /metrics into profile/",
    )
    parser.add_argument("--transport", default="h11", choices=["h11", "httpcore"])
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KNOB=V,..",
        help=f"another gateway run in the same invocation, knobs {KNOBS}; the report "
        "gives its ratio to the first",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 600:
        parser.error("--duration must be in (0, 600] seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = args.results / f"{stamp}-{args.scenario}"
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-loadtest-"))
    children: list[procs.Child] = []
    print(
        f"loadtest {args.scenario}: {args.duration:g}s per phase, {args.concurrency} conns, "
        f"rate {args.rate or 'max'}, gateway workers {args.workers}; work dir {workdir}"
    )
    try:
        sink_port_file = workdir / "sink.port"
        sink = procs.start(
            "sink",
            procs.python(
                "loadtest.sink",
                "--port-file",
                str(sink_port_file),
                *SCENARIOS[args.scenario]["sink"],
            ),
            workdir,
        )
        children.append(sink)
        sink_port = procs.wait_port_file(sink, sink_port_file)
        phases: dict[str, Any] = {}

        if not args.no_calibrate:
            print("calibrate: driver against the sink alone")
            phases["calibration"] = Phase(args, workdir, "calibration").run(
                sink_port, min(CALIBRATE_S, args.duration), target_pid=None, sink_port=None
            )
        if not args.no_floor:
            print(f"floor: bare quart-trio on hypercorn, {args.workers} worker(s)")
            floor_port_file = workdir / "floor.port"
            floor = procs.start(
                "floor",
                procs.python(
                    "loadtest.floor",
                    "--port-file",
                    str(floor_port_file),
                    "--workers",
                    str(args.workers),
                ),
                workdir,
            )
            children.append(floor)
            floor_port = procs.wait_port_file(floor, floor_port_file)
            phases["floor"] = Phase(args, workdir, "floor").run(
                floor_port, args.duration, target_pid=floor.pid, sink_port=None
            )
            floor.stop()

        variants = [("gateway", {})] + [parse_variant(v) for v in args.variant]
        for label, knobs in variants:
            phases[label] = run_gateway(args, workdir, out_dir, sink_port, label, knobs, children)
    finally:
        for child in reversed(children):
            child.stop()
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = report.build(args, phases)
    report.write(summary, out_dir)
    print(report.table(summary))
    print(f"\nreport: {out_dir}/report.json, report.txt, report.html")
    return 0 if summary["gateway"]["lost"] == 0 and summary["gateway"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
