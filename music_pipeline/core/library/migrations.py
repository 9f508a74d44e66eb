"""The catalog's schema versions: a new catalog is created whole from ``schema.py``; an older
one is upgraded in place by the numbered migrations below; one newer than this code is
refused instead of being damaged.

Several processes may open an older catalog at once (a sensor, lanes of a bulk run, workers
on other machines): :func:`migrate` runs in a write transaction holding the whole catalog's
lock (SQLite's write lock, PostgreSQL's :data:`database.MIGRATION_LOCK`) and reads the
version again under it, so one process migrates and the others find it done.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from . import database, schema
from .damage import CatalogError
from .database import Connection
from .rows import TRACK_PATH_COLUMNS
from .store import DUPLICATES_DIR

#: Migrations 1-9 upgrade SQLite catalogs made before the schema moved to ``schema.py`` (a
#: PostgreSQL catalog is always created at 9 or later). From 10 on, a migration runs on
#: both databases: write it in SQL both accept, and change ``schema.py`` to match.
MIGRATIONS: list[str | Callable[[Connection, Path], None]] = [
    # 1: tracks and their files
    """
    CREATE TABLE tracks (
        key TEXT PRIMARY KEY,
        status TEXT NOT NULL DEFAULT 'queued',
        source_kind TEXT NOT NULL,
        source_url TEXT,
        source_path TEXT,
        source_urls TEXT NOT NULL DEFAULT '[]',
        title TEXT, artist TEXT, album TEXT, isrc TEXT,
        webpage_url TEXT, thumbnail_url TEXT, extractor TEXT, source_duration_s REAL,
        raw_path TEXT, raw_codec TEXT, raw_sample_rate INTEGER, raw_bits INTEGER,
        raw_channels INTEGER, raw_lossless INTEGER, raw_sha256 TEXT, cover_path TEXT,
        duration_s REAL, bpm REAL, key_name TEXT, key_short TEXT, camelot TEXT, open_key TEXT,
        key_confidence REAL, lufs REAL, loudness_range_lu REAL, true_peak_db REAL,
        fingerprint TEXT, fingerprint_duration_s REAL,
        error TEXT, error_step TEXT, error_reason TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, processed_at TEXT
    );
    CREATE INDEX tracks_status ON tracks(status);
    CREATE TABLE files (
        track_key TEXT NOT NULL REFERENCES tracks(key),
        format TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        duration_s REAL,
        codec TEXT, sample_rate INTEGER, bits INTEGER,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (track_key, format)
    );
    """,
    # 2: analysis confidence and ReplayGain 2.0
    """
    ALTER TABLE tracks ADD COLUMN bpm_confidence REAL;
    ALTER TABLE tracks ADD COLUMN replaygain_track_gain_db REAL;
    ALTER TABLE tracks ADD COLUMN replaygain_track_peak REAL;
    """,
    # 3: duplicates: every source URL indexed, the fingerprint index, dedup groups
    """
    ALTER TABLE tracks ADD COLUMN raw_bitrate_kbps REAL;
    ALTER TABLE tracks ADD COLUMN duplicate_of TEXT;
    ALTER TABLE tracks ADD COLUMN dedup_group TEXT;
    ALTER TABLE tracks ADD COLUMN fingerprint_indexed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tracks ADD COLUMN name_key TEXT;
    CREATE INDEX tracks_name_key ON tracks(name_key);
    UPDATE tracks SET isrc = upper(replace(replace(isrc, '-', ''), ' ', '')) WHERE isrc IS NOT NULL;
    CREATE INDEX tracks_isrc ON tracks(isrc);
    CREATE TABLE track_urls (
        url TEXT NOT NULL,
        track_key TEXT NOT NULL REFERENCES tracks(key),
        PRIMARY KEY (url, track_key)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO track_urls (url, track_key)
        SELECT json_each.value, tracks.key FROM tracks, json_each(tracks.source_urls)
        UNION SELECT source_url, key FROM tracks WHERE source_url IS NOT NULL;
    CREATE TABLE fingerprint_terms (
        term INTEGER NOT NULL,
        track_key TEXT NOT NULL REFERENCES tracks(key),
        PRIMARY KEY (term, track_key)
    ) WITHOUT ROWID;
    CREATE INDEX fingerprint_terms_track ON fingerprint_terms(track_key);
    CREATE TABLE dedup_groups (
        id TEXT PRIMARY KEY,
        keeper TEXT NOT NULL,
        members TEXT NOT NULL,
        state TEXT NOT NULL,
        rule TEXT NOT NULL,
        reason TEXT NOT NULL,
        evidence TEXT NOT NULL,
        previous TEXT NOT NULL DEFAULT '{}',
        moves TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 4: sources that sync by themselves: Spotify metadata, Spotify->YouTube matches, playlists
    """
    ALTER TABLE tracks ADD COLUMN artists TEXT;
    ALTER TABLE tracks ADD COLUMN release_date TEXT;
    ALTER TABLE tracks ADD COLUMN track_number INTEGER;
    ALTER TABLE tracks ADD COLUMN artwork_url TEXT;
    ALTER TABLE tracks ADD COLUMN spotify_url TEXT;
    ALTER TABLE tracks ADD COLUMN genres TEXT;
    ALTER TABLE tracks ADD COLUMN match_url TEXT;
    ALTER TABLE tracks ADD COLUMN match_score REAL;
    ALTER TABLE tracks ADD COLUMN match TEXT;
    ALTER TABLE tracks ADD COLUMN match_pinned INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tracks ADD COLUMN discovered_from TEXT;
    CREATE TABLE playlists (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        name TEXT NOT NULL,
        url TEXT,
        snapshot TEXT,
        removed_at TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE playlist_tracks (
        playlist_id TEXT NOT NULL REFERENCES playlists(id),
        track_key TEXT NOT NULL REFERENCES tracks(key),
        position INTEGER NOT NULL,
        added_at TEXT,
        PRIMARY KEY (playlist_id, track_key)
    ) WITHOUT ROWID;
    CREATE INDEX playlist_tracks_track ON playlist_tracks(track_key);
    """,
    # 5: output names reserved before they are written, so two runs never pick the same one
    """
    CREATE TABLE path_reservations (
        fold TEXT NOT NULL UNIQUE,  -- the path relative to the library, NFC and case-folded
        track_key TEXT NOT NULL REFERENCES tracks(key),
        format TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (track_key, format)
    );
    CREATE INDEX files_path_nocase ON files(path COLLATE NOCASE);
    """,
    # 6: paths relative to the library folder, so a drive mounted elsewhere keeps its library
    lambda conn, root: _relative_paths(conn, root),
    # 7: what the decode says about the audio, for the keeper rule: the band limit a lossy
    # encoder leaves (a lossless file with one is of lossy origin) and the silence at either end
    """
    ALTER TABLE tracks ADD COLUMN cutoff_hz REAL;
    ALTER TABLE tracks ADD COLUMN lossy_origin INTEGER;
    ALTER TABLE tracks ADD COLUMN leading_silence_s REAL;
    ALTER TABLE tracks ADD COLUMN trailing_silence_s REAL;
    """,
    # 8: the mirrors (Notion pages, Eagle items): which remote record is each track's, what
    # the pipeline last wrote there (a value changed since was changed by a person, and is
    # kept) and which status it last showed; merges of duplicates' records, for `dedup --undo`
    """
    CREATE TABLE mirrors (
        track_key TEXT NOT NULL REFERENCES tracks(key),
        sink TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        written TEXT NOT NULL DEFAULT '{}',
        status TEXT,
        synced_at TEXT NOT NULL,
        PRIMARY KEY (track_key, sink)
    );
    CREATE INDEX mirrors_remote ON mirrors(sink, remote_id);
    CREATE TABLE mirror_merges (
        sink TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        track_key TEXT NOT NULL,
        keeper_remote_id TEXT NOT NULL,
        added TEXT NOT NULL DEFAULT '{}',
        merged_at TEXT NOT NULL,
        PRIMARY KEY (sink, remote_id)
    );
    """,
    # 9: one schema for SQLite and PostgreSQL: tracks numbered in the order they came (SQLite's
    # rowid, which PostgreSQL lacks), file names compared case-insensitively with lower()
    """
    ALTER TABLE tracks ADD COLUMN seq INTEGER;
    UPDATE tracks SET seq = rowid;
    CREATE INDEX tracks_seq ON tracks(seq);
    DROP INDEX IF EXISTS files_path_nocase;
    CREATE INDEX files_path_lower ON files(lower(path));
    """,
    # 10: the beat grid a DJ mixes on (its segments and cues as JSON, its headline figures as
    # columns a query can use) and a flag for grids that need a look
    """
    ALTER TABLE tracks ADD COLUMN grid TEXT;
    ALTER TABLE tracks ADD COLUMN cues TEXT;
    ALTER TABLE tracks ADD COLUMN first_beat_s DOUBLE PRECISION;
    ALTER TABLE tracks ADD COLUMN downbeat_s DOUBLE PRECISION;
    ALTER TABLE tracks ADD COLUMN beats_per_bar BIGINT;
    ALTER TABLE tracks ADD COLUMN grid_confidence DOUBLE PRECISION;
    ALTER TABLE tracks ADD COLUMN grid_needs_look BIGINT;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> Iterator[str]:
    """The statements of a migration script, one at a time (so they run in one transaction)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending
            pending = ""
    if pending.strip(" \n\t;"):
        yield pending


def _relative_paths(conn: Connection, root: Path) -> None:
    """Migration 6: absolute paths inside the library become relative to it. A library
    already moved before this version has paths under its old folder: that folder is read
    from the raw files' paths (``<old root>/_raw/<key>.<ext>``) and converted the same way."""
    found = set()
    for (raw,) in conn.execute("SELECT raw_path FROM tracks WHERE raw_path LIKE '/%/_raw/%'"
                               " AND status <> 'duplicate'"):
        folder, _, name = raw.rpartition("/_raw/")
        if "/" not in name and f"/{DUPLICATES_DIR}/" not in f"{folder}/":  # <root>/_raw/<file>, not set aside
            found.add(folder.rstrip("/"))
    # The current folder first, then the others longest first: one answer, whatever the order found.
    roots = [str(root).rstrip("/"), *sorted(found - {str(root).rstrip("/")}, key=lambda r: (-len(r), r))]

    def relative(text: str | None) -> str | None:
        if not text or not text.startswith("/"):
            return text
        for old in roots:
            if text.startswith(old + "/"):
                return text[len(old) + 1:]
        return text

    for column in TRACK_PATH_COLUMNS:
        rows = conn.execute(f"SELECT key, {column} FROM tracks WHERE {column} IS NOT NULL").fetchall()
        conn.executemany(f"UPDATE tracks SET {column} = ? WHERE key = ?", [(relative(v), k) for k, v in rows])
    rows = conn.execute("SELECT track_key, format, path FROM files").fetchall()
    conn.executemany("UPDATE files SET path = ? WHERE track_key = ? AND format = ?",
                     [(relative(p), k, f) for k, f, p in rows])
    conn.execute("DELETE FROM path_reservations")
    for group_id, moves, previous in conn.execute("SELECT id, moves, previous FROM dedup_groups").fetchall():
        pairs = [[relative(a), relative(b)] for a, b in json.loads(moves or "[]")]
        before = json.loads(previous or "{}")
        for part in ("filled", "prior"):
            for name in TRACK_PATH_COLUMNS:
                if isinstance(before.get(part), dict) and before[part].get(name):
                    before[part][name] = relative(before[part][name])
        conn.execute("UPDATE dedup_groups SET moves = ?, previous = ? WHERE id = ?",
                     (json.dumps(pairs), json.dumps(before), group_id))


def create_schema(conn: Connection) -> None:
    """A new catalog's tables, at the current version."""
    schema.metadata.create_all(conn.raw)
    database.set_schema_version(conn, SCHEMA_VERSION)


def migrate(conn: Connection, root: Path, where: str) -> None:
    """Bring the catalog in ``conn`` (a write transaction holding the whole catalog's lock) to
    :data:`SCHEMA_VERSION`; ``root`` is the library folder (paths are relative to it)."""
    version = database.schema_version(conn)
    if version > SCHEMA_VERSION:
        raise CatalogError(
            f"{where} has schema version {version}, newer than this music_pipeline "
            f"understands ({SCHEMA_VERSION}); upgrade music_pipeline instead of downgrading the catalog."
        )
    if version == 0 and not database.has_tables(conn):
        create_schema(conn)
        return
    for number in range(version, SCHEMA_VERSION):
        migration = MIGRATIONS[number]
        if callable(migration):  # a data migration that needs Python (and the library's folder)
            migration(conn, root)
        else:
            conn.script(statements(migration))
        database.set_schema_version(conn, number + 1)
