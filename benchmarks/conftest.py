"""make bench: pytest-benchmark micro-benchmarks of the hot path. Not part of ``make test``
(testpaths is tests/); run with ``make bench``."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # support.app
