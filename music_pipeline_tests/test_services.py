"""The harness that starts real PostgreSQL and Redis servers on 127.0.0.1 for the tests."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import sqlalchemy

from music_pipeline_tests import services
from music_pipeline_tests.services import Postgres, Redis, port_open, postgres, psql, redis, redis_command

# the session fixtures live in services.py (conftest wires them for everyone later)
postgres_server = services.postgres_server
redis_server = services.redis_server


def test_postgres_takes_a_password_login_over_tcp(postgres_server: Postgres) -> None:
    server = postgres_server
    assert server.host == "127.0.0.1" and server.url == (
        f"postgresql://{server.user}:{server.password}@127.0.0.1:{server.port}/{server.database}")
    assert server.env == {"DAGSTER_PG_USERNAME": server.user, "DAGSTER_PG_PASSWORD": server.password,
                          "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(server.port),
                          "DAGSTER_PG_DB": server.database}
    url = sqlalchemy.engine.make_url(server.url)  # (no driver yet: psql speaks to the server below)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        server.user, server.password, "127.0.0.1", server.port, server.database)
    assert psql(server, "SELECT current_user || ' ' || current_database()") == f"{server.user} {server.database}"
    psql(server, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);")  # the user owns its database
    assert psql(server, "SELECT sum(x) FROM t") == "3"
    assert psql(server, "SHOW fsync") == "off"
    assert psql(server, "SHOW listen_addresses") == "127.0.0.1"


def test_postgres_refuses_a_wrong_password(postgres_server: Postgres) -> None:
    wrong = Postgres(**{**postgres_server.__dict__, "password": "wrong"})
    with pytest.raises(RuntimeError, match="password authentication failed"):
        psql(wrong, "SELECT 1")


def test_two_postgres_servers_at_once_then_nothing_left(tmp_path: Path) -> None:
    began = time.monotonic()
    with postgres(tmp_path / "a") as a, postgres(tmp_path / "b", database="other", user="someone") as b:
        assert a.port != b.port and a.data_dir != b.data_dir
        assert psql(a, "SELECT current_database()") == "music"
        assert psql(b, "SELECT current_database()") == "other"
        pids = [int((server.data_dir / "postmaster.pid").read_text().splitlines()[0]) for server in (a, b)]
        roots = [server.data_dir.parent for server in (a, b)]
    assert time.monotonic() - began < 20
    for server, pid, root in zip((a, b), pids, roots, strict=True):
        assert not port_open(server.port), "the server still listens"
        assert not services.pid_alive(pid), "the postmaster still runs"
        assert not root.exists(), "the cluster's folder is left behind"
    assert "database system is shut down" in (tmp_path / "a" / "postgres.log").read_text()


def test_postgres_is_stopped_and_removed_when_the_test_fails(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), postgres(tmp_path) as server:
        pid = int((server.data_dir / "postmaster.pid").read_text().splitlines()[0])
        1 / 0  # noqa: B018
    assert not port_open(server.port) and not services.pid_alive(pid) and not server.data_dir.parent.exists()


def test_redis_answers_ping(redis_server: Redis) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_command(redis_server.port, "PING") == b"+PONG"
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as sock:  # the inline form too
        sock.sendall(b"PING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"
    assert redis_command(redis_server.port, "CONFIG", "GET", "appendonly") == b"*2"


def test_redis_persists_nothing_and_stops(tmp_path: Path) -> None:
    with redis(tmp_path) as a, redis(tmp_path / "second") as b:
        assert a.port != b.port
        assert redis_command(a.port, "SET", "k", "v") == b"+OK"
        assert redis_command(b.port, "PING") == b"+PONG"
        pids = (a.pid, b.pid)
    for server, pid in zip((a, b), pids, strict=True):
        assert not port_open(server.port) and not services.pid_alive(pid)
    assert not any(p.suffix in (".rdb", ".aof") or p.name.startswith("appendonly")
                   for p in tmp_path.rglob("*")), os.listdir(tmp_path / "redis")


def test_missing_programs_say_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(services, "postgres_bindir", lambda: None)
    monkeypatch.setattr(services.shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(services.ServicesMissing, match="music-pipeline doctor --install --tests"), postgres(tmp_path):
        pass
    with pytest.raises(services.ServicesMissing, match="music-pipeline doctor --install --tests"), redis(tmp_path):
        pass
