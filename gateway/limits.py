"""limits.py: keep every request within what the destination accepts — split, then truncate,
never drop.

Owns: measuring a rendered request against a destination's ``limits`` (body bytes, the
longest text at ``text_paths``, the longest list at ``item_paths``), and the plan that makes
every request fit: parts that are too large are re-rendered with their alerts spread over
more parts (every alert still sent exactly once, each part a complete body); a part of one
alert that is still too large (or any part, with ``strategy: truncate``) has its longest
texts cut, ending in a visible marker.
Must not: render templates itself (the caller passes a render function), send, or count
metrics and log (dispatch.py does, from the returned ``Plan``).

Paths are dotted keys into the JSON body; ``*`` is every item of a list or value of an
object: ``text``, ``blocks.*.text.text``, ``embeds``. A json_stream body is a list of its
values (so ``*.event`` and, with no item_paths, the number of values). A text body is one
text. form bodies are their field values (truncated only when no field repeats); xml and
query bodies are measured only in bytes and cannot be truncated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import msgspec

from . import formats
from .delivery import Request
from .errors import TemplateError

if TYPE_CHECKING:
    from .alertmanager import Alert
    from .config import LimitsConfig

MARKER = "… [truncated]"
MAX_ROUNDS = 12  # of re-splitting; each round at least doubles the parts of what is too large
SPLIT_SLACK = 1.15  # aim below the limit: part sizes are uneven and headers repeat per part
MIN_KEEP_CHARS = 16  # a text is never cut shorter than this (plus the marker)

Part = tuple["Alert", ...]
RenderFn = Callable[[Part, int, int], Request]


class Plan(msgspec.Struct, frozen=True):
    parts: tuple[tuple[Part, Request], ...]
    split: int  # parts added by splitting (0: as configured)
    truncated: int  # parts whose texts were cut


def active(limits: LimitsConfig) -> bool:
    return bool(limits.max_body_bytes or limits.max_text_chars or limits.max_items)


# ---------------------------------------------------------------------------------------
# Measuring


def _doc(fmt: str, body: bytes | None) -> Any:
    """The body as values to measure: JSON values, a list for json_stream, a str for text,
    a dict of fields for form, None when only bytes count."""
    if body is None:
        return None
    if fmt == "json":
        return msgspec.json.decode(body)
    if fmt == "json_stream":
        return formats.split_stream(body)
    if fmt == "text":
        return body.decode("utf-8")
    if fmt == "form":
        return dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    return None


def _walk(node: Any, path: Sequence[str]) -> Iterator[tuple[Any, Any]]:
    """(container, key) for every value at ``path`` below ``node``."""
    head, rest = path[0], path[1:]
    if head == "*":
        keys: Iterator[Any] = iter(
            range(len(node)) if isinstance(node, list) else node if isinstance(node, dict) else ()
        )
    elif isinstance(node, dict) and head in node:
        keys = iter((head,))
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
        keys = iter((int(head),))
    else:
        return
    for key in list(keys):
        if rest:
            yield from _walk(node[key], rest)
        else:
            yield node, key


def _everything(node: Any, kind: type) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, dict):
        items: Iterator[tuple[Any, Any]] = iter(node.items())
    elif isinstance(node, list):
        items = iter(enumerate(node))
    else:
        return
    for key, value in list(items):
        if isinstance(value, kind):
            yield node, key
        yield from _everything(value, kind)


def _slots(root: list[Any], paths: Sequence[str], kind: type) -> list[tuple[Any, Any]]:
    """(container, key) of every value of ``kind`` at ``paths`` (everywhere if none);
    ``root`` is a one-item list holding the document, so the document itself is a slot."""
    if paths:
        found = [
            slot for p in paths for slot in _walk(root[0], p.split(".")) if slot[0] is not None
        ]
        return [(c, k) for c, k in found if isinstance(c[k], kind)]
    top = [(root, 0)] if isinstance(root[0], kind) else []
    return top + list(_everything(root[0], kind))


def measure(limits: LimitsConfig, fmt: str, request: Request) -> float:
    """How far over its limits a request is: the largest of size/limit; <= 1.0 fits."""
    ratio = 0.0
    size = len(request.body) if request.body is not None else len(request.url)
    if limits.max_body_bytes:
        ratio = size / limits.max_body_bytes
    if limits.max_text_chars or limits.max_items:
        root = [_doc(fmt, request.body)]
        if root[0] is not None:
            if limits.max_text_chars:
                texts = _slots(root, limits.text_paths, str)
                longest = max((len(c[k]) for c, k in texts), default=0)
                ratio = max(ratio, longest / limits.max_text_chars)
            if limits.max_items:
                lists = _slots(root, limits.item_paths, list)
                longest = max((len(c[k]) for c, k in lists), default=0)
                ratio = max(ratio, longest / limits.max_items)
    return ratio


# ---------------------------------------------------------------------------------------
# Planning


def _pieces(part: Part, ratio: float) -> list[Part]:
    count = min(len(part), max(2, math.ceil(ratio * SPLIT_SLACK)))
    size = math.ceil(len(part) / count)
    return [part[i : i + size] for i in range(0, len(part), size)]


def plan(
    parts: Sequence[Part], render: RenderFn, limits: LimitsConfig, fmt: str, method: str
) -> Plan:
    """Render ``parts`` and make every request fit ``limits``. Raises TemplateError when a
    request cannot be made to fit (a format that cannot be truncated, or nothing left to cut).
    """
    current = list(parts)
    requests = [render(p, i, len(current)) for i, p in enumerate(current)]
    if not active(limits):
        return Plan(tuple(zip(current, requests, strict=True)), 0, 0)
    configured = len(current)
    for _ in range(MAX_ROUNDS):
        ratios = [measure(limits, fmt, r) for r in requests]
        splittable = (
            [i for i, r in enumerate(ratios) if r > 1.0 and len(current[i]) > 1]
            if limits.strategy == "split"
            else []
        )
        if not splittable:
            break
        resplit: list[Part] = []
        for i, part in enumerate(current):
            resplit.extend(_pieces(part, ratios[i]) if i in splittable else [part])
        current = resplit
        requests = [render(p, i, len(current)) for i, p in enumerate(current)]
    truncated = 0
    for i, request in enumerate(requests):
        if measure(limits, fmt, request) > 1.0:
            requests[i] = truncate(limits, fmt, method, request)
            truncated += 1
    return Plan(tuple(zip(current, requests, strict=True)), len(current) - configured, truncated)


# ---------------------------------------------------------------------------------------
# Truncating


def _cut(text: str, keep: int) -> str:
    keep = max(MIN_KEEP_CHARS, keep)
    return text if len(text) <= keep + len(MARKER) else text[:keep].rstrip() + MARKER


def _encode(fmt: str, doc: Any) -> bytes:
    if fmt == "json":
        return msgspec.json.encode(doc)
    if fmt == "json_stream":
        return b"\n".join(msgspec.json.encode(v) for v in doc)
    if fmt == "text":
        return str(doc).encode("utf-8")
    return urlencode(doc).encode("ascii")  # form


def truncate(limits: LimitsConfig, fmt: str, method: str, request: Request) -> Request:
    """Cut the request's longest texts (and lists beyond max_items) until it fits."""
    root = [_doc(fmt, request.body)]
    if fmt == "form" and request.body is not None:
        pairs = parse_qsl(request.body.decode("ascii"), keep_blank_values=True)
        if len(pairs) != len(root[0]):
            root = [None]  # repeated fields: rebuilding from a dict would drop some
    if root[0] is None:
        raise TemplateError(
            f"a {fmt} request over its limits cannot be truncated "
            f"({len(request.body or request.url.encode())} bytes)"
        )
    if limits.max_items:
        for container, key in _slots(root, limits.item_paths, list):
            if container is not root:  # the json_stream's values are split, never dropped
                del container[key][limits.max_items :]
    if limits.max_text_chars:
        for container, key in _slots(root, limits.text_paths, str):
            if len(container[key]) > limits.max_text_chars:
                container[key] = _cut(container[key], limits.max_text_chars - len(MARKER))
    body = _encode(fmt, root[0])
    while limits.max_body_bytes and len(body) > limits.max_body_bytes:
        slots = _slots(root, (), str)
        if not slots:
            break
        container, key = max(slots, key=lambda s: len(s[0][s[1]].encode()))
        text = container[key]
        excess = len(body) - limits.max_body_bytes
        # Bytes per character of this text, so a cut of non-ASCII text is sized right.
        width = max(1.0, len(text.encode()) / max(1, len(text)))
        cut = _cut(text, len(text) - math.ceil(excess / width) - len(MARKER))
        if cut == text:
            break  # nothing left to cut
        container[key] = cut
        body = _encode(fmt, root[0])
    fitted = Request(request.method, request.url, request.headers, body)
    if measure(limits, fmt, fitted) > 1.0:
        raise TemplateError(
            f"one alert renders a {fmt} request over its limits even after truncation "
            f"({len(body)} bytes)"
        )
    return fitted
