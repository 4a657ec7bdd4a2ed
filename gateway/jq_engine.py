"""jq_engine.py: ``engine: jq`` — a destination's body is the output of a jq program, for users
moving jq ``transform`` configs over from the Go gateway.

Owns: compiling the program once (at load, so a syntax error stops start-up or reload) and
running it per part. Its input is the Alertmanager payload as received, with ``alerts``
holding only this part's alerts; ``$params`` are the destination's params and ``$part`` is
``{index, number, count}``. The first output is the body: a string as it is for ``text``,
anything else written as JSON (for ``form``/``query``, a flat object, as with templates).
Must not: encode or check bodies (formats.py does, exactly as for templates).

The PyPI package ``jq`` is optional: ``pip install 'alertmanager-gateway[jq]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .errors import TemplateError

if TYPE_CHECKING:
    from .alertmanager import Alert, Payload

INSTALL_HINT = "engine: jq needs the jq package: pip install 'alertmanager-gateway[jq]'"


# jq binds ``--arg``-style variables at compile time, and $part differs for every part, so
# the user's program is wrapped to read both from its input instead: compiled once at load,
# run per part. The closing parenthesis is on its own line so that a trailing ``# comment``
# in the user's program cannot swallow it.
_WRAPPER = ". as [$params, $part, $root] | $root | (\n{source}\n)"


class JqProgram:
    def __init__(self, source: str, fmt: str) -> None:
        """Raises TemplateError for a missing jq package or a program that does not compile."""
        try:
            import jq
        except ImportError:
            raise TemplateError(INSTALL_HINT) from None
        try:
            self._program = jq.compile(_WRAPPER.format(source=source))
        except ValueError as exc:
            raise TemplateError(f"jq program does not compile: {exc}") from None
        self._fmt = fmt

    def render(self, payload: Payload, part: tuple[Alert, ...], view: dict[str, Any]) -> str:
        data = msgspec.to_builtins(payload)
        data["alerts"] = msgspec.to_builtins(part)
        params = view.get("params", {})
        part_info = dict(view.get("part", {}))
        try:
            output = self._program.input_value([params, part_info, data]).first()
        except (ValueError, StopIteration) as exc:
            raise TemplateError(f"jq program failed: {str(exc)[:200] or 'no output'}") from None
        if isinstance(output, str) and self._fmt == "text":
            return output
        return msgspec.json.encode(output).decode("utf-8")
