"""The test Prometheus survives a port taken between choosing it and binding it (servers start in
parallel in this suite): it moves to another port instead of failing the test that needed it."""

from __future__ import annotations

import socket
from pathlib import Path

from testkit.prometheus import Prometheus


def test_a_taken_port_moves_prometheus_to_another(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        prom = Prometheus(tmp_path, load_rules=False)
        prom.port = taken
        try:
            prom.start()
            assert prom.port != taken
            assert prom.api("/api/v1/query", {"query": "1"})["resultType"] == "scalar"
        finally:
            prom.stop()
