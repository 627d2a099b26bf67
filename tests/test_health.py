from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from mnemo_otel.health import HealthServer, evaluate, probe
from mnemo_otel.settings import HealthSettings
from mnemo_otel.state import LoopState

SETTINGS = HealthSettings(port=0, stale_after_seconds=60)


class TestEvaluate:
    def test_evaluate__fresh_loop_with_database_is_healthy(self) -> None:
        state = LoopState(db_up=True)
        report = evaluate(state, SETTINGS, ready=True)
        assert (report.status, report.http_status, report.reasons) == ("healthy", 200, [])

    def test_evaluate__stale_heartbeat_is_unhealthy_with_a_reason(self) -> None:
        state = LoopState(db_up=True)
        report = evaluate(state, SETTINGS, ready=False, now=state.heartbeat + 61)
        assert report.status == "unhealthy" and report.http_status == 503
        assert "heartbeat stale" in report.reasons[0]

    def test_evaluate__database_down_fails_readiness_but_not_liveness(self) -> None:
        state = LoopState(db_up=False, last_error="db_unavailable")
        assert evaluate(state, SETTINGS, ready=False).status == "healthy"
        ready = evaluate(state, SETTINGS, ready=True)
        assert ready.status == "unhealthy" and "db_unavailable" in ready.reasons[0]

    def test_evaluate__old_backlog_is_degraded_but_still_2xx(self) -> None:
        state = LoopState(db_up=True, backlog_bytes=100, backlog_since=time.time() - 3600)
        report = evaluate(state, SETTINGS, ready=True)
        assert report.status == "degraded" and report.http_status == 200

    def test_evaluate__damage_found_by_the_restore_drill_is_degraded_with_a_reason(self) -> None:
        state = LoopState(db_up=True)
        state.drilled({"damaged": 2, "before_exact_lines": 0})
        report = evaluate(state, SETTINGS, ready=True)
        assert report.status == "degraded" and report.http_status == 200
        assert report.restore_inexact == {"damaged": 2, "before_exact_lines": 0}
        assert any("restore drill found 2 file(s)" in reason for reason in report.reasons)

    def test_evaluate__files_from_before_exact_lines_are_a_note_not_a_degradation(self) -> None:
        state = LoopState(db_up=True)
        assert evaluate(state, SETTINGS, ready=True).restore_inexact is None  # no drill yet
        state.drilled({"damaged": 0, "before_exact_lines": 7})
        report = evaluate(state, SETTINGS, ready=True)
        assert (report.status, report.reasons) == ("healthy", [])
        assert len(report.notes) == 1 and report.notes[0].startswith("7 file(s) were imported before")


class TestHealthServer:
    def test_health_server__answers_json_on_a_real_socket_and_the_probe_agrees(self) -> None:
        state = LoopState(db_up=True)
        server = HealthServer(state, SETTINGS)
        server.start()
        try:
            settings = HealthSettings(port=server.port)
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/readyz") as response:
                body = json.loads(response.read())
            assert body["status"] == "healthy" and body["db_up"] is True
            ok, text = probe(settings)
            assert ok and json.loads(text)["status"] == "healthy"
            state.heartbeat -= 120
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz")
            assert error.value.code == 503
            error.value.close()
            ok, text = probe(settings)
            assert not ok and json.loads(text)["status"] == "unhealthy"
        finally:
            server.stop()

    def test_probe__reports_an_importer_that_does_not_answer(self) -> None:
        from testkit.postgres_server import free_port

        ok, text = probe(HealthSettings(port=free_port()), timeout=1)
        assert not ok and "no answer" in text
