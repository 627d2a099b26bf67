"""The public surface: one sorted ``__all__``, every name importable, and no OpenTelemetry SDK pulled
in by importing the library (an embedding application keeps its own OTel setup)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mnemo_otel


def test_public_api__all_is_sorted_and_every_name_exists() -> None:
    names = list(mnemo_otel.__all__)
    assert names == sorted(names)
    for name in names:
        assert hasattr(mnemo_otel, name), name
    assert {"Importer", "PostgresSink", "Settings", "Sink", "MnemoError"} <= set(names)


def test_public_api__importing_the_library_leaves_the_sdk_out() -> None:
    code = (
        "import sys, mnemo_otel; print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_public_api__the_postgres_sink_satisfies_the_sink_protocol() -> None:
    assert issubclass(mnemo_otel.PostgresSink, mnemo_otel.Sink)
    assert issubclass(mnemo_otel.PostgresSink, mnemo_otel.GroupSink)  # a catch-up's small files together


def test_public_api__a_custom_sink_needs_only_the_exported_vocabulary() -> None:
    for name in ("Entry", "BadLine", "Quarantine", "FileIdentity", "Checkpoint", "Batch", "BatchOutcome"):
        assert name in mnemo_otel.__all__, name
    assert mnemo_otel.Entry.__module__ == "mnemo_otel.model"


_HEAVY = ("asyncpg", "watchfiles", "mnemo_otel.importer", "mnemo_otel.store.postgres", "opentelemetry.sdk")


def _heavy_modules_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith({_HEAVY!r})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [line for line in result.stdout.splitlines() if line.startswith("[")][-1:]


def test_light_commands__the_health_probe_loads_no_driver_and_no_importer() -> None:
    code = (
        "from mnemo_otel.cli import main\n"
        "main(['health'])  # nothing listens: exits 1, having loaded only what the probe needs"
    )
    assert _heavy_modules_after(code) == ["[]"]


def test_light_commands__the_grafana_generator_loads_no_driver_and_no_importer(tmp_path: Path) -> None:
    code = f"from mnemo_otel.cli import main\nmain(['grafana', 'render', '--out', {str(tmp_path)!r}])"
    assert _heavy_modules_after(code) == ["[]"]
    assert (tmp_path / "provisioning" / "alerting" / "rules.yaml").is_file()
