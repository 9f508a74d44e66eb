"""Files and name reservations: one row per output file of a track (path, size, checksum,
codec), and the names runs have reserved before writing, so two runs writing two different
songs with the same name at the same moment get two names."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

from ..rows import TrackFile, now
from .base import Repository
from .tracks import track_lock


def fold(path: str | None) -> str:
    """A path as case-insensitive volumes (exFAT, APFS, HFS+) compare names: NFC, case-folded
    (SQLite's NOCASE folds ASCII only: "Ébène" and "ébène" would pass as two names)."""
    return unicodedata.normalize("NFC", path or "").casefold()


def name_lock(stored: str | None) -> str:
    """The PostgreSQL lock held while a name (relative to the library) is looked at and taken."""
    return f"name:{fold(stored)}"


class FileRepository(Repository):
    def record_file(self, key: str, fmt: str, path: Path, *, size: int, sha256: str, duration_s: float,
                    codec: str, sample_rate: int, bits: int | None) -> None:
        """``key``'s ``fmt`` file is written at ``path``: it replaces the name's reservation."""
        stored = self._paths.rel(path)
        with self._db.write(name_lock(stored)) as conn:
            conn.execute(
                "INSERT INTO files (track_key, format, path, size, sha256, duration_s, codec, sample_rate,"
                " bits, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(track_key, format) DO UPDATE SET path = excluded.path, size = excluded.size,"
                " sha256 = excluded.sha256, duration_s = excluded.duration_s, codec = excluded.codec,"
                " sample_rate = excluded.sample_rate, bits = excluded.bits, updated_at = excluded.updated_at",
                (key, fmt, stored, size, sha256, duration_s, codec, sample_rate, bits, now()),
            )
            conn.execute("DELETE FROM path_reservations WHERE track_key = ? AND format = ?", (key, fmt))

    def reserve_path(self, key: str, fmt: str, candidates: list[Path], *,
                     free: Callable[[Path], bool]) -> Path | None:
        """The first of ``candidates`` that ``key`` may write its ``fmt`` file to, reserved;
        None when every one belongs to something else.

        A name is ``key``'s when its file or reservation is; it is free when no other
        track's file or reservation holds it (case-insensitively: exFAT and macOS volumes
        fold case) and ``free(path)`` says nothing else is on disk there. Looking and
        reserving happen in one write transaction holding every candidate name's lock (on
        PostgreSQL; SQLite's one writer on SQLite).
        """
        stored = [self._paths.rel(path) for path in candidates]
        with self._db.write(track_lock(key), *(name_lock(s) for s in stored)) as conn:
            for path, name in zip(candidates, stored, strict=True):
                # A reservation counts while its track is being worked on; one left by a run
                # killed before it could record or fail (its track no longer running) does not.
                owners = {r[0] for r in conn.execute(
                    "SELECT track_key FROM files WHERE lower(path) = lower(?)"
                    " UNION SELECT r.track_key FROM path_reservations r JOIN tracks t ON t.key = r.track_key"
                    " WHERE r.fold = ? AND (t.status = 'running' OR r.track_key = ?)", (name, fold(name), key))}
                if owners == {key} or (not owners and free(path)):
                    chosen, name_chosen = path, name
                    break
            else:
                return None
            conn.execute("DELETE FROM path_reservations WHERE (track_key = ? AND format = ?) OR fold = ?",
                         (key, fmt, fold(name_chosen)))
            conn.execute("INSERT INTO path_reservations (fold, track_key, format, created_at) VALUES (?, ?, ?, ?)",
                         (fold(name_chosen), key, fmt, now()))
        return chosen

    def get(self, key: str, fmt: str) -> TrackFile | None:
        """``key``'s ``fmt`` file."""
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM files WHERE track_key = ? AND format = ?", (key, fmt)).fetchone()
        return TrackFile.from_row(row, self._paths) if row else None

    def all(self, keys: Iterable[str] | None = None) -> list[TrackFile]:
        """Every file, or those of ``keys`` (looked up by key: per-track steps call this, and
        a large library must not be read whole each time)."""
        with self._db.read() as conn:
            if keys is None:
                rows = conn.execute("SELECT * FROM files ORDER BY track_key, format").fetchall()
            else:
                wanted = sorted(set(keys))
                rows = []
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start:start + 500]
                    rows += conn.execute(f"SELECT * FROM files WHERE track_key IN ({','.join('?' * len(chunk))})"
                                         " ORDER BY track_key, format", chunk).fetchall()
        return [TrackFile.from_row(row, self._paths) for row in rows]

    def move_file(self, old: Path, new: Path) -> None:
        with self._db.write() as conn:
            conn.execute("UPDATE files SET path = ?, updated_at = ? WHERE path = ?",
                         (self._paths.rel(new), now(), self._paths.rel(old)))

    def path_owner(self, path: Path) -> str | None:
        """Which track's file is at ``path`` (to tell two songs with the same name apart)."""
        with self._db.read() as conn:
            row = conn.execute("SELECT track_key FROM files WHERE lower(path) = lower(?)",
                               (self._paths.rel(path),)).fetchone()
        return row[0] if row else None

    def missing(self, sample: int = 200) -> tuple[int, int]:
        """(missing, checked) among up to ``sample`` catalogued output files: many missing
        means the library moved or its drive is mounted elsewhere."""
        with self._db.read() as conn:
            paths = [r[0] for r in conn.execute("SELECT path FROM files ORDER BY random() LIMIT ?", (sample,))]
        return sum(not self._paths.abs(p).exists() for p in paths), len(paths)
