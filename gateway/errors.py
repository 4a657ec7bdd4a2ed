"""errors.py: the exception tree and the one place where errors become HTTP answers.

    GatewayError
    ├── ConfigError            bad config file or reload (carries every problem found)
    ├── TemplateError          a template that does not tokenize or renders an invalid body
    ├── PayloadError           an Alertmanager payload that can never succeed (400)
    │   └── PayloadTooLarge    body above max_body_bytes (413)
    ├── UnknownDestination     no such (enabled) destination (404)
    └── Unavailable            draining, queue full, circuit open (503 + Retry-After)

A failed delivery is not an exception: dispatch returns what happened to each part and
web.py answers 502 (504 when the deadline passed), so partial success can be reported.
Messages name the offending value and where it came from, and never contain secrets:
delivery errors are built from status codes and exception class names, not URLs.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base class of every error the gateway raises on purpose."""

    status_code = 500

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(GatewayError):
    """A configuration that cannot be used. ``problems`` lists every problem found."""

    status_code = 400

    def __init__(self, problems: list[str], *, source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in self.problems))


class TemplateError(GatewayError):
    """A template that cannot be compiled, or whose output is not valid for its format."""

    status_code = 500


class PayloadError(GatewayError):
    """The webhook payload can never succeed; retrying cannot help."""

    status_code = 400


class PayloadTooLarge(PayloadError):
    status_code = 413


class UnknownDestination(GatewayError):
    status_code = 404


class Unavailable(GatewayError):
    """Temporarily unable to take work: answer 503 with Retry-After."""

    status_code = 503

    def __init__(self, message: str, *, retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
