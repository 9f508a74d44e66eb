"""Dedup groups: recordings of one song, their keeper and why; an applied group is history
(its moves are what `dedup --undo` follows)."""

from __future__ import annotations

import itertools

from ..rows import DedupGroup, now
from .base import Repository


class GroupRepository(Repository):
    def save(self, group: DedupGroup, *, replace_applied: bool = False) -> bool:
        """Insert or update a dedup group. An applied group is only changed with
        ``replace_applied``; returns whether the row was written (one statement)."""
        stamp = now()
        stored = group.stored(self._paths)
        guard = "" if replace_applied else " WHERE dedup_groups.state <> 'applied'"
        with self._db.write() as conn:
            cur = conn.execute(
                "INSERT INTO dedup_groups (id, keeper, members, state, rule, reason, evidence, previous, moves,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET keeper = excluded.keeper, members = excluded.members,"
                " state = excluded.state, rule = excluded.rule, reason = excluded.reason,"
                " evidence = excluded.evidence, previous = excluded.previous, moves = excluded.moves,"
                " updated_at = excluded.updated_at" + guard,
                (*stored.values(), stamp, stamp),
            )
            return cur.rowcount > 0

    def get(self, group_id: str) -> DedupGroup | None:
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM dedup_groups WHERE id = ?", (group_id,)).fetchone()
        return DedupGroup.from_row(row, self._paths) if row else None

    def all(self, state: str | None = None, keeper: str | None = None) -> list[DedupGroup]:
        query, args = "SELECT * FROM dedup_groups WHERE 1 = 1", []
        if state:
            query, args = query + " AND state = ?", [*args, state]
        if keeper:
            query, args = query + " AND keeper = ?", [*args, keeper]
        with self._db.read() as conn:
            return [DedupGroup.from_row(row, self._paths) for row in conn.execute(query + " ORDER BY created_at, id",
                                                                                  args)]

    def undone_pairs(self) -> set[frozenset[str]]:
        """Pairs a user separated with `dedup --undo` (every two members of an undone group):
        never grouped again automatically."""
        pairs: set[frozenset[str]] = set()
        for group in self.all(state="undone"):
            pairs |= {frozenset(pair) for pair in itertools.combinations(group.members, 2)}
        return pairs
