"""Full stack, secured: a real Alertmanager posts to the real gateway over HTTPS (a CA made
by trustme) with a bearer token, as docs/operations.md tells users to configure it; one
with a wrong token is refused with 401 and its alert never reaches the sink.

Needs the `prometheus-alertmanager` binary; skipped without it (failed when
GATEWAY_REQUIRE_ALERTMANAGER is set, as in CI).
"""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trio
import trustme

from support.procs import open_alertmanager, open_gateway, rfc3339
from support.sink import Sink

pytestmark = pytest.mark.slow
NOTIFY_TIMEOUT_S = 30.0
TOKEN = "am-to-gateway-token-0001"


def alert(name: str) -> dict[str, object]:
    starts = rfc3339(datetime.now(UTC) - timedelta(seconds=30))
    return {"labels": {"alertname": name}, "startsAt": starts}


async def test_alertmanager_over_https_with_a_bearer_token(
    tmp_path: Path, sink: Sink, alertmanager_binary: str
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "gw.crt", tmp_path / "gw.key", tmp_path / "ca.crt"
    cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "wrong-token").write_text("not-the-token")
    config = {
        "server": {
            "address": "127.0.0.1:0",
            "tls": {"cert_file": str(cert), "key_file": str(key)},
            "auth": {"bearer_tokens": [TOKEN]},
        },
        "destinations": [{"name": "sink", "url": f"{sink.url}/hook"}],
    }
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)

    async with open_gateway(tmp_path, json.dumps(config)) as gw:
        assert gw.url.startswith("https://")
        webhook = f"{gw.url}/webhook/sink"

        def http_config(token_file: str) -> dict[str, object]:
            return {
                "authorization": {"credentials_file": str(tmp_path / token_file)},
                "tls_config": {"ca_file": str(ca_file)},
            }

        async with open_alertmanager(
            tmp_path / "good", webhook, binary=alertmanager_binary, http_config=http_config("token")
        ) as am:
            await am.post_alerts([alert("SecureE2E")])
            with trio.fail_after(NOTIFY_TIMEOUT_S):
                [got] = await sink.wait_for(1, path="/hook")
        assert json.loads(got.body)["groupLabels"] == {"alertname": "SecureE2E"}

        async with (
            open_alertmanager(
                tmp_path / "bad",
                webhook,
                binary=alertmanager_binary,
                http_config=http_config("wrong-token"),
            ) as am,
            httpx.AsyncClient(verify=client_tls, trust_env=False) as client,
        ):
            await am.post_alerts([alert("WrongToken")])
            with trio.fail_after(NOTIFY_TIMEOUT_S):
                while True:
                    metrics = (await client.get(f"{gw.url}/metrics")).text
                    if 'gateway_webhooks_total{code="401",destination="sink"}' in metrics:
                        break
                    await trio.sleep(0.1)
    assert len(sink.received) == 1  # the refused notification was never delivered
    assert TOKEN not in gw.log_text()
