"""The file-system side of restore, on real files: archived bytes land exactly, and nothing in the way
(a file, a symlink, a FIFO, a folder, or a file that appears mid-write) is ever overwritten or followed."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from mnemo_otel.restore.place import Outcome, PathRefused, Placed, placement, write_exact

DATA = b'{"type":"user","message":"hello"}\n{"type":"assistant"}\n'
MIB = 1 << 20


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _once(*parts: bytes) -> Callable[[], Iterator[bytes]]:
    return lambda: iter(parts)


def _never() -> Iterable[bytes]:
    raise AssertionError("chunks() must not be called when something is already in the way")


def _write(target: Path, data: bytes = DATA, *, anchor: Path) -> Placed:
    return write_exact(target, _once(data), _sha(data), len(data), anchor=anchor)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root``: a file's bytes, ``None`` for anything else."""
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        is_file = path.is_file() and not path.is_symlink()
        found[str(path.relative_to(root))] = path.read_bytes() if is_file else None
    return found


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    previous = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(previous)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o277])
def test_write_exact__restores_the_exact_bytes_0600_in_new_0700_folders(
    tmp_path: Path, umask: Callable[[int], int], mask: int
) -> None:
    umask(mask)
    target = tmp_path / "home" / "u" / ".claude" / "projects" / "p" / "s.jsonl"

    placed = _write(target, anchor=tmp_path)

    assert placed == Placed(Outcome.RESTORED, target)
    assert _sha(target.read_bytes()) == _sha(DATA)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    for folder in target.relative_to(tmp_path).parents:
        if folder != Path("."):
            assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o700, folder
    assert os.listdir(target.parent) == ["s.jsonl"]


def test_write_exact__existing_folders_keep_their_mode(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o755)
    target = tmp_path / "shared" / "s.jsonl"

    assert _write(target, anchor=tmp_path).outcome is Outcome.RESTORED
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o755


def test_write_exact__an_equal_file_is_unchanged_and_untouched(tmp_path: Path) -> None:
    target = tmp_path / "s.jsonl"
    target.write_bytes(DATA)
    target.chmod(0o644)
    before = target.stat()

    placed = write_exact(target, _never, _sha(DATA), len(DATA), anchor=tmp_path)

    assert placed == Placed(Outcome.UNCHANGED, target)
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns, after.st_mode) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
        before.st_mode,
    )
    assert os.listdir(tmp_path) == ["s.jsonl"]


@pytest.mark.parametrize(
    ("existing", "why"),
    [(DATA.upper(), "other bytes of the same size"), (DATA + b"{}\n", "holds 58 bytes, the archive 55")],
)
def test_write_exact__a_different_file_differs_and_is_never_overwritten(
    tmp_path: Path, existing: bytes, why: str
) -> None:
    target = tmp_path / "s.jsonl"
    target.write_bytes(existing)
    before = target.stat()

    placed = write_exact(target, _never, _sha(DATA), len(DATA), anchor=tmp_path)

    assert placed.outcome is Outcome.DIFFERS
    assert why in placed.reason and str(target) in placed.reason
    assert target.read_bytes() == existing
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    assert os.listdir(tmp_path) == ["s.jsonl"]


@pytest.mark.parametrize("pointee", [DATA, b"something else\n", None])
def test_write_exact__a_symlink_as_the_file_is_refused_and_never_followed(
    tmp_path: Path, pointee: bytes | None
) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    if pointee is not None:
        elsewhere.write_bytes(pointee)
    (tmp_path / "anchor").mkdir()
    target = tmp_path / "anchor" / "s.jsonl"
    target.symlink_to(elsewhere)

    placed = write_exact(target, _never, _sha(DATA), len(DATA), anchor=tmp_path / "anchor")

    assert placed.outcome is Outcome.REFUSED
    assert "is a symlink" in placed.reason
    assert target.is_symlink()
    assert elsewhere.exists() is (pointee is not None)
    if pointee is not None:
        assert elsewhere.read_bytes() == pointee


@pytest.mark.parametrize("link_to", ["outside", "anchor/real"])
def test_write_exact__a_symlink_as_a_parent_folder_is_refused_and_nothing_written_through_it(
    tmp_path: Path, link_to: str
) -> None:
    anchor = tmp_path / "anchor"
    (tmp_path / link_to).mkdir(parents=True)
    (anchor / "home").mkdir(parents=True)
    (anchor / "home" / "link").symlink_to(tmp_path / link_to)
    target = anchor / "home" / "link" / "p" / "s.jsonl"

    placed = write_exact(target, _never, _sha(DATA), len(DATA), anchor=anchor)

    assert placed.outcome is Outcome.REFUSED
    assert f"{str(anchor / 'home' / 'link')!r} is a symlink, not a folder" in placed.reason
    assert os.listdir(tmp_path / link_to) == []


def test_write_exact__a_regular_file_where_a_folder_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"x")

    placed = write_exact(tmp_path / "p" / "s.jsonl", _never, _sha(DATA), len(DATA), anchor=tmp_path)

    assert placed.outcome is Outcome.REFUSED
    assert "is a regular file, not a folder" in placed.reason
    assert (tmp_path / "p").read_bytes() == b"x"


def test_write_exact__the_anchor_itself_may_be_a_symlink_the_user_chose(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "chosen").symlink_to(tmp_path / "real")

    placed = _write(tmp_path / "chosen" / "p" / "s.jsonl", anchor=tmp_path / "chosen")

    assert placed.outcome is Outcome.RESTORED
    assert (tmp_path / "real" / "p" / "s.jsonl").read_bytes() == DATA


@pytest.mark.timeout(10)
def test_write_exact__a_fifo_in_the_way_is_refused_without_blocking(tmp_path: Path) -> None:
    target = tmp_path / "s.jsonl"
    os.mkfifo(target)

    placed = write_exact(target, _never, _sha(DATA), len(DATA), anchor=tmp_path)

    assert placed.outcome is Outcome.REFUSED
    assert "is a FIFO" in placed.reason
    assert stat.S_ISFIFO(target.lstat().st_mode)


def test_write_exact__a_directory_in_the_way_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "s.jsonl"
    target.mkdir()

    placed = write_exact(target, _never, _sha(DATA), len(DATA), anchor=tmp_path)

    assert placed.outcome is Outcome.REFUSED
    assert "is a directory" in placed.reason
    assert os.listdir(target) == []


@pytest.mark.parametrize(
    ("chunks", "size"),
    [
        ((DATA[:10], b"X", DATA[11:]), len(DATA)),  # same size, other bytes
        ((DATA[:-1],), len(DATA)),  # too short
        ((DATA, b"more"), len(DATA)),  # too long: stopped before writing the excess
    ],
)
def test_write_exact__bytes_that_do_not_match_the_digest_raise_and_leave_nothing(
    tmp_path: Path, chunks: tuple[bytes, ...], size: int
) -> None:
    target = tmp_path / "p" / "s.jsonl"

    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "p" / "s.jsonl"))):
        write_exact(target, _once(*chunks), _sha(DATA), size, anchor=tmp_path)

    assert _tree(tmp_path) == {"p": None}


def test_write_exact__a_failing_archive_stream_leaves_no_temp_file(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield DATA[:5]
        raise ConnectionResetError("the database went away")

    with pytest.raises(ConnectionResetError):
        write_exact(tmp_path / "s.jsonl", chunks, _sha(DATA), len(DATA), anchor=tmp_path)

    assert os.listdir(tmp_path) == []


def test_write_exact__chunks_are_streamed_to_disk_as_they_come(tmp_path: Path) -> None:
    target = tmp_path / "big.jsonl"
    count = 50
    expected = hashlib.sha256()
    for i in range(count):
        expected.update(bytes([i]) * MIB)
    seen_on_disk: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(count):
            (temp,) = (p for p in tmp_path.iterdir() if p.name.startswith(".big.jsonl.mnemo-restore."))
            seen_on_disk.append(temp.stat().st_size)
            yield bytes([i]) * MIB

    placed = write_exact(target, chunks, expected.hexdigest(), count * MIB, anchor=tmp_path)

    assert placed.outcome is Outcome.RESTORED
    assert seen_on_disk == [i * MIB for i in range(count)]  # each chunk written before the next is asked
    digest = hashlib.sha256()
    with target.open("rb") as f:
        while block := f.read(MIB):
            digest.update(block)
    assert digest.hexdigest() == expected.hexdigest()
    assert os.listdir(tmp_path) == ["big.jsonl"]


def test_write_exact__a_name_of_name_max_bytes_still_fits_its_temp_name(tmp_path: Path) -> None:
    target = tmp_path / ("é" * 127 + "x")  # 255 bytes in UTF-8

    assert _write(target, anchor=tmp_path).outcome is Outcome.RESTORED
    assert target.read_bytes() == DATA
    assert os.listdir(tmp_path) == [target.name]


@pytest.mark.parametrize(
    ("appears", "outcome"),
    [(DATA, Outcome.UNCHANGED), (b"written by someone else\n", Outcome.DIFFERS), (None, Outcome.REFUSED)],
)
def test_write_exact__a_file_appearing_during_the_write_is_never_overwritten(
    tmp_path: Path, appears: bytes | None, outcome: Outcome
) -> None:
    target = tmp_path / "p" / "s.jsonl"
    elsewhere = tmp_path / "elsewhere"

    def chunks() -> Iterator[bytes]:
        yield DATA[:5]
        if appears is None:
            target.symlink_to(elsewhere)
        else:
            target.write_bytes(appears)
        yield DATA[5:]

    placed = write_exact(target, chunks, _sha(DATA), len(DATA), anchor=tmp_path)

    assert placed.outcome is outcome
    assert _tree(tmp_path) == {"p": None, "p/s.jsonl": appears}
    if appears is None:
        assert target.is_symlink() and not elsewhere.exists()


def test_write_exact__concurrent_restorers_share_new_folders_and_one_wins_each_file(tmp_path: Path) -> None:
    workers = 6
    rounds = 10
    barrier = threading.Barrier(workers)
    results: list[list[Placed]] = [[] for _ in range(workers)]

    def restore(worker: int) -> None:
        for r in range(rounds):
            barrier.wait()
            folder = tmp_path / f"r{r}" / "a" / "b" / "c"
            results[worker].append(_write(folder / "same.jsonl", anchor=tmp_path))
            results[worker].append(_write(folder / f"own{worker}.jsonl", anchor=tmp_path))

    threads = [threading.Thread(target=restore, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for r in range(rounds):
        same = [results[w][2 * r].outcome for w in range(workers)]
        assert sorted(o.value for o in same) == ["restored"] + ["unchanged"] * (workers - 1)
        assert {results[w][2 * r + 1].outcome for w in range(workers)} == {Outcome.RESTORED}
        folder = tmp_path / f"r{r}" / "a" / "b" / "c"
        assert sorted(os.listdir(folder)) == sorted(
            ["same.jsonl", *(f"own{w}.jsonl" for w in range(workers))]
        )


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("/elsewhere/s.jsonl", "not under"),
        ("anchor", "itself"),
        ("anchor/p/../../s.jsonl", "'..' component"),
        ("anchor/p/s\x00.jsonl", "NUL"),
    ],
)
def test_write_exact__refuses_a_target_not_strictly_under_the_anchor(
    tmp_path: Path, target: str, why: str
) -> None:
    anchor = tmp_path / "anchor"
    anchor.mkdir()
    path = Path(target) if target.startswith("/") else tmp_path / target

    placed = write_exact(path, _never, _sha(DATA), len(DATA), anchor=anchor)

    assert placed.outcome is Outcome.REFUSED
    assert why in placed.reason
    assert _tree(tmp_path) == {"anchor": None}


def test_placement__is_the_original_path_without_to() -> None:
    assert placement("/home/u/.claude/projects/p/s.jsonl", None) == Path("/home/u/.claude/projects/p/s.jsonl")


def test_placement__with_to_maps_the_path_under_that_folder(tmp_path: Path) -> None:
    assert placement("/a/b.jsonl", tmp_path) == tmp_path / "a" / "b.jsonl"
    assert placement("/a/b.jsonl", Path("restored")) == Path("restored/a/b.jsonl")


@pytest.mark.parametrize(
    ("original", "why"),
    [
        ("", "empty path"),
        ("a/b.jsonl", "not an absolute path"),
        ("~/b.jsonl", "not an absolute path"),
        ("/a/../b.jsonl", "'..' component"),
        ("/..", "'..' component"),
        ("/a/./b.jsonl", "'.' component"),
        ("//a/b.jsonl", "'' component"),
        ("/a//b.jsonl", "'' component"),
        ("/a/b/", "'' component"),
        ("/", "root folder"),
        ("/a/b\x00.jsonl", "NUL byte"),
        ("/a/\udc80\ud800.jsonl", "cannot be encoded"),
    ],
)
@pytest.mark.parametrize("to", [None, Path("/restore/here")])
def test_placement__refuses_what_is_not_a_canonical_absolute_path(
    original: str, why: str, to: Path | None
) -> None:
    with pytest.raises(PathRefused) as refused:
        placement(original, to)

    assert why in str(refused.value)
    assert repr(original) in str(refused.value)


def test_placement__refuses_escaping_the_to_folder(tmp_path: Path) -> None:
    for original in ("/../etc/passwd", "/a/../../etc/passwd", "/a/b/../../../x"):
        with pytest.raises(PathRefused, match=re.escape("'..' component")):
            placement(original, tmp_path)


def test_path_refused__is_one_line_even_for_a_name_holding_a_newline() -> None:
    with pytest.raises(PathRefused) as refused:
        placement("/a/..\n/../b", None)

    assert "\n" not in str(refused.value)
    assert refused.value.path == "/a/..\n/../b"
