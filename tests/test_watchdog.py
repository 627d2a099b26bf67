from __future__ import annotations

import socket
import time
from pathlib import Path

from mnemo_otel.state import LoopState
from mnemo_otel.watchdog import Watchdog, sd_notify


def test_watchdog__fires_once_the_loop_is_silent_past_the_timeout() -> None:
    now = [1000.0]
    state = LoopState()
    state.heartbeat_monotonic = 1000.0
    stalls: list[float] = []
    notes: list[str] = []

    def note(message: str) -> bool:
        notes.append(message)
        return True

    dog = Watchdog(
        state,
        30,
        clock=lambda: now[0],
        on_stall=lambda: stalls.append(now[0]),
        notify=note,
    )
    now[0] = 1029.0
    assert dog.check() and notes == ["WATCHDOG=1"]
    now[0] = 1031.0
    assert not dog.check()
    assert stalls == [1031.0]


def test_watchdog__thread_runs_the_stall_action_for_a_real_silent_loop() -> None:
    state = LoopState()
    fired: list[bool] = []
    dog = Watchdog(state, 0.3, interval=0.05, on_stall=lambda: fired.append(True), notify=lambda m: False)
    dog.start()
    deadline = time.monotonic() + 10
    while not fired and time.monotonic() < deadline:
        time.sleep(0.05)
    dog.stop()
    assert fired == [True]


def test_sd_notify__sends_datagrams_to_the_notify_socket(tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        state = LoopState()
        dog = Watchdog(state, 60, interval=0.05, notify=lambda m: sd_notify(m, {"NOTIFY_SOCKET": address}))
        dog.start()
        server.settimeout(5)
        received = {server.recv(64).decode() for _ in range(2)}
        dog.stop()
        assert {"READY=1", "WATCHDOG=1"} <= received | {server.recv(64).decode()}
    assert sd_notify("READY=1", {}) is False
