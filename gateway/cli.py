"""cli.py: the ``alertmanager-gateway`` command — arguments, exit codes, ``trio.run``.

Exit codes: 0 success; 1 the daemon failed at run time; 2 bad usage, configuration or input
(``check-config`` lists every problem it found).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec
import trio
from prometheus_client import CollectorRegistry

from . import __version__, preview
from . import runtime as runtime_mod
from .errors import ConfigError, GatewayError
from .logs import Logger
from .metrics import Metrics

DEFAULT_CONFIG = os.environ.get("GATEWAY_CONFIG", "config/gateway.yaml")
COMMANDS = ("run", "check-config", "render")
# 1 (a failure while running) is Python's own exit status for an uncaught error.
EXIT_OK, EXIT_USAGE = 0, 2

DESCRIPTION = """\
Receives Prometheus Alertmanager webhooks at POST /webhook/<destination>, renders each
notification with the destination's Mustache template and delivers it over HTTP.

commands:
  run            serve (the default when no command is given)
  check-config   load the config, compile and test-render every template; exit 0 if valid,
                 2 with every problem listed
  render         print each request a payload would produce for one destination (method,
                 URL, headers with secrets masked, body) without sending anything; --json
                 prints exactly what POST /api/v1/test/<destination> answers
"""

EPILOG = """\
examples:
  alertmanager-gateway --config config/gateway.yaml
  alertmanager-gateway check-config --config /etc/alertmanager-gateway/gateway.yaml
  alertmanager-gateway render --config config/gateway.yaml --destination log \\
      --payload tests/data/firing-single.json
  curl -XPOST --data @tests/data/firing-single.json localhost:8080/webhook/log

what Alertmanager gets: 200 delivered (202 queued for delivery: async); 400/404/413 input
  that can never succeed; 502/504 a destination failed or timed out (Alertmanager retries);
  503 + Retry-After while draining, breaker open, spool full or rate limited.

signals: SIGHUP reloads the config (kept on any error); SIGTERM/SIGINT drain and exit 0.
exit codes: 0 ok; 1 failed while running; 2 bad usage, config or payload (all listed).

endpoints: POST /webhook/<name>   GET /health /ready /metrics (/-/healthy, /-/ready)
  admin (server.admin credentials; 403 when none are configured):
    POST /-/reload                      GET  /api/v1/info
    GET  /api/v1/destinations[/<name>]  POST /api/v1/config/validate
    POST /api/v1/test/<name>            POST /api/v1/emulate/<name>?dry_run=false
    GET  /api/v1/destinations/<name>/breaker   POST .../breaker/reset
    GET  /api/v1/spool                  GET  /api/v1/dead-letters[/<id>]
    POST /api/v1/dead-letters/<id>/replay  POST /api/v1/dead-letters/replay?destination=N
    DELETE /api/v1/dead-letters/<id>
    GET  /debug/profile?seconds=N  /debug/memory  /debug/tasks  (debug.profiling)

environment: GATEWAY_CONFIG (default --config), ENABLE_PROFILING=true (/debug/*),
  STATE_DIRECTORY (spool location, set by systemd), CREDENTIALS_DIRECTORY (${cred:NAME}),
  NOTIFY_SOCKET / WATCHDOG_USEC (systemd notify and watchdog), JOURNAL_STREAM.
The config path defaults to $GATEWAY_CONFIG or config/gateway.yaml. Docs: docs/*.md
(configuration, templates, presets, delivery, operations, performance).
"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        "-c",
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help="YAML config file (default: %(default)s)",
    )
    common.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="override logging.level from the config",
    )
    common.add_argument(
        "--log-format", choices=["logfmt", "json"], help="override logging.format from the config"
    )
    parser = argparse.ArgumentParser(
        prog="alertmanager-gateway",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_parser = sub.add_parser("run", parents=[common], help="serve (default)")
    # Set by supervisor.py for its workers: serve this inherited listening socket.
    run_parser.add_argument("--worker-fd", type=int, help=argparse.SUPPRESS)
    sub.add_parser("check-config", parents=[common], help="validate the config and templates")
    render = sub.add_parser("render", parents=[common], help="show the requests for a payload")
    render.add_argument("--destination", "-d", required=True, metavar="NAME")
    render.add_argument(
        "--payload",
        "-p",
        metavar="FILE",
        help="Alertmanager JSON, bare or as {\"webhook_data\": ...} ('-' = stdin); "
        "default: a built-in sample",
    )
    render.add_argument("--sample", metavar="NAME", help="the built-in sample to use")
    render.add_argument(
        "--json", action="store_true", help="print exactly what POST /api/v1/test/<name> answers"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not any(a in COMMANDS for a in args_list) and not {"-h", "--help", "--version"} & set(
        args_list
    ):
        args_list.insert(0, "run")
    args = build_parser().parse_args(args_list)
    if args.command == "check-config":
        return check_config(args.config)
    if args.command == "render":
        return render(
            args.config, args.destination, args.payload, sample=args.sample, as_json=args.json
        )
    return run(
        args.config,
        log_level=args.log_level,
        log_format=args.log_format,
        worker_fd=args.worker_fd,
    )


def _load(path: str) -> runtime_mod.Runtime:
    return runtime_mod.load(path, clients=False)


def check_config(path: str) -> int:
    try:
        rt = _load(path)
    except ConfigError as exc:
        print(f"{path}: INVALID — {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    enabled = [d.name for d in rt.destinations.values() if d.cfg.enabled]
    print(f"{path}: OK — {len(rt.destinations)} destination(s), enabled: {', '.join(enabled)}")
    return EXIT_OK


def render(
    path: str,
    name: str,
    payload_path: str | None,
    *,
    sample: str | None = None,
    as_json: bool = False,
) -> int:
    try:
        rt = _load(path)
        if payload_path is None:
            raw = b""
        elif payload_path == "-":
            raw = sys.stdin.buffer.read()
        else:
            raw = Path(payload_path).read_bytes()
        shown = preview.preview(rt, name, preview.payload_from(raw, sample=sample))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except (GatewayError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if as_json:
        print(msgspec.json.format(msgspec.json.encode(shown), indent=2).decode())
        return EXIT_OK
    if shown["parts_added_by_limits"] or shown["parts_truncated"]:
        print(
            f"# over the destination's limits: {shown['parts_added_by_limits']} part(s) added, "
            f"{shown['parts_truncated']} truncated"
        )
    for req in shown["requests"]:
        print(f"### part {req['part']}/{req['of']}: {len(req['alerts'])} alert(s)")
        print(f"{req['method']} {req['url']}")
        for key, value in req["headers"].items():
            print(f"{key}: {value}")
        print()
        if req["body"] is not None:
            print(req["body"])
        print()
    return EXIT_OK


def run(
    path: str,
    *,
    log_level: str | None = None,
    log_format: str | None = None,
    worker_fd: int | None = None,
) -> int:
    from . import supervisor

    worker = supervisor.worker_index() if worker_fd is not None else None
    logger = Logger(
        level=log_level or "info",
        fmt=log_format or "logfmt",
        static={"worker": worker} if worker is not None else None,
    )
    if worker_fd is None:
        workers = supervisor.workers_of(path)
        if workers > 1:
            return supervisor.run(
                path, workers, logger=logger, log_level=log_level, log_format=log_format
            )

    # The server stack is only imported when serving (not by a supervisor: its RSS).
    from .daemon import Daemon

    daemon = Daemon(
        path,
        logger=logger,
        metrics=Metrics(CollectorRegistry()),
        log_level=log_level,
        log_format=log_format,
        listen_fd=worker_fd,
    )
    try:
        trio.run(daemon.run)
    except ConfigError as exc:
        logger.error("invalid configuration", problems=len(exc.problems), error=str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK
