"""The fingerprint index: the inverted index of ``domain.fpindex``, persisted as (term, track)
rows, so checking one new track against the library is one indexed lookup of its ~200 terms,
and adding a track adds its rows (no rebuild)."""

from __future__ import annotations

from collections.abc import Iterable

from .base import Repository


def fingerprint_lock(key: str) -> str:
    """The PostgreSQL lock held while one track's terms are replaced."""
    return f"fingerprint:{key}"


class FingerprintRepository(Repository):
    def index(self, key: str, terms: Iterable[int]) -> None:
        """``key``'s terms, replacing those it had."""
        with self._db.write(fingerprint_lock(key)) as conn:
            conn.execute("DELETE FROM fingerprint_terms WHERE track_key = ?", (key,))
            conn.executemany("INSERT INTO fingerprint_terms (term, track_key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                             [(int(term), key) for term in terms])
            conn.execute("UPDATE tracks SET fingerprint_indexed = 1 WHERE key = ?", (key,))

    def unindexed(self) -> list[tuple[str, str]]:
        """(key, fingerprint) of tracks fingerprinted before the index existed."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT key, fingerprint FROM tracks WHERE fingerprint IS NOT NULL"
                                " AND fingerprint_indexed = 0").fetchall()
        return [(row[0], row[1]) for row in rows]

    def candidates(self, terms: Iterable[int], min_shared: int, stop_df: int,
                   exclude: str | None = None) -> list[tuple[str, int]]:
        """Tracks sharing at least ``min_shared`` of ``terms`` (stop words left out), most first."""
        values = [int(t) for t in terms]
        if not values:
            return []
        counts: dict[str, int] = {}
        with self._db.read() as conn:
            for start in range(0, len(values), 500):
                chunk = values[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT term, track_key FROM fingerprint_terms WHERE term IN ({marks})", chunk).fetchall()
                by_term: dict[int, list[str]] = {}
                for term, key in rows:
                    by_term.setdefault(term, []).append(key)
                for keys in by_term.values():
                    if len(keys) > stop_df:
                        continue
                    for key in keys:
                        counts[key] = counts.get(key, 0) + 1
        counts.pop(exclude, None)
        return sorted(((k, c) for k, c in counts.items() if c >= min_shared), key=lambda kc: -kc[1])
