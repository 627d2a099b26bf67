"""``python -m benchmarks.claude_formats``: the line types the pinned Claude Code writes, and how the
importer classifies each; prints the report and writes it to docs/claude-code-formats.md.

``MNEMO_CLAUDE_CODE_VERSION`` surveys another client version (installed and cached on first use).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from testkit.claude_api import running_fake_api
from testkit.claude_code import ClaudeHome, claude_version
from testkit.claude_formats import REPORT, render_report, run_everyday_scenarios, survey


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.claude_formats", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPORT, help=f"where to write the report ({REPORT.name})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mnemo-formats-") as scratch, running_fake_api() as api:
        home = ClaudeHome(Path(scratch), api.url)
        run_everyday_scenarios(api, home)
        report = render_report(survey(home.projects), claude_version())
    args.out.write_text(report)
    print(report)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
