"""What a verification found, in the shape ``mnemo-otel verify --json`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field

from .content import Diverged
from .lookup import Findings, Missing

__all__ = ("MISSING_LINES_SHOWN", "Tally", "VerifyReport")

MISSING_LINES_SHOWN = 100


@dataclass(slots=True)
class Tally:
    """Running totals while segments come back, in whatever order the workers finish them."""

    files: set[str] = field(default_factory=set)
    lines: int = 0
    stored: int = 0
    quarantined: int = 0
    pending_bytes: int = 0
    missing: list[Missing] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)

    def add(self, path: str, findings: Findings, pending: int) -> None:
        self.files.add(path)
        self.lines += findings.lines
        self.stored += findings.stored
        self.quarantined += findings.quarantined
        self.pending_bytes += pending
        self.missing.extend(findings.missing)


@dataclass(slots=True)
class VerifyReport:
    """The outcome; ``missing`` counts distinct keys (a bad line's key is its file and offset)."""

    files: int
    bytes: int
    lines: int
    stored: int
    quarantined: int
    pending_bytes: int
    missing: int
    missing_lines: list[Missing]
    unreadable: dict[str, str]
    duration_seconds: float
    diverged: list[Diverged] = field(default_factory=list)
    """Archived lines whose bytes on disk are no longer the ones archived (count as missing)."""
    repaired: int | None = None
    trace_id: str | None = None
    source_lost: dict[str, int] = field(default_factory=dict)
    all_missing: list[Missing] = field(default_factory=list, repr=False)  # for the repair; not printed

    @classmethod
    def of(cls, tally: Tally, *, size: int, seconds: float) -> VerifyReport:
        keys = {m.key for m in tally.missing if not m.bad}
        bad = {(m.path, m.offset) for m in tally.missing if m.bad}
        shown = sorted(tally.missing, key=lambda m: (m.path, m.offset))[:MISSING_LINES_SHOWN]
        return cls(
            files=len(tally.files),
            bytes=size,
            lines=tally.lines,
            stored=tally.stored,
            quarantined=tally.quarantined,
            pending_bytes=tally.pending_bytes,
            missing=len(keys) + len(bad),
            missing_lines=shown,
            unreadable=dict(sorted(tally.unreadable.items())),
            duration_seconds=round(seconds, 3),
            all_missing=tally.missing,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "lines": self.lines,
            "stored": self.stored,
            "quarantined": self.quarantined,
            "pending_bytes": self.pending_bytes,
            "missing": self.missing,
            "missing_lines": [{"path": m.path, "offset": m.offset, "key": m.key} for m in self.missing_lines],
            "diverged": len(self.diverged),
            "diverged_lines": [
                {"path": d.path, "offset": d.offset} for d in self.diverged[:MISSING_LINES_SHOWN]
            ],
            "unreadable": self.unreadable,
            "duration_seconds": self.duration_seconds,
            "mb_per_second": round(self.bytes / 1e6 / self.duration_seconds, 1)
            if self.duration_seconds
            else None,
            "repaired": self.repaired,
            "trace_id": self.trace_id,
            "source_lost": self.source_lost,
        }

    def summary(self) -> str:
        """The human-readable report (stderr/stdout without ``--json``)."""
        lines = [
            (
                f"files {self.files}, lines {self.lines}: stored {self.stored}, "
                f"quarantined {self.quarantined}, missing {self.missing} "
                f"({self.pending_bytes} bytes pending, {self.duration_seconds:.1f}s)"
            )
        ]
        lines += [f"  missing: {m.path} @ {m.offset}  {m.key}" for m in self.missing_lines]
        if self.diverged:
            lines.append(f"diverged: {len(self.diverged)} archived line(s) differ from the disk's bytes")
            lines += [f"  diverged: {d.path} @ {d.offset}" for d in self.diverged[:MISSING_LINES_SHOWN]]
        lines += [f"  unreadable: {path}: {why}" for path, why in self.unreadable.items()]
        if self.repaired is not None:
            lines.append(f"repaired {self.repaired} line(s) (trace {self.trace_id or 'none'})")
        if self.source_lost.get("bytes"):
            lines.append(
                f"source lost: {self.source_lost['bytes']} bytes in {self.source_lost['events']} "
                "event(s) before they could be imported (see mnemo.source_losses)"
            )
        return "\n".join(lines)
