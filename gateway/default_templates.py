"""default_templates.py: the built-in Mustache template of each format.

Owns: the text of DEFAULT_TEMPLATES, used when a destination has no template (and no preset
supplies one).
Must not: hold anything but template text; compiling and rendering are templates.py's.
"""

from __future__ import annotations

# Built-in templates, used when a destination has none. Each renders a valid body for its
# format from any payload (tests/test_templates.py renders every sample through each).

_DEFAULT_JSON = """\
{
  "receiver": "{{receiver}}",
  "status": "{{status}}",
  "title": "{{title}}",
  "groupKey": "{{groupKey}}",
  "externalURL": "{{externalURL}}",
  "truncatedAlerts": {{truncatedAlerts}},
  "part": {"number": {{part.number}}, "count": {{part.count}}},
  "groupLabels": { {{#group_label_list}}"{{name}}": "{{value}}"{{^last}}, {{/last}}\
{{/group_label_list}} },
  "commonLabels": { {{#common_label_list}}"{{name}}": "{{value}}"{{^last}}, {{/last}}\
{{/common_label_list}} },
  "alerts": [
{{#alerts}}
    {
      "status": "{{status}}",
      "alertname": "{{alertname}}",
      "severity": "{{severity}}",
      "summary": "{{summary}}",
      "description": "{{description}}",
      "labels": { {{#label_list}}"{{name}}": "{{value}}"{{^last}}, {{/last}}{{/label_list}} },
      "annotations": { {{#annotation_list}}"{{name}}": "{{value}}"{{^last}}, {{/last}}\
{{/annotation_list}} },
      "startsAt": "{{startsAt}}",
      "endsAt": "{{endsAt}}",
      "duration": "{{duration}}",
      "generatorURL": "{{generatorURL}}",
      "fingerprint": "{{fingerprint}}"
    }{{^last}},{{/last}}
{{/alerts}}
  ]
}
"""

_DEFAULT_TEXT = """\
{{title}}
{{#alerts}}
{{number}}. [{{status}}]{{#severity}} {{severity}}{{/severity}} {{alertname}}: {{summary}}\
{{#labels.instance}} ({{labels.instance}}){{/labels.instance}} since {{startsAt}} for {{duration}}
{{/alerts}}
{{#has_more}}
+{{more_count}} more
{{/has_more}}
"""

_DEFAULT_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<notification receiver="{{receiver}}" status="{{status}}" part="{{part.number}}" \
parts="{{part.count}}">
  <title>{{title}}</title>
  <groupKey>{{groupKey}}</groupKey>
  <externalURL>{{externalURL}}</externalURL>
  <truncatedAlerts>{{truncatedAlerts}}</truncatedAlerts>
  <groupLabels>
{{#group_label_list}}
    <label name="{{name}}">{{value}}</label>
{{/group_label_list}}
  </groupLabels>
  <alerts>
{{#alerts}}
    <alert status="{{status}}" fingerprint="{{fingerprint}}">
      <labels>
{{#label_list}}
        <label name="{{name}}">{{value}}</label>
{{/label_list}}
      </labels>
      <annotations>
{{#annotation_list}}
        <annotation name="{{name}}">{{value}}</annotation>
{{/annotation_list}}
      </annotations>
      <startsAt>{{startsAt}}</startsAt>
      <endsAt>{{endsAt}}</endsAt>
      <duration>{{duration}}</duration>
      <generatorURL>{{generatorURL}}</generatorURL>
    </alert>
{{/alerts}}
  </alerts>
</notification>
"""

# form and query: a flat JSON object (see formats.py). The message is truncated so that a
# storm of alerts cannot produce a URL that servers refuse; inside the truncate section the
# newline is a real one, because a helper's whole result is escaped.
_DEFAULT_FIELDS = """\
{
  "status": "{{status}}",
  "title": "{{title}}",
  "alertname": "{{alertname}}",
  "severity": "{{severity}}",
  "alerts": {{alerts_count}},
  "firing": {{firing_count}},
  "resolved": {{resolved_count}},
  "groupKey": "{{groupKey}}",
  "externalURL": "{{externalURL}}",
  "message": "{{#truncate}}1000 {{#alerts}}[{{status}}] {{summary}}{{^last}}
{{/last}}{{/alerts}}{{/truncate}}"
}
"""

# json_stream: one JSON object per alert, one after another (Splunk HEC's batch shape).
_DEFAULT_JSON_STREAM = """\
{{#alerts}}
{"time": {{startsAt_unix}}, "event": {"status": "{{status}}", "alertname": "{{alertname}}", \
"severity": "{{severity}}", "summary": "{{summary}}", "labels": { {{#label_list}}"{{name}}": \
"{{value}}"{{^last}}, {{/last}}{{/label_list}} }, "fingerprint": "{{fingerprint}}", \
"groupKey": "{{groupKey}}"}}
{{/alerts}}
"""

DEFAULT_TEMPLATES: dict[str, str] = {
    "json": _DEFAULT_JSON,
    "text": _DEFAULT_TEXT,
    "xml": _DEFAULT_XML,
    "form": _DEFAULT_FIELDS,
    "query": _DEFAULT_FIELDS,
    "json_stream": _DEFAULT_JSON_STREAM,
}
