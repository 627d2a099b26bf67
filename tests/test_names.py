from __future__ import annotations

from mnemo_otel.telemetry import names


def test_metric_names__are_unique_and_translate_like_the_collector() -> None:
    otel = [m.name for m in (*names.METRICS, *names.WITNESS_METRICS)]
    assert len(otel) == len(set(otel))
    assert names.HEARTBEAT.prometheus == "mnemo_importer_heartbeat_timestamp_seconds"
    assert names.ENTRIES_IMPORTED.prometheus == "mnemo_importer_entries_imported_total"
    assert names.BACKLOG.prometheus == "mnemo_importer_backlog_bytes"
    assert names.DB_UP.prometheus == "mnemo_importer_db_up_ratio"
    assert names.VERIFY_MISSING.prometheus == "mnemo_importer_verify_missing"
    assert names.VERIFY_REPAIRED.prometheus == "mnemo_importer_verify_repaired_total"
    assert names.VERIFY_LAST_RUN.prometheus == "mnemo_importer_verify_last_run_timestamp_seconds"
    assert names.VERIFY_INTERVAL.prometheus == "mnemo_importer_verify_interval_seconds"
    assert names.SOURCE_LOST.prometheus == "mnemo_importer_source_lost_bytes_total"
    assert names.SOURCE_RETENTION.prometheus == "mnemo_importer_source_retention_seconds"
    assert names.WITNESS_UNARCHIVED.prometheus == "mnemo_witness_unarchived"
    assert names.WITNESS_LAG.prometheus == "mnemo_witness_lag_seconds"
