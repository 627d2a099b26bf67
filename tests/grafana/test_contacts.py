"""Only the channels the environment configures exist, and each alert reaches exactly the right ones.

Routing is checked by Alertmanager's own tool: the rendered tree (Grafana's notification policies are
Alertmanager routes) is written as an Alertmanager config, validated by ``amtool check-config`` (which
also validates the mute timing) and asked ``amtool config routes test`` for sample alerts, for every
combination of configured channels.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from mnemo_otel.grafana.alerting import grafana_rules
from mnemo_otel.grafana.contacts import (
    CHANNELS,
    DEADMAN,
    ENV_DEADMAN_URL,
    ENV_DISCORD_URL,
    ENV_EMAIL_ADDRESSES,
    ENV_SLACK_URL,
    ENV_SMTP_ENABLED,
    ENV_WEBHOOK_URL,
    WATCHDOG_ALERT,
    WATCHDOG_MUTE,
    AlertingConfigError,
    contact_points,
    policies,
)
from mnemo_otel.grafana.render import ALERTING_DIR, render_alerting
from mnemo_otel.grafana.retired import RETIRED_RULE_UIDS
from mnemo_otel.grafana.rules import ALL_RULES
from testkit import REPO_ROOT
from testkit.importing import clean_env
from tests.grafana._interpolate import interpolate
from tests.grafana._paths import GRAFANA_DIR

OPTIONAL = {
    "mnemo-slack": {ENV_SLACK_URL: "https://hooks.slack.example/T000/B000/secret-slack"},
    "mnemo-discord": {ENV_DISCORD_URL: "https://discord.example/api/webhooks/1/secret-discord"},
    "mnemo-email": {ENV_EMAIL_ADDRESSES: "ops@example.org; oncall@example.org", ENV_SMTP_ENABLED: "true"},
    "mnemo-deadman": {ENV_DEADMAN_URL: "https://hc-ping.example/secret-uuid"},
}
HUMAN = {"mnemo-webhook", "mnemo-slack", "mnemo-discord", "mnemo-email"}
QUIET = {"mnemo-webhook", "mnemo-email"}


def _env(names: tuple[str, ...]) -> dict[str, str]:
    env = {ENV_WEBHOOK_URL: ""}  # compose passes it empty when unset
    for name in names:
        env.update(OPTIONAL[name])
    return env


def _combinations() -> list[tuple[str, ...]]:
    return [c for n in range(len(OPTIONAL) + 1) for c in itertools.combinations(sorted(OPTIONAL), n)]


def _alertmanager_route(route: Mapping[str, Any]) -> dict[str, Any]:
    converted = {k: v for k, v in route.items() if k not in ("orgId", "object_matchers", "routes")}
    if "object_matchers" in route:
        converted["matchers"] = [f'{name}{op}"{value}"' for name, op, value in route["object_matchers"]]
    if "routes" in route:
        converted["routes"] = [_alertmanager_route(child) for child in route["routes"]]
    return converted


class Alertmanager:
    """The rendered policies and contact points as an Alertmanager config, checked by amtool."""

    def __init__(self, env: Mapping[str, str], workdir: Path) -> None:
        document = policies(env)
        self.root = document["policies"][0]
        self.points = {point["name"] for point in contact_points(env)["contactPoints"]}
        config = {
            "route": _alertmanager_route(self.root),
            "receivers": [{"name": name} for name in sorted(self.points)],
            "time_intervals": [
                {"name": m["name"], "time_intervals": m["time_intervals"]} for m in document["muteTimes"]
            ],
        }
        self.path = workdir / "alertmanager.yml"
        self.path.write_text(yaml.safe_dump(config, sort_keys=False))
        checked = subprocess.run(
            ["amtool", "check-config", str(self.path)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

    def routed(self, **labels: str) -> list[str]:
        """Receivers an alert with ``labels`` is sent to, as Alertmanager routes it (before muting)."""
        pairs = [f"{name}={value}" for name, value in labels.items()]
        result = subprocess.run(
            ["amtool", "config", "routes", "test", f"--config.file={self.path}", *pairs],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().split(",")

    def muted(self, receiver: str, **labels: str) -> bool:
        """Whether the route delivering ``labels`` to ``receiver`` mutes it at every time of day."""
        route = next(
            r for r in self.root["routes"] if all(labels.get(n) == v for n, _, v in r["object_matchers"])
        )
        assert route["receiver"] == receiver
        return bool(route.get("mute_time_intervals") == [WATCHDOG_MUTE])


@pytest.mark.parametrize("configured", _combinations(), ids=lambda c: "+".join(c) or "nothing")
def test_exactly_the_configured_channels_exist_and_the_others_are_deleted(
    configured: tuple[str, ...],
) -> None:
    document = contact_points(_env(configured))
    expected = {"mnemo-webhook", *configured}
    assert {point["name"] for point in document["contactPoints"]} == expected
    deleted = {entry["uid"] for entry in document.get("deleteContactPoints", [])}
    assert deleted == {c.name for c in (*CHANNELS, DEADMAN)} - expected


@pytest.mark.parametrize("configured", _combinations(), ids=lambda c: "+".join(c) or "nothing")
def test_each_alert_reaches_exactly_the_right_channels(configured: tuple[str, ...], tmp_path: Path) -> None:
    manager = Alertmanager(_env(configured), tmp_path)
    humans = HUMAN & manager.points

    def routed(**labels: str) -> set[str]:
        delivered = manager.routed(**labels)
        assert len(delivered) == len(set(delivered)), delivered  # nobody is told twice
        assert set(delivered) <= manager.points
        return set(delivered)

    assert routed(alertname="MnemoHeartbeatStale", severity="critical", service_instance_id="h1") == humans
    assert routed(alertname="MnemoImportGap", severity="warning", service_instance_id="h1") == QUIET & humans
    assert routed(alertname="DatasourceError") == {"mnemo-webhook"}
    assert "mnemo-deadman" not in routed(alertname="MnemoHeartbeatStale", severity="critical")
    for severity in ("critical", "warning", "none", ""):
        watchdog = routed(alertname=WATCHDOG_ALERT, severity=severity)
        if "mnemo-deadman" in configured:
            assert watchdog == {"mnemo-deadman"}
        else:  # nowhere: its route leads to the webhook but is muted around the clock
            assert watchdog == {"mnemo-webhook"}
            assert manager.muted("mnemo-webhook", alertname=WATCHDOG_ALERT)


def test_the_watchdog_route_pings_often_at_once_and_never_sends_resolved() -> None:
    (root,) = policies(_env(("mnemo-deadman",)))["policies"]
    (route,) = [r for r in root["routes"] if r["receiver"] == "mnemo-deadman"]
    assert route["object_matchers"] == [["alertname", "=", WATCHDOG_ALERT]]
    assert route["continue"] is False
    assert (route["group_wait"], route["repeat_interval"]) == ("0s", "5m")
    (point,) = [
        p for p in contact_points(_env(("mnemo-deadman",)))["contactPoints"] if p["name"] == "mnemo-deadman"
    ]
    assert point["receivers"][0]["disableResolveMessage"] is True
    assert point["receivers"][0]["settings"]["url"] == f"${ENV_DEADMAN_URL}"
    # The human channels all send resolved messages.
    for other in contact_points(_env(tuple(OPTIONAL)))["contactPoints"]:
        if other["name"] != "mnemo-deadman":
            assert other["receivers"][0]["disableResolveMessage"] is False, other["name"]


def test_alerts_group_by_name_and_host() -> None:
    (root,) = policies(_env(()))["policies"]
    assert root["group_by"] == ["alertname", "service_instance_id"]
    mute = policies(_env(()))["muteTimes"][0]
    assert mute["time_intervals"] == [{"times": [{"start_time": "00:00", "end_time": "24:00"}]}]


def test_targets_stay_variables_that_grafana_expands_from_its_own_environment() -> None:
    env = _env(tuple(OPTIONAL))
    text = yaml.safe_dump(contact_points(env))
    for secret in ("secret-slack", "secret-discord", "secret-uuid", "oncall@example.org"):
        assert secret not in text  # no secret is written to disk
    for point in contact_points(env)["contactPoints"]:
        settings = point["receivers"][0]["settings"]
        target = settings.get("url", settings.get("addresses"))
        assert interpolate(target, {**env, ENV_WEBHOOK_URL: "http://alert-log:9094/"}) != ""


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({ENV_SLACK_URL: "hooks.slack.example/no-scheme-secret"}, ENV_SLACK_URL),
        ({ENV_DEADMAN_URL: "ftp://secret-host/x"}, ENV_DEADMAN_URL),
        ({ENV_WEBHOOK_URL: "not a url secret"}, ENV_WEBHOOK_URL),
        ({ENV_EMAIL_ADDRESSES: "ops@example.org"}, ENV_SMTP_ENABLED),
        ({ENV_EMAIL_ADDRESSES: "no-at-sign-secret", ENV_SMTP_ENABLED: "true"}, ENV_EMAIL_ADDRESSES),
    ],
)
def test_a_channel_that_cannot_work_is_refused_by_name_never_by_value(
    env: dict[str, str], names: str
) -> None:
    with pytest.raises(AlertingConfigError, match=names) as caught:
        contact_points(env)
    assert "secret" not in str(caught.value)


def test_render_alerting_writes_the_folder_and_drops_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "alerting"
    out.mkdir()
    (out / "old-release.yaml").write_text("apiVersion: 1\n")
    (out / "README").write_text("not provisioning; left alone\n")
    written = render_alerting(out, _env(("mnemo-slack",)))
    assert sorted(p.name for p in written) == [
        "contact-points.yaml",
        "policies.yaml",
        "rules.yaml",
        "templates.yaml",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["README", *sorted(p.name for p in written)]
    names = [p["name"] for p in yaml.safe_load((out / "contact-points.yaml").read_text())["contactPoints"]]
    assert names == ["mnemo-webhook", "mnemo-slack"]


def test_with_nothing_configured_it_renders_the_committed_files(tmp_path: Path) -> None:
    written = render_alerting(tmp_path, {ENV_WEBHOOK_URL: "", ENV_SMTP_ENABLED: "false"})
    for path in written:
        assert path.read_text() == (GRAFANA_DIR / ALERTING_DIR / path.name).read_text(), path.name


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    mnemo = Path(sys.executable).with_name("mnemo-otel")
    child = {k: v for k, v in clean_env().items() if not k.startswith(("ALERT_", "GF_SMTP_"))}
    return subprocess.run(
        [str(mnemo), "grafana", "render", *args],
        env={**child, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_renders_from_its_environment_and_prints_names_only(tmp_path: Path) -> None:
    env = _env(("mnemo-discord", "mnemo-deadman"))
    result = _cli(env, "--alerting-from-env", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "contact points: mnemo-webhook, mnemo-discord, mnemo-deadman" in result.stdout
    assert "secret" not in result.stdout + result.stderr
    assert (tmp_path / "policies.yaml").is_file()


def test_cli_refuses_a_broken_channel_with_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    result = _cli(
        {ENV_SLACK_URL: "secret-without-scheme"}, "--alerting-from-env", "--out", str(tmp_path / "a")
    )
    assert result.returncode == 2
    assert ENV_SLACK_URL in result.stderr and "secret" not in result.stderr.replace(ENV_SLACK_URL, "")
    assert not (tmp_path / "a").exists()
    assert _cli({}, "--alerting-from-env").returncode == 2  # no --out: never into ./grafana


def _shipped_rule_uids() -> set[str]:
    """Every rule uid any commit of the repository ever provisioned."""
    log = subprocess.run(
        ["git", "log", "--format=", "-p", "--", f"grafana/{ALERTING_DIR}/rules.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(re.findall(r"^[-+ ]  - uid: (\S+)$", log, flags=re.MULTILINE))


def test_a_rule_removed_from_the_spec_is_deleted_from_grafana() -> None:
    active = {spec.uid for spec in ALL_RULES}
    retired = set(RETIRED_RULE_UIDS)
    assert not active & retired, "a retired uid is reused"
    shipped = _shipped_rule_uids()
    assert shipped, "no history of rules.yaml: run in a git clone"
    assert shipped <= active | retired, f"removed but not retired: {sorted(shipped - active - retired)}"
    deletes = grafana_rules().get("deleteRules", [])
    assert [d["uid"] for d in deletes] == list(RETIRED_RULE_UIDS)
    assert all(d["orgId"] == 1 for d in deletes)


def test_retiring_a_rule_renders_its_deletion(monkeypatch: pytest.MonkeyPatch) -> None:
    from mnemo_otel.grafana import alerting

    monkeypatch.setattr(alerting, "RETIRED_RULE_UIDS", ("mnemo-old-rule",))
    assert alerting.grafana_rules()["deleteRules"] == [{"orgId": 1, "uid": "mnemo-old-rule"}]


def test_compose_renders_before_grafana_and_hands_grafana_every_variable() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    render, grafana = compose["grafana-alerting"], compose["grafana"]
    assert render["command"][:4] == ["grafana", "render", "--alerting-from-env", "--out"]
    target = render["command"][4]
    assert f"grafana-alerting:{target}" in render["volumes"]
    assert "grafana-alerting:/etc/grafana/provisioning/alerting:ro" in grafana["volumes"]
    assert grafana["depends_on"]["grafana-alerting"] == {
        "condition": "service_completed_successfully",
        "restart": True,
    }
    assert render["restart"] == "no"
    # A new named volume takes the owner of the image's directory at its mount point: the image
    # must create it for the non-root user, or the render cannot write.
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(rf"mkdir -p [^\n]*{re.escape(target)}", dockerfile)
    assert re.search(rf"chown 10001:0 [^\n]*{re.escape(target)}", dockerfile)
    assert re.search(r"^USER 10001", dockerfile, flags=re.MULTILINE) and "user" not in render
    variables = {c.env for c in (*CHANNELS, DEADMAN)}
    assert variables | {ENV_SMTP_ENABLED} <= set(render["environment"])
    assert variables <= set(grafana["environment"])  # Grafana expands $VAR from its own environment
    for name in variables - {ENV_WEBHOOK_URL}:
        assert render["environment"][name] == grafana["environment"][name] == f"${{{name}:-}}", name
    assert grafana["environment"][ENV_WEBHOOK_URL].startswith(f"${{{ENV_WEBHOOK_URL}:-http://alert-log:")
