"""Atomic file writes and reversible removal.

Every file in the library appears whole or not at all: writers produce a temporary file
next to the target (same directory, so the final rename is atomic on one filesystem) and
``os.replace`` it into place only once it is complete and flushed. A failed or killed
writer leaves at most a ``.part`` file that the next attempt cleans up.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..domain.errors import DiskFull, TrackError

PART_MARK = ".part-"
#: Where duplicates are moved aside, ``<library>/duplicates/<group>/<their old relative path>``.
DUPLICATES_DIR = "duplicates"


@contextlib.contextmanager
def atomic_target(final: Path, owner: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it replaces ``final``.

    The temporary name keeps the extension so tools that infer formats from it work, and
    carries ``owner`` (a track key) so that track's next attempt can find and remove what
    a killed writer left (:func:`clean_partials`) without touching another track's
    writes under the same name. On any exception the temporary file is removed and
    ``final`` is left untouched.
    """
    final = Path(final)
    with disk_errors(final):
        final.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{owner}-" if owner else ""
    stem = final.stem.encode()[:80].decode(errors="ignore")  # bytes: a long CJK title must still fit a name
    tmp = final.with_name(f".{stem}{PART_MARK}{tag}{uuid.uuid4().hex[:8]}{final.suffix}")
    try:
        yield tmp
        with disk_errors(final):
            _fsync(tmp)
            os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def disk_errors(where: Path) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT/EROFS/EACCES into messages a user can act on."""
    try:
        yield
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise DiskFull(
                f"The disk holding {where.parent} is full.",
                hint="Free some space there (or point MUSIC_LIBRARY elsewhere) and retry; nothing partial was kept.",
            ) from err
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise TrackError(
                f"Cannot write to {where.parent}: {err.strerror}.",
                hint="Check the folder's permissions or that the volume is mounted read-write.",
            ) from err
        raise


def copy_atomic(src: Path, dest: Path, owner: str = "") -> Path:
    """Copy ``src`` to ``dest`` atomically (used for imports and the WAV backup volume)."""
    with atomic_target(dest, owner) as tmp, disk_errors(dest):
        shutil.copyfile(src, tmp)
    return dest


def clean_partials(folder: Path, stem_prefix: str = "", owner: str = "") -> int:
    """Remove ``.part`` leftovers of killed writers in ``folder`` (those of ``owner``'s
    writes, or of files whose name starts with ``stem_prefix``); returns how many."""
    removed = 0
    if not folder.is_dir():
        return 0
    # The owner's tag ends the name (then 8 random hex digits and the extension): "a-b" is
    # never taken for the owner "a".
    mine = re.compile(re.escape(f"{PART_MARK}{owner}-") + r"[0-9a-f]{8}(\.[^.]*)?$") if owner else None
    for path in folder.iterdir():
        if PART_MARK not in path.name or not path.name.startswith(f".{stem_prefix}"):
            continue
        if mine is not None and not mine.search(path.name):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``flock`` on the directory itself: no lock file
    to leave behind) while one writer decides names and writes files other writers of the
    same folder would otherwise pick too. Not re-entrant."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:  # a network share without flock on folders: go on unlocked, as before
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EBADF, errno.EINVAL):
                raise
        yield
    finally:
        os.close(fd)  # releases the lock


def process_owner() -> str:
    """An ``owner`` for files many runs write in turn (the library index): this process on
    this machine (a library shared by several machines must not judge another's processes)."""
    return f"pid{os.getpid()}@{_host()}"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def clean_dead_writers(folder: Path, stem_prefix: str) -> int:
    """Remove ``.part`` leftovers of :func:`process_owner` writers on this machine that are
    no longer alive (killed mid-write); a writer still at work keeps its file."""
    removed = 0
    pattern = re.compile(re.escape(PART_MARK) + r"pid(\d+)@" + re.escape(_host()) + "-")
    for path in folder.glob(f".{stem_prefix}*{PART_MARK}pid*"):
        match = pattern.search(path.name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def move_to_trash(path: Path, library_root: Path) -> Path | None:
    """Move a file the pipeline no longer needs into ``<library>/_trash/<date>/``, keeping
    its relative path, instead of deleting it: users may have edited it by hand."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        relative = path.resolve().relative_to(Path(library_root).resolve())
    except ValueError:
        relative = Path(path.name)
    target = Path(library_root) / "_trash" / time.strftime("%Y-%m-%d") / relative
    if target.exists():
        target = target.with_name(f"{target.stem} ({uuid.uuid4().hex[:6]}){target.suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(target))
    return target
