"""The stack's alerting render, run natively as compose would run it, and read as Grafana would.

The one-shot ``grafana-alerting`` service's command (Dockerfile ENTRYPOINT + compose ``command``) runs
with its compose environment interpolated from .env-style values; then every target the rendered
contact points name is expanded from *Grafana's* compose environment, as Grafana does at start.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from testkit.compose import COMPOSE_FILE, container_command, service_environment
from testkit.importing import clean_env
from tests.grafana._interpolate import interpolate

REQUIRED = {
    "POSTGRES_PASSWORD": "x",
    "GRAFANA_ADMIN_PASSWORD": "y",
    "CLAUDE_PROJECTS_DIR": "/home/me/.claude/projects",
    "MNEMO_HOST_ID": "laptop-7",
}
SLACK = "https://hooks.slack.example/services/T0/B0/abc"
DEADMAN = "https://hc-ping.example/0b1c"


def _render(variables: dict[str, str], out: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    env = service_environment("grafana-alerting", variables)
    argv = container_command("grafana-alerting")
    target = argv[argv.index("--out") + 1]
    argv = [str(Path(sys.executable).with_name(argv[0])), *argv[1:]]
    argv[argv.index(target)] = str(out)
    child = {k: v for k, v in clean_env().items() if not k.startswith(("ALERT_", "GF_"))}
    result = subprocess.run(argv, env={**child, **env}, capture_output=True, text=True, check=False)
    names = []
    if result.returncode == 0:
        names = [
            p["name"] for p in yaml.safe_load((out / "contact-points.yaml").read_text())["contactPoints"]
        ]
    return result, names


def test_nothing_configured_renders_the_webhook_to_the_stacks_alert_log(tmp_path: Path) -> None:
    result, names = _render(REQUIRED, tmp_path)
    assert result.returncode == 0, result.stderr
    assert names == ["mnemo-webhook"]
    grafana_env = service_environment("grafana", REQUIRED)
    url = interpolate("$ALERT_WEBHOOK_URL", grafana_env)
    # ... and that URL is the alert-log service of the same compose file, on the port it listens on.
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.hostname in services
    assert services[parts.hostname]["command"] == ["alert-log"]
    assert str(parts.port) == services[parts.hostname]["environment"]["MNEMO_HEALTH__PORT"]


def test_configured_channels_exist_and_grafana_can_expand_every_target(tmp_path: Path) -> None:
    variables = {**REQUIRED, "ALERT_SLACK_WEBHOOK_URL": SLACK, "ALERT_DEADMAN_URL": DEADMAN}
    result, names = _render(variables, tmp_path)
    assert result.returncode == 0, result.stderr
    assert names == ["mnemo-webhook", "mnemo-slack", "mnemo-deadman"]
    assert SLACK not in result.stdout and DEADMAN not in result.stdout
    grafana_env = service_environment("grafana", variables)
    document = yaml.safe_load((tmp_path / "contact-points.yaml").read_text())
    targets = {
        point["name"]: interpolate(point["receivers"][0]["settings"]["url"], grafana_env)
        for point in document["contactPoints"]
    }
    assert targets == {
        "mnemo-webhook": "http://alert-log:9094/",
        "mnemo-slack": SLACK,
        "mnemo-deadman": DEADMAN,
    }
    assert {d["uid"] for d in document["deleteContactPoints"]} == {"mnemo-discord", "mnemo-email"}


def test_email_without_smtp_stops_the_stack_before_grafana(tmp_path: Path) -> None:
    result, _ = _render({**REQUIRED, "ALERT_EMAIL_ADDRESSES": "ops@example.org"}, tmp_path / "out")
    assert result.returncode == 2
    assert "GF_SMTP_ENABLED" in result.stderr and "ops@example.org" not in result.stderr
    result, names = _render(
        {**REQUIRED, "ALERT_EMAIL_ADDRESSES": "ops@example.org", "GF_SMTP_ENABLED": "true"}, tmp_path / "ok"
    )
    assert result.returncode == 0 and names == ["mnemo-webhook", "mnemo-email"]
