"""Dagster's SQLite storage, with each process keeping its event log connections open.

Dagster's SQLite event log creates an engine, opens the file, runs one statement and closes
it again for every read and write: about 70 events a track run, each written to the run's
own file and most also to the index, plus the reads around every step. In WAL mode the last
connection to close a file checkpoints it and deletes its WAL, so each of those pays an
open, a checkpoint and a close: about 0.4 CPU-s a track run on the 2-core development
machine, the largest share of Dagster's bookkeeping (README, "Orchestration benchmark").

``WarmSqliteStorage`` is that same storage (same files, same schema: a home can switch to it
and back) whose event log keeps one pooled connection per file in each process: the index,
and the few run files in use. Two things stay as they were:

- the UI follows a live run by watching its run file for changes (watchdog), and in WAL mode
  a commit changes only the ``-wal`` file; so a transaction that wrote to a run file is
  followed by a passive checkpoint, which copies it into the file the UI watches;
- no connection crosses a fork (they are closed before it, and reopened when next needed),
  and they are closed when the instance is disposed or the process exits.

The run and schedule storages are Dagster's own: they are touched a few times a run, and
pooling them measured no difference.
"""

import atexit
import contextlib
import os
import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from .platform._dagster_internal import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    ConfigurableClassData,
    DagsterSqliteStorage,
    SqliteEventLogStorage,
    SqliteRunStorage,
    SqliteScheduleStorage,
    event_logs_directory,
    runs_directory,
    schedule_directory,
)

#: Run files whose connection a process keeps (the runs it is executing or showing); the
#: least recently used beyond these are closed.
RUN_FILES_KEPT = 8

_storages: "weakref.WeakSet[WarmSqliteEventLogStorage]" = weakref.WeakSet()


class WarmSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log with one pooled connection per file per process."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()  # before: __init__ reads the index
        super().__init__(base_dir, inst_data)
        _storages.add(self)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            with engine.connect() as conn:
                sqlite = conn.connection.dbapi_connection
                changes = sqlite.total_changes
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD_NAME and sqlite.total_changes != changes:
                    # into the run file itself, where the UI's watcher sees it (see the module);
                    # the write is committed already, so a checkpoint that fails is only skipped
                    with contextlib.suppress(sqlite3.Error):
                        sqlite.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _engine(self, shard: str) -> sa.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = sa.create_engine(self.conn_string_for_shard(shard), pool_size=1, max_overflow=2,
                                  connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                                                "check_same_thread": False})
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in runs[:-RUN_FILES_KEPT]:
            self._engines.pop(name).dispose()
        return engine

    def close_connections(self, wait_s: float = -1) -> None:
        """Close this process's connections (each checkpoints its file); ``wait_s``: how long to
        wait for one in use (-1: as long as it takes; at exit a daemon thread may hold one for
        good, and before a fork nothing may wait)."""
        if not self._db_lock.acquire(blocking=wait_s != 0, timeout=wait_s if wait_s > 0 else -1):
            return
        try:
            while self._engines:
                self._engines.popitem()[1].dispose()
        finally:
            self._db_lock.release()

    def forget_connections(self) -> None:
        """In a forked child: what is left of the parent's connections (one another thread was
        using at the fork) is the parent's, and so is its lock (no thread here will release it)."""
        self._db_lock = threading.Lock()
        for engine in self._engines.values():
            engine.dispose(close=False)
        self._engines.clear()

    def wipe(self) -> None:
        self.close_connections()  # its files are deleted
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self.close_connections()


class WarmSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (``storage: sqlite:``) with ``WarmSqliteEventLogStorage``."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(runs_directory(base_dir))
        self._event_log_storage = WarmSqliteEventLogStorage(event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: dict) -> "WarmSqliteStorage":
        os.makedirs(config_value["base_dir"], exist_ok=True)
        return cls(config_value["base_dir"], inst_data=inst_data)


def _close_before_fork() -> None:
    """No SQLite connection may cross a fork (sqlite.org/howtocorrupt.html, 2.6): SQLite keeps
    a process's file locks in memory, so a child's new connections would trust the parent's
    locks, and the parent closing its last connection would delete a WAL the child still
    writes to. Idle connections are closed here (the parent reopens them when next needed)."""
    for storage in list(_storages):
        storage.close_connections(wait_s=0)


def _forget_in_child() -> None:
    for storage in list(_storages):
        storage.forget_connections()


def _close_all() -> None:
    for storage in list(_storages):
        storage.close_connections(wait_s=1.0)


os.register_at_fork(before=_close_before_fork, after_in_child=_forget_in_child)
atexit.register(_close_all)
