"""What counts as lost: complete lines seen on disk past the checkpoint, gone before their commit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mnemo_otel.health import evaluate
from mnemo_otel.importer.file_import import FileProgress
from mnemo_otel.importer.loss import complete_end, observe, rereading, vanished
from mnemo_otel.model import SourceLoss
from mnemo_otel.retention import cleanup_period_days, settings_path
from mnemo_otel.settings import HealthSettings
from mnemo_otel.state import LoopState
from mnemo_otel.verify.loss_journal import LossJournal, journal_path

LINE = b'{"type":"user","uuid":"x"}\n'


def _replace(path: Path, content: bytes) -> None:
    """A new file, a new inode, under the same name."""
    staged = path.with_name("new.jsonl")
    staged.write_bytes(content)
    os.replace(staged, path)


def _observe(path: Path, progress: FileProgress) -> list[SourceLoss]:
    losses: list[SourceLoss] = []
    observe(path, progress, path.stat(), losses.append)
    return losses


def test_observe__remembers_where_complete_lines_end_never_a_pending_tail(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(LINE * 3 + b'{"partial"')
    progress = FileProgress()
    assert _observe(path, progress) == []
    assert (progress.seen_inode, progress.seen_end) == (path.stat().st_ino, len(LINE) * 3)
    with path.open("ab") as f:
        f.write(b"}\n" + LINE)
    assert _observe(path, progress) == []
    assert progress.seen_end == path.stat().st_size


def test_observe__a_replaced_file_loses_what_was_seen_past_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(LINE * 4)
    progress = FileProgress(committed=len(LINE))
    _observe(path, progress)
    _replace(path, LINE)
    (loss,) = _observe(path, progress)
    assert (loss.reason, loss.seen_end, loss.committed) == ("replaced", len(LINE) * 4, len(LINE))
    assert progress.seen_end == len(LINE)  # now what the new file holds


def test_observe__a_replacement_that_still_holds_the_lines_seen_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(LINE * 4)
    progress = FileProgress(committed=len(LINE))
    _observe(path, progress)
    _replace(path, LINE * 4 + b'{"type":"user","uuid":"y"}\n')  # an atomic rewrite, grown
    assert _observe(path, progress) == []
    assert progress.seen_end == path.stat().st_size
    _replace(path, LINE * 3 + LINE.replace(b"x", b"z") + LINE)  # as long, but not the same
    (loss,) = _observe(path, progress)
    assert (loss.reason, loss.seen_end, loss.committed) == ("replaced", len(LINE) * 5, len(LINE))


def test_observe__a_cut_loses_only_what_was_cut_and_never_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(LINE * 4)
    progress = FileProgress(committed=len(LINE))
    _observe(path, progress)
    with path.open("r+b") as f:
        f.truncate(len(LINE) * 3)
    (loss,) = _observe(path, progress)
    assert loss.reason == "truncated" and loss.seen_end - (loss.committed or 0) == len(LINE)
    with path.open("r+b") as f:  # cut below the checkpoint: everything seen past it is gone
        f.truncate(0)
    (loss,) = _observe(path, progress)
    assert loss.seen_end - (loss.committed or 0) == len(LINE) * 2


def test_rereading__measures_from_the_old_checkpoint_once_before_the_re_import_moves_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(LINE * 5)
    for change in ("cut", "replaced"):
        progress = FileProgress(committed=len(LINE))  # stale: the database holds 2 lines
        _observe(path, progress)
        if change == "cut":  # below the checkpoint: the importer reads it again from 0
            with path.open("r+b") as f:
                f.truncate(0)
        else:
            _replace(path, LINE * 3)
        losses: list[SourceLoss] = []
        rereading(path, progress, len(LINE) * 2, losses.append)
        assert [(x.seen_end, x.committed) for x in losses] == [(len(LINE) * 5, len(LINE) * 2)]
        progress.committed = path.stat().st_size  # the re-import from 0 committed what is there now
        assert _observe(path, progress) == []  # reported once, not measured again against the new file
        path.write_bytes(LINE * 5)


def test_observe__nothing_lost_when_everything_seen_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(LINE * 2)
    progress = FileProgress(committed=len(LINE) * 2)
    _observe(path, progress)
    path.write_bytes(LINE)  # rewritten in place: cut below a fully committed end
    assert _observe(path, progress) == []
    losses: list[SourceLoss] = []
    progress.committed = progress.seen_end
    vanished(path, progress, losses.append)
    assert losses == []


def test_vanished__reports_the_uncommitted_part_or_asks_the_database_when_unknown(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(LINE * 3)
    for committed in (len(LINE), None):
        progress = FileProgress(committed=committed)
        _observe(path, progress)
        losses: list[SourceLoss] = []
        vanished(path, progress, losses.append)
        assert [(x.reason, x.seen_end, x.committed) for x in losses] == [
            ("deleted", len(LINE) * 3, committed)
        ]


def test_complete_end__reads_back_across_probe_sized_chunks(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(LINE + b"x" * 200_000)
    assert complete_end(path, 0, path.stat().st_size) == len(LINE)
    assert complete_end(path, len(LINE), path.stat().st_size) == len(LINE)


def test_retention__cleanup_period_days_from_claude_settings(tmp_path: Path) -> None:
    path = settings_path({"CLAUDE_CONFIG_DIR": str(tmp_path)})
    assert path == tmp_path / "settings.json"
    assert cleanup_period_days(path) == 30  # absent: Claude Code's default
    for document, days in (({"cleanupPeriodDays": 3}, 3), ({"cleanupPeriodDays": True}, 30), ([], 30)):
        path.write_text(json.dumps(document))
        assert cleanup_period_days(path) == days
    path.write_text("{not json")
    assert cleanup_period_days(path) == 30


def test_health__warns_about_losses_mismatches_and_a_short_retention() -> None:
    state = LoopState()
    assert evaluate(state, HealthSettings(), ready=False).status == "healthy"
    state.retention_days = 5
    report = evaluate(state, HealthSettings(), ready=False)
    assert report.status == "degraded" and report.http_status == 200
    assert any("after 5 day(s)" in r for r in report.reasons)
    state.retention_days = 7
    state.source_lost(381)
    state.scrubbed(at=1.0, missing=2, repaired=2)
    report = evaluate(state, HealthSettings(), ready=True)
    assert report.source_lost_bytes == 381 and report.verify_missing == 2
    assert len(report.reasons) == 3  # lost bytes, the mismatch, and no database yet


def test_loss_journal__keeps_events_across_instances_and_skips_a_line_cut_by_a_crash(tmp_path: Path) -> None:
    path = journal_path(tmp_path / "data", "postgresql://mnemo@db/mnemo")
    first, second = (SourceLoss(f"/t/{n}.jsonl", "deleted", 100, 40, 1.5) for n in range(2))
    LossJournal(path).append(first)
    LossJournal(path).append(second)
    with path.open("ab") as f:
        f.write(b'{"path":"/t/cut.jsonl","rea')
    assert LossJournal(path).read() == [first, second]
    LossJournal(path).rewrite([second])
    assert LossJournal(path).read() == [second]
    LossJournal(path).rewrite([])
    assert not path.exists()


def test_loss_journal__an_unwritable_journal_is_reported_once_and_loses_nothing_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    journal = LossJournal(journal_path(blocker, "embedded"))
    for n in range(3):
        journal.append(SourceLoss(f"/t/{n}.jsonl", "deleted", 100, 40, 1.5))
    assert journal.read() == []
    assert caplog.text.count("loss journal unusable") == 1


def test_journal_path__one_journal_per_archive() -> None:
    root = Path("/var/lib/mnemo")
    assert journal_path(root, "postgresql://a@db/x") == journal_path(root, "postgresql://a@db/x")
    assert journal_path(root, "postgresql://a@db/x") != journal_path(root, "postgresql://a@db/y")
