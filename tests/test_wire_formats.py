"""Every body format, end to end through the real daemon to the real loopback sink: what
arrives is exactly what the format promises, whatever the annotations contain."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import trio
from prometheus_client import CollectorRegistry

from gateway.daemon import Daemon
from gateway.logs import Logger
from gateway.metrics import Metrics
from support.sink import Sink

DATA = Path(__file__).parent / "data"
GROUP = (DATA / "firing-group-unicode.json").read_bytes()
# Quotes, an em dash, <, &, a newline, unicode and emoji: every alert's description joined.
DESCRIPTION = "".join(a["annotations"].get("description", "") for a in json.loads(GROUP)["alerts"])
PAIRS = '{"d": "{{#alerts}}{{annotations.description}}{{/alerts}}", "n": {{alerts_count}}}'


def config(sink: Sink) -> str:
    return f"""
server: {{address: "127.0.0.1:0"}}
destinations:
  - name: form
    url: "{sink.url}/form"
    format: form
    template: '{PAIRS}'
  - name: query
    url: "{sink.url}/query?keep=1"
    method: GET
    format: query
    template: '{PAIRS}'
  - name: xml
    url: "{sink.url}/xml"
    format: xml
    template: '<alert n="{{{{alerts_count}}}}"><d>{{{{#alerts}}}}{{{{annotations.description}}}}{{{{/alerts}}}}</d></alert>'
  - name: text
    url: "{sink.url}/text"
    method: PUT
    format: text
    template: '{{{{#alerts}}}}{{{{annotations.description}}}}{{{{/alerts}}}}'
"""


@asynccontextmanager
async def running(sink: Sink, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    path = tmp_path / "gateway.yaml"
    path.write_text(config(sink))
    daemon = Daemon(
        str(path), logger=Logger(stream=io.StringIO()), metrics=Metrics(CollectorRegistry())
    )
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(daemon.run)
            async with httpx.AsyncClient(base_url=binds[0], trust_env=False) as client:
                yield client
            daemon.stop("test over")


async def test_each_format_arrives_exactly(sink: Sink, tmp_path: Path) -> None:
    async with running(sink, tmp_path) as client:
        for name in ("form", "query", "xml", "text"):
            response = await client.post(f"/webhook/{name}", content=GROUP)
            assert response.status_code == 200, response.text
    got = {r.path.strip("/"): r for r in sink.received}

    form = got["form"]
    assert form.method == "POST"
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(form.body.decode(), strict_parsing=True) == {
        "d": [DESCRIPTION],
        "n": ["3"],
    }

    query = got["query"]
    assert (query.method, query.body) == ("GET", b"")
    assert "content-type" not in query.headers
    assert parse_qs(query.query, strict_parsing=True) == {
        "keep": ["1"],
        "d": [DESCRIPTION],
        "n": ["3"],
    }

    xml = got["xml"]
    assert xml.headers["content-type"] == "application/xml"
    root = ET.fromstring(xml.body)
    assert (root.tag, root.get("n"), root.findtext("d")) == ("alert", "3", DESCRIPTION)

    text = got["text"]
    assert (text.method, text.headers["content-type"]) == ("PUT", "text/plain; charset=utf-8")
    assert text.body.decode() == DESCRIPTION
