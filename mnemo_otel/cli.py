"""The ``mnemo-otel`` command: argument parsing and wiring, nothing else.

Exit codes: 0 success, 1 unexpected error, 2 bad usage or configuration, 3 database unavailable,
4 unreadable transcript path (``import``: after importing every file it could read), 5 ``verify``
found lines missing from the archive (``restore``: a file that cannot be given back exactly), 6
``restore`` found a different file in the way (never overwritten). Telemetry never changes them: its last exports get a short
grace at exit, delivered or not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, MnemoError, SourceError, StoreUnavailable

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ("main",)

logger = logging.getLogger("mnemo_otel")

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_DB, EXIT_SOURCE, EXIT_MISSING = 0, 1, 2, 3, 4, 5
EXIT_IN_THE_WAY = 6  # restore: a different file (or a symlink) is where a file would go


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["hook"]:
        # Claude Code runs this at every session start, stop and end: before the settings model
        # (pydantic), anyio or anything else heavy is loaded.
        from .announce.hook import hook_main

        return hook_main(arguments[1:])
    from .settings import Settings

    args = _parser().parse_args(arguments)
    try:
        # systemd credentials (LoadCredential=mnemo_database_url:...): a file per setting, so a
        # secret never sits in the unit, the environment of other processes or a command line.
        settings = Settings(_secrets_dir=os.environ.get("CREDENTIALS_DIRECTORY"))
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
    parser = argparse.ArgumentParser(
        prog="mnemo-otel",
        description="Import Claude Code transcripts into PostgreSQL exactly once, observable with OpenTelemetry.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the importer daemon (MNEMO_ROOTS unless PATHs are given)")
    run.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    run.set_defaults(handler=_run)

    one_shot = commands.add_parser("import", help="import what is there now, then exit")
    one_shot.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    one_shot.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    one_shot.set_defaults(handler=_import)

    _add_verify(commands)
    _add_restore(commands)
    _add_witness(commands)

    health = commands.add_parser("health", help="ask the running importer; exit 0 if healthy or degraded")
    health.add_argument(
        "--ready", action="store_true", help="readiness (database, backlog) instead of liveness"
    )
    health.set_defaults(handler=_health)

    _add_grafana(commands)

    # Dispatched by main() before this parser exists (the hook must start fast); listed for --help.
    commands.add_parser(
        "hook",
        help="a Claude Code hook: records the transcript it announces for the importer;"
        " `hook --install [--settings PATH] [--dry-run]` / `--uninstall` edit Claude Code's settings.json",
    )

    alert_log = commands.add_parser(
        "alert-log", help="a webhook that logs Grafana's alert notifications (the stack's default channel)"
    )
    alert_log.set_defaults(handler=_alert_log)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    db_commands.add_parser("migrate", help="apply schema migrations").set_defaults(handler=_migrate)

    hosts = commands.add_parser("hosts", help="the fleet: machines importing into this database")
    host_commands = hosts.add_subparsers(required=True, metavar="ACTION")
    listing = host_commands.add_parser("list", help="every host, its version, when it was last seen")
    listing.add_argument("--json", action="store_true", help="print JSON on stdout")
    listing.set_defaults(handler=_hosts_list)
    retire = host_commands.add_parser(
        "retire", help="take a decommissioned host out of the fleet: its heartbeat alert stops"
    )
    retire.add_argument("host_id", metavar="ID")
    retire.add_argument("--force", action="store_true", help="even if it was seen in the last 5 minutes")
    retire.set_defaults(handler=_hosts_retire)
    return parser


def _add_grafana(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    grafana = commands.add_parser("grafana", help="Grafana provisioning generated from the alert spec")
    grafana.add_argument("action", choices=["render", "check"])
    grafana.add_argument("--out", type=Path, default=None, help="the grafana/ folder (default: ./grafana)")
    grafana.add_argument(
        "--alerting-from-env",
        action="store_true",
        help="render only Grafana's alerting folder into --out, with the contact points the"
        " ALERT_* variables configure (the stack runs this before Grafana starts)",
    )
    grafana.add_argument(
        "--runbook-url",
        default=None,
        help="render: base of every rule's runbook_url, e.g. the runbook on your forge "
        "(default: the rule's panel of the generated runbook dashboard, inside Grafana)",
    )
    grafana.set_defaults(handler=_grafana)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from .daemon import run_daemon
    from .telemetry.setup import configure_telemetry

    telemetry = configure_telemetry(
        log_stream=sys.stdout,
        host_id=settings.host_id,
        shutdown_grace=settings.telemetry.shutdown_grace_seconds,
        database_spans=settings.telemetry.database_spans,
    )
    try:
        roots = _checked_roots(args.paths or settings.roots, must_exist=bool(args.paths))
        anyio.run(run_daemon, settings, roots)
    finally:
        telemetry.shutdown()
    return EXIT_OK


def _import(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from .daemon import import_now
    from .telemetry.setup import configure_telemetry

    telemetry = configure_telemetry(
        log_stream=sys.stderr,  # stdout carries the --json summary
        host_id=settings.host_id,
        shutdown_grace=settings.telemetry.shutdown_grace_seconds,
        quiet=True,  # a run by hand with no collector: one line at the end, not a warning per exporter
        database_spans=settings.telemetry.database_spans,
    )
    try:
        roots = _checked_roots(args.paths, must_exist=True)
        summary = anyio.run(import_now, settings, roots, sys.stderr.isatty() and not args.json)
    finally:
        telemetry.shutdown()
    if args.json:
        sys.stdout.write(json.dumps(summary.as_dict()) + "\n")
    if summary.unreadable:
        return _fail(
            SourceError(f"{summary.unreadable} transcript(s) could not be read; the others were imported"),
            EXIT_SOURCE,
        )
    return EXIT_OK


def _add_verify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser(
        "verify",
        help="check that every line on disk is in the archive (MNEMO_ROOTS and the transcripts Claude "
        "Code's hooks announced, unless PATHs are given)",
    )
    verify.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    verify.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    verify.add_argument("--repair", action="store_true", help="store the missing lines from the source")
    verify.set_defaults(handler=_verify)


def _add_witness(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    witness = commands.add_parser(
        "witness",
        help="receive Claude Code's own events (OTLP/HTTP logs) and check the archive against them;"
        " `witness status`: what it lacks",
    )
    witness.add_argument("action", nargs="?", choices=["serve", "status"], default="serve")
    witness.add_argument("--json", action="store_true", help="status: print JSON on stdout")
    witness.add_argument("--host", default=None, help="status: one host only ('' for events that named none)")
    witness.set_defaults(handler=_witness)


def _witness(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    if args.action == "status":
        from .witness.command import status_command

        report = anyio.run(partial(status_command, settings, host=args.host))
        sys.stdout.write((json.dumps(report.as_dict()) if args.json else report.summary()) + "\n")
        return EXIT_MISSING if report.missing else EXIT_OK
    from .telemetry.setup import configure_telemetry
    from .witness.service import serve_witness

    environ = {"OTEL_SERVICE_NAME": "mnemo-witness", **os.environ}
    telemetry = configure_telemetry(
        environ, host_id=settings.host_id, shutdown_grace=settings.telemetry.shutdown_grace_seconds
    )
    try:
        anyio.run(serve_witness, settings)
    finally:
        telemetry.shutdown()
    return EXIT_OK


def _add_restore(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    restore = commands.add_parser(
        "restore",
        help="write archived transcripts back byte for byte (SESSION_IDs, PATHs or --all); --check: the drill",
    )
    restore.add_argument("selectors", nargs="*", metavar="SESSION_ID|PATH")
    restore.add_argument("--all", action="store_true", help="every file of the host")
    restore.add_argument(
        "--to", type=Path, default=None, help="write under DIR + each original absolute path"
    )
    restore.add_argument("--host", default=None, help="whose files (default: this host, MNEMO_HOST_ID)")
    restore.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    restore.add_argument(
        "--check", action="store_true", help="prove every file can be rebuilt exactly, from the archive alone"
    )
    restore.set_defaults(handler=_restore)


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from .restore.command import check_command, restore_command

    if args.check:
        if args.selectors or args.all or args.to:
            return _fail(ConfigError("restore --check takes no SESSION_ID, PATH, --all or --to"), EXIT_CONFIG)
        checked = anyio.run(partial(check_command, settings, host=args.host))
        sys.stdout.write((json.dumps(checked.as_dict()) if args.json else checked.summary()) + "\n")
        return EXIT_MISSING if checked.inexact else EXIT_OK
    if bool(args.selectors) == bool(args.all):
        return _fail(ConfigError("restore needs SESSION_IDs or PATHs, or --all (not both)"), EXIT_CONFIG)
    if args.to is not None and not args.to.is_dir():
        return _fail(ConfigError(f"--to {args.to}: not a folder"), EXIT_CONFIG)
    selectors = None if args.all else args.selectors
    report = anyio.run(partial(restore_command, settings, selectors, host=args.host, to=args.to))
    sys.stdout.write((json.dumps(report.as_dict()) if args.json else report.summary()) + "\n")
    if report.inexact:
        return EXIT_MISSING
    return EXIT_IN_THE_WAY if report.refused else EXIT_OK


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from .telemetry.setup import configure_telemetry
    from .verify.command import verify_command

    telemetry = configure_telemetry(
        log_stream=sys.stderr,  # stdout carries the report
        host_id=settings.host_id,
        shutdown_grace=settings.telemetry.shutdown_grace_seconds,
        quiet=True,
        database_spans=settings.telemetry.database_spans,
    )
    try:
        roots = _checked_roots(args.paths or settings.roots, must_exist=True)
        report = anyio.run(
            partial(verify_command, settings, roots, repair=args.repair, announced=not args.paths)
        )
    finally:
        telemetry.shutdown()
    sys.stdout.write((json.dumps(report.as_dict()) if args.json else report.summary()) + "\n")
    if report.unreadable:
        return EXIT_SOURCE
    return EXIT_MISSING if report.missing or report.diverged else EXIT_OK


def _health(args: argparse.Namespace, settings: Settings) -> int:
    from .health import probe  # light on purpose: the container healthcheck runs this every few seconds

    ok, body = probe(settings.health, ready=args.ready)
    sys.stdout.write(body.strip() + "\n")
    return EXIT_OK if ok else EXIT_ERROR


def _grafana(args: argparse.Namespace, settings: Settings) -> int:
    from .grafana.render import Options, check, render_all

    if args.alerting_from_env:
        return _render_alerting(args)
    out = args.out or Path("grafana")
    if args.action == "render":
        options = Options() if args.runbook_url is None else Options(runbook_url=args.runbook_url)
        for path in render_all(out, options):
            sys.stdout.write(f"{path}\n")
        return EXIT_OK
    drift = check(out)
    for problem in drift:
        sys.stderr.write(f"drifted: {out / problem}\n")
    return EXIT_ERROR if drift else EXIT_OK


def _render_alerting(args: argparse.Namespace) -> int:
    """Names only on stdout: the variables hold webhook URLs, which are secrets."""
    import os

    from .grafana.contacts import configured_channels
    from .grafana.render import Options, render_alerting

    if args.action != "render" or args.out is None:
        raise ConfigError("--alerting-from-env needs the render action and an explicit --out DIR")
    options = Options() if args.runbook_url is None else Options(runbook_url=args.runbook_url)
    for path in render_alerting(args.out, os.environ, options):
        sys.stdout.write(f"{path}\n")
    names = ", ".join(channel.name for channel in configured_channels(os.environ))
    sys.stdout.write(f"contact points: {names}\n")
    return EXIT_OK


def _alert_log(args: argparse.Namespace, settings: Settings) -> int:
    from .alertlog import serve_alert_log
    from .telemetry.setup import configure_local_logging

    configure_local_logging(logging.INFO, sys.stdout)
    serve_alert_log(settings.health.host, settings.health.port)
    return EXIT_OK


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from .daemon import migrate_only
    from .telemetry.setup import configure_local_logging

    configure_local_logging(logging.INFO, sys.stderr)
    applied = anyio.run(migrate_only, settings)
    logger.info("schema up to date (%d migration(s) applied now)", applied)
    return EXIT_OK


def _hosts_list(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from .daemon import list_hosts

    records = anyio.run(list_hosts, settings)
    if args.json:
        rows = [{k: _jsonable(v) for k, v in asdict(r).items()} for r in records]
        sys.stdout.write(json.dumps(rows) + "\n")
        return EXIT_OK
    sys.stdout.write(f"{'HOST':<32} {'VERSION':<12} {'LAST SEEN':<25} {'FILES':>7}  STATUS\n")
    for r in records:
        status = "member" if r.monitored else "one-shot imports"
        if r.retired_at is not None:
            status = f"retired {r.retired_at:%Y-%m-%d %H:%M}"
        seen = f"{r.last_seen_at:%Y-%m-%d %H:%M:%S %Z}"
        sys.stdout.write(f"{r.host_id:<32} {r.version:<12} {seen:<25} {r.files:>7}  {status}\n")
    return EXIT_OK


def _hosts_retire(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from .daemon import retire_host

    anyio.run(lambda: retire_host(settings, args.host_id, force=args.force))
    sys.stderr.write(f"retired {args.host_id}: its heartbeat alert stops within minutes; its rows stay\n")
    return EXIT_OK


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


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
