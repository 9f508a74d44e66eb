"""A real Dagster as a newcomer starts it (`music-pipeline up`: webserver, daemon, code
server) on a temporary home, and its GraphQL API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait(predicate: Callable[[], object], timeout: float, what: str, interval: float = 1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Dagster:
    url: str
    env: dict[str, str]
    home: Path
    library: Path
    log: Path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=60)
        response.raise_for_status()
        payload = response.json()
        assert not payload.get("errors"), payload["errors"]
        return payload["data"]

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "music_pipeline", *args], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)


@contextmanager
def dagster_up(tmp_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[Dagster]:
    port = free_port()
    library, home = tmp_path / "library", tmp_path / "home"
    env = {**os.environ, "MUSIC_LIBRARY": str(library), "DAGSTER_HOME": str(home), **(extra_env or {})}
    log_path = tmp_path / "up.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "music_pipeline", "up", "--no-install", "--port", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/server_info", timeout=2).ok
        except requests.RequestException:
            if proc.poll() is not None:
                raise AssertionError(log_path.read_text()) from None
            return False

    try:
        wait(up, 120, "the Dagster webserver")
        yield Dagster(url, env, home, library, log_path)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
