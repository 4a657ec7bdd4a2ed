"""redact.py: masking for anything shown to people — URLs, headers, free text.

Secrets come from two places: values substituted from ``${env:..}``/``${file:..}``/
``${cred:..}`` (the loader collects them, and every string shown is scrubbed of them), and
well-known shapes typed straight into the YAML (URL passwords, token-like query parameters,
Authorization-like headers), which are masked by shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SENSITIVE_NAME = re.compile(
    r"auth|token|secret|passw|api[-_]?key|apikey|signature|sig$|cookie|session|credential|key$",
    re.IGNORECASE,
)


def is_sensitive_name(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every known secret value in text, longest first."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_url(url: str, secrets: Iterable[str] = ()) -> str:
    """The URL with its password and token-like query values masked, then scrubbed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_sensitive_name(k) for k, _ in pairs):
            masked = [(k, MASK if is_sensitive_name(k) else v) for k, v in pairs]
            query = urlencode(masked, safe="*")
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), secrets)


def mask_headers(headers: Mapping[str, str], secrets: Iterable[str] = ()) -> dict[str, str]:
    """Headers as shown to people: credential-bearing values masked, keeping a scheme word
    ("Bearer ***") so the reader can still tell what kind of credential is configured."""
    secrets = tuple(secrets)
    shown: dict[str, str] = {}
    for name, value in headers.items():
        if is_sensitive_name(name):
            scheme, sep, _ = value.partition(" ")
            value = f"{scheme} {MASK}" if sep and scheme.isalpha() and len(scheme) < 16 else MASK
        shown[name] = scrub(value, secrets)
    return shown


# Webhook URLs whose path *is* the credential, typed straight into the YAML (a ${env:...}
# value is masked anyway): Slack /services/T/B/<secret>, Discord /api/webhooks/<id>/<token>,
# Telegram /bot<token>/, Mattermost and Rocket.Chat /hooks/<key>[/<token>].
_PATH_SECRETS = (
    re.compile(r"(/services/)[^/?#]+(?:/[^/?#]+)*"),
    re.compile(r"(/api/webhooks/[0-9]+/)[^/?#]+"),
    re.compile(r"(/bot)[0-9]+:[A-Za-z0-9_-]+"),
    re.compile(r"(/hooks/)[^/?#]+(?:/[^/?#]+)?"),
)


def mask_path_secrets(url: str) -> str:
    """``url`` with the well-known secret path segments of chat webhooks masked."""
    for pattern in _PATH_SECRETS:
        url = pattern.sub(lambda m: m[1] + MASK, url)
    return url
