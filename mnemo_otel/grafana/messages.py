"""The notification templates every channel uses: a title and a message that say what broke.

Grafana's notification templates are Alertmanager's, with more data and functions. The main template
(``mnemo``) reads only what Alertmanager's own data has, so Alertmanager's engine renders it as Grafana
will; the few Grafana-only fields (panel, dashboard and silence links) are read in ``mnemo-links``
alone. Grafana's extra functions (``coll.*``, ``data.*``, ``tmpl.*``, ``time.*``) are not used.

What Grafana sends, and so what the templates read:

- A rule in Error or NoData state arrives renamed: ``alertname`` is ``DatasourceError`` or
  ``DatasourceNoData`` and the rule's title moves to the label ``rulename``; the name shown is
  therefore ``rulename`` when set, else ``alertname``.
- Why an alert is in its state (``Error``, ``NoData``, ...) is the *annotation*
  ``grafana_state_reason``; the evaluation error itself is the annotation ``Error``.
- A rule's ``runbook_url`` may be a path inside Grafana (the runbook dashboard): it is prefixed with
  Grafana's root URL (``.ExternalURL``) so the link works from a mail or a chat.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ("LINKS_TEMPLATE", "MESSAGE", "TEMPLATE", "TITLE", "templates")

TEMPLATE_NAME: Final = "mnemo"
LINKS_TEMPLATE_NAME: Final = "mnemo-links"
TITLE: Final = '{{ template "mnemo.title" . }}'
MESSAGE: Final = '{{ template "mnemo.message" . }}'

_RUNBOOK_LINK: Final = '{{ with .Annotations.runbook_url }}Runbook page: {{ if match "^/" . }}{{ $root }}{{ end }}{{ . }}\n{{ end }}'
"""Inside ``mnemo.message``'s loops, where ``$root`` is Grafana's root URL without its final slash."""

TEMPLATE: Final = (
    """\
{{ define "mnemo.title" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] \
{{ or .CommonLabels.rulename .CommonLabels.alertname }}{{ end }}
{{ define "mnemo.alert" }}{{ or .Labels.rulename .Labels.alertname }} ({{ .Labels.severity }})\
{{ if .Labels.rulename }}, sent as {{ .Labels.alertname }}{{ end }}
{{ .Annotations.summary }}
{{ with .Annotations.Error }}Error: {{ . }}
{{ end }}Since: {{ .StartsAt.Format "2006-01-02 15:04:05 MST" }}\
{{ if eq .Status "resolved" }}, resolved {{ .EndsAt.Format "2006-01-02 15:04:05 MST" }}{{ end }}\
{{ with .Annotations.grafana_state_reason }} (state reason: {{ . }}){{ end }}
Runbook: {{ .Annotations.runbook }}
{{ end }}
{{ define "mnemo.message" }}{{ $root := reReplaceAll "/+$" "" .ExternalURL }}{{ if .Alerts.Firing }}Firing:
{{ range .Alerts.Firing }}{{ template "mnemo.alert" . }}"""
    + _RUNBOOK_LINK
    + """{{ template "mnemo.links" . }}
{{ end }}{{ end }}{{ if .Alerts.Resolved }}Resolved:
{{ range .Alerts.Resolved }}{{ template "mnemo.alert" . }}"""
    + _RUNBOOK_LINK
    + """{{ template "mnemo.links" . }}
{{ end }}{{ end }}{{ end }}
"""
)
"""Title and message, on Alertmanager's data alone (``mnemo.links`` aside)."""

LINKS_TEMPLATE: Final = """\
{{ define "mnemo.links" }}{{ if .PanelURL }}Panel: {{ .PanelURL }}
{{ else if .DashboardURL }}Dashboard: {{ .DashboardURL }}
{{ end }}{{ if .SilenceURL }}Silence: {{ .SilenceURL }}
{{ end }}{{ end }}
"""
"""One alert's links to its panel and to a silence: fields only Grafana's data has."""


def templates() -> dict[str, Any]:
    """The ``provisioning/alerting/templates.yaml`` document (Grafana parses all of an org's templates
    together, so one may use what another defines)."""
    return {
        "apiVersion": 1,
        "templates": [
            {"orgId": 1, "name": TEMPLATE_NAME, "template": TEMPLATE},
            {"orgId": 1, "name": LINKS_TEMPLATE_NAME, "template": LINKS_TEMPLATE},
        ],
    }
