"""Fault injection: `music-pipeline run URL` killed with SIGKILL at each risky moment, then run
again, must leave what an uninterrupted run leaves: one file per format with the source's
duration, no half-written files, scratch folders or orphaned ffmpeg, a sound catalog, the
track done. The kill points are in music_pipeline_tests/faults.py (a real process, a real
SIGKILL; nothing of the product replaced)."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from music_pipeline.core.audio import media
from music_pipeline.core.domain.paths import FORMATS
from music_pipeline.core.library.store import PART_MARK

from .audio import make_track
from .conftest import QuietHandler

POINTS = ["download", "transcode", "tagging", "renamed", "catalog", "index"]
pytestmark = pytest.mark.slow  # every case kills a run and runs it again


class ThrottledHandler(QuietHandler):
    """About 1 MB/s: a download takes a few seconds, long enough to be killed in."""

    def copyfile(self, source, outputfile) -> None:
        while chunk := source.read(64 * 1024):
            outputfile.write(chunk)
            time.sleep(0.05)


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # the killed download's broken pipe
        pass


@pytest.fixture(scope="module")
def fault_track(tmp_path_factory: pytest.TempPathFactory):
    """The source track, served at full speed and, for the kill inside the download, throttled."""
    root = tmp_path_factory.mktemp("throttled")
    # 96 kHz / 24-bit: every output is resampled, as a hi-res download's is; 10 s (about 3 MB)
    # keep each run short while ffmpeg still writes the ALAC file for a while
    make_track(root / "Fault Artist - Fault Song.flac", seconds=10, rate=96_000,
               codec_args=["-c:a", "flac", "-sample_fmt", "s32"])
    servers = {name: QuietServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
               for name, handler in (("fast", QuietHandler), ("throttled", ThrottledHandler))}
    for httpd in servers.values():
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield ({name: f"http://127.0.0.1:{httpd.server_address[1]}/Fault%20Artist%20-%20Fault%20Song.flac"
            for name, httpd in servers.items()}, root / "Fault Artist - Fault Song.flac")
    for httpd in servers.values():
        httpd.shutdown()
        httpd.server_close()


def _processes_touching(folder: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(folder) in cmdline:
                found.append(f"{proc.name}: {cmdline[:120]}")
    return found


@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_at_any_point_then_run_again_leaves_one_clean_copy(point, fault_track, tmp_path) -> None:
    urls, source = fault_track
    url = urls["throttled" if point == "download" else "fast"]  # only the download needs time to be killed in
    library = tmp_path / "library"
    env = {**os.environ, "MUSIC_LIBRARY": str(library), "DAGSTER_HOME": str(tmp_path / "home")}
    killed = subprocess.run([sys.executable, "-m", "music_pipeline_tests.faults", point, "--", "run", url],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, f"the {point} point was never reached: {killed.stdout}{killed.stderr}"

    # An ffmpeg started by the killed run dies with it: nothing goes on writing into the library.
    deadline = time.monotonic() + 0.5
    while (touching := _processes_touching(library)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert touching == [], "processes of the killed run still work in the library"
    sizes = {p: p.stat().st_size for p in library.rglob("*") if p.is_file()}
    time.sleep(1)
    assert {p: p.stat().st_size for p in library.rglob("*") if p.is_file()} == sizes

    again = subprocess.run([sys.executable, "-m", "music_pipeline", "run", url], env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr

    debris = [p for p in library.rglob("*") if PART_MARK in p.name or p.name.startswith("download-")
              or p.name.endswith(".decoded.npz") or (p.is_file() and p.stat().st_size == 0)]
    assert debris == []
    expected = media.probe(source).duration_s
    for fmt in FORMATS:
        files = [p for p in (library / fmt).rglob("*") if p.is_file() and "Playlists" not in p.parts]
        assert len(files) == 1, f"{fmt}: {files}"
        assert abs(media.decoded_duration(files[0]) - expected) < 0.05
    with sqlite3.connect(library / "catalog.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT status FROM tracks").fetchall() == [("done",)]
        assert conn.execute("SELECT count(*) FROM files").fetchone()[0] == len(FORMATS)
    assert (library / "library_index.csv").stat().st_size > 0
