"""The witness rules' numbers are the witness's own: its grace period, its host attribute, its name for
an event that named no host."""

from __future__ import annotations

from mnemo_otel.grafana import witness
from mnemo_otel.settings import WitnessSettings
from mnemo_otel.telemetry import names


def test_grace__is_the_witness_default() -> None:
    """The gap's text and description state it; a change of the default must retune them."""
    assert WitnessSettings.model_fields["grace_seconds"].default == witness.GRACE_S


def test_gap__labels_only_a_named_host_that_no_importer_archives() -> None:
    (gap, _) = witness.RULES
    assert gap.name == "MnemoWitnessGap"
    assert f'{witness.WITNESS_HOST}!="{names.WITNESS_UNKNOWN_HOST}"' in gap.query
    assert f'"{witness.ARCHIVER}", "{witness.NO_ARCHIVER}"' in gap.query
    assert f'if eq . "{names.WITNESS_UNKNOWN_HOST}"' in gap.summary
    assert "mnemo.host.id=$MNEMO_HOST_ID" in gap.summary and "nothing archives it" in gap.summary


def test_silent__joins_the_witness_host_to_the_importer_host() -> None:
    (_, silent) = witness.RULES
    assert names.EXCHANGES_IMPORTED.prometheus in silent.query
    assert f'"{witness.WITNESS_HOST}", "$1", "service_instance_id", "(.+)"' in silent.query
    assert silent.threshold == witness.SILENT_AFTER_S
