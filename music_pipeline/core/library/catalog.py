"""The catalog: the library's source of truth, one SQLite file in the library folder, or a
PostgreSQL database when several machines share the library (``MUSIC_CATALOG_URL``).

One row per track (its sources, metadata, features, fingerprint, status and last error)
and one row per output file (path, size, checksum, codec). Notion and Eagle mirror it
later; they are never the only place something is known.

:class:`Catalog` opens the database (creating or migrating it: ``migrations.py``) and
exposes one repository per aggregate (``repositories/``), each returning typed rows
(``rows.py``): ``catalog.tracks``, ``catalog.files``, ``catalog.playlists``,
``catalog.mirrors``, ``catalog.fingerprints``, ``catalog.groups``. Reads are read
transactions that never wait for a writer; a write takes the narrowest lock that keeps it
exact (``database.py``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import sqlalchemy as sa

from ..domain.errors import TrackError
from . import database
from .damage import errors
from .database import Connection
from .migrations import SCHEMA_VERSION, create_schema, migrate
from .repositories import (
    FileRepository,
    FingerprintRepository,
    GroupRepository,
    MirrorRepository,
    PlaylistRepository,
    TrackRepository,
)
from .repositories.base import Database
from .store import exclusive

CATALOG_FILE = "catalog.sqlite"


class Catalog:
    """Access to the catalog: ``<library>/catalog.sqlite``, or the PostgreSQL database at
    ``url``. Transactions are short: Dagster runs, sensors and the CLI each open their own."""

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
        self._db = Database(self.path, self.url, shared=self.shared, where=self.where)
        self._migrate()
        self.tracks = TrackRepository(self._db)
        self.files = FileRepository(self._db)
        self.playlists = PlaylistRepository(self._db)
        self.mirrors = MirrorRepository(self._db)
        self.fingerprints = FingerprintRepository(self._db)
        self.groups = GroupRepository(self._db)

    @property
    def engine(self) -> sa.Engine:
        return database.engine_for(self.url)

    def _create(self) -> None:
        """A new SQLite catalog appears whole: built under a temporary name, then linked into
        place only if nothing is there yet. So an empty catalog file always means damage (see
        ``damage.damage``), and two processes creating one at once both end up using one."""
        tmp = self.path.with_name(f".{self.path.name}.new-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        try:
            engine = database._create_engine(database.sqlite_url(tmp))
            try:
                with errors(str(self.path)), database.transaction(engine, write=True) as conn:
                    create_schema(conn)
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

    def _migrate(self) -> None:
        with self._db.read() as conn:
            if database.schema_version(conn) == SCHEMA_VERSION:
                return
        # the whole catalog's lock: the version is read again under it (see migrations.py)
        with self._db.write(database.MIGRATION_LOCK) as conn:
            migrate(conn, self.root, self.where)

    @property
    def schema_version(self) -> int:
        with self._db.read() as conn:
            return database.schema_version(conn)

    def check(self) -> list[str]:
        """What is wrong with the catalog (empty when nothing): the file or the server,
        SQLite's own integrity check, the schema version. For `music-pipeline doctor`."""
        try:
            with self._db.read() as conn:
                problems = [] if self.shared else [
                    row[0] for row in conn.raw.exec_driver_sql("PRAGMA quick_check") if row[0] != "ok"]
                version = database.schema_version(conn)
        except TrackError as err:
            return [str(err)]
        if version != SCHEMA_VERSION:
            problems.append(f"schema version {version}, this version uses {SCHEMA_VERSION}")
        return problems

    def read(self) -> contextlib.AbstractContextManager[Connection]:
        """A read transaction on the catalog's database (for a query no repository has: tests,
        benchmarks)."""
        return self._db.read()
