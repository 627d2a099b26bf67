"""`mnemo-otel alert-log`: the stack's default webhook logs what Grafana sends, and can be probed."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import free_port, log_tail, stop_process, wait_for
from testkit.importing import clean_env

MNEMO = str(Path(sys.executable).with_name("mnemo-otel"))

# The shape Grafana's webhook integration posts (trimmed to what the log reads, plus noise).
PAYLOAD = {
    "receiver": "mnemo-webhook",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "MnemoHeartbeatStale",
                "severity": "critical",
                "service_instance_id": "laptop-7",
            },
            "annotations": {"summary": "The importer work loop last made progress 3m ago."},
            "startsAt": "2026-11-30T12:00:00Z",
            "fingerprint": "abc",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "MnemoImportGap", "severity": "warning"},
            "annotations": {},
            "startsAt": "2026-11-30T11:00:00Z",
        },
    ],
    "title": "[FIRING:1] MnemoHeartbeatStale",
}


@pytest.fixture
def alert_log(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    port = free_port()
    env = clean_env(MNEMO_HEALTH__HOST="127.0.0.1", MNEMO_HEALTH__PORT=str(port))
    log = tmp_path / "alert-log.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([MNEMO, "alert-log"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(
            lambda: (
                subprocess.run([MNEMO, "health"], env=env, capture_output=True, check=False).returncode == 0
            ),
            timeout=30,
            what="alert-log to answer mnemo-otel health",
            diagnostics=lambda: log_tail(log),
        )
        yield port, log, proc
    finally:
        stop_process(proc)


def _post(port: int, body: bytes) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_each_alert_becomes_one_log_line(alert_log: tuple[int, Path, subprocess.Popen[bytes]]) -> None:
    port, log, proc = alert_log
    assert _post(port, json.dumps(PAYLOAD).encode()) == (200, {"logged": 2})
    lines = wait_for(
        lambda: [line for line in log.read_text().splitlines() if " alert " in line] or None,
        timeout=10,
        what="alert lines in the log",
    )
    assert len(lines) == 2
    assert "firing MnemoHeartbeatStale severity=critical host=laptop-7 since=2026-11-30T12:00:00Z" in lines[0]
    assert "made progress 3m ago" in lines[0]
    assert "resolved MnemoImportGap severity=warning host=-" in lines[1]
    stop_process(proc)
    assert proc.returncode == 0, log_tail(log)


def test_a_request_that_is_not_an_alert_is_refused(
    alert_log: tuple[int, Path, subprocess.Popen[bytes]],
) -> None:
    port, _, _ = alert_log
    assert _post(port, b"not json")[0] == 400
    assert _post(port, json.dumps({"alerts": "nope"}).encode())[0] == 400
    assert _post(port, json.dumps({"alerts": [1]}).encode())[0] == 400
    assert _post(port, json.dumps(PAYLOAD).encode())[0] == 200  # still serving
