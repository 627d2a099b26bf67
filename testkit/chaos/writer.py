"""A transcript writer for chaos scenarios: appends like Claude Code does, records what it wrote."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from io import FileIO
from pathlib import Path

from ..manifest import Line, Manifest
from ..shapes import HOSTILE, hostile
from ..synthetic import plain_session

__all__ = ("Writer",)


class Writer:
    """Appends whole lines, one session per stream, but sometimes in two ``write()`` calls with a pause
    between (the importer sees half lines); a few lines are hostile. Every line is recorded in the
    manifest once it is whole on disk.

    Runs ``seconds`` or until ``stop`` is set; ``exclude`` keeps it off files a scenario mutates itself,
    and it never appends to a file ending in a partial line (that would make a line nobody declared).
    """

    def __init__(
        self,
        root: Path,
        rng: random.Random,
        manifest: Manifest,
        *,
        seconds: float,
        stop: threading.Event | None = None,
        exclude: Collection[Path] = (),
    ) -> None:
        self.rng = rng
        self.manifest = manifest
        self.seconds = seconds
        self.stop = stop or threading.Event()
        self.lines = self.split = self.hostile = 0
        existing = [p for p in sorted(root.rglob("*.jsonl")) if p not in exclude and _complete(p)]
        project = existing[0].parent
        new = [project / f"{uuid.UUID(int=rng.getrandbits(128))}.jsonl" for _ in range(2)]
        subagent = project / "appended-session" / "subagents" / "agent-appended.jsonl"
        subagent.parent.mkdir(parents=True)
        self.targets = [*rng.sample(existing, 2), *new, subagent]

    def run(self) -> None:
        streams = {path: self._session() for path in self.targets}
        files = {path: FileIO(path, "ab") for path in self.targets}  # unbuffered: one write() each
        try:
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline and not self.stop.is_set():
                path = self.rng.choice(self.targets)
                if self.rng.random() < 0.03:
                    item = hostile(*self.rng.choice(HOSTILE))
                    self.hostile += 1
                else:
                    next_item = next(streams[path], None)
                    if next_item is None:
                        streams[path] = self._session()
                        continue
                    item = next_item
                self._write(files[path], item)
                self.manifest.record(path, [item])
                time.sleep(self.rng.uniform(0, 0.01))
        finally:
            for f in files.values():
                f.close()

    def _write(self, f: FileIO, item: Line) -> None:
        data = item.data
        self.lines += 1
        if self.rng.random() < 0.3:
            cut = self.rng.randrange(1, len(data))
            f.write(data[:cut])
            time.sleep(self.rng.uniform(0, 0.03))
            f.write(data[cut:])
            self.split += 1
        else:
            f.write(data)

    def _session(self) -> Iterator[Line]:
        session_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        return plain_session(session_id, turns=self.rng.randint(1, 8), rng=self.rng)


def _complete(path: Path) -> bool:
    with path.open("rb") as f:
        if f.seek(0, 2) == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) == b"\n"
