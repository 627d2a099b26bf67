"""Contact points and the notification policy tree, for the channels configured (their message
templates are in ``messages.py``).

Which channels exist is decided from the environment at stack start (``mnemo-otel grafana render
--alerting-from-env``): the webhook always (compose points it at a local log when the user names
none), Slack, Discord, email and the dead-man's switch only when their variable is set. Channels
that are not configured are deleted (``deleteContactPoints``), so one configured earlier and unset
later disappears from a running Grafana. The committed files are this rendering with nothing set.

The targets themselves never reach the files: settings say ``$ALERT_SLACK_WEBHOOK_URL`` and Grafana
expands it from its own environment when it loads them, so no secret is written to disk.
Setting keys come from grafana/alerting ``receivers/<type>/v1/config.go`` (Grafana 12-13): Grafana
ignores unknown keys silently, so a test checks ours against ``SETTING_KEYS``.

Routing, on purpose: ``severity=critical`` goes to every configured channel at once and repeats
hourly; ``severity=warning`` only to the quieter ones (webhook, email), twice a day; ``MnemoWatchdog``
(always firing) only to the dead-man's switch, every 5 minutes, and never to a human. Alerts group
by alert name and host, so one dead host is one notification, and two hosts are two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from mnemo_otel.errors import ConfigError
from mnemo_otel.grafana.messages import MESSAGE, TITLE
from mnemo_otel.grafana.slo import WATCHDOG
from mnemo_otel.grafana.spec import Severity

__all__ = (
    "CHANNELS",
    "DEADMAN",
    "ENV_DEADMAN_URL",
    "ENV_DISCORD_URL",
    "ENV_EMAIL_ADDRESSES",
    "ENV_SLACK_URL",
    "ENV_SMTP_ENABLED",
    "ENV_WEBHOOK_URL",
    "GROUP_BY",
    "SETTING_KEYS",
    "WATCHDOG_ALERT",
    "WATCHDOG_MUTE",
    "AlertingConfigError",
    "Channel",
    "configured_channels",
    "contact_points",
    "policies",
)

ENV_WEBHOOK_URL: Final = "ALERT_WEBHOOK_URL"
ENV_SLACK_URL: Final = "ALERT_SLACK_WEBHOOK_URL"
ENV_DISCORD_URL: Final = "ALERT_DISCORD_WEBHOOK_URL"
ENV_EMAIL_ADDRESSES: Final = "ALERT_EMAIL_ADDRESSES"
ENV_DEADMAN_URL: Final = "ALERT_DEADMAN_URL"
ENV_SMTP_ENABLED: Final = "GF_SMTP_ENABLED"

WATCHDOG_ALERT: Final = WATCHDOG.name
"""The always-firing rule whose notifications prove the whole alerting path works (dead-man's switch)."""
GROUP_BY: Final = ("alertname", "service_instance_id")
ORG_ID: Final = 1

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


class AlertingConfigError(ConfigError):
    """An alerting variable that cannot work; the message names the variable, never its value."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One contact point with one integration; its uid equals its name so both stay stable."""

    name: str
    kind: str
    env: str
    target_key: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    quiet: bool = False
    """Also receives warnings (the channels nobody gets woken by)."""
    send_resolved: bool = True
    always: bool = False
    """Exists with nothing configured (compose gives its variable a working default)."""

    def receiver(self) -> dict[str, Any]:
        settings = {self.target_key: f"${self.env}", **self.settings}
        return {
            "uid": self.name,
            "type": self.kind,
            "settings": settings,
            "disableResolveMessage": not self.send_resolved,
        }


CHANNELS: Final[tuple[Channel, ...]] = (
    Channel(
        "mnemo-webhook",
        "webhook",
        ENV_WEBHOOK_URL,
        "url",
        {"httpMethod": "POST", "title": TITLE, "message": MESSAGE},
        quiet=True,
        always=True,
    ),
    Channel("mnemo-slack", "slack", ENV_SLACK_URL, "url", {"title": TITLE, "text": MESSAGE}),
    Channel("mnemo-discord", "discord", ENV_DISCORD_URL, "url", {"title": TITLE, "message": MESSAGE}),
    Channel(
        "mnemo-email",
        "email",
        ENV_EMAIL_ADDRESSES,
        "addresses",
        {"singleEmail": True, "subject": TITLE, "message": MESSAGE},
        quiet=True,
    ),
)
"""The human-facing channels. Every one sends resolved messages: whoever was told it broke is told it
is fixed, and nobody chases a problem that already went away."""

DEADMAN: Final = Channel(
    "mnemo-deadman",
    "webhook",
    ENV_DEADMAN_URL,
    "url",
    {"httpMethod": "POST", "title": TITLE},
    send_resolved=False,
)
"""Dead-man's switch (e.g. a healthchecks.io ping URL): every request counts as "alive", so it must
never get a resolved message, which would ping it while the watchdog is *not* firing."""


def _value(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _check(channel: Channel, env: Mapping[str, str]) -> None:
    value = _value(env, channel.env)
    if channel.target_key == "url" and not value.startswith(("http://", "https://")):
        raise AlertingConfigError(f"{channel.env} is set but is not an http(s) URL")
    if channel.kind == "email":
        addresses = [a for a in value.replace(";", ",").split(",") if a.strip()]
        if not addresses or not all("@" in a for a in addresses):
            raise AlertingConfigError(f"{channel.env} must be e-mail addresses separated by , or ;")
        if _value(env, ENV_SMTP_ENABLED).lower() != "true":
            raise AlertingConfigError(f"{channel.env} is set but {ENV_SMTP_ENABLED} is not true")


def configured_channels(env: Mapping[str, str]) -> tuple[Channel, ...]:
    """The channels ``env`` configures (checked), in routing order; the dead-man's switch last."""
    chosen = []
    for channel in (*CHANNELS, DEADMAN):
        if _value(env, channel.env):
            _check(channel, env)
            chosen.append(channel)
        elif channel.always:
            chosen.append(channel)
    return tuple(chosen)


def contact_points(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The contact points document: the configured ones; every known other one is deleted."""
    chosen = configured_channels(env or {})
    points = [{"orgId": ORG_ID, "name": c.name, "receivers": [c.receiver()]} for c in chosen]
    gone = [{"orgId": ORG_ID, "uid": c.name} for c in (*CHANNELS, DEADMAN) if c not in chosen]
    document: dict[str, Any] = {"apiVersion": 1, "contactPoints": points}
    if gone:
        document["deleteContactPoints"] = gone
    return document


def _route(receiver: str, matcher: Sequence[str], timing: Mapping[str, str], *, last: bool) -> dict[str, Any]:
    return {"receiver": receiver, "object_matchers": [list(matcher)], **timing, "continue": not last}


_CRITICAL_TIMING: Final = {"group_wait": "10s", "group_interval": "1m", "repeat_interval": "1h"}
"""Someone has to act now: out within seconds, a reminder every hour until fixed or silenced."""
_WARNING_TIMING: Final = {"group_wait": "1m", "group_interval": "5m", "repeat_interval": "12h"}
"""Worth a look today: batched, and repeated twice a day at most."""
_WATCHDOG_TIMING: Final = {"group_wait": "0s", "group_interval": "1m", "repeat_interval": "5m"}
"""A ping every 5 minutes: give the dead-man's switch a period of 5 minutes and a grace of 10."""
WATCHDOG_MUTE: Final = "mnemo-watchdog-unrouted"
"""Mutes the watchdog's route when no dead-man's switch is configured: it must reach no human."""


def _severity_routes(chosen: Sequence[Channel]) -> list[dict[str, Any]]:
    routes = []
    for severity, timing, channels in (
        (Severity.CRITICAL, _CRITICAL_TIMING, [c for c in chosen if c in CHANNELS]),
        (Severity.WARNING, _WARNING_TIMING, [c for c in chosen if c in CHANNELS and c.quiet]),
    ):
        matcher = ("severity", "=", severity.value)
        for i, channel in enumerate(channels):
            routes.append(_route(channel.name, matcher, timing, last=i == len(channels) - 1))
    return routes


def _watchdog_route(chosen: Sequence[Channel]) -> dict[str, Any]:
    matcher = ("alertname", "=", WATCHDOG_ALERT)
    if DEADMAN in chosen:
        return _route(DEADMAN.name, matcher, _WATCHDOG_TIMING, last=True)
    return {
        **_route(CHANNELS[0].name, matcher, _WATCHDOG_TIMING, last=True),
        "mute_time_intervals": [WATCHDOG_MUTE],
    }


def policies(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The policy tree (plus the mute timing it may use). Anything without a severity falls through
    to the root: the webhook, every 4 hours. Grafana's DatasourceError and DatasourceNoData keep their
    rule's labels, severity included, so they route as their rule does (grouped under that name: one
    notification lists every rule a Prometheus outage broke)."""
    chosen = configured_channels(env or {})
    root = {
        "orgId": ORG_ID,
        "receiver": CHANNELS[0].name,
        "group_by": list(GROUP_BY),
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [_watchdog_route(chosen), *_severity_routes(chosen)],
    }
    always = {"times": [{"start_time": "00:00", "end_time": "24:00"}]}
    mute = {"orgId": ORG_ID, "name": WATCHDOG_MUTE, "time_intervals": [always]}
    return {"apiVersion": 1, "muteTimes": [mute], "policies": [root]}
