"""units.py: durations ("30s", "1m30s", "250ms") and sizes ("10MiB") as config values.

Owns: the Duration and ByteSize scalar types, parsing their YAML spellings, and the msgspec
``dec_hook`` that lets the schema's fields accept both the spelled form and plain numbers.
Must not: know the schema, key paths or files (config_check.py reports where a bad value is).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Final


class Duration(float):
    """Seconds. Written in YAML as "30s", "1m30s", "250ms", "2h" or a plain number of seconds."""


class ByteSize(int):
    """Bytes. Written in YAML as "10MiB", "512KiB", "1MB" or a plain integer."""


# Durations use Go's time.ParseDuration spelling (the Go gateway's configs must keep working)
# without its sign: a negative timeout or interval is always a mistake here.

DURATION_HINT: Final = "use e.g. 30s, 1m30s, 250ms"
SIZE_HINT: Final = "use e.g. 10MiB, 512KiB, 1MB or a number of bytes"

_DURATION_UNIT_S: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign, as Go accepts
    "μs": 1e-6,  # U+03BC Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART: Final = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_PLAIN_NUMBER: Final = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")

_SIZE_UNIT_B: Final = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)")


def parse_duration(text: str | int | float) -> float:
    """Seconds from "30s", "1m30s", "250ms", "2h", "1h2m3.5s", "500us" or a plain number.

    Raises ValueError (naming the value) for anything else, including negative durations.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"invalid duration {_show(text)} ({DURATION_HINT})")
    if isinstance(text, str):
        spelled = text.strip()
        if spelled.startswith("-"):
            raise ValueError(f"invalid duration {text!r}: must not be negative")
        if _PLAIN_NUMBER.fullmatch(spelled):
            seconds = float(spelled)
        else:
            seconds, pos = 0.0, 0
            while pos < len(spelled):
                part = _DURATION_PART.match(spelled, pos)
                if part is None:
                    break
                seconds += float(part[1]) * _DURATION_UNIT_S[part[2]]
                pos = part.end()
            if not spelled or pos < len(spelled):
                raise ValueError(f"invalid duration {text!r} ({DURATION_HINT})")
    else:
        seconds = float(text)
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {_show(text)} ({DURATION_HINT})")
    if seconds < 0:
        raise ValueError(f"invalid duration {_show(text)}: must not be negative")
    return seconds


def parse_size(text: str | int) -> int:
    """Bytes from "10MiB", "512KiB", "1GiB", "1MB", "1kB", "100B" or a plain integer.

    KiB/MiB/GiB/TiB are powers of 1024, kB/MB/GB/TB powers of 1000 (units are not case
    sensitive). Raises ValueError for anything else, negative sizes and fractional bytes.
    """
    value: object = text
    if isinstance(value, bool):
        raise ValueError(f"invalid size {_show(value)} ({SIZE_HINT})")
    if isinstance(value, int):
        size = value
    elif isinstance(value, float) and value.is_integer():
        size = int(value)
    elif isinstance(value, str):
        if value.strip().startswith("-"):
            raise ValueError(f"invalid size {value!r}: must not be negative")
        match = _SIZE.fullmatch(value.strip())
        if match is None or match[2].lower() not in _SIZE_UNIT_B:
            raise ValueError(f"invalid size {value!r} ({SIZE_HINT})")
        exact = Decimal(match[1]) * _SIZE_UNIT_B[match[2].lower()]
        if exact != exact.to_integral_value():
            raise ValueError(f"invalid size {value!r}: not a whole number of bytes")
        size = int(exact)
    else:
        raise ValueError(f"invalid size {_show(value)} ({SIZE_HINT})")
    if size < 0:
        raise ValueError(f"invalid size {size}: must not be negative")
    return size


def dec_hook(tp: type, obj: Any) -> Any:
    # msgspec treats subclasses of float/int as custom types and always asks this hook, so
    # Duration/ByteSize accept both their spelled form and plain numbers.
    if tp is Duration:
        return Duration(parse_duration(obj))
    if tp is ByteSize:
        return ByteSize(parse_size(obj))
    raise NotImplementedError(f"no decoder for {tp!r}")


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str | int | float) else type(value).__name__
