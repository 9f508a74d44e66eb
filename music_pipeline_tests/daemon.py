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
from contextlib import contextmanager, suppress
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


def drop(inbox: Path, *files: Path) -> None:
    """Copy files into an inbox as a user would, already settled (older than the sensor's
    5-second wait)."""
    import shutil

    inbox.mkdir(parents=True, exist_ok=True)
    old = time.time() - 60
    for path in files:
        target = inbox / path.name
        shutil.copyfile(path, target)
        os.utime(target, (old, old))


@dataclass
class Dagster:
    url: str
    env: dict[str, str]
    home: Path
    library: Path
    log: Path
    share_url: str = ""  # the share endpoint and Notion's webhook, when MUSIC_SHARE_TOKEN was set

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
    share_port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "music_pipeline", "up", "--port", str(port),
                             "--share-port", str(share_port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    share_url = f"http://127.0.0.1:{share_port}" if env.get("MUSIC_SHARE_TOKEN") else ""

    def up() -> bool:
        try:
            return requests.get(f"{url}/server_info", timeout=2).ok
        except requests.RequestException:
            if proc.poll() is not None:
                raise AssertionError(log_path.read_text()) from None
            return False

    try:
        wait(up, 120, "the Dagster webserver")
        # A newcomer's first screen (what `up` checks after installing) shows no false failure.
        first_screen = log_path.read_text().split("music_pipeline is starting")[0]
        assert "FAIL" not in first_screen, first_screen
        if share_url:
            wait(lambda: requests.get(f"{share_url}/health", timeout=2).ok, 30, "the share endpoint")
        yield Dagster(url, env, home, library, log_path, share_url)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


#: Where the UI tests keep their screenshots (README: Tests).
SCREENSHOTS = REPO / "music_pipeline_tests" / "artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"


@contextmanager
def browser_page(base_url: str) -> Iterator:
    """A page in Debian's chromium driven by Playwright (nothing downloaded), past Dagster's
    first-visit dialog."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is missing: run `music-pipeline doctor --install --tests`"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000}, base_url=base_url)
            page.goto("/")
            with suppress(Exception):  # the community dialog is only shown on a first visit
                page.get_by_role("button", name="Skip").click(timeout=5000)
            yield page
        finally:
            browser.close()
