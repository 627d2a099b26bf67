"""The alert-fidelity replay in small: one simulated day through the provisioned Grafana rules, with
the SLI recording rules recorded on the way (the thirty-day figures are ``benchmarks.alert_fidelity``'s)."""

from __future__ import annotations

from pathlib import Path

from benchmarks._fidelity_sim import HOUR, MINUTE, Incident
from benchmarks.alert_fidelity import incident_table, measure, notification_table

SECOND = 1000


def test_one_day__each_incident_detected_in_its_window_and_nobody_else_notified(tmp_path: Path) -> None:
    events = [
        Incident("planned restart", 9 * HOUR, 10 * SECOND, {}),
        Incident("database outage 5 min", 11 * HOUR, 5 * MINUTE, {"MnemoDatabaseDown": 3 * MINUTE}),
        Incident(
            "crash, down 30 min",
            14 * HOUR,
            30 * MINUTE,
            {"MnemoHeartbeatStale": 150 * SECOND, "MnemoAvailabilityBudgetBurn": 15 * MINUTE},
        ),
    ]
    outcome = measure(1, tmp_path, events)
    table, missed = incident_table(outcome)
    assert missed == 0, table
    notes, total, false = notification_table(outcome)
    assert total >= 3 and false == 0, notes
    assert {f.rule for f in outcome.firings} == {
        "MnemoDatabaseDown",
        "MnemoHeartbeatStale",
        "MnemoAvailabilityBudgetBurn",
    }, notes
    assert outcome.watchdog_share == 1
