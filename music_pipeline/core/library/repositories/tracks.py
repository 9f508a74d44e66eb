"""Tracks: one row per track (its sources, metadata, features, status and last error) and
the index of every URL a track is known by.

A track's status changes only through the ``mark_*`` methods, ``requeue`` and
``restore_status``, each an event of the track's lifecycle (``domain/lifecycle.py``) applied
by :meth:`TrackRepository._set_status` in one conditional UPDATE (plus, for a failure, its
name reservations released in the same transaction).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...domain import lifecycle
from ...domain.errors import Reason
from ...domain.identity import TrackSource, normalise_isrc
from ...domain.lifecycle import Event, Status
from ..damage import CatalogError
from ..database import Connection, lock_id
from ..rows import Track, decode, encode, encode_track_fields, now
from .base import Repository

#: The counter numbering tracks in the order they came (``seq``): a PostgreSQL lock name.
SEQ_COUNTER = "counter:tracks.seq"


def track_lock(key: str) -> str:
    """The PostgreSQL lock held by a read-modify-write of one track's row."""
    return f"track:{key}"


class TrackRepository(Repository):
    def register(self, source: TrackSource, *, original: str | None = None) -> bool:
        """Record a track's source before any work; True when the track is new.

        Registering a known track again only adds the URL form it arrived as to its
        ``source_urls`` (and, for files, the latest path it was seen at).
        """
        stamp = now()
        seen = source.url or source.path
        with self._db.write(track_lock(source.key)) as conn:
            row = conn.execute("SELECT source_urls FROM tracks WHERE key = ?", (source.key,)).fetchone()
            if row is None:
                if conn.dialect == "postgresql":  # the next number, counted by one writer at a time
                    conn.execute("SELECT pg_advisory_xact_lock(?)", (lock_id(SEQ_COUNTER),))
                conn.execute(
                    "INSERT INTO tracks (key, status, source_kind, source_url, source_path, source_urls,"
                    " created_at, updated_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
                    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM tracks))",
                    (source.key, Status.QUEUED, source.kind, source.url, self._paths.rel(source.path),
                     encode(sorted({seen, original} - {None})), stamp, stamp),
                )
                _index_urls(conn, source.key, {source.url, original} - {None})
                return True
            urls = set(decode(row["source_urls"]) or ()) | ({seen, original} - {None})
            conn.execute(
                "UPDATE tracks SET source_urls = ?, source_path = COALESCE(?, source_path), updated_at = ?"
                " WHERE key = ?",
                (encode(sorted(urls)), self._paths.rel(source.path), stamp, source.key),
            )
            _index_urls(conn, source.key, {source.url, original} - {None})
            return False

    def add_source_urls(self, key: str, urls: Iterable[str]) -> None:
        """Remember more URLs a track is known by (a merged duplicate's, a site's page URL)."""
        urls = {u for u in urls if u}
        with self._db.write(track_lock(key)) as conn:
            row = conn.execute("SELECT source_urls FROM tracks WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise CatalogError(f"track {key} is not in the catalog")
            merged = set(decode(row["source_urls"]) or ()) | urls
            conn.execute("UPDATE tracks SET source_urls = ?, updated_at = ? WHERE key = ?",
                         (encode(sorted(merged)), now(), key))
            _index_urls(conn, key, urls)

    def set_source_urls(self, key: str, urls: Iterable[str]) -> None:
        """Replace a track's URL list (undoing a merge); the URL index follows."""
        urls = sorted({u for u in urls if u})
        with self._db.write(track_lock(key)) as conn:
            conn.execute("UPDATE tracks SET source_urls = ?, updated_at = ? WHERE key = ?", (encode(urls), now(), key))
            conn.execute("DELETE FROM track_urls WHERE track_key = ?", (key,))
            row = conn.execute("SELECT source_url FROM tracks WHERE key = ?", (key,)).fetchone()
            _index_urls(conn, key, set(urls) | ({row[0]} - {None} if row else set()))

    def find_source(self, *, urls: Iterable[str] = (), isrc: str | None = None) -> str | None:
        """The catalogued track one of ``urls`` or ``isrc`` already belongs to (following a
        duplicate to its keeper), so discovery can skip it before any download."""
        with self._db.read() as conn:
            row = None
            for url in urls:
                row = conn.execute("SELECT t.key FROM track_urls u JOIN tracks t ON t.key = u.track_key"
                                   " WHERE u.url = ? ORDER BY t.created_at LIMIT 1", (url,)).fetchone()
                if row:
                    break
            if row is None and isrc:
                row = conn.execute("SELECT key FROM tracks WHERE isrc = ? ORDER BY created_at LIMIT 1",
                                   (normalise_isrc(isrc),)).fetchone()
            return _keeper_of(conn, row[0]) if row else None

    def get(self, key: str) -> Track | None:
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM tracks WHERE key = ?", (key,)).fetchone()
        return Track.from_row(row, self._paths) if row else None

    def all(self, status: str | None = None) -> list[Track]:
        """Every track (or those with ``status``), in the order they came."""
        query, args = "SELECT * FROM tracks", ()
        if status:
            query, args = query + " WHERE status = ?", (status,)
        with self._db.read() as conn:
            return [Track.from_row(row, self._paths) for row in conn.execute(query + " ORDER BY created_at, seq", args)]

    def count(self) -> int:
        with self._db.read() as conn:
            return conn.execute("SELECT count(*) FROM tracks").fetchone()[0]

    def keys_by(self, column: str, value: str) -> list[str]:
        """Tracks with ``isrc`` or ``name_key`` equal to ``value`` (indexed lookups)."""
        if column not in ("isrc", "name_key"):
            raise ValueError(column)
        with self._db.read() as conn:
            return [r[0] for r in conn.execute(f"SELECT key FROM tracks WHERE {column} = ?", (value,))]

    def update(self, key: str, **fields: object) -> None:
        """Set a track's fields (lists and dicts of the JSON columns as they are). Not its
        status: that changes through the ``mark_*`` methods, which keep its rules."""
        if "status" in fields:
            raise ValueError("a track's status changes through the mark_* methods of catalog.tracks")
        if fields and self._update(key, fields) == 0:
            raise CatalogError(f"track {key} is not in the catalog")

    def _update(self, key: str, fields: dict[str, object]) -> int:
        """One UPDATE of a track's row (no lock beyond the row's own: it reads nothing first)."""
        stored = encode_track_fields(fields, self._paths) | {"updated_at": now()}
        columns = ", ".join(f"{name} = ?" for name in stored)
        with self._db.write() as conn:
            return conn.execute(f"UPDATE tracks SET {columns} WHERE key = ?", (*stored.values(), key)).rowcount

    # -- its status: every change is an event of the track's lifecycle (domain/lifecycle.py) --

    def _set_status(self, key: str, event: Event, fields: dict[str, object], *, target: Status | str | None = None,
                    release_names: bool = False) -> bool:
        """The one writer of a track's status: apply ``event`` to ``key``, with ``fields`` in
        the same UPDATE (and, with ``release_names``, the names it had reserved freed in the
        same transaction); True when the status changed, False when the lifecycle leaves the
        track alone on purpose (or it is not in the catalog). Raises ``TransitionRefused``.

        One conditional UPDATE (``WHERE status IN`` the event's sources) and its row count
        decide, so a concurrent change between a read and the write cannot be overwritten;
        only when nothing matched is the status read (in the same transaction) to say why."""
        rule = lifecycle.RULES[event]
        to = rule.resolve(target)
        sources = sorted(rule.sources) if to is not None else []
        stored = encode_track_fields({"status": to, **fields}, self._paths) | {"updated_at": now()}
        with self._db.write() as conn:
            if sources:
                changed = conn.execute(
                    f"UPDATE tracks SET {', '.join(f'{name} = ?' for name in stored)}"
                    f" WHERE key = ? AND status IN ({', '.join('?' for _ in sources)})",
                    (*stored.values(), key, *sources)).rowcount
                if changed:
                    if release_names:
                        conn.execute("DELETE FROM path_reservations WHERE track_key = ?", (key,))
                    return True
            row = conn.execute("SELECT status FROM tracks WHERE key = ?", (key,)).fetchone()
        if row is None:  # e.g. a step that failed before its track was registered
            return False
        lifecycle.decide(row[0], event, target, key=key)  # raises, unless the event ignores that status
        return False

    _NO_ERROR: dict[str, object] = {"error": None, "error_step": None, "error_reason": None}

    def mark_running(self, key: str) -> bool:
        return self._set_status(key, Event.START, self._NO_ERROR)

    def mark_failed(self, key: str, step: str, message: str, reason: Reason) -> bool:
        # the names it had reserved are free for other songs again
        return self._set_status(key, Event.FAIL, {"error": message, "error_step": step,
                                                  "error_reason": Reason.of(reason)}, release_names=True)

    def mark_crashed(self, key: str, message: str, step: str = "run") -> bool:
        """The run working on ``key`` died: failed, only while it is still running."""
        return self._set_status(key, Event.CRASH, {"error": message, "error_step": step,
                                                   "error_reason": Reason.CRASHED}, release_names=True)

    def mark_unavailable(self, key: str, step: str, message: str, reason: Reason) -> bool:
        """A listing says the source cannot be downloaded: failed, only while no run has touched it."""
        return self._set_status(key, Event.REJECT, {"error": message, "error_step": step,
                                                    "error_reason": Reason.of(reason)}, release_names=True)

    def mark_done(self, key: str) -> bool:
        return self._set_status(key, Event.FINISH, {"processed_at": now(), **self._NO_ERROR})

    def mark_needs_review(self, key: str, step: str, message: str) -> bool:
        """A doubtful match waits for a person (``pin``); not a failure, not retried."""
        return self._set_status(key, Event.NEED_REVIEW, {"error": message, "error_step": step,
                                                         "error_reason": Reason.NEEDS_REVIEW})

    def requeue(self, key: str) -> bool:
        """Back in the queue (a pinned match), its last error forgotten."""
        return self._set_status(key, Event.REQUEUE, self._NO_ERROR)

    def mark_duplicate(self, key: str, keeper: str, group: str) -> bool:
        """Set aside as a copy of ``keeper`` by dedup group ``group`` (undone by `dedup --undo`)."""
        return self._set_status(key, Event.SET_ASIDE, {"duplicate_of": keeper, "dedup_group": group})

    def restore_status(self, key: str, status: str) -> bool:
        """`dedup --undo`: a set-aside track gets back the status it had before."""
        return self._set_status(key, Event.UNDO, {"duplicate_of": None, "dedup_group": None}, target=status)

    # -- duplicates ---------------------------------------------------------------------------

    def keeper_of(self, key: str) -> str:
        """The track a duplicate finally belongs to (following chains), or ``key`` itself."""
        with self._db.read() as conn:
            return _keeper_of(conn, key)

    def duplicates_of(self, key: str) -> list[str]:
        """Tracks set aside as copies of ``key``, following chains (a copy of a copy)."""
        with self._db.read() as conn:
            return [r[0] for r in conn.execute(
                "WITH RECURSIVE d(key) AS (SELECT key FROM tracks WHERE duplicate_of = ? AND status = 'duplicate'"
                " UNION SELECT t.key FROM tracks t JOIN d ON t.duplicate_of = d.key WHERE t.status = 'duplicate')"
                " SELECT key FROM d WHERE key <> ?", (key, key))]

    def repoint_duplicates(self, old: str, new: str) -> list[str]:
        """Duplicates of ``old`` become duplicates of ``new`` (``old`` was replaced by a better
        copy); returns them. One statement: it reads and changes the same rows."""
        with self._db.write() as conn:
            return [r[0] for r in conn.execute("UPDATE tracks SET duplicate_of = ?, updated_at = ?"
                                               " WHERE duplicate_of = ? RETURNING key", (new, now(), old))]

    def repath(self, column: str, old: Path, new: Path) -> None:
        """A track file (``raw_path`` or ``cover_path``) moved from ``old`` to ``new``."""
        if column not in ("raw_path", "cover_path"):
            raise ValueError(column)
        with self._db.write() as conn:
            conn.execute(f"UPDATE tracks SET {column} = ?, updated_at = ? WHERE {column} = ?",
                         (self._paths.rel(new), now(), self._paths.rel(old)))


def _index_urls(conn: Connection, key: str, urls: Iterable[str]) -> None:
    conn.executemany("INSERT INTO track_urls (url, track_key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                     [(url, key) for url in urls])


def _keeper_of(conn: Connection, key: str) -> str:
    seen = {key}
    while True:
        row = conn.execute("SELECT duplicate_of FROM tracks WHERE key = ?", (key,)).fetchone()
        if row is None or not row[0] or row[0] in seen:
            return key
        key = row[0]
        seen.add(key)
