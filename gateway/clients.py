"""clients.py: the outbound httpx client of one destination, and when a reload may keep it.

Owns: turning a destination's pool, TLS, proxy and HTTP/2 settings into an
``httpx.AsyncClient`` (our h11 pool for http://, httpcore for the rest), checking every
certificate and key file of a config up front, and ``client_key``: what a client is built
from, so a reload reuses a running client whose key is unchanged.
Must not: send requests (delivery.py), own a client's lifetime (runtime.py opens and closes
them) or read the config file.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Any

import certifi
import httpx

from .h11pool import H11Transport

if TYPE_CHECKING:
    from .config import ClientTLSConfig, Config, DestinationConfig


def ssl_context(tls: ClientTLSConfig) -> ssl.SSLContext | bool:
    """The destination's TLS settings as httpx's ``verify``; raises OSError/SSLError for a
    file that cannot be read or parsed (reported as a config problem by ``runtime.build``)."""
    if not (tls.ca_file or tls.cert_file or tls.insecure_skip_verify):
        return True  # httpx's default: certifi's CA bundle
    if tls.ca_file:
        context = ssl.create_default_context(cafile=tls.ca_file)
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file or None)
    return context


class GatewayClient(httpx.AsyncClient):
    """An AsyncClient that also names the h11 pool under it (None when httpcore carries
    everything), so delivery.send can hand a plain-http request straight to the transport:
    the client layer above it (request building, auth and redirect flow, cookies, event
    hooks — none of which a destination uses) costs about a quarter of an outbound request
    (docs/performance.md). Everything else (previews, https, proxies) uses the client."""

    def __init__(self, *, h11: H11Transport | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.h11 = h11


def make_client(
    cfg: DestinationConfig, transport: httpx.AsyncBaseTransport | None, timeout_s: float
) -> GatewayClient:
    pool = cfg.pool
    limits = httpx.Limits(
        max_connections=pool.max_connections,
        max_keepalive_connections=pool.max_keepalive_connections,
        keepalive_expiry=float(pool.keepalive_expiry),
    )
    verify = ssl_context(cfg.tls)
    if transport is None and pool.transport == "h11" and not cfg.proxy_url:
        # http:// through our pool; https:// (and anything else) through httpcore, with the
        # destination's TLS and HTTP/2 settings (an explicit transport ignores the client's).
        # With a proxy_url, httpx's proxy transport carries everything.
        fallback = httpx.AsyncHTTPTransport(
            limits=limits, trust_env=False, verify=verify, http2=cfg.http2
        )
        transport = H11Transport(limits=limits, fallback=fallback)
    return GatewayClient(
        h11=transport if isinstance(transport, H11Transport) else None,
        limits=limits,
        timeout=httpx.Timeout(timeout_s),
        verify=verify,
        proxy=cfg.proxy_url or None,
        http2=cfg.http2,
        trust_env=False,
        follow_redirects=False,
        transport=transport,
    )


def tls_problems(cfg: Config) -> list[str]:
    """Every certificate or key file of the config that cannot be loaded, so that start-up,
    reload and check-config refuse it with its key path instead of failing later."""
    problems = []
    server_tls = cfg.server.tls
    if server_tls is not None:
        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(server_tls.cert_file, server_tls.key_file)
            if server_tls.client_ca_file:
                context.load_verify_locations(server_tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"server.tls: cannot load a certificate or key: {error_reason(exc)}")
    for index, dest in enumerate(cfg.destinations):
        if dest.kind == "http" and dest.enabled:
            try:
                ssl_context(dest.tls)
            except (OSError, ssl.SSLError) as exc:
                problems.append(
                    f"destinations[{index}].tls: cannot load a certificate: {error_reason(exc)}"
                )
    return problems


def error_reason(exc: OSError | ssl.SSLError) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _file_stamp(path: str) -> tuple[str, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_mtime_ns, st.st_size)


def client_key(cfg: DestinationConfig) -> tuple[object, ...]:
    """Everything an outbound client is built from. A reload reuses the running client
    (and its warm connections) of a destination whose key is unchanged; URL, headers and
    template are per request, so changing them keeps the client. A rewritten certificate
    file changes the key even under the same path."""
    files = (cfg.tls.ca_file, cfg.tls.cert_file, cfg.tls.key_file)
    return (
        cfg.kind,
        cfg.timeout,
        cfg.pool,
        cfg.tls,
        cfg.proxy_url,
        cfg.http2,
        tuple(_file_stamp(f) for f in files if f),
    )
