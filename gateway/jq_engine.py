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


def available() -> bool:
    try:
        import jq  # noqa: F401
    except ImportError:
        return False
    return True


class JqProgram:
    def __init__(self, source: str, fmt: str) -> None:
        """Raises TemplateError for a missing jq package or a program that does not compile."""
        try:
            import jq
        except ImportError:
            raise TemplateError(INSTALL_HINT) from None
        try:
            self._program = jq.compile(source, args={"params": {}, "part": {}})
        except ValueError as exc:
            raise TemplateError(f"jq program does not compile: {exc}") from None
        self._jq = jq
        self._source = source
        self._fmt = fmt

    def render(self, payload: Payload, part: tuple[Alert, ...], view: dict[str, Any]) -> str:
        data = msgspec.to_builtins(payload)
        data["alerts"] = msgspec.to_builtins(part)
        args = {"params": view.get("params", {}), "part": dict(view.get("part", {}))}
        try:
            program = self._jq.compile(self._source, args=args)
            output = program.input_value(data).first()
        except (ValueError, StopIteration) as exc:
            raise TemplateError(f"jq program failed: {str(exc)[:200] or 'no output'}") from None
        if isinstance(output, str) and self._fmt == "text":
            return output
        return msgspec.json.encode(output).decode("utf-8")
