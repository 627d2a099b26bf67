from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mnemo_otel.grafana import GRAFANA_VERSION, check, render_all
from mnemo_otel.grafana.render import GENERATED
from mnemo_otel.telemetry import names
from tests.grafana._paths import GRAFANA_DIR, REPO


class TestRender:
    def test_committed_files__match_the_spec(self) -> None:
        assert check(GRAFANA_DIR) == [], "run `mnemo-otel grafana render` and commit"

    def test_render_all__writes_every_generated_file_deterministically(self, tmp_path: Path) -> None:
        first = {p.relative_to(tmp_path): p.read_bytes() for p in render_all(tmp_path)}
        second = {p.relative_to(tmp_path): p.read_bytes() for p in render_all(tmp_path)}
        assert first == second
        assert sorted(str(p) for p in first) == sorted(GENERATED)

    def test_check__reports_an_edited_file(self, tmp_path: Path) -> None:
        render_all(tmp_path)
        edited = tmp_path / "provisioning/alerting/rules.yaml"
        edited.write_text(edited.read_text() + "# hand edit\n")
        (tmp_path / "dashboards/mnemo-importer.json").unlink()
        assert check(tmp_path) == ["provisioning/alerting/rules.yaml", "dashboards/mnemo-importer.json"]

    def test_cli__check_exits_nonzero_on_drift(self, tmp_path: Path) -> None:
        def run(command: str) -> int:
            args = [sys.executable, "-m", "mnemo_otel", "grafana", command, "--out", str(tmp_path)]
            return subprocess.run(args, cwd=REPO, capture_output=True, check=False).returncode

        assert run("check") == 1
        assert run("render") == 0
        assert run("check") == 0

    def test_package__imports_no_opentelemetry_sdk(self) -> None:
        code = "import sys, mnemo_otel.grafana; print(any(m.startswith('opentelemetry.sdk') for m in sys.modules))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "False"

    def test_readme__names_the_pinned_grafana_image(self) -> None:
        assert f"grafana/grafana:{GRAFANA_VERSION}" in (GRAFANA_DIR / "README.md").read_text()

    def test_sources__take_contract_metric_names_from_names_py(self) -> None:
        sources = {p.name: p.read_text() for p in (REPO / "mnemo_otel" / "grafana").glob("*.py")}
        for metric in (*names.METRICS, *names.WITNESS_METRICS):
            for name, text in sources.items():
                assert metric.prometheus not in text, (name, metric.prometheus)
