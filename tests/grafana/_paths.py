"""Where the Grafana tests find the repository, the generated files and the promtool scenarios."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GRAFANA_DIR = REPO / "grafana"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
