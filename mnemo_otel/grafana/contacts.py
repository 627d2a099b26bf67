"""Contact points, the notification policy tree and message templates.

Every URL and address comes from the environment: Grafana expands ``$VAR`` in contact-point settings
and policies when it loads the files (an unset variable becomes empty and fails provisioning, so the
compose file gives each one a default). Templates are not expanded; messages reference them by name.
Setting keys come from grafana/alerting ``receivers/<type>/v1/config.go`` (Grafana 12-13): Grafana
ignores unknown keys silently, so a test checks ours against ``SETTING_KEYS``.
"""

from __future__ import annotations

from typing import Any, Final

from mnemo_otel.grafana.spec import Severity

__all__ = (
    "CONTACT_POINTS",
    "ENV_DISCORD_URL",
    "ENV_EMAIL_ADDRESSES",
    "ENV_SLACK_URL",
    "ENV_WEBHOOK_URL",
    "SETTING_KEYS",
    "contact_points",
    "policies",
    "templates",
)

ENV_WEBHOOK_URL: Final = "ALERT_WEBHOOK_URL"
ENV_SLACK_URL: Final = "ALERT_SLACK_WEBHOOK_URL"
ENV_DISCORD_URL: Final = "ALERT_DISCORD_WEBHOOK_URL"
ENV_EMAIL_ADDRESSES: Final = "ALERT_EMAIL_ADDRESSES"

SETTING_KEYS: Final[dict[str, frozenset[str]]] = {
    "webhook": frozenset(
        {
            "url",
            "httpMethod",
            "maxAlerts",
            "authorization_scheme",
            "authorization_credentials",
            "username",
            "password",
            "title",
            "message",
            "tlsConfig",
            "hmacConfig",
            "headers",
            "payload",
        }
    ),
    "slack": frozenset(
        {
            "endpointUrl",
            "url",
            "token",
            "recipient",
            "text",
            "title",
            "username",
            "icon_emoji",
            "icon_url",
            "mentionChannel",
            "mentionUsers",
            "mentionGroups",
            "color",
            "footer",
        }
    ),
    "discord": frozenset({"title", "message", "avatar_url", "url", "use_discord_username"}),
    "email": frozenset({"singleEmail", "addresses", "message", "subject"}),
}
"""Settings each integration type reads (grafana/alerting v1 configs, as shipped with Grafana 13)."""

TEMPLATE_NAME: Final = "mnemo"
_TITLE: Final = '{{ template "mnemo.title" . }}'
_MESSAGE: Final = '{{ template "mnemo.message" . }}'

_TEMPLATE: Final = """\
{{ define "mnemo.title" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}{{ end }}
{{ define "mnemo.alert" }}{{ .Labels.alertname }} ({{ .Labels.severity }})
{{ .Annotations.summary }}
Since: {{ .StartsAt.Format "2006-01-02 15:04:05 MST" }}{{ if eq .Status "resolved" }}, resolved {{ .EndsAt.Format "2006-01-02 15:04:05 MST" }}{{ end }}{{ if .Labels.grafana_state_reason }} (state reason: {{ .Labels.grafana_state_reason }}){{ end }}
Runbook: {{ .Annotations.runbook }}
{{ if .PanelURL }}Panel: {{ .PanelURL }}
{{ else if .DashboardURL }}Dashboard: {{ .DashboardURL }}
{{ end }}{{ if .SilenceURL }}Silence: {{ .SilenceURL }}
{{ end }}{{ end }}
{{ define "mnemo.message" }}{{ if .Alerts.Firing }}Firing:
{{ range .Alerts.Firing }}{{ template "mnemo.alert" . }}
{{ end }}{{ end }}{{ if .Alerts.Resolved }}Resolved:
{{ range .Alerts.Resolved }}{{ template "mnemo.alert" . }}
{{ end }}{{ end }}{{ end }}
"""


def _receiver(uid: str, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"uid": uid, "type": kind, "settings": settings, "disableResolveMessage": False}


CONTACT_POINTS: Final[dict[str, dict[str, Any]]] = {
    "mnemo-webhook": _receiver(
        "mnemo-webhook",
        "webhook",
        {"url": f"${ENV_WEBHOOK_URL}", "httpMethod": "POST", "title": _TITLE, "message": _MESSAGE},
    ),
    "mnemo-slack": _receiver(
        "mnemo-slack", "slack", {"url": f"${ENV_SLACK_URL}", "title": _TITLE, "text": _MESSAGE}
    ),
    "mnemo-discord": _receiver(
        "mnemo-discord",
        "discord",
        {"url": f"${ENV_DISCORD_URL}", "title": _TITLE, "message": _MESSAGE},
    ),
    "mnemo-email": _receiver(
        "mnemo-email",
        "email",
        {
            "addresses": f"${ENV_EMAIL_ADDRESSES}",
            "singleEmail": True,
            "subject": _TITLE,
            "message": _MESSAGE,
        },
    ),
}
"""Contact point name -> its one integration (uids equal names, so both stay stable)."""


def contact_points() -> dict[str, Any]:
    """The ``provisioning/alerting/contact-points.yaml`` document."""
    points = [{"orgId": 1, "name": name, "receivers": [recv]} for name, recv in CONTACT_POINTS.items()]
    return {"apiVersion": 1, "contactPoints": points}


def _route(severity: Severity, receiver: str, timing: dict[str, str], *, last: bool) -> dict[str, Any]:
    return {
        "receiver": receiver,
        "object_matchers": [["severity", "=", severity.value]],
        **timing,
        "continue": not last,
    }


_CRITICAL_TIMING: Final = {"group_wait": "10s", "group_interval": "1m", "repeat_interval": "1h"}
_WARNING_TIMING: Final = {"group_wait": "1m", "group_interval": "5m", "repeat_interval": "12h"}


def policies() -> dict[str, Any]:
    """The policy tree: critical alerts go everywhere at once and repeat hourly; warnings go to
    webhook and chat twice a day; anything else (DatasourceError) falls through to the webhook."""
    routes = [
        _route(Severity.CRITICAL, "mnemo-webhook", _CRITICAL_TIMING, last=False),
        _route(Severity.CRITICAL, "mnemo-slack", _CRITICAL_TIMING, last=False),
        _route(Severity.CRITICAL, "mnemo-discord", _CRITICAL_TIMING, last=False),
        _route(Severity.CRITICAL, "mnemo-email", _CRITICAL_TIMING, last=True),
        _route(Severity.WARNING, "mnemo-webhook", _WARNING_TIMING, last=False),
        _route(Severity.WARNING, "mnemo-slack", _WARNING_TIMING, last=False),
        _route(Severity.WARNING, "mnemo-discord", _WARNING_TIMING, last=True),
    ]
    root = {
        "orgId": 1,
        "receiver": "mnemo-webhook",
        "group_by": ["grafana_folder", "alertname"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": routes,
    }
    return {"apiVersion": 1, "policies": [root]}


def templates() -> dict[str, Any]:
    """The ``provisioning/alerting/templates.yaml`` document (title and message for every channel)."""
    return {"apiVersion": 1, "templates": [{"orgId": 1, "name": TEMPLATE_NAME, "template": _TEMPLATE}]}
