"""service_shapes.py: each service's documented request shape, as JSON Schemas plus the checks
a schema cannot express (Telegram's HTML subset, Discord's 6000-character total).

Written from the services' API references (linked per schema), not from our presets: a
preset that drifts from the service fails here. Limits are the documented ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any

HEX_COLOR = {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}
STR = {"type": "string"}
NONEMPTY = {"type": "string", "minLength": 1}
HTTP_URL = {"type": "string", "pattern": "^https?://"}


def text(max_length: int, min_length: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def obj(
    properties: dict[str, Any], *, required: Sequence[str] = (), closed: bool = False
) -> dict[str, Any]:
    """A JSON object with these `properties`, of which those named in `required` must be
    present; `closed`: no other property is allowed (additionalProperties: false)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


# Slack's mrkdwn text object (a section's text, a context element).
MRKDWN = obj({"type": {"const": "mrkdwn"}, "text": text(3000)}, required=["type", "text"])

# https://api.slack.com/reference/block-kit/blocks (50 blocks, header 150, section 3000,
# context 10 elements) and https://api.slack.com/reference/messaging/attachments
SLACK = {
    "type": "object",
    "required": ["text", "attachments"],
    "additionalProperties": False,
    "properties": {
        "text": text(40_000),
        "channel": STR,
        "username": STR,
        "icon_emoji": STR,
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": obj(
                {
                    "color": HEX_COLOR,
                    "fallback": STR,
                    "blocks": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 50,
                        "items": {"$ref": "#/$defs/block"},
                    },
                },
                required=["color", "blocks"],
                closed=True,
            ),
        },
    },
    "$defs": {
        "block": {
            "oneOf": [
                obj(
                    {
                        "type": {"const": "header"},
                        "text": obj(
                            {
                                "type": {"const": "plain_text"},
                                "text": text(150),
                                "emoji": {"type": "boolean"},
                            },
                            required=["type", "text"],
                        ),
                    },
                    required=["type", "text"],
                ),
                obj({"type": {"const": "section"}, "text": MRKDWN}, required=["type", "text"]),
                obj(
                    {
                        "type": {"const": "context"},
                        "elements": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 10,
                            "items": MRKDWN,
                        },
                    },
                    required=["type", "elements"],
                ),
            ]
        }
    },
}

# https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-reference
# and the Workflows "post to a channel when a webhook request is received" message shape.
TEAMS = {
    "type": "object",
    "required": ["type", "attachments"],
    "properties": {
        "type": {"const": "message"},
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": obj(
                {
                    "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                    "contentUrl": {"type": "null"},
                    "content": obj(
                        {
                            "type": {"const": "AdaptiveCard"},
                            "version": {"enum": ["1.0", "1.2", "1.3", "1.4", "1.5"]},
                            "body": {
                                "type": "array",
                                "minItems": 1,
                                "items": obj(
                                    {
                                        "type": {"const": "TextBlock"},
                                        "text": STR,
                                        "wrap": {"type": "boolean"},
                                        "color": {
                                            "enum": [
                                                "default",
                                                "dark",
                                                "light",
                                                "accent",
                                                "good",
                                                "warning",
                                                "attention",
                                            ]
                                        },
                                        "size": {
                                            "enum": [
                                                "default",
                                                "small",
                                                "medium",
                                                "large",
                                                "extraLarge",
                                                "Small",
                                                "Medium",
                                                "Large",
                                            ]
                                        },
                                    },
                                    required=["type", "text"],
                                ),
                            },
                            "actions": {
                                "type": "array",
                                "items": obj(
                                    {
                                        "type": {"const": "Action.OpenUrl"},
                                        "title": NONEMPTY,
                                        "url": HTTP_URL,
                                    },
                                    required=["type", "title", "url"],
                                ),
                            },
                        },
                        required=["type", "version", "body"],
                    ),
                },
                required=["contentType", "content"],
            ),
        },
    },
}
TEAMS_MAX_BYTES = 28_000

# https://discord.com/developers/docs/resources/message#embed-object-embed-limits
DISCORD = {
    "type": "object",
    "required": ["content", "embeds"],
    "properties": {
        "content": text(2000),
        "username": text(80),
        "avatar_url": STR,
        "allowed_mentions": obj({"parse": {"type": "array", "maxItems": 0}}, required=["parse"]),
        "embeds": {
            "type": "array",
            "minItems": 1,
            "maxItems": 10,
            "items": obj(
                {
                    "title": text(256),
                    "description": text(4096),
                    "color": {"type": "integer", "minimum": 0, "maximum": 0xFFFFFF},
                    "timestamp": NONEMPTY,
                    "footer": obj({"text": text(2048, 0)}, required=["text"]),
                },
                required=["title", "description"],
                closed=True,
            ),
        },
    },
}


def discord_total_chars(body: dict[str, Any]) -> int:
    """Discord's 6000-character budget: titles, descriptions and footers of all embeds."""
    return sum(
        len(e.get("title", ""))
        + len(e.get("description", ""))
        + len(e.get("footer", {}).get("text", ""))
        for e in body["embeds"]
    )


# https://core.telegram.org/bots/api#sendmessage
TELEGRAM = {
    "type": "object",
    "required": ["chat_id", "text"],
    "additionalProperties": False,
    "properties": {
        "chat_id": {"type": ["string", "integer"]},
        "message_thread_id": {"type": "integer"},
        "text": text(4096),
        "parse_mode": {"const": "HTML"},
        "link_preview_options": {"type": "object"},
        "disable_notification": {"type": "boolean"},
    },
}
# https://core.telegram.org/bots/api#html-style
TELEGRAM_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "tg-spoiler",
        "blockquote",
        "span",
        "tg-emoji",
    }
)


class _TelegramHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags += 1
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"tag <{tag}> is not allowed")
        if tag == "a" and not any(k == "href" and (v or "").startswith("http") for k, v in attrs):
            self.problems.append(f"<a> without an http(s) href: {attrs}")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.tags += 1
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unbalanced </{tag}>")

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            self.problems.append(f"entity &{name}; is not supported")

    def handle_charref(self, name: str) -> None:
        pass  # numeric references are supported


def telegram_html_problems(markup: str) -> list[str]:
    """Why Telegram would refuse this text with parse_mode HTML ("can't parse entities")."""
    parser = _TelegramHTML()
    parser.feed(markup)
    parser.close()
    if markup.count("<") != parser.tags:
        parser.problems.append("a raw '<' that is not a tag")
    return parser.problems + [f"unclosed <{t}>" for t in parser.stack]


# https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages
GOOGLE_CHAT = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {"text": text(4096)},
}

# https://developers.mattermost.com/integrate/reference/message-attachments/
MATTERMOST = {
    "type": "object",
    "required": ["attachments"],
    "properties": {
        "text": STR,
        "channel": STR,
        "username": STR,
        "icon_url": STR,
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": obj(
                {
                    "fallback": NONEMPTY,
                    "color": HEX_COLOR,
                    "title": STR,
                    "title_link": HTTP_URL,
                    "text": text(16383),
                    "footer": STR,
                },
                required=["fallback", "text"],
            ),
        },
    },
}

# https://developer.rocket.chat/reference/api/rest-api/endpoints/messaging/chat-endpoints/postmessage
ROCKETCHAT = {
    "type": "object",
    "required": ["text"],
    "properties": {
        "text": text(5000),
        "channel": STR,
        "alias": STR,
        "emoji": STR,
        "attachments": {
            "type": "array",
            "items": obj(
                {
                    "title": STR,
                    "title_link": HTTP_URL,
                    "color": HEX_COLOR,
                    "collapsed": {"type": "boolean"},
                    "text": text(5000),
                }
            ),
        },
    },
}

# https://developer.pagerduty.com/api-reference/368ae3d938c9e-send-an-event-to-pager-duty
ROUTING_KEY = {"type": "string", "minLength": 32, "maxLength": 32}
PAGERDUTY = {
    "oneOf": [
        obj(
            {
                "routing_key": ROUTING_KEY,
                "event_action": {"const": "trigger"},
                "dedup_key": text(255),
                "client": STR,
                "client_url": HTTP_URL,
                "payload": obj(
                    {
                        "summary": text(1024),
                        "source": NONEMPTY,
                        "severity": {"enum": ["critical", "error", "warning", "info"]},
                        "timestamp": STR,
                        "component": STR,
                        "group": STR,
                        "class": STR,
                        "custom_details": {"type": "object"},
                    },
                    required=["summary", "source", "severity"],
                    closed=True,
                ),
                "links": {
                    "type": "array",
                    "items": obj({"href": HTTP_URL, "text": STR}, required=["href"]),
                },
            },
            required=["routing_key", "event_action", "dedup_key", "payload"],
            closed=True,
        ),
        obj(
            {
                "routing_key": ROUTING_KEY,
                "event_action": {"const": "resolve"},
                "dedup_key": text(255),
            },
            required=["routing_key", "event_action", "dedup_key"],
            closed=True,
        ),
    ]
}

# https://docs.opsgenie.com/docs/alert-api#create-alert and #close-alert
OPSGENIE_CREATE = {
    "type": "object",
    "required": ["message"],
    "additionalProperties": False,
    "properties": {
        "message": text(130),
        "alias": text(512),
        "description": text(15000, 0),
        "responders": {"type": "array"},
        "tags": {"type": "array", "maxItems": 20, "items": text(50)},
        "details": {"type": "object", "additionalProperties": text(8000, 0)},
        "entity": text(512, 0),
        "source": text(100, 0),
        "priority": {"enum": ["P1", "P2", "P3", "P4", "P5"]},
        "note": text(25000, 0),
    },
}
OPSGENIE_CLOSE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"source": text(100, 0), "user": text(100, 0), "note": text(25000, 0)},
}

# https://docs.splunk.com/Documentation/Splunk/latest/Data/FormateventsforHTTPEventCollector
SPLUNK_EVENT = {
    "type": "object",
    "required": ["event"],
    "additionalProperties": False,
    "properties": {
        "time": {"type": "number"},
        "host": STR,
        "source": STR,
        "sourcetype": STR,
        "index": STR,
        "event": {"type": ["object", "string"]},
        "fields": {"type": "object"},
    },
}

# https://docs.ntfy.sh/publish/#publish-as-json
NTFY = {
    "type": "object",
    "required": ["topic", "message"],
    "additionalProperties": False,
    "properties": {
        "topic": NONEMPTY,
        "message": {"type": "string", "maxLength": 4096},
        "title": STR,
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": STR},
        "click": HTTP_URL,
        "markdown": {"type": "boolean"},
        "actions": {
            "type": "array",
            "maxItems": 3,
            "items": obj(
                {"action": {"const": "view"}, "label": NONEMPTY, "url": HTTP_URL},
                required=["action", "label", "url"],
            ),
        },
    },
}

# Our own contract for the generic webhook (docs/templates.md, presets/webhook.yaml).
WEBHOOK = {
    "type": "object",
    "required": ["status", "title", "groupKey", "alerts", "truncatedAlerts", "part"],
    "properties": {
        "status": {"enum": ["firing", "resolved"]},
        "title": NONEMPTY,
        "truncatedAlerts": {"type": "integer", "minimum": 0},
        "alerts": {
            "type": "array",
            "minItems": 1,
            "items": obj(
                {
                    "status": {"enum": ["firing", "resolved"]},
                    "labels": {"type": "object", "additionalProperties": STR},
                    "annotations": {"type": "object", "additionalProperties": STR},
                },
                required=["status", "fingerprint", "labels", "annotations", "startsAt"],
            ),
        },
    },
}
