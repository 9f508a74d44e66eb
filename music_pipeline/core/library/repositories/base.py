"""What every repository shares: the catalog's database and its transactions.

``read()`` is a read transaction: it takes no lock and never waits for a writer. ``write()``
is a write transaction: on SQLite it holds SQLite's one write lock (keep it short, and never
use it for a read); on PostgreSQL it takes only the advisory locks it is given, per key
(``"track:<key>"``), per name, per counter; a single-statement write gives none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from .. import database
from ..damage import damage, damaged, errors
from ..database import Connection
from ..rows import Paths


class Database:
    """One catalog's database, as its repositories use it."""

    def __init__(self, path: Path, url: str, *, shared: bool, where: str) -> None:
        self.path = path  # the SQLite file (checked for damage before each transaction)
        self.url = url
        self.shared = shared
        self.where = where
        self.paths = Paths(path.parent)

    @property
    def engine(self) -> sa.Engine:
        return database.engine_for(self.url)

    @contextlib.contextmanager
    def _transaction(self, write: bool, locks: tuple[str | int, ...]) -> Iterator[Connection]:
        if not self.shared:
            why = damage(self.path)
            if why:
                raise damaged(self.path, why)
        with errors(self.where), database.transaction(self.engine, write=write, locks=locks) as conn:
            yield conn

    def read(self) -> contextlib.AbstractContextManager[Connection]:
        """A read transaction: one consistent view, no lock, never waits for a writer."""
        return self._transaction(False, ())

    def write(self, *locks: str | int) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction holding ``locks`` (PostgreSQL advisory locks; SQLite has its one
        writer lock) from its first statement until it commits."""
        return self._transaction(True, locks)


class Repository:
    """One aggregate of the catalog."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._paths = db.paths
