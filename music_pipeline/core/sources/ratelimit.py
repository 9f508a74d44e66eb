"""A request rate limiter shared by every process of the code location.

Notion allows about 3 requests per second on average per integration, and sensors, run
workers and bulk-run lanes are separate processes (even on one machine): a limiter in one
process's memory would let each of them send 3 per second. The schedule therefore lives in
a small file, e.g. under ``DAGSTER_HOME``, that every process reads and updates in turn.

Design
------
The schedule is GCRA, the "next free slot" form of a token bucket: one number, ``tat``
(the theoretical arrival time of the next request at the average rate). A caller takes the
lock, reserves the slot ``max(now, tat - (burst - 1) / rate)``, moves ``tat`` on by
``1 / rate``, releases the lock and only then sleeps until its slot. So nobody sleeps
holding the lock, nobody polls, and slots are handed out in the order callers reached the
lock: no process starves, however many wait.

The file is protected by ``flock`` rather than being a SQLite database (as the catalog
is) because:

* the state is six numbers that need no durability: a torn or zeroed file (a power cut)
  is detected by its checksum and read as a fresh limiter, which costs at most one burst;
* a blocked ``flock`` waits in the kernel and is handed over the moment the holder lets
  go, where SQLite's busy handler sleeps and retries on a back-off (up to 100 ms a try)
  and lets a late comer overtake;
* first use by many processes at once is just ``O_CREAT`` of an empty file (read as a fresh
  limiter), with none of the "locked" answers a new SQLite file gives while switching to WAL;
* a process killed while holding the lock loses it with its file descriptors (the kernel
  releases it), and a kill in the middle of the one small ``pwrite`` of the state is at
  worst the torn-file case above.

The file must be on a local disk (``flock`` on some network shares does nothing): this is
refused with a clear error rather than silently not limiting.

Clocks
------
The shared schedule is in wall-clock seconds (``time.time()``), the only clock every
process agrees on across restarts and reboots; sleeps are relative durations, so a clock
step never changes a sleep already started. Each write also stamps the state with a
monotonic clock (``CLOCK_BOOTTIME`` where there is one, so a suspended laptop does not
count as a step), and the next reader compares the wall time elapsed with the monotonic
time elapsed: a difference beyond :data:`CLOCK_SLACK` is a clock step, and the schedule is
moved by it, so the waits still ahead keep their length whether the clock jumped back a day
or forward an hour. A schedule further ahead than :data:`HORIZON` cannot have been made by
this code (a state from before a reboot, a foreign file) and is started afresh, so no
caller ever sleeps a negative or absurd time.

All processes using one file should pass the same ``rate`` and ``burst``.

Several machines
----------------
Notion counts requests per integration, not per machine. Machines that share a PostgreSQL
database (``music-pipeline up --production`` keeps Dagster's instance there) keep the same
state in one row of it instead of the file (:meth:`SharedRateLimiter.postgres`): the row lock
(``SELECT ... FOR UPDATE``) plays the part of ``flock``, and the database's clock is the one
every machine reads, so machines whose clocks disagree still share one schedule. Waits are
durations, slept locally as before.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

from ..domain.errors import Reason, TrackError

#: A ``Retry-After`` longer than this is taken as this (Notion's are seconds; an hour
#: would be a misread header, and no sink should stop for longer than a run lasts).
MAX_PENALTY = 600.0
#: How far ahead of now the schedule may legitimately reach (the longest penalty plus a
#: long queue); beyond it the state is not ours and is started afresh.
HORIZON = 3600.0
#: A wall-clock/monotonic disagreement larger than this is a clock step, not jitter.
CLOCK_SLACK = 0.25

_MAGIC = b"RLv1"
_FORMAT = struct.Struct("<4s6d")  # magic, tat, last slot, blocked_until, shift, wall and monotonic stamps
_CRC = struct.Struct("<I")
_SIZE = _FORMAT.size + _CRC.size

P = ParamSpec("P")
R = TypeVar("R")


class RateLimitTimeout(TrackError, TimeoutError):
    """No request slot within the caller's timeout (the shared schedule is that full)."""

    reason = Reason.RATE_LIMITED


@dataclass
class _State:
    tat: float  # theoretical arrival time of the next request (wall clock)
    last_slot: float  # the latest slot handed out (later than now: someone is waiting for it)
    blocked_until: float  # no request before this (the last penalty's end)
    shift: float  # total seconds penalties pushed reserved slots back (waiters compare it)
    wall: float  # time.time() at the last write
    mono: float  # _monotonic() at the last write

    def pack(self) -> bytes:
        body = _FORMAT.pack(_MAGIC, self.tat, self.last_slot, self.blocked_until, self.shift, self.wall, self.mono)
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def unpack(cls, data: bytes) -> _State | None:
        """The state in ``data``, or ``None`` when it is empty, torn or not ours."""
        if len(data) != _SIZE:
            return None
        body, (crc,) = data[:_FORMAT.size], _CRC.unpack(data[_FORMAT.size:])
        if zlib.crc32(body) != crc:
            return None
        magic, *values = _FORMAT.unpack(body)
        if magic != _MAGIC or not all(math.isfinite(v) for v in values):
            return None
        return cls(*values)


def _monotonic() -> float:
    """A clock no one can set, counting suspended time too where the system offers that."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


class _Store(Protocol):
    """Where the shared state lives: ``locked()`` yields the stored bytes (empty when none),
    the present wall time, a monotonic stamp, and a function that writes new bytes, all
    under one lock that excludes every other user of the store."""

    where: str

    def locked(self, shared: bool = False) -> contextlib.AbstractContextManager[
            tuple[bytes, float, float, Callable[[bytes], None]]]: ...


class _FileStore:
    """A small file on a local disk, locked with ``flock``: every process of one machine."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.where = str(self.path)

    @contextlib.contextmanager
    def locked(self, shared: bool = False) -> Iterator[tuple[bytes, float, float, Callable[[bytes], None]]]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            except OSError as err:
                if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF):
                    raise TrackError(
                        f"Cannot lock the rate limiter's file {self.path} ({err.strerror}).",
                        hint="Put it on a local disk (it is shared by the processes of this machine).",
                    ) from err
                raise

            def write(data: bytes) -> None:
                # One small pwrite, no fsync: losing the state (a power cut) costs one burst at most.
                os.pwrite(fd, data, 0)
                if os.fstat(fd).st_size != len(data):
                    os.ftruncate(fd, len(data))

            yield os.pread(fd, _SIZE + 1, 0), time.time(), _monotonic(), write
        finally:
            os.close(fd)  # releases the lock


class _PostgresStore:
    """One row of a table in a PostgreSQL database every machine reaches, locked with
    ``SELECT ... FOR UPDATE``; times are the database's, so no machine's clock matters.
    ``connect()`` opens a psycopg2 connection; one is kept per store and opened again after
    an error."""

    TABLE = "music_pipeline_rate_limits"

    def __init__(self, connect: Callable[[], Any], name: str, where: str) -> None:
        self._connect, self.name, self.where = connect, name, where
        self._conn: Any = None
        self._lock = threading.Lock()  # one transaction at a time on the connection

    @contextlib.contextmanager
    def locked(self, shared: bool = False) -> Iterator[tuple[bytes, float, float, Callable[[bytes], None]]]:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
                with self._conn, self._conn.cursor() as cur:  # once per connection; no-op when it exists
                    # two first users at once would race inside CREATE TABLE IF NOT EXISTS: one at a time
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.TABLE,))
                    cur.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (name text PRIMARY KEY, state bytea)")
            conn = self._conn
            try:
                with conn, conn.cursor() as cur:  # one transaction: committed on leaving, rolled back on error
                    cur.execute(f"INSERT INTO {self.TABLE} (name, state) VALUES (%s, '') ON CONFLICT DO NOTHING",
                                (self.name,))
                    cur.execute(f"SELECT state, extract(epoch from clock_timestamp())::float8 FROM {self.TABLE} "
                                f"WHERE name = %s FOR {'SHARE' if shared else 'UPDATE'}", (self.name,))
                    data, now = cur.fetchone()

                    def write(new: bytes) -> None:
                        cur.execute(f"UPDATE {self.TABLE} SET state = %s WHERE name = %s", (new, self.name))

                    # the database's clock is every machine's: no step to detect between writers
                    yield bytes(data or b""), float(now), float(now), write
            except Exception as err:
                if type(err).__module__.startswith("psycopg2"):  # the connection may be broken: a new one next time
                    with contextlib.suppress(Exception):
                        conn.close()
                    self._conn = None
                raise


class SharedRateLimiter:
    """At most ``rate`` requests per second on average, ``burst`` at once, across every
    process that uses the state file at ``path`` (created on first use).

    ``acquire()`` before each request; ``penalize(retry_after)`` when the server answers 429,
    so every process stops, not only the one that was told. ``with limiter.slot():`` and the
    ``@limiter.limited`` decorator are the same as ``acquire()`` for callers that prefer them.
    """

    def __init__(self, path: Path | None, rate: float = 3.0, burst: int = 3, *, store: _Store | None = None) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of requests per second, not {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        if (path is None) == (store is None):
            raise ValueError("give the limiter's file or its store, one of them")
        self._store: _Store = store if store is not None else _FileStore(Path(path))  # type: ignore[arg-type]
        self.path = Path(path) if path is not None else None
        self.where = self._store.where
        self.rate = float(rate)
        self.burst = int(burst)
        self._interval = 1.0 / self.rate
        self._tolerance = (self.burst - 1) * self._interval  # how far before tat a slot may be

    @classmethod
    def postgres(cls, connect: Callable[[], Any], name: str, rate: float = 3.0, burst: int = 3, *,
                 where: str = "PostgreSQL") -> SharedRateLimiter:
        """A limiter shared by every machine that reaches one PostgreSQL database: ``connect()``
        opens a psycopg2 connection to it, ``name`` names the schedule (one per integration),
        ``where`` says which database in messages (no password)."""
        return cls(None, rate, burst, store=_PostgresStore(connect, name, where))

    def acquire(self, timeout: float | None = None) -> float:
        """Block (sleeping) until this caller may send one request; return the seconds waited.

        With ``timeout``, raise :class:`RateLimitTimeout` instead of waiting longer; when the
        wait is known to be too long from the start no slot is taken, so giving up costs the
        other processes nothing. The timeout does not cover waiting for the lock itself,
        which no process holds for more than a read and a write of the small file (one
        stopped with SIGSTOP while holding it would stall the others until it resumes).
        """
        start = time.monotonic()
        wait, shift = self._reserve(timeout)
        if wait <= 0:
            return time.monotonic() - start
        time.sleep(wait)
        # A penalty while we slept moved every reserved slot back by the same amount (so the
        # queue keeps its order and spacing): follow it before sending.
        while (moved := self._read().shift - shift) > 1e-6:
            shift += moved
            if timeout is not None and time.monotonic() - start + moved > timeout:
                raise self._timeout(timeout)
            time.sleep(min(moved, MAX_PENALTY))
        return time.monotonic() - start

    def penalize(self, seconds: float) -> None:
        """No request from any process before ``seconds`` from now (a 429's ``Retry-After``).

        Slots already handed out are moved back together (they keep their order and
        spacing) and the burst allowance is spent, so traffic resumes at the average rate
        rather than with a burst. Several processes reporting the same 429 do not add up:
        only the part of a penalty beyond the current one counts.
        """
        if not seconds > 0:  # also NaN
            return
        seconds = min(float(seconds), MAX_PENALTY)
        with self._locked() as (write, state, now):
            until = now + seconds
            if until <= state.blocked_until:  # this 429 is already known
                return
            if state.last_slot > now:
                # Callers are asleep for slots to come, all at or after this pause's start:
                # move them (and the schedule after them) back by what this pause adds.
                delta = until - max(state.blocked_until, now)
                state.shift += delta
                state.last_slot += delta
                state.tat += delta
            # No burst when the pause ends: the server just said we went too fast.
            state.tat = max(state.tat, until + self._tolerance)
            state.blocked_until = until
            self._write(write, state)

    @contextlib.contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[float]:
        """``with limiter.slot():`` around the code that sends one request; yields the wait."""
        yield self.acquire(timeout)

    def limited(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate a function that sends one request per call."""

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            self.acquire()
            return func(*args, **kwargs)

        return wrapper

    # -- the shared state ----------------------------------------------------------------

    def _reserve(self, timeout: float | None) -> tuple[float, float]:
        """Take the next slot: (seconds until it, the penalty shift it was taken under)."""
        with self._locked() as (write, state, now):
            slot = max(now, state.tat - self._tolerance, state.blocked_until)
            wait = slot - now
            if timeout is not None and wait > timeout:
                raise self._timeout(timeout)
            state.tat = max(state.tat, slot) + self._interval
            state.last_slot = slot
            self._write(write, state)
            return wait, state.shift

    def _read(self) -> _State:
        with self._locked(shared=True) as (_write, state, _now):
            return state

    @contextlib.contextmanager
    def _locked(self, shared: bool = False) -> Iterator[tuple[Callable[[bytes], None], _State, float]]:
        """The store locked (exclusively, or ``shared`` for a read), its state brought to the
        present clock, and the wall time it was read at; the first item writes the state."""
        with self._store.locked(shared) as (data, now, mono, write):
            state = _State.unpack(data) or _State(0.0, 0.0, 0.0, 0.0, now, mono)
            yield write, self._present(state, now, mono), now

    @staticmethod
    def _present(state: _State, now: float, mono: float) -> _State:
        """``state`` with a clock step since it was written taken out, and with a schedule
        no run of this code could have made started afresh."""
        elapsed = mono - state.mono
        if elapsed >= 0:  # else another boot: the stamps say nothing
            step = now - (state.wall + elapsed)
            if abs(step) > CLOCK_SLACK:  # keep what was still to wait as long as it was
                state.tat += step
                state.last_slot += step
                state.blocked_until += step
        if max(state.tat, state.blocked_until) - now > HORIZON:
            state = _State(0.0, 0.0, 0.0, state.shift, now, mono)
        state.wall, state.mono = now, mono
        return state

    @staticmethod
    def _write(write: Callable[[bytes], None], state: _State) -> None:
        write(state.pack())

    def _timeout(self, timeout: float) -> RateLimitTimeout:
        return RateLimitTimeout(
            f"No request slot within {timeout:g} s: the shared limit of {self.rate:g} requests per second"
            f" ({self.where}) is taken by other processes or paused by the server's Retry-After.",
            hint="Retry later, or give this call a longer timeout.",
        )
