"""tests/support: helpers shared by tests — a loopback HTTP sink, child processes, the
in-process daemon and app, samples.

Imported as `support` (pytest puts tests/ on sys.path, since tests/ is not a package).
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def load_sample(name: str) -> bytes:
    """The bytes of tests/data/<name>.json ("firing-single" or "firing-single.json")."""
    filename = name if name.endswith(".json") else f"{name}.json"
    return (DATA_DIR / filename).read_bytes()
