"""presets.py: ready-made destinations for real services, shipped as readable YAML files in
gateway/presets/ — one per service, each a template plus the keys around it.

Owns: finding and reading a preset, merging it under a destination's own keys (any key the
destination gives wins; ``headers``, ``limits`` and ``params`` merge key by key) and checking
the preset's parameters (unknown names are typos; a parameter whose default is null is
required).
Must not: validate the merged keys (config.py does, exactly as if the user had written them)
or render anything (templates.py).

A preset file::

    description: one line shown by docs and errors
    docs: the service's API reference
    params:            # name: default; null = the user must give it
      chat_id: null
    destination:       # any destination key: url, method, format, markup, headers, limits,
      format: json     # split_alerts, batch_size, template, ...
      template: |
        ...
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from importlib import resources
from typing import Any

import yaml

# Keys whose mappings merge key by key, so `limits: {max_items: 5}` keeps the preset's other
# limits and `headers:` adds to the preset's headers.
MERGED_KEYS = ("headers", "limits")


@functools.cache
def names() -> tuple[str, ...]:
    folder = resources.files("gateway") / "presets"
    return tuple(
        sorted(e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml"))
    )


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The parsed preset file (KeyError if there is none). Callers must not mutate it."""
    if name not in names():
        raise KeyError(name)
    text = (resources.files("gateway") / "presets" / f"{name}.yaml").read_text("utf-8")
    preset = yaml.safe_load(text)
    assert isinstance(preset, dict) and isinstance(preset.get("destination"), dict), name
    return preset


def _text(value: object) -> object:
    """A YAML scalar parameter as the text a template shows (``chat_id: -100123`` unquoted
    is a number in YAML; ``true`` is written as JSON writes it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    return value


def expand(raw: dict[str, Any], path: str, add: Callable[[str, str], None]) -> dict[str, Any]:
    """``raw`` (one destination as written) merged over its preset, if it names one; problems
    go to ``add`` as (key path, reason). Numbers and booleans in ``params`` become text."""
    if isinstance(raw.get("params"), dict):
        raw = {**raw, "params": {k: _text(v) for k, v in raw["params"].items()}}
    name = raw.get("preset")
    if not name or not isinstance(name, str):
        return raw  # config.py reports a preset that is not a string
    try:
        preset = load(name)
    except KeyError:
        close = difflib.get_close_matches(name, names(), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        add(f"{path}.preset", f"unknown preset {name[:64]!r}; {hint}one of {', '.join(names())}")
        return raw
    merged: dict[str, Any] = dict(preset["destination"])
    for key, value in raw.items():
        base = merged.get(key)
        if key in MERGED_KEYS and isinstance(base, dict) and isinstance(value, dict):
            merged[key] = {**base, **value}
        elif key != "params":
            merged[key] = value
    merged["params"] = _params(name, preset.get("params") or {}, raw.get("params"), path, add)
    return merged


def _params(
    preset: str,
    defaults: dict[str, Any],
    given: object,
    path: str,
    add: Callable[[str, str], None],
) -> object:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        return given  # config.py reports "expected a mapping"
    params: dict[str, Any] = {}
    for key in given:
        if key not in defaults:
            known = ", ".join(defaults) or "none"
            add(f"{path}.params.{key}", f"unknown parameter of preset {preset} (known: {known})")
    for key, default in defaults.items():
        value = given.get(key, default)
        if isinstance(default, dict) and isinstance(value, dict):
            value = {**default, **value}
        if value is None:
            add(f"{path}.params.{key}", f"missing (required by preset {preset})")
            continue
        params[key] = value
    return params
