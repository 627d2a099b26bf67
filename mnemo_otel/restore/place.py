"""Putting an archived file back on disk, where its path comes from a database other hosts write to.

The paths are untrusted, so a path is refused unless it is absolute and canonical, and the folders
below the anchor (``/``, or the ``--to`` folder the user chose) are walked one directory descriptor at
a time with ``O_NOFOLLOW``: a symlink anywhere below the anchor is refused, never followed, so a
planted link cannot turn a restore into a write elsewhere. Nothing that exists is ever overwritten: a
file is written to a temporary name, checked against the archive's digest, then hard-linked into place,
which fails rather than replace whatever appeared meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from mnemo_otel.errors import MnemoError

__all__ = ("Outcome", "PathRefused", "Placed", "placement", "write_exact")

_READ_CHUNK = 1 << 20
_NAME_MAX = 255
_TEMP_INFIX = b".mnemo-restore."
_TEMP_RANDOM_HEX = 16
_TEMP_TRIES = 8
_LINK_TRIES = 3
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: should the file become a FIFO after it was inspected, opening it still returns at once.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class PathRefused(MnemoError):
    """An archived path that must not be written: ``str(exc)`` is one line naming it."""

    error_type = "path_refused"

    def __init__(self, path: str | Path, why: str) -> None:
        self.path = str(path)
        self.why = why
        super().__init__(f"refused {_show(path)}: {why}")


class Outcome(Enum):
    RESTORED = "restored"  # written, complete and synced, under a name nobody else held
    UNCHANGED = "unchanged"  # a regular file with exactly these bytes was there: left alone
    DIFFERS = "differs"  # another regular file is there: a restore never overwrites
    REFUSED = "refused"  # the path, a symlink or a non-regular file in the way: nothing written


@dataclass(frozen=True)
class Placed:
    """What became of one file; ``reason`` (one line) says why for DIFFERS and REFUSED."""

    outcome: Outcome
    target: Path
    reason: str = ""


def placement(original: str, to: Path | None) -> Path:
    """Where an archived file goes: its original path, or the same path under ``to``.

    Only canonical absolute paths pass: a path another host wrote with ``..``, ``.``, an empty
    component or a NUL byte is refused rather than normalised, since normalising would guess at what
    a tampered or buggy row meant.
    """
    parts = _canonical_parts(original, original)
    if to is None:
        return Path(original)
    placed = to.joinpath(*parts)
    if not placed.is_relative_to(to):  # cannot happen with canonical parts; kept as the last guard
        raise PathRefused(original, f"would land outside {_show(to)}")
    return placed


def write_exact(
    target: Path,
    chunks: Callable[[], Iterable[bytes]],
    sha256_hex: str,
    size: int,
    *,
    anchor: Path = Path("/"),
) -> Placed:
    """Write ``target`` with exactly the archived bytes, unless something is already in the way.

    ``chunks`` is called only when the file is absent, and consumed once, lazily: a file is never held
    whole in memory. Bytes that do not match ``sha256_hex``/``size`` raise ``ValueError`` and leave
    nothing behind, since an archive bug must never produce a wrong file.
    """
    try:
        parts = _parts_below(target, anchor)
        with contextlib.ExitStack() as stack:
            folder = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            stack.callback(os.close, folder)
            here = anchor
            for name in parts[:-1]:
                here = here / name
                folder = _enter(folder, os.fsencode(name), here, target)
                stack.callback(os.close, folder)
            return _place(folder, os.fsencode(parts[-1]), target, chunks, sha256_hex.lower(), size)
    except PathRefused as exc:
        return Placed(Outcome.REFUSED, target, str(exc))


def _show(path: str | Path) -> str:
    """Quote a path so that an untrusted name holding a newline still yields one line."""
    return repr(str(path))


def _canonical_parts(shown: str | Path, path: str) -> list[str]:
    if not path:
        raise PathRefused(shown, "empty path")
    if "\x00" in path:
        raise PathRefused(shown, "contains a NUL byte")
    if not path.startswith("/"):
        raise PathRefused(shown, "not an absolute path")
    parts = path[1:].split("/")
    if parts == [""]:
        raise PathRefused(shown, "names the root folder, not a file")
    for part in parts:
        if part in ("", ".", ".."):
            raise PathRefused(shown, f"has a {part!r} component (only canonical paths are restored)")
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise PathRefused(shown, "cannot be encoded as a file name") from None
    return parts


def _parts_below(target: Path, anchor: Path) -> list[str]:
    try:
        below = target.relative_to(anchor)
    except ValueError:
        raise PathRefused(target, f"not under {_show(anchor)}") from None
    if not below.parts:
        raise PathRefused(target, f"is {_show(anchor)} itself, not a file under it")
    return _canonical_parts(target, "/" + "/".join(below.parts))


def _describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _open_dir(parent: int, name: bytes, here: Path, target: Path) -> int:
    """Open an existing folder without following a symlink; anything else there is a refusal."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        raise
    except OSError:
        mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            raise  # a real folder that cannot be opened (permissions): an error, not a refusal
        raise PathRefused(target, f"{_show(here)} is {_describe(mode)}, not a folder") from None


def _enter(parent: int, name: bytes, here: Path, target: Path) -> int:
    """The folder ``name`` under ``parent``, created 0700 if missing (another creator is no error)."""
    with contextlib.suppress(FileNotFoundError):
        return _open_dir(parent, name, here, target)
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
    except FileExistsError:
        return _open_dir(parent, name, here, target)
    folder = _open_dir(parent, name, here, target)
    try:
        os.fchmod(folder, 0o700)  # the umask must not decide who can read restored transcripts
        os.fsync(parent)
    except BaseException:
        os.close(folder)
        raise
    return folder


def _place(
    folder: int,
    name: bytes,
    target: Path,
    chunks: Callable[[], Iterable[bytes]],
    sha256_hex: str,
    size: int,
) -> Placed:
    found = _inspect(folder, name, target, sha256_hex, size)
    if found is not None:
        return found
    temp = _write_temp(folder, name, target, chunks, sha256_hex, size)
    try:
        placed = _link(folder, temp, name, target, sha256_hex, size)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=folder)
    os.fsync(folder)
    return placed


def _link(folder: int, temp: bytes, name: bytes, target: Path, sha256_hex: str, size: int) -> Placed:
    """Hard-link the checked temp into place: unlike a rename, a link never replaces what appeared."""
    for _ in range(_LINK_TRIES):
        try:
            os.link(temp, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
        except FileExistsError:
            found = _inspect(folder, name, target, sha256_hex, size)
            if found is not None:
                return found
            continue
        return Placed(Outcome.RESTORED, target)
    return Placed(Outcome.REFUSED, target, f"{_show(target)} keeps appearing and vanishing")


def _inspect(folder: int, name: bytes, target: Path, sha256_hex: str, size: int) -> Placed | None:
    """What is already at ``name``: ``None`` if nothing, else the outcome that leaves it alone."""
    try:
        mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(mode):
        return Placed(Outcome.REFUSED, target, f"{_show(target)} is {_describe(mode)}")
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError:
        mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
        if stat.S_ISREG(mode):
            raise
        return Placed(Outcome.REFUSED, target, f"{_show(target)} is {_describe(mode)}")
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            return Placed(Outcome.REFUSED, target, f"{_show(target)} is {_describe(mode)}")
        digest, length = _hash_fd(fd)
    finally:
        os.close(fd)
    if length != size:
        return Placed(Outcome.DIFFERS, target, f"{_show(target)} holds {length} bytes, the archive {size}")
    if digest != sha256_hex:
        return Placed(Outcome.DIFFERS, target, f"{_show(target)} holds other bytes of the same size")
    return Placed(Outcome.UNCHANGED, target)


def _hash_fd(fd: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    length = 0
    while block := os.read(fd, _READ_CHUNK):
        digest.update(block)
        length += len(block)
    return digest.hexdigest(), length


def _write_temp(
    folder: int,
    name: bytes,
    target: Path,
    chunks: Callable[[], Iterable[bytes]],
    sha256_hex: str,
    size: int,
) -> bytes:
    """A complete, checked, synced 0600 copy under a temporary name beside the target."""
    temp, out = _create_temp(folder, name)
    try:
        try:
            digest, length = _copy(out, chunks(), size, target)
            if length != size or digest != sha256_hex:
                raise ValueError(
                    f"the archive's bytes for {_show(target)} do not match it: {length} bytes with "
                    f"sha256 {digest}, expected {size} bytes with sha256 {sha256_hex}"
                )
            os.fchmod(out, 0o600)
            os.fsync(out)
        finally:
            os.close(out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=folder)
        raise
    return temp


def _create_temp(folder: int, name: bytes) -> tuple[bytes, int]:
    # The stem is cut so that a target name of NAME_MAX bytes still has a temp name that fits.
    stem = name[: _NAME_MAX - 1 - len(_TEMP_INFIX) - _TEMP_RANDOM_HEX]
    for _ in range(_TEMP_TRIES):
        temp = b"." + stem + _TEMP_INFIX + secrets.token_hex(_TEMP_RANDOM_HEX // 2).encode()
        with contextlib.suppress(FileExistsError):
            return temp, os.open(temp, _TEMP_FLAGS, 0o600, dir_fd=folder)
    raise FileExistsError(f"no free temporary name beside {name!r}")


def _copy(out: int, chunks: Iterable[bytes], size: int, target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    length = 0
    stream: Iterator[bytes] = iter(chunks)
    try:
        for chunk in stream:
            length += len(chunk)
            if length > size:
                raise ValueError(f"the archive gave more than {size} bytes for {_show(target)}")
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # a database cursor behind the generator is released now, not at collection
    return digest.hexdigest(), length
