"""systemd.py: sd_notify over $NOTIFY_SOCKET and the watchdog interval — no libsystemd.

The protocol is one datagram of ``KEY=VALUE`` lines to an AF_UNIX socket whose path is in
``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). Without the variable every
call is a no-op, so the daemon runs the same under systemd, in tests and in a terminal.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if address.startswith("@"):
            self.address = "\0" + address[1:]
        elif address.startswith("/"):
            self.address = address
        self._sock: socket.socket | None = None
        # WATCHDOG_USEC applies to us only if WATCHDOG_PID is unset or names our PID.
        self.watchdog_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def __call__(self, message: str) -> None:
        """Send one notification (several ``KEY=VALUE`` lines allowed). Never raises:
        systemd being away must not take the gateway down."""
        if self.address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), self.address)
        except OSError:
            pass

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


STATUS_MAX_CHARS = 300


def status_line(text: str) -> str:
    """STATUS= takes one line."""
    return "STATUS=" + " ".join(text.split())[:STATUS_MAX_CHARS]
