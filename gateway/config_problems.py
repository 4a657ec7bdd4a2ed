"""config_problems.py: what one config load found wrong, each with its key path.

Owns: collecting problems as "key.path: reason", the secrets substituted so far (masked in
every message), the order of keys in the file (problems are listed in it), and raising them
all at once as ConfigError.
Must not: find problems itself (substitution.py and config_check.py do) or show any value
that came from a secret.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

from gateway.errors import ConfigError

MASK: Final = "***"


@dataclasses.dataclass
class Problems:
    """What one load found: problems, secrets, and the key paths that have a problem."""

    items: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, reason)
    secrets: set[str] = dataclasses.field(default_factory=set)
    bad_paths: set[str] = dataclasses.field(default_factory=set)
    file_order: dict[str, int] = dataclasses.field(default_factory=dict)  # path -> position

    def add(self, path: str, reason: str) -> None:
        self.items.append((path, reason))
        self.bad_paths.add(path)

    def usable(self, *paths: str) -> bool:
        """True if no problem was reported at or above any of ``paths``.

        A semantic check whose inputs already have a problem would only repeat it (or judge
        the default that stands in for the bad value), so it is skipped.
        """
        return not any(
            path == bad or path.startswith((bad + ".", bad + "["))
            for path in paths
            for bad in self.bad_paths
        )

    def clean(self, path: str) -> bool:
        """True if no problem was reported at, above or below ``path``."""
        return self.usable(path) and not any(
            bad.startswith((path + ".", path + "[")) for bad in self.bad_paths
        )

    def mask(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def describe(self, value: object) -> str:
        """A short, secret-free rendering of a YAML value for a message."""
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, str):
            shown = self.mask(value)  # mask before truncating, or part of a secret could show
            return repr(shown if len(shown) <= 40 else shown[:37] + "...")
        if isinstance(value, dict):
            return "a mapping"
        if isinstance(value, list):
            return "a list"
        return type(value).__name__

    def raise_if_any(self, source: str) -> None:
        if self.items:
            # In the order of the file, whichever pass found them.
            ordered = sorted(self.items, key=lambda item: self._position(item[0]))
            lines = [f"{path}: {reason}" if path else reason for path, reason in ordered]
            raise ConfigError([self.mask(line) for line in lines], source=source)

    def _position(self, path: str) -> int:
        # A key that is missing from the file sorts with its nearest parent that is there.
        while path and path not in self.file_order:
            parent = _PARENT.sub("", path)
            path = parent if parent != path else ""
        return self.file_order.get(path, -1)


_PARENT: Final = re.compile(r"(\.[^.\[]*|\[[0-9]+\])$")  # the last step of a key path


def key_path(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
