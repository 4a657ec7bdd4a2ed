"""logs.py: one line per event on stderr, as logfmt or JSON, with secrets masked.

When stderr is the journal (``$JOURNAL_STREAM`` names stderr's device and inode), each
line starts with a ``<N>`` syslog priority so ``journalctl -p warning`` works. Every line
passes through the mask: any value that came from ``${env:..}``/``${file:..}``/``${cred:..}``
substitution is replaced by ``***`` wherever it appears.
Must not: buffer, spawn tasks, or know anything about HTTP.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any

import msgspec

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
# syslog priorities understood by journald's stream parser (SyslogLevelPrefix=yes).
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3}
MASK = "***"
_json_encode = msgspec.json.Encoder().encode


def stderr_is_journal(stream: IO[str] = sys.stderr) -> bool:
    """True when systemd connected our stderr to the journal ($JOURNAL_STREAM=dev:ino)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return bool(ino) and f"{st.st_dev}:{st.st_ino}" == f"{dev}:{ino}"


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(c in text for c in ' ="\\\n\r\t') and text.isprintable():
        return text
    return _json_encode(text).decode()


class Logger:
    """A small structured logger. Cheap when a level is disabled: callers pass fields, not
    preformatted strings, so nothing is formatted for a line that is not written."""

    def __init__(
        self,
        *,
        stream: IO[str] | None = None,
        level: str = "info",
        fmt: str = "logfmt",
        journal: bool | None = None,
        clock: Callable[[], float] = time.time,
        static: dict[str, Any] | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        # Fields on every line, e.g. worker=1 under a supervisor, so that the journal's
        # interleaved lines of several workers can be told apart.
        self._static = dict(static or {})
        self._clock = clock
        self._secrets: tuple[str, ...] = ()
        self.journal = stderr_is_journal(self._stream) if journal is None else journal
        self.configure(level=level, fmt=fmt)

    def configure(
        self, *, level: str | None = None, fmt: str | None = None, secrets: Iterable[str] = ()
    ) -> None:
        if level is not None:
            self.level = level
            self._threshold = LEVELS[level]
        if fmt is not None:
            self.fmt = fmt
        # Longest first, so a secret containing another secret is masked whole.
        self._secrets = tuple(sorted(set(secrets) | set(self._secrets), key=len, reverse=True))

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self._threshold

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def log(self, level: str, msg: str, **fields: Any) -> None:
        if LEVELS[level] < self._threshold:
            return
        now = self._clock()
        if self.fmt == "json":
            record: dict[str, Any] = {
                "ts": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
                "level": level,
                "msg": msg,
            }
            record.update(self._static)
            record.update(fields)
            line = _json_encode(record).decode()
        else:
            parts = [f"level={level}", f"msg={_logfmt_value(msg)}"]
            if not self.journal:  # the journal stamps lines itself
                ts = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
                parts.insert(0, f"ts={ts}")
            parts.extend(f"{k}={_logfmt_value(v)}" for k, v in self._static.items())
            parts.extend(f"{k}={_logfmt_value(v)}" for k, v in fields.items() if v is not None)
            line = " ".join(parts)
        line = self.mask(line)
        if self.journal:
            line = f"<{_PRIORITY[level]}>{line}"
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stderr gone (closed pipe): nothing better to do
            pass

    def debug(self, msg: str, **fields: Any) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields: Any) -> None:
        self.log("info", msg, **fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self.log("warning", msg, **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log("error", msg, **fields)
