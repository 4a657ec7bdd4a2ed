"""config.py: the YAML file as frozen msgspec Structs — the public entry points of loading.

Owns: reading the file, parsing YAML (a key given twice is an error), running substitution
and validation in order, and ``Loaded`` (the Config plus the secrets other modules mask).
Must not: compile templates, open clients or touch the network (that is runtime.py).

Public API: ``load_file``, ``load_text`` (both return ``Loaded`` or raise ``ConfigError``),
``parse_duration``, ``parse_size`` and the schema's Structs, all importable from here. Each
step lives in its own module, in the order a load runs them:

- schema.py: the Structs (every key, type, default and constraint);
- units.py: durations ("30s", "1m30s", "250ms") and sizes ("10MiB");
- substitution.py: ``${env:NAME}`` / ``${env:NAME:-default}`` / ``${file:/path}`` /
  ``${cred:NAME}`` inside string values (after YAML parsing, so Mustache and ``$`` inside
  templates are untouched);
- config_check.py: conversion to the Structs and the semantic checks, every problem under
  its key path;
- config_problems.py: collecting those problems, in file order, with secrets masked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import yaml

from gateway.config_check import DestinationCheck, validate
from gateway.config_problems import MASK, Problems
from gateway.errors import ConfigError
from gateway.schema import (
    NAME_PATTERN,
    AuthConfig,
    Base,
    BreakerConfig,
    ClientTLSConfig,
    Config,
    DebugConfig,
    DedupConfig,
    DefaultsConfig,
    DestinationConfig,
    Engine,
    Format,
    Kind,
    LimitsConfig,
    LockoutConfig,
    LogFormat,
    LoggingConfig,
    LogLevel,
    Markup,
    Method,
    PoolConfig,
    RateConfig,
    RateLimitConfig,
    RetryConfig,
    ServerConfig,
    ServerTLSConfig,
    SpoolConfig,
    SuccessBodyConfig,
    TemplateCacheConfig,
)
from gateway.substitution import (
    MAX_SUBSTITUTED_FILE_BYTES,
    MAX_VALUES,
    MIN_SECRET_CHARS,
    NOT_RESOLVED,
    NOT_RESOLVED_WHY,
    Resolver,
    TooManyValues,
    substitute,
)
from gateway.units import DURATION_HINT, SIZE_HINT, ByteSize, Duration, parse_duration, parse_size

if TYPE_CHECKING:
    from collections.abc import Hashable, Mapping

# Every name that was public here before the schema, units, substitution and checks moved to
# their own modules: callers keep importing them from gateway.config.
__all__ = [
    "DURATION_HINT",
    "MASK",
    "MAX_SUBSTITUTED_FILE_BYTES",
    "MAX_VALUES",
    "MIN_SECRET_CHARS",
    "NAME_PATTERN",
    "NOT_RESOLVED",
    "NOT_RESOLVED_WHY",
    "SIZE_HINT",
    "AuthConfig",
    "Base",
    "BreakerConfig",
    "ByteSize",
    "ClientTLSConfig",
    "Config",
    "DebugConfig",
    "DedupConfig",
    "DefaultsConfig",
    "DestinationCheck",
    "DestinationConfig",
    "Duration",
    "Engine",
    "Format",
    "Kind",
    "LimitsConfig",
    "Loaded",
    "LockoutConfig",
    "LogFormat",
    "LogLevel",
    "LoggingConfig",
    "Markup",
    "Method",
    "PoolConfig",
    "RateConfig",
    "RateLimitConfig",
    "RetryConfig",
    "ServerConfig",
    "ServerTLSConfig",
    "SpoolConfig",
    "SuccessBodyConfig",
    "TemplateCacheConfig",
    "load_file",
    "load_text",
    "parse_duration",
    "parse_size",
]


class Loaded(msgspec.Struct, frozen=True):
    """A validated config file and what other modules need to know about it."""

    config: Config
    secrets: frozenset[str]  # every value substituted from env/file/cred: mask it in output
    source: str  # the file path, or "<text>"
    sha256: str  # hex digest of the raw file bytes (tells a reload whether anything changed)


# ---------------------------------------------------------------------------------------
# YAML.


class _Loader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error.

    Plain YAML keeps the last of two equal keys silently, which hides the first setting.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
        if exc.context:
            where = exc.context_mark
            at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            text += f" ({exc.context}{at})"
        return text
    return f"invalid YAML: {exc}"


# ---------------------------------------------------------------------------------------
# Entry points.


def load_text(
    text: str,
    *,
    source: str = "<text>",
    environ: Mapping[str, str] | None = None,
    check_destination: DestinationCheck | None = None,
    offline: bool = False,
) -> Loaded:
    """Parse, substitute and validate config ``text`` (YAML or JSON).

    ``environ`` defaults to os.environ. Relative ``${file:...}`` paths are relative to the
    working directory. ``offline`` resolves no substitution at all: each one is reported as
    a problem starting with ``NOT_RESOLVED`` (for text from untrusted callers). Raises
    ConfigError listing every problem found.
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _load(
        text,
        digest=digest,
        source=source,
        environ=environ,
        base_dir=None,
        check=check_destination,
        offline=offline,
    )


def load_file(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    check_destination: DestinationCheck | None = None,
) -> Loaded:
    """Read, parse, substitute and validate the config file at ``path``.

    Relative ``${file:...}`` paths are relative to the file's directory. Raises ConfigError
    listing every problem found, each prefixed with ``path`` when printed.
    """
    source = os.fspath(path)
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([f"cannot read the file: {reason}"], source=source) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start})"], source=source) from exc
    digest = hashlib.sha256(data).hexdigest()
    base_dir = Path(source).parent
    return _load(
        text,
        digest=digest,
        source=source,
        environ=environ,
        base_dir=base_dir,
        check=check_destination,
    )


def _load(
    text: str,
    *,
    digest: str,
    source: str,
    environ: Mapping[str, str] | None,
    base_dir: Path | None,
    check: DestinationCheck | None = None,
    offline: bool = False,
) -> Loaded:
    try:
        tree = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], source=source) from exc
    problems = Problems()
    if tree is None:
        problems.add("", "the file is empty; expected a mapping of settings ({} means defaults)")
    elif not isinstance(tree, dict):
        problems.add("", f"expected a mapping of settings, got {problems.describe(tree)}")
    problems.raise_if_any(source)

    resolver = Resolver(
        os.environ if environ is None else environ, base_dir, problems, offline=offline
    )
    try:
        tree = substitute(tree, "", resolver)
    except TooManyValues:
        problems.add("", f"more than {MAX_VALUES} values (YAML aliases expanding?)")
        problems.raise_if_any(source)
    config = validate(tree, problems, check)
    problems.raise_if_any(source)
    return Loaded(config=config, secrets=frozenset(problems.secrets), source=source, sha256=digest)
