"""The public surface: one sorted ``__all__``, every name importable, and no OpenTelemetry SDK pulled
in by importing the library (an embedding application keeps its own OTel setup)."""

from __future__ import annotations

import subprocess
import sys

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
