"""Host identity: stable for a machine, distinct for two machines of the same name, validated."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mnemo_otel.host import default_host_id
from mnemo_otel.settings import Settings


def test_default_host_id__is_stable_and_tells_machines_of_the_same_name_apart(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("0123456789abcdef0123456789abcdef\n")
    second.write_text("fedcba9876543210fedcba9876543210\n")
    one = default_host_id((first,))
    assert one == default_host_id((first,))
    assert one != default_host_id((second,))
    assert one.startswith(socket.gethostname() + "-")
    assert "0123456789abcdef" not in one  # the machine id itself stays private


def test_default_host_id__falls_back_to_the_hostname_without_a_machine_id(tmp_path: Path) -> None:
    assert default_host_id((tmp_path / "absent",)) == socket.gethostname()


def test_settings__take_mnemo_host_id_and_refuse_a_malformed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNEMO_HOST_ID", "laptop-1")
    assert Settings().host_id == "laptop-1"
    monkeypatch.setenv("MNEMO_HOST_ID", "two words")
    with pytest.raises(ValueError, match="host id"):
        Settings()
