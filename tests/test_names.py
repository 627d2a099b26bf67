from __future__ import annotations

from mnemo_otel.telemetry import names


def test_metric_names__are_unique_and_translate_like_the_collector() -> None:
    otel = [m.name for m in names.METRICS]
    assert len(otel) == len(set(otel))
    assert names.HEARTBEAT.prometheus == "mnemo_importer_heartbeat_timestamp_seconds"
    assert names.ENTRIES_IMPORTED.prometheus == "mnemo_importer_entries_imported_total"
    assert names.BACKLOG.prometheus == "mnemo_importer_backlog_bytes"
    assert names.DB_UP.prometheus == "mnemo_importer_db_up_ratio"
