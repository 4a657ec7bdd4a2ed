"""report.py: turn the raw phase results into the summary, a table, JSON and an HTML page.

The HTML page is self-contained (inline SVG, no scripts, no plotting library): throughput
and p50/p99 latency per second for the gateway and the floor.
Must not: start processes or measure anything.
"""

from __future__ import annotations

import argparse
import html
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def _phase(raw: dict[str, Any]) -> dict[str, Any]:
    drivers = raw["drivers"]
    codes: dict[str, int] = defaultdict(int)
    for d in drivers:
        for code, n in d["codes"].items():
            codes[str(code)] += n
    samples = sorted(s for d in drivers for s in d["samples"])
    latencies = sorted(s[1] for s in samples)
    answered = len(samples)
    ok = sum(len(d["ok_ids"]) for d in drivers)
    elapsed = max(d["elapsed_s"] for d in drivers)
    start = min(d["started"] for d in drivers)
    per_second: dict[int, list[float]] = defaultdict(list)
    for at, ms in samples:
        per_second[int(at - start)].append(ms)
    series = []
    for sec in range(max(per_second, default=-1) + 1):
        values = sorted(per_second.get(sec, []))
        series.append(
            {
                "t": sec,
                "rps": len(values),
                "p50": round(percentile(values, 50), 2),
                "p99": round(percentile(values, 99), 2),
            }
        )
    out: dict[str, Any] = {
        "notifications": sum(d["notifications"] for d in drivers),
        "sent": sum(d["sent"] for d in drivers),
        "answered": answered,
        "codes": dict(sorted(codes.items())),
        "connection_errors": sum(d["errors"] for d in drivers),
        "resends": sum(d["resends"] for d in drivers),
        "ok": ok,
        "failed": sum(len(d["failed_ids"]) for d in drivers),
        "elapsed_s": round(elapsed, 2),
        "throughput_rps": round(answered / elapsed, 1) if elapsed else 0.0,
        "ok_per_s": round(ok / elapsed, 1) if elapsed else 0.0,
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(latencies[-1], 2) if latencies else 0.0,
        },
        "series": series,
    }
    if "cpu_s" in raw:
        out["cpu_s"] = round(raw["cpu_s"], 2)
        out["cpu_s_per_1000"] = round(raw["cpu_s"] / answered * 1000, 3) if answered else None
        out["rss_idle_mb"] = round(raw["rss_idle"] / 2**20, 1)
        out["rss_peak_mb"] = round(raw["rss_peak"] / 2**20, 1)
        out["rss_idle_processes_mb"] = [round(r / 2**20, 1) for r in raw["rss_idle_per_process"]]
    if "sink" in raw:
        keys: dict[str, int] = raw["sink"]["keys"]
        expected = [
            f"{nid}-{suffix}" for d in drivers for nid in d["ok_ids"] for suffix in d["suffixes"]
        ]
        out["alerts_expected"] = len(expected)
        out["alerts_delivered"] = sum(keys.values())
        out["alerts_unique"] = len(keys)
        out["duplicates"] = sum(n - 1 for n in keys.values() if n > 1)
        out["lost"] = sum(1 for key in expected if key not in keys)
        out["sink_requests"] = raw["sink"]["requests"]
        out["sink_failed"] = raw["sink"]["failed"]
        out["alerts_per_s"] = round(out["alerts_delivered"] / elapsed, 1) if elapsed else 0.0
        out["exit_code"] = raw.get("exit_code")
    return out


def build(args: argparse.Namespace, phases: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "scenario": args.scenario,
        "duration_s": args.duration,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "workers": args.workers,
        "driver_procs": args.driver_procs,
        "log_level": args.log_level,
        "gateway_env": args.gateway_env,
        "transport": args.transport,
        "variants": args.variant,
    }
    for name, raw in phases.items():
        summary[name] = _phase(raw)
    gw = summary["gateway"]
    ratios: dict[str, Any] = {}
    if "floor" in summary:
        fl = summary["floor"]
        ratios["throughput_gateway_over_floor"] = round(
            gw["throughput_rps"] / fl["throughput_rps"], 3
        )
        if gw.get("cpu_s_per_1000") and fl.get("cpu_s_per_1000"):
            ratios["cpu_per_webhook_gateway_over_floor"] = round(
                gw["cpu_s_per_1000"] / fl["cpu_s_per_1000"], 3
            )
    if "calibration" in summary:
        ratios["driver_vs_sink_over_gateway"] = round(
            summary["calibration"]["throughput_rps"] / gw["throughput_rps"], 2
        )
    for name in phases:
        if name.startswith("gateway:"):
            var = summary[name]
            key = name.removeprefix("gateway:")
            ratios[f"{key}: throughput over gateway"] = round(
                var["throughput_rps"] / gw["throughput_rps"], 3
            )
            if var.get("cpu_s_per_1000") and gw.get("cpu_s_per_1000"):
                ratios[f"{key}: cpu per webhook over gateway"] = round(
                    var["cpu_s_per_1000"] / gw["cpu_s_per_1000"], 3
                )
    summary["ratios"] = ratios
    return summary


ROWS = [
    ("notifications", "notifications"),
    ("sent", "requests sent (incl. re-sends)"),
    ("codes", "answered by status"),
    ("connection_errors", "connection errors"),
    ("ok", "notifications answered 2xx"),
    ("failed", "notifications given up"),
    ("throughput_rps", "throughput (answers/s)"),
    ("latency_ms", "latency ms p50/p95/p99/max"),
    ("alerts_delivered", "alerts delivered"),
    ("duplicates", "duplicates"),
    ("lost", "LOST (must be 0)"),
    ("alerts_per_s", "alerts delivered/s"),
    ("rss_idle_mb", "RSS idle MB"),
    ("rss_peak_mb", "RSS peak MB"),
    ("rss_idle_processes_mb", "RSS idle MB per process"),
    ("cpu_s_per_1000", "CPU s per 1,000 webhooks"),
]


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(f"{v:g}" for v in value)
    if isinstance(value, dict):
        if set(value) == {"p50", "p95", "p99", "max"}:
            return "/".join(f"{value[k]:g}" for k in ("p50", "p95", "p99", "max"))
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return "-" if value is None else str(value)


def table(summary: dict[str, Any]) -> str:
    cols = [c for c in ("calibration", "floor", "gateway") if c in summary]
    cols += [c for c in summary if c.startswith("gateway:")]
    head = (
        f"scenario {summary['scenario']}  workers {summary['workers']}  "
        f"{summary['duration_s']:g}s  conns {summary['concurrency']}  "
        f"rate {summary['rate'] or 'max'}"
    )
    width = 30
    lines = [head, f"{'':{width}}" + "".join(f"{c:>28}" for c in cols)]
    for key, title in ROWS:
        if not any(key in summary[c] for c in cols):
            continue
        cells = "".join(f"{_fmt(summary[c].get(key, '')):>28}" for c in cols)
        lines.append(f"{title:{width}}{cells}")
    for key, value in summary["ratios"].items():
        lines.append(f"{key:{width + 28}}{value:>28}")
    return "\n".join(lines)


def _svg(title: str, series: dict[str, list[tuple[float, float]]], unit: str) -> str:
    width, height, pad = 640, 220, 40
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    xs = [x for pts in series.values() for x, _ in pts] or [0.0]
    ys = [y for pts in series.values() for _, y in pts] or [0.0]
    x_max = max(max(xs), 1.0)
    y_max = max(max(ys), 1e-9) * 1.1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
        f'<text x="{pad}" y="16" font-size="13">{html.escape(title)}</text>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" '
        'stroke="#888"/>',
        f'<line x1="{pad}" y1="24" x2="{pad}" y2="{height - pad}" stroke="#888"/>',
        f'<text x="2" y="30" font-size="10">{y_max:.4g}</text>',
        f'<text x="2" y="{height - pad}" font-size="10">0 {html.escape(unit)}</text>',
        f'<text x="{width - 60}" y="{height - pad + 14}" font-size="10">{x_max:g} s</text>',
    ]
    for i, (name, pts) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        coords = " ".join(
            f"{pad + x / x_max * (width - pad - 10):.1f},"
            f"{height - pad - y / y_max * (height - pad - 24):.1f}"
            for x, y in pts
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>'
        )
        parts.append(
            f'<text x="{width - 200}" y="{30 + 13 * i}" font-size="11" fill="{colour}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def html_page(summary: dict[str, Any]) -> str:
    phases = [p for p in ("floor", "gateway") if p in summary]
    phases += [p for p in summary if p.startswith("gateway:")]
    rps = {p: [(s["t"], s["rps"]) for s in summary[p]["series"]] for p in phases}
    lat: dict[str, list[tuple[float, float]]] = {}
    for p in phases:
        lat[f"{p} p50"] = [(s["t"], s["p50"]) for s in summary[p]["series"]]
        lat[f"{p} p99"] = [(s["t"], s["p99"]) for s in summary[p]["series"]]
    charts = [
        _svg("throughput (answers per second)", rps, "/s"),
        _svg("latency p50 / p99 per second", lat, "ms"),
    ]
    return (
        "<!doctype html><meta charset='utf-8'><title>loadtest "
        f"{html.escape(summary['scenario'])}</title>"
        "<body style='font-family:sans-serif'>"
        f"<h1>loadtest: {html.escape(summary['scenario'])}</h1>"
        f"<pre>{html.escape(table(summary))}</pre>"
        + "".join(f"<div>{c}</div>" for c in charts)
        + "</body>"
    )


def write(summary: dict[str, Any], out_dir: Path) -> None:
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "report.txt").write_text(table(summary) + "\n")
    (out_dir / "report.html").write_text(html_page(summary))
