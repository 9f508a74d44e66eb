"""Shared fixtures: a library in a temporary folder, a local HTTP server for yt-dlp to
download from, and a real (ephemeral) Dagster instance. Nothing here reaches the network."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from music_pipeline.assets import CHECKS, TRACK_ASSETS, tracks
from music_pipeline.core.library.steps import Library, register_target
from music_pipeline.resources import (
    AnalysisResource,
    DjResource,
    DownloaderResource,
    EagleResource,
    LibraryResource,
    NotionResource,
    SoundCloudResource,
    SpotifyResource,
)

from . import audio
from .audio import make_track
from .services import postgres_server, redis_server  # noqa: F401 - one server each for the whole session

# The tests never touch the developer's own Notion workspace or Eagle library: the sinks are
# off unless a test points them at its local fake (the commands and daemons they start inherit this).
for _name in ("NOTION_TOKEN", "TRACKS_DB_ID", "PLAYLISTS_DB_ID", "ARTISTS_DB_ID", "NOTION_API_BASE_URL",
              "NOTION_PROPERTIES", "EAGLE_TOKEN"):
    os.environ.pop(_name, None)
os.environ["EAGLE_API_BASE"] = "off"


@pytest.fixture(scope="session", autouse=True)
def audio_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generated audio encoded once per session and parameters (each test still gets its own copy),
    in one folder for all of pytest-xdist's workers (each under the session's base folder)."""
    base = tmp_path_factory.getbasetemp()
    audio.CACHE = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "audio-cache"
    audio.CACHE.mkdir(exist_ok=True)
    yield audio.CACHE
    audio.CACHE = None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


class SlowHandler(QuietHandler):
    """Serves files at about 40 KB/s, so a test can act while a download is under way; at full
    speed once the server's ``throttled`` is set False (a retry after the act need not crawl)."""

    def copyfile(self, source, outputfile) -> None:
        import time

        while chunk := source.read(4096):
            outputfile.write(chunk)
            if getattr(self.server, "throttled", True):
                time.sleep(0.1)


class HttpServer:
    """A directory served on 127.0.0.1 (404 for anything missing, like a real host)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    server = HttpServer(tmp_path_factory.mktemp("www"))
    yield server
    server.close()


@pytest.fixture
def library_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "library"
    monkeypatch.setenv("MUSIC_LIBRARY", str(root))
    monkeypatch.delenv("WAV_BACKUP_DIR", raising=False)
    return root


@pytest.fixture
def library(library_root: Path) -> Library:
    return LibraryResource(root=str(library_root)).get()


@pytest.fixture
def resources(library_root: Path) -> dict:
    return {"library": LibraryResource(root=str(library_root)),
            "downloader": DownloaderResource(socket_timeout=5, retries=0),
            "analysis": AnalysisResource(), "spotify": SpotifyResource(), "soundcloud": SoundCloudResource(),
            "notion": NotionResource(), "eagle": EagleResource(enabled=False), "dj": DjResource()}


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def process(instance: DagsterInstance, resources: dict, library: Library):
    """Register a URL or file and materialise every per-track asset and check for it."""

    def run(target: str, *, force: bool = False, library_override: Library | None = None,
            resources_override: dict | None = None):
        lib = library_override or library
        source, _ = register_target(lib, target)
        if not instance.has_dynamic_partition(tracks.name, source.key):
            instance.add_dynamic_partitions(tracks.name, [source.key])
        result = materialize(
            [*TRACK_ASSETS, *CHECKS], partition_key=source.key, instance=instance,
            resources=resources_override or resources, raise_on_error=False,
            run_config={"ops": {"raw_audio": {"config": {"force_download": force}}}},
        )
        return source.key, result

    return run


@pytest.fixture
def song_file(tmp_path: Path) -> Path:
    """A 6-second 16-bit stereo FLAC with tags, 120 BPM in A minor."""
    return make_track(tmp_path / "src" / "Test Artist - First Song.flac", seconds=6,
                      codec_args=["-c:a", "flac"], metadata={"title": "First Song", "artist": "Test Artist",
                                                              "album": "Test Album", "ISRC": "USRC17607839"})


def library_files(root: Path) -> set[str]:
    """Every file under the library except the catalog database and its journal."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not p.name.startswith("catalog.sqlite")}


def output_files(root: Path) -> set[str]:
    """The user-facing outputs and any leftover partial file."""
    return {name for name in library_files(root)
            if name.split("/")[0] in ("ALAC", "AIFF", "WAV") or ".part-" in name}


def materialized(instance: DagsterInstance, key: str) -> set[str]:
    """The assets materialised for track ``key`` by any of its runs in ``instance``."""
    from dagster import DagsterEventType, RunsFilter

    names = set()
    for run in instance.get_runs(filters=RunsFilter(tags={"dagster/partition": key})):
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
            names.add(entry.dagster_event.asset_key.to_user_string())
    return names


def check_results(instance: DagsterInstance, key: str) -> dict[str, bool]:
    """"asset:check" -> passed, for the latest evaluation of each check of track ``key``."""
    from dagster import DagsterEventType, RunsFilter

    results: dict[str, bool] = {}
    for run in reversed(instance.get_runs(filters=RunsFilter(tags={"dagster/partition": key}))):
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            data = entry.dagster_event.event_specific_data
            results[f"{data.asset_key.to_user_string()}:{data.check_name}"] = data.passed
    return results


def requested(result) -> list[str]:
    """The track keys a sensor tick's run requests ask for (bulk runs carry them in their config)."""
    return [k for r in result.run_requests for k in r.run_config["ops"]["run_tracks"]["config"]["keys"]]
