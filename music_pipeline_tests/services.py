"""Real PostgreSQL and Redis servers for the tests, started on 127.0.0.1 by the tests themselves.

- ``postgres(tmp_path)``: a throw-away cluster (initdb in a temporary folder, a free port, the
  unix socket inside the folder, fsync off), a database and a password user made for the test;
  yields a :class:`Postgres` (``url``, ``env`` with the ``DAGSTER_PG_*`` variables).
- ``redis(tmp_path)``: a redis-server on a free port, nothing persisted; yields a :class:`Redis`.

Both stop their server and remove what they made on exit, failure included. PostgreSQL refuses
to run as root, so under root the cluster belongs to an unprivileged system user (``musicpg``,
created when missing) and its programs run through ``runuser``. The session-scoped fixtures
``postgres_server`` and ``redis_server`` share one server each across a test session; nothing is
skipped when the programs are missing: :class:`ServicesMissing` says how to install them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from music_pipeline.cli.doctor import postgres_bindir

PG_OS_USER = "musicpg"  # who owns and runs the clusters when the tests run as root
HOST = "127.0.0.1"
INSTALL_HINT = "run `music-pipeline doctor --install --tests`"
START_TIMEOUT = 30.0  # seconds; a start normally takes one or two


class ServicesMissing(RuntimeError):
    """A server program the tests need is not installed."""


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    database: str
    url: str  # postgresql://user:password@127.0.0.1:port/database
    env: dict[str, str] = field(default_factory=dict)  # DAGSTER_PG_USERNAME, _PASSWORD, _HOST, _PORT, _DB
    data_dir: Path | None = None  # the cluster (gone after exit)
    socket_dir: Path | None = None  # the superuser's unix socket (trust auth), for admin work


@dataclass(frozen=True)
class Redis:
    host: str
    port: int
    url: str  # redis://127.0.0.1:port/0
    env: dict[str, str] = field(default_factory=dict)  # CELERY_BROKER_URL, CELERY_RESULT_BACKEND
    pid: int = 0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the servers retry should another take it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone): the product's own rule."""
    from music_pipeline.instance import _pid_alive

    return _pid_alive(pid)


# -- PostgreSQL -----------------------------------------------------------------------------


def _pg_bin() -> Path:
    folder = postgres_bindir()
    if folder is None or not all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres", "psql")):
        raise ServicesMissing(f"PostgreSQL's server programs (initdb, pg_ctl, postgres) are not installed: {INSTALL_HINT}")
    return folder


def _pg_os_user() -> str | None:
    """The unprivileged user to run PostgreSQL as (None: the current user, not root, runs it)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        proc = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                               "--home-dir", "/nonexistent", PG_OS_USER], capture_output=True, text=True, check=False)
        if proc.returncode != 0 and "already exists" not in proc.stderr:
            raise RuntimeError(f"could not create the system user {PG_OS_USER}: {proc.stderr.strip()}") from None
    return PG_OS_USER


def _as(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


def _run(argv: list[str], what: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd="/")
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _postmaster_pid(data_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


def _stop_postgres(bindir: Path, user: str | None, data_dir: Path) -> None:
    """pg_ctl stop -m fast, then immediate, then SIGKILL: the server is gone after this."""
    pid = _postmaster_pid(data_dir)
    if pid is None:
        return
    for mode in ("fast", "immediate"):
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(_as(user, [str(bindir / "pg_ctl"), "stop", "-D", str(data_dir), "-m", mode, "-w", "-t", "10"]),
                           capture_output=True, check=False, timeout=15, stdin=subprocess.DEVNULL, cwd="/")
        if not pid_alive(pid):
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


SPEED_SETTINGS = """
# test cluster: nothing here must survive a crash
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
checkpoint_timeout = 30min
shared_buffers = 32MB
max_connections = 200
log_min_messages = warning
logging_collector = off
"""


@contextlib.contextmanager
def postgres(tmp_path: Path, *, database: str = "music", user: str = "music") -> Iterator[Postgres]:
    """A PostgreSQL server on 127.0.0.1 with ``database`` owned by the password user ``user``.

    The cluster lives in its own temporary folder (under the system temp dir: pytest's tmp_path
    is private to root, out of the server user's reach); the server log is copied to
    ``tmp_path / "postgres.log"`` on exit.
    """
    bindir = _pg_bin()
    os_user = _pg_os_user()
    tmp_path = Path(tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="musicpg-"))  # short: a unix socket path is at most 107 bytes
    data_dir, socket_dir, log = root / "data", root / "run", root / "postgres.log"
    password = secrets.token_hex(12)
    started = False
    try:
        socket_dir.mkdir()
        log.touch()
        if os_user:
            entry = pwd.getpwnam(os_user)
            for path in (root, socket_dir, log):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(root, 0o700)
        _run(_as(os_user, [str(bindir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth-local=trust",
                           "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
                           "--no-instructions"]), "initdb")
        base_conf = (data_dir / "postgresql.conf").read_text()
        last_error = ""
        for _attempt in range(5):  # another process may take the free port before the server binds it
            port = free_port()
            (data_dir / "postgresql.conf").write_text(
                base_conf + SPEED_SETTINGS + f"listen_addresses = '{HOST}'\nport = {port}\n"
                f"unix_socket_directories = '{socket_dir}'\n")
            proc = subprocess.run(
                _as(os_user, [str(bindir / "pg_ctl"), "start", "-D", str(data_dir), "-l", str(log), "-w",
                              "-t", str(int(START_TIMEOUT))]),
                capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, cwd="/",
                timeout=START_TIMEOUT + 5)
            started = _postmaster_pid(data_dir) is not None
            if proc.returncode == 0:
                break
            last_error = log.read_text(errors="replace")[-2000:] or proc.stderr
            _stop_postgres(bindir, os_user, data_dir)
            started = False
            if "already in use" not in last_error and "could not bind" not in last_error:
                break
        if not started:
            raise RuntimeError(f"PostgreSQL did not start: {last_error.strip()}")
        _run([str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(socket_dir), "-p", str(port),
              "-U", "postgres", "-d", "postgres",  # one -c each: CREATE DATABASE refuses a transaction
              "-c", f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'",
              "-c", f"CREATE DATABASE \"{database}\" OWNER \"{user}\""], "creating the test database")
        env = {"DAGSTER_PG_USERNAME": user, "DAGSTER_PG_PASSWORD": password, "DAGSTER_PG_HOST": HOST,
               "DAGSTER_PG_PORT": str(port), "DAGSTER_PG_DB": database}
        yield Postgres(host=HOST, port=port, user=user, password=password, database=database,
                       url=f"postgresql://{user}:{password}@{HOST}:{port}/{database}", env=env,
                       data_dir=data_dir, socket_dir=socket_dir)
    finally:
        if started or _postmaster_pid(data_dir) is not None:
            _stop_postgres(bindir, os_user, data_dir)
        with contextlib.suppress(OSError):
            shutil.copyfile(log, tmp_path / "postgres.log")
        shutil.rmtree(root, ignore_errors=True)


# -- Redis ----------------------------------------------------------------------------------


def _redis_bin() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise ServicesMissing(f"redis-server is not installed: {INSTALL_HINT}")
    return path


def redis_command(port: int, *args: str, host: str = HOST, timeout: float = 2.0) -> bytes:
    """Send one command (RESP) and return the raw first reply line, e.g. ``b"+PONG"``."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.split(b"\r\n", 1)[0]


@contextlib.contextmanager
def redis(tmp_path: Path) -> Iterator[Redis]:
    """A redis-server on 127.0.0.1 (no RDB snapshots, no AOF), stopped on exit."""
    binary = _redis_bin()
    tmp_path = Path(tmp_path)
    workdir = tmp_path / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "redis.log"
    proc: subprocess.Popen | None = None
    try:
        last_error = ""
        for _attempt in range(5):  # another process may take the free port before the server binds it
            port = free_port()
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    [binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
                     "--dir", str(workdir), "--daemonize", "no", "--protected-mode", "yes", "--logfile", ""],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
                    start_new_session=True)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None:
                with contextlib.suppress(OSError):
                    if redis_command(port, "PING", timeout=0.5) == b"+PONG":
                        break
                time.sleep(0.02)
            if proc.poll() is None and port_open(port):
                break
            last_error = log_path.read_text(errors="replace")[-2000:]
            _stop_redis(proc)
            proc = None
            if "in use" not in last_error:
                break
        if proc is None:
            raise RuntimeError(f"redis-server did not start: {last_error.strip()}")
        url = f"redis://{HOST}:{port}/0"
        yield Redis(host=HOST, port=port, url=url, pid=proc.pid,
                    env={"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url})
    finally:
        if proc is not None:
            _stop_redis(proc)


def _stop_redis(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: redis exits at once (nothing to save)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# -- session fixtures (conftest imports these to share one server per session) ---------------


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    with postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    with redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def psql(server: Postgres, sql: str) -> str:
    """Run ``sql`` with psql as the password user over TCP (unaligned, tuples only); its output."""
    env = {**os.environ, "PGPASSWORD": server.password, "PGCONNECT_TIMEOUT": "5"}
    proc = subprocess.run([str(_pg_bin() / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", server.host,
                           "-p", str(server.port), "-U", server.user, "-d", server.database, "-c", sql],
                          capture_output=True, text=True, check=False, env=env, timeout=30, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def fresh_database(server: Postgres, prefix: str = "t") -> Postgres:
    """A new, empty database on ``server`` owned by its user (one per test: nothing leaks
    between tests sharing the session's server)."""
    import dataclasses
    import uuid

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _run([str(_pg_bin() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(server.socket_dir), "-p",
          str(server.port), "-U", "postgres", "-d", "postgres", "-c",
          f"CREATE DATABASE \"{name}\" OWNER \"{server.user}\""], "creating a test database")
    return dataclasses.replace(server, database=name, url=server.url.rsplit("/", 1)[0] + f"/{name}",
                               env={**server.env, "DAGSTER_PG_DB": name})


def stop_groups(procs, grace: float = 20.0) -> None:
    """Stop processes started in sessions of their own (``start_new_session=True``) with their
    children: SIGTERM to each group, SIGKILL to any still there after ``grace`` seconds."""
    import signal
    import time

    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
