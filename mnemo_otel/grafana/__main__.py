"""``python -m mnemo_otel.grafana render|check [--out DIR]``: regenerate or verify ``grafana/``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnemo_otel.grafana.render import check, render_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnemo_otel.grafana")
    parser.add_argument("command", choices=("render", "check"))
    parser.add_argument("--out", type=Path, default=Path("grafana"), help="the grafana/ folder")
    args = parser.parse_args(argv)
    if args.command == "render":
        for path in render_all(args.out):
            sys.stdout.write(f"{path}\n")
        return 0
    drifted = check(args.out)
    for relative in drifted:
        sys.stderr.write(f"drifted: {args.out / relative}\n")
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
