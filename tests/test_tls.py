"""TLS with certificates made in the test (trustme): inbound TLS and mTLS on the real
daemon, and outbound custom CA, client certificate, insecure_skip_verify and HTTP/2
against loopback TLS servers, and proxy_url through a loopback proxy."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
import trustme

from support.app import build_app
from support.daemon import log_destination_config, run_daemon
from support.sink import Sink

GROUP = (Path(__file__).parent / "data" / "firing-group-unicode.json").read_bytes()
GUARD_S = 30


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_cert(cert: trustme.LeafCert, folder: Path, name: str) -> tuple[str, str]:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(cert_path), str(key_path)


@asynccontextmanager
async def serving(tmp_path: Path, server_yaml: str) -> AsyncIterator[str]:
    config_text = log_destination_config(server_yaml)
    async with run_daemon(tmp_path, config_text, guard_s=GUARD_S) as (_daemon, url):
        yield url


def client_context(ca: trustme.CA, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if cert is not None:
        cert.configure_cert(context)
    return context


async def test_inbound_tls(ca: trustme.CA, tmp_path: Path) -> None:
    cert, key = write_cert(ca.issue_cert("127.0.0.1"), tmp_path, "server")
    async with serving(tmp_path, f"tls: {{cert_file: '{cert}', key_file: '{key}'}}") as url:
        assert url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(verify=client_context(ca), trust_env=False) as client:
            response = await client.post(f"{url}/webhook/log", content=GROUP)
            assert response.status_code == 200
        # Plain HTTP on the TLS port gets no answer.
        plain = url.replace("https://", "http://")
        async with httpx.AsyncClient(trust_env=False) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"{plain}/health")


async def test_inbound_mtls_needs_a_client_certificate_from_the_ca(
    ca: trustme.CA, tmp_path: Path
) -> None:
    cert, key = write_cert(ca.issue_cert("127.0.0.1"), tmp_path, "server")
    ca_path = tmp_path / "clients-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    tls = f"tls: {{cert_file: '{cert}', key_file: '{key}', client_ca_file: '{ca_path}'}}"
    async with serving(tmp_path, tls) as url:
        good = client_context(ca, ca.issue_cert("alertmanager.example"))
        async with httpx.AsyncClient(verify=good, trust_env=False) as client:
            assert (await client.post(f"{url}/webhook/log", content=GROUP)).status_code == 200
        # (GET: a POST body left half-sent when TLS 1.3 rejects the client certificate
        # after the handshake makes httpx warn about its unfinished body iterator.)
        async with httpx.AsyncClient(verify=client_context(ca), trust_env=False) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"{url}/health")
        stranger = trustme.CA().issue_cert("alertmanager.example")
        async with httpx.AsyncClient(
            verify=client_context(ca, stranger), trust_env=False
        ) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"{url}/health")


@asynccontextmanager
async def tls_sink(ca: trustme.CA, *, require_client_cert: bool) -> AsyncIterator[Sink]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if require_client_cert:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    async with trio.open_nursery() as nursery:
        sink = Sink()
        await nursery.start(
            lambda task_status: sink.run(ssl_context=context, task_status=task_status)
        )
        yield sink
        nursery.cancel_scope.cancel()


# With TLS 1.3 the server rejects a missing client certificate only after the client's
# handshake is done, so httpx has started iterating the request body when the connection
# dies and its body generator is collected unfinished (a ResourceWarning, no harm).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_outbound_custom_ca_and_client_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert, key = write_cert(ca.issue_cert("gateway.example"), tmp_path, "client")
    with trio.fail_after(GUARD_S):
        async with tls_sink(ca, require_client_cert=True) as sink:
            built = build_app(
                f"""
destinations:
  - name: mtls
    url: "{sink.url}/ok"
    tls: {{ca_file: "{ca_path}", cert_file: "{cert}", key_file: "{key}"}}
  - name: no-client-cert
    url: "{sink.url}/nocert"
    tls: {{ca_file: "{ca_path}"}}
  - name: system-trust
    url: "{sink.url}/system"
  - name: skip-verify
    url: "{sink.url}/skip"
    tls: {{insecure_skip_verify: true, cert_file: "{cert}", key_file: "{key}"}}
"""
            )
            client = built.app.test_client()
            codes = {}
            for name in ("mtls", "no-client-cert", "system-trust", "skip-verify"):
                response = await client.post(f"/webhook/{name}", data=GROUP)
                codes[name] = response.status_code
            await built.state.runtime.aclose()
    assert codes == {"mtls": 200, "no-client-cert": 502, "system-trust": 502, "skip-verify": 200}
    assert [r.path for r in sink.received] == ["/ok", "/skip"]
    assert built.state.runtime.warnings == [
        "destination skip-verify: tls.insecure_skip_verify is on; its server's certificate "
        "is NOT checked"
    ]


def test_unreadable_certificate_is_a_config_problem(tmp_path: Path) -> None:
    from gateway import config, runtime
    from gateway.errors import ConfigError

    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    loaded = config.load_text(
        f"""
server:
  tls: {{cert_file: "{bad}", key_file: "{bad}"}}
destinations:
  - name: ok
    url: https://example.invalid/
  - name: bad
    url: https://example.invalid/
    tls: {{ca_file: "{bad}"}}
  - name: missing
    url: https://example.invalid/
    tls: {{ca_file: "{tmp_path}/missing.pem"}}
""",
        environ={},
    )
    with pytest.raises(ConfigError) as caught:
        runtime.build(loaded)
    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("server.tls: cannot load a certificate or key:")
    assert problems[1].startswith("destinations[1].tls: cannot load a certificate:")
    missing = "destinations[2].tls: cannot load a certificate: No such file or directory"
    assert problems[2] == missing


async def test_outbound_http2_opt_in(ca: trustme.CA, tmp_path: Path) -> None:
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve
    from quart import request
    from quart_trio import QuartTrio

    versions: list[str] = []
    receiver = QuartTrio("receiver")

    @receiver.post("/hook")
    async def hook() -> str:
        versions.append(request.http_version)
        return "ok"

    cert, key = write_cert(ca.issue_cert("127.0.0.1"), tmp_path, "receiver")
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    hc = HypercornConfig()
    hc.bind = ["127.0.0.1:0"]
    hc.certfile, hc.keyfile = cert, key
    hc.accesslog = hc.errorlog = None
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            binds = await nursery.start(
                lambda task_status: serve(
                    receiver, hc, shutdown_trigger=stop.wait, task_status=task_status
                )
            )
            url = binds[0]
            built = build_app(
                f"""
destinations:
  - name: h2
    url: "{url}/hook"
    http2: true
    tls: {{ca_file: "{ca_path}"}}
  - name: h1
    url: "{url}/hook"
    tls: {{ca_file: "{ca_path}"}}
"""
            )
            client = built.app.test_client()
            assert (await client.post("/webhook/h2", data=GROUP)).status_code == 200
            assert (await client.post("/webhook/h1", data=GROUP)).status_code == 200
            await built.state.runtime.aclose()
            stop.set()
    assert versions == ["2", "1.1"]


async def test_outbound_proxy_url(sink: Sink) -> None:
    # The sink plays an HTTP proxy: httpx sends it the absolute URL of the destination.
    built = build_app(
        f"""
destinations:
  - name: proxied
    url: "http://destination.invalid/hook?x=1"
    proxy_url: "{sink.url}"
"""
    )
    try:
        with trio.fail_after(GUARD_S):
            response = await built.app.test_client().post("/webhook/proxied", data=GROUP)
    finally:
        await built.state.runtime.aclose()
    assert response.status_code == 200
    [got] = sink.received
    assert (got.path, got.query) == ("http://destination.invalid/hook", "x=1")


async def test_a_renewed_ca_file_gets_a_new_client_on_reload(
    ca: trustme.CA, tmp_path: Path
) -> None:
    import os

    from gateway import config, runtime

    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    text = f"""
destinations:
  - {{name: pinned, url: "https://127.0.0.1:9/", tls: {{ca_file: "{ca_path}"}}}}
  - {{name: plain, url: "https://127.0.0.1:9/"}}
"""
    first = runtime.build(config.load_text(text, environ={}))
    # The same path, renewed (a new CA here; a later mtime in any case).
    trustme.CA().cert_pem.write_to_path(str(ca_path))
    stat = ca_path.stat()
    os.utime(ca_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = runtime.build(config.load_text(text, environ={}), previous=first)
    try:
        assert second.destinations["pinned"].client is not first.destinations["pinned"].client
        assert second.destinations["plain"].client is first.destinations["plain"].client
    finally:
        await first.aclose()
        await second.aclose()
