"""config_check.py: the substituted tree to a Config, reporting every problem by key path.

Owns: converting each value with msgspec on its own (so one bad key does not hide the next),
expanding presets, and the semantic checks no field's type can express (addresses, URLs,
header names, credentials, pool sizes), plus the caller's per-destination check.
Must not: parse YAML, substitute values (substitution.py) or compile templates (runtime.py
passes that in as a DestinationCheck).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import typing
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import msgspec

from gateway import presets
from gateway.config_problems import Problems, key_path
from gateway.schema import AuthConfig, Config, DestinationConfig, ServerConfig
from gateway.substitution import UNRESOLVED
from gateway.units import dec_hook

# ---------------------------------------------------------------------------------------
# Conversion: the schema's types and constraints, each problem under its YAML key path.
#
# msgspec.convert stops at the first error, and its paths read `$.pool.max_connections`. To
# report every problem under its YAML key path, the Structs are walked here field by field:
# each leaf is converted on its own (so msgspec still applies the types and Meta constraints)
# and the Structs are built from the converted leaves. A bad leaf is left out, so its Struct
# holds the default there and the semantic checks can still look at the rest (they skip
# what `Problems.usable` says is bad); such a Config is never returned. Lax mode lets
# numbers and booleans arrive as strings, which is what `${env:...}` produces.


class _Invalid:
    """The value at this path has a reported problem and nothing can stand in for it."""


_INVALID: Final = _Invalid()

_EXPECTED_GOT: Final = re.compile(r"Expected `([^`]+)`, got `([^`]+)`")
_EXPECTED: Final = re.compile(r"Expected `([^`]+)`(.*)")
_AT_PATH: Final = re.compile(r" - at `\$[^`]*`$")
_TYPE_WORDS: Final = {"object": "a mapping", "array": "a list", "null": "null"}


def _reason(tp: Any, value: object, message: str, problems: Problems) -> str:
    """Rewrite one msgspec error into 'expected ..., got ...' text."""
    message = _AT_PATH.sub("", message)
    got = problems.describe(value)
    if typing.get_origin(tp) is Literal:
        choices = ", ".join(str(choice) for choice in typing.get_args(tp))
        return f"expected one of {choices}, got {got}"
    if match := _EXPECTED_GOT.fullmatch(message):
        quote = isinstance(value, int | float | bool) and match[1] == "str"
        return f"expected {_TYPE_WORDS.get(match[1], match[1])}, got {got}" + (
            " (quote it in YAML)" if quote else ""
        )
    if match := _EXPECTED.fullmatch(message):
        return f"expected {match[1]}{match[2].replace('`', '')}, got {got}"
    return message[:1].lower() + message[1:]


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _value(tp: Any, value: Any, path: str, problems: Problems) -> Any:
    """``value`` converted to ``tp`` (bad parts left out, and reported), or _INVALID."""
    if _is_struct(tp):
        return _struct(tp, value, path, problems)
    optional = _optional_struct(tp)
    if optional is not None:  # `retry: RetryConfig | None`: walk the section for key paths
        return None if value is None else _struct(optional, value, path, problems)
    origin = typing.get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            problems.add(path, f"expected a list, got {problems.describe(value)}")
            return _INVALID
        (item_tp,) = typing.get_args(tp)
        items = [
            _value(item_tp, item, f"{path}[{i}]", problems)
            for i, item in enumerate(value)
            if item is not UNRESOLVED
        ]
        return [item for item in items if item is not _INVALID]
    if origin is dict:
        if not isinstance(value, dict):
            problems.add(path, f"expected a mapping, got {problems.describe(value)}")
            return _INVALID
        _, item_tp = typing.get_args(tp)
        converted: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.add(path, f"key {problems.describe(key)} must be a string (quote it)")
            elif item is not UNRESOLVED:
                result = _value(item_tp, item, key_path(path, key), problems)
                if result is not _INVALID:
                    converted[key] = result
        return converted
    try:
        return msgspec.convert(value, tp, strict=False, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        problems.add(path, _reason(tp, value, str(exc), problems))
        return _INVALID


def _struct(cls: type[msgspec.Struct], raw: Any, path: str, problems: Problems) -> Any:
    if not isinstance(raw, dict):
        problems.add(path, f"expected a mapping, got {problems.describe(raw)}")
        return _INVALID
    fields = {field.encode_name: field for field in msgspec.structs.fields(cls)}
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.add(key_path(path, key), f"unknown key{hint}")
    complete = True  # every required field has a value
    kwargs: dict[str, Any] = {}
    for key, field in fields.items():
        value = raw.get(key)
        if key not in raw or (value is None and _is_section(field.type)):
            # A section written with nothing under it (`pool:`) means its defaults.
            if field.required:
                problems.add(key_path(path, key), "missing (required)")
                complete = False
            continue
        converted = (
            _INVALID
            if value is UNRESOLVED
            else _value(field.type, value, key_path(path, key), problems)
        )
        if converted is not _INVALID:
            kwargs[field.name] = converted
        elif field.required:
            complete = False
    return cls(**kwargs) if complete else _INVALID


def _optional_struct(tp: Any) -> Any:
    """S for ``S | None`` where S is a Struct, else None."""
    args = typing.get_args(tp)
    if len(args) == 2 and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return inner if _is_struct(inner) else None
    return None


def _is_section(tp: Any) -> bool:
    return _is_struct(tp) or typing.get_origin(tp) in (list, dict)


# ---------------------------------------------------------------------------------------
# Semantic checks: what one field's type cannot say.

_HTTP_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_PORT: Final = re.compile(r"[0-9]{1,5}")
_BODYLESS_METHODS: Final = ("GET", "DELETE")


def _address_problem(address: str) -> str | None:
    """None if ``address`` is host:port, :port or [ipv6]:port; else the reason."""
    host, colon, port = address.rpartition(":")
    if not colon:
        return f"expected host:port or :port, got {address!r}"
    if host.startswith("["):
        if not host.endswith("]"):
            return f"expected [ipv6]:port, got {address!r}"
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"invalid IPv6 address {host!r}"
    elif ":" in host:
        return f"write an IPv6 address in brackets, e.g. [::1]:8080, got {address!r}"
    elif host and not _HOSTNAME.fullmatch(host):
        return f"invalid host {host!r}"
    if not _PORT.fullmatch(port) or int(port) > 65535:
        return f"port must be 0..65535, got {port!r}"
    return None


def _url_problem(url: str) -> str | None:
    """None if ``url`` is a usable http(s) URL; else a reason that never quotes the URL.

    URLs carry secrets (userinfo, tokens in the query, and e.g. Slack and Telegram put them
    in the path), so no part of one is repeated here.
    """
    if not url:
        return "missing (kind: http needs an http:// or https:// URL)"
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number 0..65535
    except ValueError:
        return "not a valid URL (check the host and port)"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    return None


def _check_server(server: ServerConfig, problems: Problems) -> None:
    if problems.usable("server.address"):
        reason = _address_problem(server.address)
        if reason:
            problems.add("server.address", reason)
    for name in ("read_timeout", "write_timeout", "drain_timeout"):
        if getattr(server, name) <= 0:
            problems.add(f"server.{name}", "must be more than 0s")
    if server.max_body_bytes < 1:
        problems.add("server.max_body_bytes", "must be at least 1 byte")
    for name, auth in (("auth", server.auth), ("admin", server.admin)):
        _check_auth(auth, f"server.{name}", problems)
    if server.metrics_auth and server.admin is None and problems.usable("server.admin"):
        problems.add("server.metrics_auth", "needs server.admin (its credentials guard /metrics)")
    for index, cidr in enumerate(server.trusted_proxies):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.add(f"server.trusted_proxies[{index}]", f"not an IP address or CIDR: {cidr!r}")
    if server.lockout.failures and (server.lockout.window <= 0 or server.lockout.duration <= 0):
        problems.add("server.lockout", "window and duration must be more than 0s")
    if server.max_header_bytes < 1024:
        problems.add("server.max_header_bytes", "must be at least 1KiB")


def _check_auth(auth: AuthConfig | None, path: str, problems: Problems) -> None:
    if auth is None or not problems.usable(path):
        return
    if bool(auth.username) != bool(auth.password):
        problems.add(path, "username and password go together (HTTP basic auth)")
    elif not auth.username and not auth.bearer_tokens:
        problems.add(path, "set username and password, or bearer_tokens (or remove the section)")
    for index, token in enumerate(auth.bearer_tokens):
        if not token or any(char.isspace() for char in token):
            problems.add(f"{path}.bearer_tokens[{index}]", "must be non-empty without spaces")
    if ":" in auth.username:
        problems.add(f"{path}.username", "must not contain ':' (HTTP basic auth)")


def _check_destination(
    dest: DestinationConfig, raw: dict[str, Any], path: str, problems: Problems
) -> DestinationConfig:
    """Report what is wrong with ``dest``; return it with derived defaults filled in."""
    usable = problems.usable
    if dest.kind == "http" and usable(f"{path}.kind"):
        if usable(f"{path}.url"):
            reason = _url_problem(dest.url)
            if reason:
                problems.add(f"{path}.url", reason)
        if (
            dest.method in _BODYLESS_METHODS
            and dest.format != "query"
            and usable(f"{path}.method", f"{path}.format")
        ):
            problems.add(f"{path}.method", f"{dest.method} sends no body; use format: query")
    if dest.timeout <= 0:
        problems.add(f"{path}.timeout", "must be more than 0s")
    for name, value in dest.headers.items():
        if not _HTTP_TOKEN.fullmatch(name):
            problems.add(f"{path}.headers", f"invalid header name {name!r}")
        if any(char in value for char in "\r\n\0"):
            problems.add(f"{path}.headers.{name}", "value must not contain CR, LF or NUL")

    if dest.retry is not None and dest.retry.max_delay < dest.retry.initial_delay:
        problems.add(f"{path}.retry.max_delay", "must not be less than retry.initial_delay")
    body = dest.success_body
    if body is not None and not body.contains and not body.json_path:
        problems.add(f"{path}.success_body", "set contains or json_path (or remove it)")
    _check_auth(dest.auth, f"{path}.auth", problems)
    if dest.proxy_url and usable(f"{path}.proxy_url"):
        reason = _url_problem(dest.proxy_url)
        if reason:
            problems.add(f"{path}.proxy_url", reason)
    tls = dest.tls
    if bool(tls.cert_file) != bool(tls.key_file) and usable(f"{path}.tls"):
        problems.add(f"{path}.tls", "cert_file and key_file go together (client certificate)")

    pool, pool_path = dest.pool, f"{path}.pool"
    if pool.max_keepalive_connections > pool.max_connections and usable(
        f"{pool_path}.max_connections", f"{pool_path}.max_keepalive_connections"
    ):
        problems.add(
            f"{pool_path}.max_keepalive_connections",
            f"{pool.max_keepalive_connections} is more than "
            f"pool.max_connections ({pool.max_connections})",
        )
    if dest.parallel_requests > pool.max_connections:
        if raw.get("pool") is None:
            # Without a pool section the pool follows parallel_requests, so that setting is
            # never silently capped by a default it did not mention.
            wider = msgspec.structs.replace(
                pool,
                max_connections=dest.parallel_requests,
                max_keepalive_connections=dest.parallel_requests,
            )
            return msgspec.structs.replace(dest, pool=wider)
        if usable(f"{path}.parallel_requests", f"{pool_path}.max_connections"):
            problems.add(
                f"{path}.parallel_requests",
                f"{dest.parallel_requests} is more than pool.max_connections "
                f"({pool.max_connections}); the extra requests would only wait for a "
                "connection - raise pool.max_connections or lower parallel_requests",
            )
    return dest


# Checks the loader cannot do itself (runtime.py compiles and test-renders templates): given a
# destination with no problem so far, return (key under the destination, reason) pairs.
DestinationCheck = typing.Callable[[DestinationConfig], list[tuple[str, str]]]


def validate(
    tree: dict[Any, Any], problems: Problems, check: DestinationCheck | None = None
) -> Config:
    """The Config for ``tree``; usable only if ``problems`` stayed empty."""
    # Destinations are validated one by one so that a bad one does not hide the others,
    # and the semantic checks run on every destination that has a name.
    others = {key: value for key, value in tree.items() if key != "destinations"}
    sections = _struct(Config, others, "", problems)
    assert isinstance(sections, Config)  # Config has no required field; tree is a mapping
    _check_server(sections.server, problems)
    retry = sections.defaults.retry
    if retry.max_delay < retry.initial_delay:
        problems.add("defaults.retry.max_delay", "must not be less than retry.initial_delay")

    raw_dests = tree.get("destinations")
    if raw_dests is None or raw_dests is UNRESOLVED:
        raw_dests = []
    elif not isinstance(raw_dests, list):
        problems.add("destinations", f"expected a list, got {problems.describe(raw_dests)}")
        raw_dests = []
    dests: list[DestinationConfig] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_dests):
        path = f"destinations[{index}]"
        if raw is UNRESOLVED:
            continue
        if isinstance(raw, dict):
            raw = presets.expand(raw, path, problems.add)
        dest = _value(DestinationConfig, raw, path, problems)
        if not isinstance(dest, DestinationConfig):
            continue  # not a mapping, or no usable name: already reported
        if dest.name in first_index:
            problems.add(f"{path}.name", f"duplicate of destinations[{first_index[dest.name]}]")
        else:
            first_index[dest.name] = index
        dest = _check_destination(dest, raw, path, problems)
        if check is not None and problems.clean(path):
            for key, reason in check(dest):
                problems.add(f"{path}.{key}", reason)
        dests.append(dest)
    return msgspec.structs.replace(sections, destinations=dests)
