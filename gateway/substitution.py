"""substitution.py: ``${env:NAME}``, ``${env:NAME:-default}``, ``${file:/path}`` and
``${cred:NAME}`` inside the string values of a parsed config.

Owns: the substitution mini-language, reading the referenced environment variables, files
and systemd credentials, and recording every substituted value as a secret.
Must not: convert or validate values (config_check.py) or ever put a substituted value into
a message.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gateway.config_problems import Problems, key_path

if TYPE_CHECKING:
    from collections.abc import Mapping

MIN_SECRET_CHARS: Final = 4  # shorter substituted values are not masked (they'd garble text)
MAX_VALUES: Final = 100_000  # YAML aliases can expand a small file enormously
MAX_SUBSTITUTED_FILE_BYTES: Final = 1024 * 1024  # ${file:...} / ${cred:...} read at most this


class TooManyValues(Exception):
    """More than MAX_VALUES values in the parsed tree; the load stops there."""


# Rationale: substitution runs on the parsed tree, string values only, never on keys and never
# as a textual pass over the file: a substituted value can then contain YAML syntax, quotes or
# newlines without changing the structure, and a template's own `$` and `{{ }}` cannot be
# mistaken for one. Only `${env:`, `${file:` and `${cred:` start a substitution; `$${` writes a
# literal `${`. `${word:` with any other lower-case word is reported (it is almost surely a
# typo of one of them); every other `$` -- `$5`, `${HOME}`, `{{ x }}` -- is left as it is.
# Substituted values are not substituted again.

_REF_START: Final = re.compile(r"\$\{([a-z]+):")
_SCHEMES: Final = ("env", "file", "cred")
_SUBSTITUTION_HELP: Final = (
    "use ${env:NAME}, ${env:NAME:-default}, ${file:/path} or ${cred:NAME}; "
    "write $${ for a literal ${"
)


NOT_RESOLVED: Final = "not resolved:"
NOT_RESOLVED_WHY: Final = "(offline check: only the gateway's own load reads env/files/credentials)"


class _SubstitutionError(Exception):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class _Ref:
    scheme: str  # env, file or cred
    parts: tuple[str | _Ref, ...]  # what stands between "scheme:" and "}"


def _parse(text: str, pos: int, *, nested: bool) -> tuple[list[str | _Ref], int]:
    """Split ``text`` from ``pos`` into literal strings and references; return the end."""
    parts: list[str | _Ref] = []
    literal: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "$":
            if text.startswith("$${", pos):
                literal.append("${")
                pos += 3
                continue
            start = _REF_START.match(text, pos)
            if start is not None:
                if start[1] not in _SCHEMES:
                    raise _SubstitutionError(
                        f"unknown substitution '${{{start[1]}:...}}'; {_SUBSTITUTION_HELP}"
                    )
                if literal:
                    parts.append("".join(literal))
                    literal = []
                inner, pos = _parse(text, start.end(), nested=True)
                parts.append(_Ref(start[1], tuple(inner)))
                continue
        elif char == "}" and nested:
            if literal:
                parts.append("".join(literal))
            return parts, pos + 1
        literal.append(char)
        pos += 1
    if nested:
        raise _SubstitutionError(
            f"unterminated '${{' (a substitution needs a closing '}}'); {_SUBSTITUTION_HELP}"
        )
    if literal:
        parts.append("".join(literal))
    return parts, pos


def _split_default(
    parts: tuple[str | _Ref, ...],
) -> tuple[tuple[str | _Ref, ...], tuple[str | _Ref, ...] | None]:
    """``NAME:-default`` -> (NAME parts, default parts); the default may hold references."""
    for index, part in enumerate(parts):
        if isinstance(part, str) and ":-" in part:
            name, default = part.split(":-", 1)
            head = (*parts[:index], name) if name else parts[:index]
            tail = (default, *parts[index + 1 :]) if default else parts[index + 1 :]
            return head, tail
    return parts, None


@dataclasses.dataclass
class Resolver:
    environ: Mapping[str, str]
    base_dir: Path | None  # relative ${file:...} paths are relative to the config file
    problems: Problems
    offline: bool = False  # resolve nothing: the text came from outside (POST /api/v1/...)

    def render(self, parts: typing.Iterable[str | _Ref], *, secret: bool) -> str:
        """Join ``parts``; ``secret`` says whether the result ends up in a config value."""
        return "".join(p if isinstance(p, str) else self.resolve(p, secret=secret) for p in parts)

    def resolve(self, ref: _Ref, *, secret: bool) -> str:
        if self.offline:
            # A posted config must not learn the host's environment, files or credentials.
            raise _SubstitutionError(f"{NOT_RESOLVED} ${{{ref.scheme}:...}} {NOT_RESOLVED_WHY}")
        if ref.scheme == "env":
            name_parts, default = _split_default(ref.parts)
            name = self.render(name_parts, secret=False)
            if not name:
                raise _SubstitutionError("${env:...} needs a variable name")
            value = self.environ.get(name)
            if default is not None and not value:
                # The default is written in the file, so it is no secret; but a reference
                # inside it (`${env:A:-${file:/x}}`) still is.
                return self.render(default, secret=secret)
            if value is None:
                raise _SubstitutionError(
                    f"environment variable {name} is not set (${{env:{name}}})"
                )
        elif ref.scheme == "file":
            path = self.render(ref.parts, secret=False)
            if not path:
                raise _SubstitutionError("${file:...} needs a path")
            value = self._read(path, f"file {path}")
        else:
            name = self.render(ref.parts, secret=False)
            directory = self.environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise _SubstitutionError(
                    f"${{cred:{name}}} needs $CREDENTIALS_DIRECTORY, which is not set "
                    "(systemd sets it for units with LoadCredential=)"
                )
            if not name or "/" in name or name in (".", ".."):
                raise _SubstitutionError(f"invalid credential name {name!r} in ${{cred:...}}")
            value = self._read(os.path.join(directory, name), f"credential {name}")
        if secret and len(value) >= MIN_SECRET_CHARS:
            self.problems.secrets.add(value)
        return value

    def _read(self, path: str, what: str) -> str:
        # The message names the path, never the content.
        full = Path(path)
        if self.base_dir is not None and not full.is_absolute():
            full = self.base_dir / full
        try:
            with full.open("rb") as file:
                data = file.read(MAX_SUBSTITUTED_FILE_BYTES + 1)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise _SubstitutionError(f"cannot read {what}: {reason}") from None
        if len(data) > MAX_SUBSTITUTED_FILE_BYTES:
            raise _SubstitutionError(
                f"cannot use {what}: larger than {MAX_SUBSTITUTED_FILE_BYTES} bytes"
            )
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _SubstitutionError(f"cannot use {what}: not UTF-8 text") from None
        # One trailing newline is how editors and `echo` end a file; it is never meant.
        if value.endswith("\r\n"):
            return value[:-2]
        return value.removesuffix("\n")


class _Unresolved:
    """Stands for a value whose substitution failed (already reported): checks skip it."""


UNRESOLVED: Final = _Unresolved()


def substitute(node: Any, path: str, resolver: Resolver) -> Any:
    problems = resolver.problems
    problems.file_order.setdefault(path, len(problems.file_order))
    if len(problems.file_order) > MAX_VALUES:
        raise TooManyValues
    if isinstance(node, dict):
        return {
            key: substitute(value, key_path(path, key), resolver) for key, value in node.items()
        }
    if isinstance(node, list):
        return [substitute(item, f"{path}[{i}]", resolver) for i, item in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        try:
            parts, _ = _parse(node, 0, nested=False)
            return resolver.render(parts, secret=True)
        except _SubstitutionError as exc:
            problems.add(path, str(exc))
            return UNRESOLVED
    return node
