"""Smoke test of the product as a newcomer starts it: `music-pipeline up` (dagster dev on
workspace.yaml: webserver + daemon), the assets found through GraphQL, a file dropped in
the inbox and one sent with `music-pipeline add` each processed to a catalog row."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from music_pipeline.core.catalog import Catalog

from .audio import make_track

REPO = Path(__file__).resolve().parents[1]
ASSETS = {"raw_audio", "audio_features", "fingerprint", "m4a_alac", "aiff", "wav", "catalog", "library_index",
          "dedup_groups", "playlist_exports", "inbox", "spotify_likes", "spotify_playlists", "spotify_now_playing",
          "soundcloud_likes", "soundcloud_sets"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def dagster_up(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "MUSIC_LIBRARY": str(tmp_path / "library"), "DAGSTER_HOME": str(tmp_path / "home")}
    log = open(tmp_path / "up.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "music_pipeline", "up", "--no-install", "--port", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/server_info", timeout=2).ok
        except requests.RequestException:
            return proc.poll() is not None and pytest.fail((tmp_path / "up.log").read_text())

    try:
        _wait(up, 120, "the Dagster webserver")
        yield url, env, tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _graphql(url: str, query: str) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def test_ui_lists_assets_and_processes_inbox_and_add(dagster_up) -> None:
    url, env, tmp_path = dagster_up
    nodes = _graphql(url, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    assert {n["assetKey"]["path"][-1] for n in nodes} == ASSETS
    sensors = _graphql(url, """{ sensorsOrError(repositorySelector: {repositoryName: "__repository__",
        repositoryLocationName: "music_pipeline"}) { ... on Sensors { results { name sensorState { status } } } } }""")
    states = {s["name"]: s["sensorState"]["status"] for s in sensors["sensorsOrError"]["results"]}
    assert states["inbox_sensor"] == "RUNNING"

    library = Path(env["MUSIC_LIBRARY"])
    dropped = make_track(tmp_path / "Inbox Artist - Dropped In.flac", seconds=5, codec_args=["-c:a", "flac"])
    inbox_copy = library / "inbox" / dropped.name
    inbox_copy.write_bytes(dropped.read_bytes())
    old = time.time() - 60
    os.utime(inbox_copy, (old, old))

    added = make_track(tmp_path / "CLI Artist - Added.mp3", seconds=5, bpm=95, codec_args=["-c:a", "libmp3lame"])
    proc = subprocess.run([sys.executable, "-m", "music_pipeline", "add", str(added), "--webserver", url],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "requested" in proc.stdout

    catalog = Catalog(library / "catalog.sqlite")

    def both_done() -> bool:
        rows = catalog.tracks()
        failed = [r for r in rows if r["status"] == "failed"]
        assert not failed, failed
        return len(rows) == 2 and all(r["status"] == "done" for r in rows)

    _wait(both_done, 240, "both tracks to be processed by the daemon")
    titles = {(r["artist"], r["title"]) for r in catalog.tracks()}
    assert titles == {("Inbox Artist", "Dropped In"), ("CLI Artist", "Added")}
    for record in catalog.files():
        assert Path(record["path"]).exists()
    assert (library / "inbox" / "imported" / dropped.name).exists()

    def runs_finished() -> list[str] | None:
        runs = _graphql(url, "{ runsOrError { ... on Runs { results { status jobName } } } }")
        statuses = [r["status"] for r in runs["runsOrError"]["results"] if r["jobName"] == "process_track"]
        return statuses if all(s in ("SUCCESS", "FAILURE") for s in statuses) else None

    assert _wait(runs_finished, 120, "the runs to finish") == ["SUCCESS", "SUCCESS"]
