"""The catalog: the library's source of truth, one SQLite file in the library folder, or a
PostgreSQL database when several machines share the library (``MUSIC_CATALOG_URL``).

One row per track (its sources, metadata, features, fingerprint, status and last error)
and one row per output file (path, size, checksum, codec). Notion and Eagle mirror it
later; they are never the only place something is known.

A new catalog is created whole from ``schema.py``; an older SQLite catalog is upgraded in
place by the numbered migrations below, and one newer than this code is refused instead of
being damaged. Queries are written once for both databases (``database.py`` holds the few
things that differ: opening, the write lock, the version, the errors).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

import sqlalchemy as sa

from ..domain import lifecycle
from ..domain.errors import DiskFull, Reason, TrackError
from ..domain.identity import TrackSource, normalise_isrc
from ..domain.lifecycle import Event, Status
from . import database, schema
from .database import Connection
from .store import DUPLICATES_DIR, exclusive

CATALOG_FILE = "catalog.sqlite"

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
]

SCHEMA_VERSION = len(MIGRATIONS)


def _statements(script: str) -> Iterator[str]:
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

    for column in _TRACK_PATH_COLUMNS:
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
            for name in _TRACK_PATH_COLUMNS:
                if isinstance(before.get(part), dict) and before[part].get(name):
                    before[part][name] = relative(before[part][name])
        conn.execute("UPDATE dedup_groups SET moves = ?, previous = ? WHERE id = ?",
                     (json.dumps(pairs), json.dumps(before), group_id))


class TrackRow(TypedDict, total=False):
    """A track as the catalog returns it: paths absolute (resolved under the library folder),
    JSON columns decoded. The fields callers rely on; the row holds every column."""

    key: str
    status: str  # a Status value
    source_kind: str  # "url" | "file"
    source_url: str | None
    source_path: str | None
    source_urls: list[str]
    title: str | None
    artist: str | None
    artists: list[str] | None
    album: str | None
    isrc: str | None
    raw_path: str | None
    raw_sha256: str | None
    cover_path: str | None
    duration_s: float | None
    bpm: float | None
    key_name: str | None
    camelot: str | None
    fingerprint: str | None
    match: dict | None
    match_url: str | None
    duplicate_of: str | None
    dedup_group: str | None
    error: str | None
    error_step: str | None
    error_reason: str | None  # a Reason value: Reason.of(row["error_reason"]).retryable


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class CatalogError(TrackError):
    """The catalog cannot be used (a newer schema, an unknown track, a damaged file)."""

    reason = Reason.CATALOG


SQLITE_HEADER = b"SQLite format 3\x00"


def damage(path: Path) -> str | None:
    """What is wrong with the catalog file at ``path`` before SQLite even opens it (None:
    nothing seen). SQLite would take an empty file for a new database and start afresh,
    forgetting every track while their files stay: never let it."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return None
    if not header:
        return "it is empty (0 bytes)"
    if header != SQLITE_HEADER:
        return "it is not an SQLite database (its header is wrong)"
    return None


def _damaged(path: Path, why: str) -> CatalogError:
    return CatalogError(
        f"The catalog {path} is damaged: {why}. It was left exactly as it is; nothing was replaced.",
        hint="Restore it from a backup (Time Machine, a copy of the library), or move it aside to start an "
             "empty catalog (the files in the library stay where they are). `music-pipeline doctor` checks it.")


@contextlib.contextmanager
def _errors(where: str) -> Iterator[None]:
    """The database's failures as sentences: a damaged file, a full disk, a read-only folder,
    a server that does not answer. ``where`` names the catalog (its URL without password)."""
    try:
        yield
    except sa.exc.DBAPIError as err:
        _explain(where, err.orig if err.orig is not None else err, err)
        raise err.orig if isinstance(err.orig, sqlite3.IntegrityError) else err from None
    except sqlite3.DatabaseError as err:  # a file opened without SQLAlchemy (a new catalog being built)
        _explain(where, err, err)
        raise


def _explain(path: str, err: BaseException, cause: BaseException) -> None:
    """Raise the sentence for ``err`` when there is one; return when it is none of these."""
    if isinstance(err, sqlite3.DatabaseError):
        code = (getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF  # the primary code of an extended one
        text = str(err)
        if code == sqlite3.SQLITE_FULL:
            raise DiskFull(f"The disk holding the catalog {path} is full ({text}); nothing was recorded.",
                           hint="Free some space on the library's volume and run again.") from cause
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise _damaged(path, text) from cause
        if code == sqlite3.SQLITE_IOERR:
            raise CatalogError(f"The catalog {path} could not be read or written ({text}).",
                               hint="Is the library's drive still connected and its volume mounted?") from cause
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            raise CatalogError(f"The catalog {path} cannot be written ({text}).",
                               hint="Check that the library folder is writable and its volume mounted.") from cause
        return
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    name = type(err).__name__
    kinds = {kind.__name__ for kind in type(err).__mro__}  # psycopg2's AdminShutdown is an OperationalError
    if ("OperationalError" in kinds and ("connect" in text or "server" in text or "timeout" in text)) or \
            ("InterfaceError" in kinds and "closed" in text):
        raise CatalogError(f"The catalog database {path} cannot be reached ({text}).",
                           hint="Is the PostgreSQL server running and MUSIC_CATALOG_URL right (host, port, "
                                "user, password, database)? `music-pipeline doctor` checks it.") from cause
    if name == "DiskFull" or "No space left" in text or "could not extend file" in text:
        raise DiskFull(f"The disk holding the catalog database {path} is full ({text}); nothing was recorded.",
                       hint="Free some space on the database server and run again.") from cause


class Catalog:
    """Access to the catalog: ``<library>/catalog.sqlite``, or the PostgreSQL database at
    ``url``. Transactions are short: Dagster runs, sensors and the CLI each open their own
    (SQLite's WAL, PostgreSQL's MVCC let them read while one writes)."""

    def __init__(self, path: Path, *, url: str | None = None) -> None:
        self.path = Path(path)  # the SQLite file, and the library folder paths are relative to
        self.root = self.path.parent
        self.url = url or database.sqlite_url(self.path)
        self.shared = sa.make_url(self.url).get_backend_name() != "sqlite"
        self.where = database.redact(self.url) if self.shared else str(self.path)
        if not self.shared:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                self._create()
        self._migrate()

    @property
    def engine(self) -> sa.Engine:
        return database.engine_for(self.url)

    def _create(self) -> None:
        """A new SQLite catalog appears whole: built under a temporary name, then linked into
        place only if nothing is there yet. So an empty catalog file always means damage (see
        :func:`damage`), and two processes creating one at once both end up using one."""
        tmp = self.path.with_name(f".{self.path.name}.new-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        try:
            engine = database._create_engine(database.sqlite_url(tmp))
            try:
                with _errors(str(self.path)), database.transaction(engine, write=True) as conn:
                    self._create_schema(conn)
            finally:
                engine.dispose()
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another process made it first: theirs is as good
            except OSError:  # no hard links on this volume (exFAT): a rename, looked at under a lock
                with exclusive(self.root):
                    if not self.path.exists():
                        os.replace(tmp, self.path)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    @staticmethod
    def _create_schema(conn: Connection) -> None:
        schema.metadata.create_all(conn.raw)
        database.set_schema_version(conn, SCHEMA_VERSION)

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[Connection]:
        if not self.shared:
            why = damage(self.path)
            if why:
                raise _damaged(self.path, why)
        with _errors(self.where), database.transaction(self.engine, write=write) as conn:
            yield conn

    def _connect(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction: it holds the catalog's write lock from its first statement,
        so what it reads stays true until it commits (one writer at a time)."""
        return self._transaction(write=True)

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        """A read transaction: never waits for a writer."""
        return self._transaction(write=False)

    def check(self) -> list[str]:
        """What is wrong with the catalog (empty when nothing): the file or the server,
        SQLite's own integrity check, the schema version. For `music-pipeline doctor`."""
        try:
            with self._read() as conn:
                problems = [] if self.shared else [
                    row[0] for row in conn.raw.exec_driver_sql("PRAGMA quick_check") if row[0] != "ok"]
                version = database.schema_version(conn)
        except TrackError as err:
            return [str(err)]
        if version != SCHEMA_VERSION:
            problems.append(f"schema version {version}, this version uses {SCHEMA_VERSION}")
        return problems

    def missing_files(self, sample: int = 200) -> tuple[int, int]:
        """(missing, checked) among up to ``sample`` catalogued output files: many missing
        means the library moved or its drive is mounted elsewhere."""
        with self._connect() as conn:
            paths = [r[0] for r in conn.execute("SELECT path FROM files ORDER BY random() LIMIT ?", (sample,))]
        return sum(not self._abs(p).exists() for p in paths), len(paths)

    # Paths are stored relative to the library folder (the catalog's folder) and resolved
    # here, at use: a library on a drive mounted elsewhere keeps working.

    def _rel(self, path: Path | str | None) -> str | None:
        if path is None:
            return None
        path = Path(path)
        try:
            return path.relative_to(self.root).as_posix() if path.is_absolute() else path.as_posix()
        except ValueError:
            return str(path)  # outside the library (a file imported from elsewhere): as it is

    def _abs(self, text: str) -> Path:
        return Path(text) if os.path.isabs(text) else self.root / text

    def _migrate(self) -> None:
        with self._read() as conn:
            if database.schema_version(conn) == SCHEMA_VERSION:
                return
        # Several processes may open a new (or older) catalog at once (a sensor, lanes of a
        # bulk run, workers on other machines): the version is read again under the write
        # lock, so one migrates and the others find it done.
        with self._connect() as conn:
            version = database.schema_version(conn)
            if version > SCHEMA_VERSION:
                raise CatalogError(
                    f"{self.where} has schema version {version}, newer than this music_pipeline "
                    f"understands ({SCHEMA_VERSION}); upgrade music_pipeline instead of downgrading the catalog."
                )
            if version == 0 and not database.has_tables(conn):
                self._create_schema(conn)
                return
            for number in range(version, SCHEMA_VERSION):
                migration = MIGRATIONS[number]
                if callable(migration):  # a data migration that needs Python (and the library's folder)
                    migration(conn, self.root)
                else:
                    conn.script(_statements(migration))
                database.set_schema_version(conn, number + 1)

    @property
    def schema_version(self) -> int:
        with self._read() as conn:
            return database.schema_version(conn)

    # -- tracks -------------------------------------------------------------------------

    def register(self, source: TrackSource, *, original: str | None = None) -> bool:
        """Record a track's source before any work; True when the track is new.

        Registering a known track again only adds the URL form it arrived as to its
        ``source_urls`` (and, for files, the latest path it was seen at).
        """
        stamp = now()
        with self._connect() as conn:
            row = conn.execute("SELECT source_urls FROM tracks WHERE key = ?", (source.key,)).fetchone()
            seen = source.url or source.path
            if row is None:
                conn.execute(
                    "INSERT INTO tracks (key, status, source_kind, source_url, source_path, source_urls,"
                    " created_at, updated_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
                    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM tracks))",
                    (source.key, Status.QUEUED, source.kind, source.url, self._rel(source.path),
                     _encode(sorted({seen, original} - {None})), stamp, stamp),
                )
                self._index_urls(conn, source.key, {source.url, original} - {None})
                return True
            urls = set(_decode(row["source_urls"]) or ()) | ({seen, original} - {None})
            conn.execute(
                "UPDATE tracks SET source_urls = ?, source_path = COALESCE(?, source_path), updated_at = ?"
                " WHERE key = ?",
                (_encode(sorted(urls)), self._rel(source.path), stamp, source.key),
            )
            self._index_urls(conn, source.key, {source.url, original} - {None})
            return False

    @staticmethod
    def _index_urls(conn: Connection, key: str, urls: Iterable[str]) -> None:
        conn.executemany("INSERT INTO track_urls (url, track_key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(url, key) for url in urls])

    def add_source_urls(self, key: str, urls: Iterable[str]) -> None:
        """Remember more URLs a track is known by (a merged duplicate's, a site's page URL)."""
        urls = {u for u in urls if u}
        with self._connect() as conn:
            row = conn.execute("SELECT source_urls FROM tracks WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise CatalogError(f"track {key} is not in the catalog")
            merged = set(_decode(row["source_urls"]) or ()) | urls
            conn.execute("UPDATE tracks SET source_urls = ?, updated_at = ? WHERE key = ?",
                         (_encode(sorted(merged)), now(), key))
            self._index_urls(conn, key, urls)

    def set_source_urls(self, key: str, urls: Iterable[str]) -> None:
        """Replace a track's URL list (undoing a merge); the URL index follows."""
        urls = sorted({u for u in urls if u})
        with self._connect() as conn:
            conn.execute("UPDATE tracks SET source_urls = ?, updated_at = ? WHERE key = ?",
                         (_encode(urls), now(), key))
            conn.execute("DELETE FROM track_urls WHERE track_key = ?", (key,))
            row = conn.execute("SELECT source_url FROM tracks WHERE key = ?", (key,)).fetchone()
            self._index_urls(conn, key, set(urls) | ({row[0]} - {None} if row else set()))

    def find_source(self, *, urls: Iterable[str] = (), isrc: str | None = None) -> str | None:
        """The catalogued track one of ``urls`` or ``isrc`` already belongs to (following a
        duplicate to its keeper), so discovery can skip it before any download."""
        with self._connect() as conn:
            row = None
            for url in urls:
                row = conn.execute("SELECT t.key, t.duplicate_of FROM track_urls u JOIN tracks t ON t.key = u.track_key"
                                   " WHERE u.url = ? ORDER BY t.created_at LIMIT 1", (url,)).fetchone()
                if row:
                    break
            if row is None and isrc:
                row = conn.execute("SELECT key, duplicate_of FROM tracks WHERE isrc = ?"
                                   " ORDER BY created_at LIMIT 1", (normalise_isrc(isrc),)).fetchone()
        return self.keeper_of(row["key"]) if row else None

    def get(self, key: str) -> TrackRow | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM tracks WHERE key = ?", (key,)).fetchone()
        return self._track(row) if row else None

    def _track(self, row: database.Row) -> TrackRow:
        data = _track(row)
        for name in _TRACK_PATH_COLUMNS:
            if data.get(name):
                data[name] = str(self._abs(data[name]))
        return data

    def _file(self, row: database.Row) -> dict:
        data = dict(row)
        data["path"] = str(self._abs(data["path"]))
        return data

    def update(self, key: str, **fields: object) -> None:
        """Set a track's fields (lists and dicts of the JSON columns as they are). Not its
        status: that changes through the ``mark_*`` methods, which keep its rules."""
        if "status" in fields:
            raise ValueError("a track's status changes through the catalog's mark_* methods")
        self._write(key, fields)

    def _write(self, key: str, fields: dict, guard: str = "") -> int:
        if not fields:
            return 0
        fields = {name: _encode(value) if name in _JSON_COLUMNS else self._rel(value) if name in _TRACK_PATH_COLUMNS
                  else value for name, value in fields.items()}
        fields["updated_at"] = now()
        columns = ", ".join(f"{name} = ?" for name in fields)
        with self._connect() as conn:
            cur = conn.execute(f"UPDATE tracks SET {columns} WHERE key = ?{guard}", (*fields.values(), key))
            if cur.rowcount == 0 and not guard:
                raise CatalogError(f"track {key} is not in the catalog")
            return cur.rowcount

    # -- status: every change is an event of the track's lifecycle (core/domain/lifecycle.py) --

    def _set_status(self, key: str, event: Event, fields: dict[str, object], *, target: Status | str | None = None,
                    then: Callable[[Connection], None] | None = None) -> bool:
        """Apply ``event`` to ``key``'s status, with ``fields`` (plain columns) and ``then`` in
        the same transaction; True when the status changed, False when the lifecycle leaves
        the track alone on purpose (or it is not in the catalog). Raises ``TransitionRefused``.

        One conditional UPDATE (``WHERE status IN`` the event's sources) and its row count
        decide, so a concurrent change between a read and the write cannot be overwritten;
        only when nothing matched is the status read (in the same transaction) to say why."""
        rule = lifecycle.RULES[event]
        to = rule.resolve(target)
        sources = sorted(rule.sources) if to is not None else []
        values = {"status": to, **fields, "updated_at": now()}
        with self._connect() as conn:
            if sources:
                cur = conn.execute(
                    f"UPDATE tracks SET {', '.join(f'{name} = ?' for name in values)}"
                    f" WHERE key = ? AND status IN ({', '.join('?' for _ in sources)})",
                    (*values.values(), key, *sources))
                if cur.rowcount:
                    if then is not None:
                        then(conn)
                    return True
            row = conn.execute("SELECT status FROM tracks WHERE key = ?", (key,)).fetchone()
        if row is None:  # e.g. a step that failed before its track was registered
            return False
        lifecycle.decide(row[0], event, target, key=key)  # raises, unless the event ignores that status
        return False

    @staticmethod
    def _free_names(key: str) -> Callable[[Connection], None]:
        """Names a failed track had reserved are free for other songs again."""
        return lambda conn: conn.execute("DELETE FROM path_reservations WHERE track_key = ?", (key,))

    _NO_ERROR = {"error": None, "error_step": None, "error_reason": None}

    def mark_running(self, key: str) -> bool:
        return self._set_status(key, Event.START, self._NO_ERROR)

    def mark_failed(self, key: str, step: str, message: str, reason: Reason) -> bool:
        return self._set_status(key, Event.FAIL, {"error": message, "error_step": step,
                                                  "error_reason": Reason.of(reason)}, then=self._free_names(key))

    def mark_crashed(self, key: str, message: str, step: str = "run") -> bool:
        """The run working on ``key`` died: failed, only while it is still running."""
        return self._set_status(key, Event.CRASH, {"error": message, "error_step": step,
                                                   "error_reason": Reason.CRASHED}, then=self._free_names(key))

    def mark_unavailable(self, key: str, step: str, message: str, reason: Reason) -> bool:
        """A listing says the source cannot be downloaded: failed, only while no run has touched it."""
        return self._set_status(key, Event.REJECT, {"error": message, "error_step": step,
                                                    "error_reason": Reason.of(reason)}, then=self._free_names(key))

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

    def keeper_of(self, key: str) -> str:
        """The track a duplicate finally belongs to (following chains), or ``key`` itself."""
        seen = {key}
        with self._connect() as conn:
            while True:
                row = conn.execute("SELECT duplicate_of FROM tracks WHERE key = ?", (key,)).fetchone()
                if row is None or not row[0] or row[0] in seen:
                    return key
                key = row[0]
                seen.add(key)

    def duplicates_of(self, key: str) -> list[str]:
        """Tracks set aside as copies of ``key``, following chains (a copy of a copy)."""
        with self._connect() as conn:
            return [r[0] for r in conn.execute(
                "WITH RECURSIVE d(key) AS (SELECT key FROM tracks WHERE duplicate_of = ? AND status = 'duplicate'"
                " UNION SELECT t.key FROM tracks t JOIN d ON t.duplicate_of = d.key WHERE t.status = 'duplicate')"
                " SELECT key FROM d WHERE key <> ?", (key, key))]

    def repoint_duplicates(self, old: str, new: str) -> list[str]:
        """Duplicates of ``old`` become duplicates of ``new`` (``old`` was replaced by a better copy)."""
        with self._connect() as conn:
            keys = [r[0] for r in conn.execute("SELECT key FROM tracks WHERE duplicate_of = ?", (old,))]
            conn.execute("UPDATE tracks SET duplicate_of = ?, updated_at = ? WHERE duplicate_of = ?", (new, now(), old))
        return keys

    def keys_by(self, column: str, value: str) -> list[str]:
        """Tracks with ``isrc`` or ``name_key`` equal to ``value`` (indexed lookups)."""
        if column not in ("isrc", "name_key"):
            raise ValueError(column)
        with self._connect() as conn:
            return [r[0] for r in conn.execute(f"SELECT key FROM tracks WHERE {column} = ?", (value,))]

    def count(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT count(*) FROM tracks").fetchone()[0]

    def tracks(self, status: str | None = None) -> list[TrackRow]:
        query, args = "SELECT * FROM tracks", ()
        if status:
            query, args = query + " WHERE status = ?", (status,)
        with self._connect() as conn:
            return [self._track(row) for row in conn.execute(query + " ORDER BY created_at, seq", args)]

    # -- files --------------------------------------------------------------------------

    def record_file(self, key: str, fmt: str, path: Path, *, size: int, sha256: str, duration_s: float,
                    codec: str, sample_rate: int, bits: int | None) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO files (track_key, format, path, size, sha256, duration_s, codec, sample_rate,"
                " bits, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(track_key, format) DO UPDATE SET path = excluded.path, size = excluded.size,"
                " sha256 = excluded.sha256, duration_s = excluded.duration_s, codec = excluded.codec,"
                " sample_rate = excluded.sample_rate, bits = excluded.bits, updated_at = excluded.updated_at",
                (key, fmt, self._rel(path), size, sha256, duration_s, codec, sample_rate, bits, now()),
            )
            conn.execute("DELETE FROM path_reservations WHERE track_key = ? AND format = ?", (key, fmt))

    def reserve_path(self, key: str, fmt: str, candidates: list[Path], *,
                     free: Callable[[Path], bool]) -> Path | None:
        """The first of ``candidates`` that ``key`` may write its ``fmt`` file to, reserved;
        None when every one belongs to something else.

        A name is ``key``'s when its file or reservation is; it is free when no other
        track's file or reservation holds it (case-insensitively: exFAT and macOS volumes
        fold case) and ``free(path)`` says nothing else is on disk there. Looking and
        reserving happen in one write transaction, so two runs writing two different songs
        with the same name at the same moment get two names.
        """
        with self._connect() as conn:
            for path in candidates:
                stored = self._rel(path)
                # A reservation counts while its track is being worked on; one left by a run
                # killed before it could record or fail (its track no longer running) does not.
                owners = {r[0] for r in conn.execute(
                    "SELECT track_key FROM files WHERE lower(path) = lower(?)"
                    " UNION SELECT r.track_key FROM path_reservations r JOIN tracks t ON t.key = r.track_key"
                    " WHERE r.fold = ? AND (t.status = 'running' OR r.track_key = ?)", (stored, _fold(stored), key))}
                if owners == {key} or (not owners and free(path)):
                    chosen = path
                    break
            else:
                return None
            conn.execute("DELETE FROM path_reservations WHERE (track_key = ? AND format = ?) OR fold = ?",
                         (key, fmt, _fold(self._rel(chosen))))
            conn.execute("INSERT INTO path_reservations (fold, track_key, format, created_at) VALUES (?, ?, ?, ?)",
                         (_fold(self._rel(chosen)), key, fmt, now()))
        return chosen

    def file(self, key: str, fmt: str) -> dict | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM files WHERE track_key = ? AND format = ?", (key, fmt)).fetchone()
        return self._file(row) if row else None

    def files(self, keys: Iterable[str] | None = None) -> list[dict]:
        """Every file, or those of ``keys`` (looked up by key: per-track steps call this, and
        a large library must not be read whole each time)."""
        with self._connect() as conn:
            if keys is None:
                return [self._file(r) for r in conn.execute("SELECT * FROM files ORDER BY track_key, format")]
            wanted = sorted(set(keys))
            rows = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                rows += conn.execute(f"SELECT * FROM files WHERE track_key IN ({','.join('?' * len(chunk))})"
                                     " ORDER BY track_key, format", chunk).fetchall()
        return [self._file(row) for row in rows]

    def repath(self, column: str, old: Path, new: Path) -> None:
        """A track file (``raw_path`` or ``cover_path``) moved from ``old`` to ``new``."""
        if column not in ("raw_path", "cover_path"):
            raise ValueError(column)
        with self._connect() as conn:
            conn.execute(f"UPDATE tracks SET {column} = ?, updated_at = ? WHERE {column} = ?",
                         (self._rel(new), now(), self._rel(old)))

    def move_file(self, old: Path, new: Path) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE files SET path = ?, updated_at = ? WHERE path = ?",
                         (self._rel(new), now(), self._rel(old)))

    def path_owner(self, path: Path) -> str | None:
        """Which track's file is at ``path`` (to tell two songs with the same name apart)."""
        with self._connect() as conn:
            row = conn.execute("SELECT track_key FROM files WHERE lower(path) = lower(?)",
                               (self._rel(path),)).fetchone()
        return row[0] if row else None


    # -- playlists --------------------------------------------------------------------------
    #
    # A track belongs to any number of playlists (Spotify playlists, SoundCloud sets, YouTube
    # playlists, "Liked"); a playlist's membership is replaced as a whole at each sync, so a
    # track that left upstream leaves here too (its files stay in the library).

    def save_playlist(self, playlist_id: str, source: str, name: str, url: str | None = None,
                      snapshot: str | None = None) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO playlists (id, source, name, url, snapshot, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET name = excluded.name, url = excluded.url,"
                " snapshot = excluded.snapshot, removed_at = NULL, updated_at = excluded.updated_at",
                (playlist_id, source, name, url, snapshot, now()))

    def set_playlist_tracks(self, playlist_id: str, keys: list[str], added_at: dict[str, str] | None = None,
                            *, partial: bool = False, start: int = 0,
                            prepend: bool = False) -> tuple[list[str], list[str]]:
        """Set a playlist's members in order; returns (joined, left). With ``partial`` only
        adds or reorders (a chunk of a long playlist, from position ``start``), never
        removes; with ``prepend`` the new members go first and the others move down (new
        likes arrive at the top)."""
        added_at = added_at or {}
        with self._connect() as conn:
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

    def remove_playlist(self, playlist_id: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM playlist_tracks WHERE playlist_id = ?", (playlist_id,))
            conn.execute("UPDATE playlists SET removed_at = ?, updated_at = ? WHERE id = ?", (now(), now(), playlist_id))

    def playlists(self, include_removed: bool = False) -> list[dict]:
        query = "SELECT * FROM playlists" + ("" if include_removed else " WHERE removed_at IS NULL")
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(query + " ORDER BY source, name")]

    def playlist_tracks(self, playlist_id: str) -> list[str]:
        with self._connect() as conn:
            return [r[0] for r in conn.execute("SELECT track_key FROM playlist_tracks WHERE playlist_id = ?"
                                               " ORDER BY position", (playlist_id,))]

    def playlist_members(self) -> dict[str, list[str]]:
        """Every playlist's tracks in order, in one query (for the exports)."""
        members: dict[str, list[str]] = {}
        with self._connect() as conn:
            for playlist_id, key in conn.execute("SELECT playlist_id, track_key FROM playlist_tracks"
                                                 " ORDER BY playlist_id, position"):
                members.setdefault(playlist_id, []).append(key)
        return members

    def memberships(self, key: str) -> list[tuple[str, int, str | None]]:
        """(playlist id, position, added at) of every playlist ``key`` is in."""
        with self._connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(
                "SELECT playlist_id, position, added_at FROM playlist_tracks WHERE track_key = ?", (key,))]

    def add_membership(self, playlist_id: str, key: str, position: int, added_at: str | None = None) -> bool:
        with self._connect() as conn:
            cur = conn.execute("INSERT INTO playlist_tracks (playlist_id, track_key, position, added_at)"
                               " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", (playlist_id, key, position, added_at))
            return cur.rowcount > 0

    def remove_membership(self, playlist_id: str, key: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM playlist_tracks WHERE playlist_id = ? AND track_key = ?", (playlist_id, key))

    # -- mirrors ----------------------------------------------------------------------------
    #
    # Notion and Eagle mirror the catalog; these rows say which remote record is each
    # track's and what the pipeline last wrote there, so a sync compares before it writes
    # and never overwrites what a person changed since.

    def mirror(self, key: str, sink: str) -> dict | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM mirrors WHERE track_key = ? AND sink = ?", (key, sink)).fetchone()
        return _mirror(row) if row else None

    def mirrors(self, sink: str) -> list[dict]:
        """Every record of ``sink``, with its track's ``track_status`` and ``track_error`` (one
        query: the sensors look at all of them each tick)."""
        with self._connect() as conn:
            return [_mirror(r) for r in conn.execute(
                "SELECT m.*, t.status AS track_status, t.error AS track_error FROM mirrors m"
                " JOIN tracks t ON t.key = m.track_key WHERE m.sink = ? ORDER BY t.seq", (sink,))]

    def mirror_owner(self, sink: str, remote_id: str) -> str | None:
        """The track whose record ``remote_id`` is."""
        with self._connect() as conn:
            row = conn.execute("SELECT track_key FROM mirrors WHERE sink = ? AND remote_id = ?",
                               (sink, remote_id)).fetchone()
        return row[0] if row else None

    def set_mirror(self, key: str, sink: str, remote_id: str, *, written: dict | None = None,
                   status: str | None = None) -> None:
        """Record ``key``'s remote record; ``written`` replaces what was last written when
        given, ``status`` the status last shown when given."""
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO mirrors (track_key, sink, remote_id, written, status, synced_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(track_key, sink) DO UPDATE SET"
                " remote_id = excluded.remote_id, written = COALESCE(?, mirrors.written),"
                " status = COALESCE(?, mirrors.status), synced_at = excluded.synced_at",
                (key, sink, remote_id, json.dumps(written or {}), status, now(),
                 None if written is None else json.dumps(written), status))

    def forget_mirror(self, key: str, sink: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM mirrors WHERE track_key = ? AND sink = ?", (key, sink))

    def record_merge(self, sink: str, remote_id: str, key: str, keeper_remote_id: str, added: dict) -> None:
        """A duplicate's remote record was merged into the keeper's and put in the trash."""
        with self._connect() as conn:
            conn.execute("INSERT INTO mirror_merges (sink, remote_id, track_key, keeper_remote_id,"
                         " added, merged_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sink, remote_id) DO UPDATE SET"
                         " track_key = excluded.track_key, keeper_remote_id = excluded.keeper_remote_id,"
                         " added = excluded.added, merged_at = excluded.merged_at",
                         (sink, remote_id, key, keeper_remote_id, json.dumps(added), now()))

    def merges(self, sink: str, keys: Iterable[str] | None = None) -> list[dict]:
        with self._connect() as conn:
            rows = [dict(r) for r in conn.execute("SELECT * FROM mirror_merges WHERE sink = ? ORDER BY merged_at",
                                                  (sink,))]
        wanted = None if keys is None else set(keys)
        return [{**r, "added": json.loads(r["added"])} for r in rows if wanted is None or r["track_key"] in wanted]

    def forget_merge(self, sink: str, remote_id: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM mirror_merges WHERE sink = ? AND remote_id = ?", (sink, remote_id))

    # -- fingerprint index ----------------------------------------------------------------
    #
    # The inverted index of core.fpindex, persisted: (term, track) rows, so checking one new
    # track against the library is one indexed lookup of its ~200 terms, and adding a track
    # adds its rows (no rebuild).

    def index_fingerprint(self, key: str, terms: Iterable[int]) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM fingerprint_terms WHERE track_key = ?", (key,))
            conn.executemany("INSERT INTO fingerprint_terms (term, track_key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                             [(int(term), key) for term in terms])
            conn.execute("UPDATE tracks SET fingerprint_indexed = 1 WHERE key = ?", (key,))

    def unindexed_fingerprints(self) -> list[tuple[str, str]]:
        """(key, fingerprint) of tracks fingerprinted before the index existed."""
        with self._connect() as conn:
            rows = conn.execute("SELECT key, fingerprint FROM tracks WHERE fingerprint IS NOT NULL"
                                " AND fingerprint_indexed = 0").fetchall()
        return [(row[0], row[1]) for row in rows]

    def fingerprint_candidates(self, terms: Iterable[int], min_shared: int, stop_df: int,
                               exclude: str | None = None) -> list[tuple[str, int]]:
        """Tracks sharing at least ``min_shared`` of ``terms`` (stop words left out), most first."""
        values = [int(t) for t in terms]
        if not values:
            return []
        counts: dict[str, int] = {}
        with self._connect() as conn:
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

    # -- dedup groups -----------------------------------------------------------------------

    def save_group(self, group: dict, *, replace_applied: bool = False) -> bool:
        """Insert or update a dedup group (``id``, ``keeper``, ``members``, ``state``, ``rule``,
        ``reason``, ``evidence``, ``previous``, ``moves``). An applied group is history (its
        moves are what undo follows) and is only changed with ``replace_applied``; returns
        whether the row was written."""
        stamp = now()
        guard = "" if replace_applied else " WHERE dedup_groups.state <> 'applied'"
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT INTO dedup_groups (id, keeper, members, state, rule, reason, evidence, previous, moves,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET keeper = excluded.keeper, members = excluded.members,"
                " state = excluded.state, rule = excluded.rule, reason = excluded.reason,"
                " evidence = excluded.evidence, previous = excluded.previous, moves = excluded.moves,"
                " updated_at = excluded.updated_at" + guard,
                (group["id"], group["keeper"], _encode(group["members"]), group["state"], group["rule"],
                 group["reason"], _encode(group["evidence"]), _encode(group.get("previous", {})),
                 _encode([[self._rel(a), self._rel(b)] for a, b in group.get("moves", [])]), stamp, stamp),
            )
            return cur.rowcount > 0

    def group(self, group_id: str) -> dict | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM dedup_groups WHERE id = ?", (group_id,)).fetchone()
        return self._group(row) if row else None

    def _group(self, row: database.Row) -> dict:
        data = _group(row)
        data["moves"] = [[str(self._abs(a)), str(self._abs(b))] for a, b in data["moves"] or []]
        return data

    def undone_pairs(self) -> set[frozenset[str]]:
        """Pairs a user separated with `dedup --undo` (every two members of an undone group):
        never grouped again automatically."""
        pairs: set[frozenset[str]] = set()
        for group in self.groups(state="undone"):
            pairs |= {frozenset(pair) for pair in itertools.combinations(group["members"], 2)}
        return pairs

    def groups(self, state: str | None = None, keeper: str | None = None) -> list[dict]:
        query, args = "SELECT * FROM dedup_groups WHERE 1 = 1", []
        if state:
            query, args = query + " AND state = ?", [*args, state]
        if keeper:
            query, args = query + " AND keeper = ?", [*args, keeper]
        with self._connect() as conn:
            return [self._group(row) for row in conn.execute(query + " ORDER BY created_at, id", args)]


#: The columns stored as JSON text. Callers read and write them as lists and dicts; they
#: are encoded and decoded here and nowhere else.
_JSON_COLUMNS = frozenset({"source_urls", "artists", "genres", "match"})
_GROUP_JSON_COLUMNS = ("members", "evidence", "previous", "moves")
#: Track columns holding paths, stored relative to the library folder.
_TRACK_PATH_COLUMNS = ("raw_path", "cover_path", "source_path")


def _fold(path: str | None) -> str:
    """A path as case-insensitive volumes (exFAT, APFS, HFS+) compare names: NFC, case-folded
    (SQLite's NOCASE folds ASCII only: "Ébène" and "ébène" would pass as two names)."""
    return unicodedata.normalize("NFC", path or "").casefold()


def _mirror(row: database.Row) -> dict:
    data = dict(row)
    data["written"] = json.loads(data["written"] or "{}")
    return data


def _encode(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _decode(text: str | None) -> object:
    return json.loads(text) if text else None


def _track(row: database.Row) -> dict:
    data = dict(row)
    for name in _JSON_COLUMNS:
        data[name] = _decode(data.get(name))
    data["source_urls"] = data["source_urls"] or []
    return data


def _group(row: database.Row) -> dict:
    data = dict(row)
    for name in _GROUP_JSON_COLUMNS:
        data[name] = _decode(data[name])
    return data
