"""Playlists: a track belongs to any number of playlists (Spotify playlists, SoundCloud sets,
YouTube playlists, "Liked"); a playlist's membership is replaced as a whole at each sync, so
a track that left upstream leaves here too (its files stay in the library)."""

from __future__ import annotations

from ..rows import Membership, Playlist, now
from .base import Repository


def playlist_lock(playlist_id: str) -> str:
    """The PostgreSQL lock held while a playlist's membership is read and changed."""
    return f"playlist:{playlist_id}"


class PlaylistRepository(Repository):
    def save(self, playlist_id: str, source: str, name: str, url: str | None = None,
             snapshot: str | None = None) -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO playlists (id, source, name, url, snapshot, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET name = excluded.name, url = excluded.url,"
                " snapshot = excluded.snapshot, removed_at = NULL, updated_at = excluded.updated_at",
                (playlist_id, source, name, url, snapshot, now()))

    def set_tracks(self, playlist_id: str, keys: list[str], added_at: dict[str, str] | None = None,
                   *, partial: bool = False, start: int = 0, prepend: bool = False) -> tuple[list[str], list[str]]:
        """Set a playlist's members in order; returns (joined, left). With ``partial`` only
        adds or reorders (a chunk of a long playlist, from position ``start``), never
        removes; with ``prepend`` the new members go first and the others move down (new
        likes arrive at the top)."""
        added_at = added_at or {}
        with self._db.write(playlist_lock(playlist_id)) as conn:
            before = {r[0] for r in conn.execute("SELECT track_key FROM playlist_tracks WHERE playlist_id = ?",
                                                 (playlist_id,))}
            left = [] if partial or prepend else sorted(before - set(keys))
            conn.executemany("DELETE FROM playlist_tracks WHERE playlist_id = ? AND track_key = ?",
                             [(playlist_id, key) for key in left])
            joined = [k for k in dict.fromkeys(keys) if k not in before]
            if prepend:
                conn.execute("UPDATE playlist_tracks SET position = position + ? WHERE playlist_id = ?",
                             (len(joined), playlist_id))
                rows = [(playlist_id, key, position, added_at.get(key)) for position, key in enumerate(joined)]
            else:
                rows = [(playlist_id, key, start + position, added_at.get(key)) for position, key in enumerate(keys)]
            conn.executemany(
                "INSERT INTO playlist_tracks (playlist_id, track_key, position, added_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(playlist_id, track_key) DO UPDATE SET position = excluded.position", rows)
        return joined, left

    def remove(self, playlist_id: str) -> None:
        with self._db.write(playlist_lock(playlist_id)) as conn:
            conn.execute("DELETE FROM playlist_tracks WHERE playlist_id = ?", (playlist_id,))
            conn.execute("UPDATE playlists SET removed_at = ?, updated_at = ? WHERE id = ?", (now(), now(), playlist_id))

    def all(self, include_removed: bool = False) -> list[Playlist]:
        query = "SELECT * FROM playlists" + ("" if include_removed else " WHERE removed_at IS NULL")
        with self._db.read() as conn:
            return [Playlist.from_row(r) for r in conn.execute(query + " ORDER BY source, name")]

    def tracks(self, playlist_id: str) -> list[str]:
        """A playlist's tracks in order."""
        with self._db.read() as conn:
            return [r[0] for r in conn.execute("SELECT track_key FROM playlist_tracks WHERE playlist_id = ?"
                                               " ORDER BY position", (playlist_id,))]

    def members(self) -> dict[str, list[str]]:
        """Every playlist's tracks in order, in one query (for the exports)."""
        members: dict[str, list[str]] = {}
        with self._db.read() as conn:
            for playlist_id, key in conn.execute("SELECT playlist_id, track_key FROM playlist_tracks"
                                                 " ORDER BY playlist_id, position"):
                members.setdefault(playlist_id, []).append(key)
        return members

    def memberships(self, key: str) -> list[Membership]:
        """Every playlist ``key`` is in, with its place there."""
        with self._db.read() as conn:
            return [Membership(playlist_id=r[0], position=r[1], added_at=r[2]) for r in conn.execute(
                "SELECT playlist_id, position, added_at FROM playlist_tracks WHERE track_key = ?", (key,))]

    def add_membership(self, playlist_id: str, key: str, position: int, added_at: str | None = None) -> bool:
        with self._db.write() as conn:
            cur = conn.execute("INSERT INTO playlist_tracks (playlist_id, track_key, position, added_at)"
                               " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", (playlist_id, key, position, added_at))
            return cur.rowcount > 0

    def remove_membership(self, playlist_id: str, key: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM playlist_tracks WHERE playlist_id = ? AND track_key = ?", (playlist_id, key))
