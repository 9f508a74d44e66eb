"""Mirrors: Notion and Eagle mirror the catalog; these rows say which remote record is each
track's and what the pipeline last wrote there, so a sync compares before it writes and never
overwrites what a person changed since. Merges remember a duplicate's record merged into its
keeper's, for `dedup --undo`. Every write here is one statement."""

from __future__ import annotations

import json
from collections.abc import Iterable

from ..rows import Merge, Mirror, now
from .base import Repository


class MirrorRepository(Repository):
    def get(self, key: str, sink: str) -> Mirror | None:
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM mirrors WHERE track_key = ? AND sink = ?", (key, sink)).fetchone()
        return Mirror.from_row(row) if row else None

    def all(self, sink: str) -> list[Mirror]:
        """Every record of ``sink``, with its track's status and error (one query: the sensors
        look at all of them each tick)."""
        with self._db.read() as conn:
            return [Mirror.from_row(r) for r in conn.execute(
                "SELECT m.*, t.status AS track_status, t.error AS track_error FROM mirrors m"
                " JOIN tracks t ON t.key = m.track_key WHERE m.sink = ? ORDER BY t.seq", (sink,))]

    def owner(self, sink: str, remote_id: str) -> str | None:
        """The track whose record ``remote_id`` is."""
        with self._db.read() as conn:
            row = conn.execute("SELECT track_key FROM mirrors WHERE sink = ? AND remote_id = ?",
                               (sink, remote_id)).fetchone()
        return row[0] if row else None

    def set(self, key: str, sink: str, remote_id: str, *, written: dict | None = None,
            status: str | None = None) -> None:
        """Record ``key``'s remote record; ``written`` replaces what was last written when
        given, ``status`` the status last shown when given."""
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO mirrors (track_key, sink, remote_id, written, status, synced_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(track_key, sink) DO UPDATE SET"
                " remote_id = excluded.remote_id, written = COALESCE(?, mirrors.written),"
                " status = COALESCE(?, mirrors.status), synced_at = excluded.synced_at",
                (key, sink, remote_id, json.dumps(written or {}), status, now(),
                 None if written is None else json.dumps(written), status))

    def forget(self, key: str, sink: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM mirrors WHERE track_key = ? AND sink = ?", (key, sink))

    def record_merge(self, sink: str, remote_id: str, key: str, keeper_remote_id: str, added: dict) -> None:
        """A duplicate's remote record was merged into the keeper's and put in the trash."""
        with self._db.write() as conn:
            conn.execute("INSERT INTO mirror_merges (sink, remote_id, track_key, keeper_remote_id,"
                         " added, merged_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sink, remote_id) DO UPDATE SET"
                         " track_key = excluded.track_key, keeper_remote_id = excluded.keeper_remote_id,"
                         " added = excluded.added, merged_at = excluded.merged_at",
                         (sink, remote_id, key, keeper_remote_id, json.dumps(added), now()))

    def merges(self, sink: str, keys: Iterable[str] | None = None) -> list[Merge]:
        with self._db.read() as conn:
            rows = [Merge.from_row(r) for r in conn.execute(
                "SELECT * FROM mirror_merges WHERE sink = ? ORDER BY merged_at", (sink,))]
        wanted = None if keys is None else set(keys)
        return [r for r in rows if wanted is None or r.track_key in wanted]

    def forget_merge(self, sink: str, remote_id: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM mirror_merges WHERE sink = ? AND remote_id = ?", (sink, remote_id))
