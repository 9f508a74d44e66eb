"""The catalog's database core: SQLite in the library folder, or PostgreSQL when the library
is shared by several machines (``MUSIC_CATALOG_URL``).

The catalog writes its queries once, in SQL both understand (``ON CONFLICT``, ``WITH
RECURSIVE``, ``lower()``); this module holds what differs between the two and nothing else:

- opening: SQLite in WAL mode with a busy timeout, a connection per transaction; PostgreSQL
  through a small pool, each process its own (dropped in a forked child, never shared);
- transactions. A READ transaction never takes a lock: SQLite's deferred ``BEGIN`` in WAL
  mode reads the last committed state while a writer works, PostgreSQL's MVCC does the same.
  A WRITE transaction on SQLite is ``BEGIN IMMEDIATE`` (SQLite has one writer at a time; the
  lock is taken before the first read, so a read-then-write never loses to another writer).
  PostgreSQL lets writers run together: a write transaction takes only the advisory locks it
  names (:func:`lock_id` of e.g. ``"track:<key>"``, ``"name:<folded path>"``), all at once in
  one sorted statement (so two transactions never wait for each other in a circle), and a
  single-statement write names none. :data:`MIGRATION_LOCK` is the one lock for the whole
  catalog, taken by migrations only;
- the schema version: ``PRAGMA user_version`` in SQLite (so an older music_pipeline still
  refuses a newer file), a one-row table in PostgreSQL.

Migrations are in ``migrations.py``, the errors as sentences in ``damage.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa

#: The advisory lock for the whole catalog (any constant: ours alone), taken by migrations
#: only. Older versions of music_pipeline took it in every write transaction.
MIGRATION_LOCK = 0x6D75_7369_63  # "music"

_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


def _forget_engines() -> None:
    """In a forked child: the parent's pooled connections are the parent's (a socket two
    processes write to corrupts both); drop them without closing, and open new ones."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_engines)


def redact(url: str | sa.URL) -> str:
    """A database URL fit to show: no password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not even a URL: show nothing of it
        return "(an unreadable database URL)"


def engine_for(url: str) -> sa.Engine:
    """One engine (and pool) per database per process."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create_engine(url)
        return engine


def _create_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # a connection per transaction, as sqlite3 is used everywhere: opening a file is cheap, and
        # a process touching many libraries (tests, doctor) keeps no file handles open
        engine = sa.create_engine(parsed, connect_args={"timeout": 30}, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi, _record) -> None:
            dbapi.isolation_level = None  # transactions are begun here, not by the driver
            _use_wal(dbapi)
            dbapi.execute("PRAGMA foreign_keys=ON")

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"the catalog lives in SQLite or PostgreSQL, not {parsed.get_backend_name()}")
    if parsed.drivername == "postgresql":  # a plain postgresql:// URL: the driver installed with us
        parsed = parsed.set(drivername="postgresql+psycopg2")
    # a small pool: a process runs one track at a time; pre-ping survives a restarted server
    return sa.create_engine(parsed, pool_size=2, max_overflow=4, pool_pre_ping=True, pool_recycle=1800,
                            connect_args={"connect_timeout": 10, "application_name": "music_pipeline"})


def _use_wal(conn: sqlite3.Connection) -> None:
    """WAL, so readers never wait for a writer. The mode is stored in the file; switching a
    new file that other processes are opening at the same moment answers "locked" at once
    (SQLite does not wait there), so wait a little and look again."""
    for attempt in range(100):
        if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt == 99:
                raise
            time.sleep(0.05)


class Row(tuple):
    """A result row read by position (``row[0]``) or by name (``row["key"]``), whichever the
    database. Only the repositories read these; what they return are the typed rows of
    ``rows.py``."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence, names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, item):  # type: ignore[override]
        if isinstance(item, str):
            return tuple.__getitem__(self, self._names[item])
        return tuple.__getitem__(self, item)

    def keys(self) -> list[str]:
        return list(self._names)


class Result:
    """What ``Connection.execute`` returns: iterate it, ``fetchone()``, ``fetchall()``, ``rowcount``."""

    def __init__(self, cursor: sa.CursorResult) -> None:
        self.rowcount = cursor.rowcount
        if cursor.returns_rows:
            names = {name: i for i, name in enumerate(cursor.keys())}
            self._rows = [Row(tuple(r), names) for r in cursor.fetchall()]
        else:
            self._rows = []

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        return list(self._rows)


def _bind(sql: str, params: Sequence) -> tuple[sa.TextClause, dict]:
    """``?`` placeholders (the catalog's queries) as named binds, values adapted: a bool is
    stored as 0/1 in both databases (PostgreSQL refuses a boolean in an integer column)."""
    pieces = sql.split("?")
    if len(pieces) - 1 != len(params):
        raise ValueError(f"{len(pieces) - 1} placeholders, {len(params)} values: {sql}")
    text = pieces[0] + "".join(f":p{i}{piece}" for i, piece in enumerate(pieces[1:]))
    values = {f"p{i}": int(v) if isinstance(v, bool) else v for i, v in enumerate(params)}
    return sa.text(text), values


class Connection:
    """One transaction on the catalog's database, used like a ``sqlite3`` connection
    (``execute``, ``executemany`` with ``?`` placeholders)."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect.name

    def execute(self, sql: str, params: Sequence = ()) -> Result:
        text, values = _bind(sql, params)
        return Result(self._conn.execute(text, values))

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        rows = list(rows)
        if not rows:
            return
        text = _bind(sql, rows[0])[0]
        self._conn.execute(text, [_bind(sql, row)[1] for row in rows])

    def script(self, statements: Iterable[str]) -> None:
        """Statements without parameters, as written (a migration)."""
        for statement in statements:  # psycopg2 reads % as its own placeholder mark
            self._conn.exec_driver_sql(statement if self.dialect == "sqlite" else statement.replace("%", "%%"))

    @property
    def raw(self) -> sa.Connection:
        return self._conn


def lock_id(name: str) -> int:
    """The 64-bit PostgreSQL advisory lock id of ``name`` (e.g. ``"track:<key>"``): the first
    eight bytes of its BLAKE2b hash, signed as ``bigint`` wants."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextlib.contextmanager
def transaction(engine: sa.Engine, *, write: bool, locks: Iterable[str | int] = ()) -> Iterator[Connection]:
    """A transaction, committed when the block ends (rolled back on an exception).

    A read transaction takes no lock at all. A write transaction on SQLite holds SQLite's one
    write lock from its first statement; on PostgreSQL it first takes the advisory locks
    named in ``locks`` (names hashed by :func:`lock_id`, ints as they are), held until it ends.
    """
    with engine.connect() as conn:
        conn.info["write"] = write
        with conn.begin():
            if write and locks and conn.dialect.name == "postgresql":
                ids = sorted({lock if isinstance(lock, int) else lock_id(lock) for lock in locks})
                # one round trip, in a fixed order: two writers never wait for each other in a circle
                conn.execute(sa.text("SELECT count(pg_advisory_xact_lock(id)) FROM"
                                     " (SELECT unnest(CAST(:ids AS bigint[])) AS id ORDER BY 1) AS wanted"),
                             {"ids": ids})
            yield Connection(conn)


# -- the schema version ---------------------------------------------------------------------

VERSION_TABLE = "catalog_schema"


def schema_version(conn: Connection) -> int:
    if conn.dialect == "sqlite":
        return conn.raw.exec_driver_sql("PRAGMA user_version").scalar_one()
    if not sa.inspect(conn.raw).has_table(VERSION_TABLE):
        return 0
    return conn.raw.execute(sa.text(f"SELECT version FROM {VERSION_TABLE}")).scalar() or 0


def set_schema_version(conn: Connection, version: int) -> None:
    if conn.dialect == "sqlite":
        conn.raw.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
        return
    conn.raw.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
    conn.raw.exec_driver_sql(f"DELETE FROM {VERSION_TABLE}")
    conn.raw.execute(sa.text(f"INSERT INTO {VERSION_TABLE} (version) VALUES (:v)"), {"v": int(version)})


def has_tables(conn: Connection) -> bool:
    return bool(sa.inspect(conn.raw).get_table_names())


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path)}"
