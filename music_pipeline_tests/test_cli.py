"""The command line as a user runs it: a separate process, a persistent DAGSTER_HOME."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from music_pipeline.core.audio.tagging import read_tags
from music_pipeline.core.library.catalog import Catalog

from .audio import make_track
from .conftest import SlowHandler


@pytest.fixture
def env(tmp_path: Path) -> dict:
    return {**os.environ, "MUSIC_LIBRARY": str(tmp_path / "library"), "DAGSTER_HOME": str(tmp_path / "home")}


def cli(env: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "music_pipeline", *args], env=env, capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_run_processes_url_and_file_and_reports_failures(env, tmp_path, http_server) -> None:
    make_track(http_server.root / "cli-song.flac", seconds=4, codec_args=["-c:a", "flac"],
               metadata={"title": "Over HTTP", "artist": "Remote"})
    local = make_track(tmp_path / "Local Artist - On Disk.mp3", seconds=4, codec_args=["-c:a", "libmp3lame"])
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    proc = cli(env, "run", http_server.url("cli-song.flac"), str(local), str(broken))
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one of three failed
    out = proc.stdout
    assert "Remote - Over HTTP" in out and "Local Artist - On Disk" in out
    assert "broken.wav is not an audio file" in out
    assert "2 of 3 processed" in out
    printed = [Path(line.split(None, 1)[1]) for line in out.splitlines()
               if line.strip().startswith(("ALAC ", "AIFF ", "WAV "))]
    assert len(printed) == 6 and all(p.exists() for p in printed)
    assert "Traceback" not in proc.stdout + proc.stderr
    # the runs are in the persistent instance, visible in the UI later
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        assert {r.status for r in runs} >= {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE}
        assert len(instance.get_dynamic_partitions("tracks")) == 3
    catalog = Catalog(Path(env["MUSIC_LIBRARY"]) / "catalog.sqlite")
    assert sorted(r.status for r in catalog.tracks.all()) == ["done", "done", "failed"]
    assert (Path(env["MUSIC_LIBRARY"]) / "library_index.parquet").exists()
    wav = next(p for p in printed if p.suffix == ".wav" and "Remote" in p.name)
    assert read_tags(wav, "WAV")["source_url"] == http_server.url("cli-song.flac")


def test_run_exit_code_zero_when_all_succeed(env, tmp_path) -> None:
    local = make_track(tmp_path / "ok.flac", seconds=3, codec_args=["-c:a", "flac"])
    proc = cli(env, "run", str(local))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 of 1 processed" in proc.stdout


def test_run_names_a_riff_info_tagged_wav_and_never_prints_none(env, tmp_path) -> None:
    tagged = make_track(tmp_path / "take 3.wav", seconds=3, codec_args=["-c:a", "pcm_s16le"],
                        metadata={"title": "Night Drive", "artist": "Kasbo"})
    untagged = make_track(tmp_path / "untagged take.wav", seconds=3, bpm=90, seed=4,
                          codec_args=["-c:a", "pcm_s16le", "-fflags", "+bitexact"])
    assert b"LIST" not in untagged.read_bytes()  # no INFO chunk at all, not even ffmpeg's encoder tag
    proc = cli(env, "run", str(tagged), str(untagged))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"\bok +Kasbo - Night Drive  \(file-", out), out
    assert re.search(r"\bok +untagged take  \(file-", out), out  # no artist: the title alone
    assert "None" not in out


def test_run_rejects_nonsense_with_a_clear_message(env) -> None:
    proc = cli(env, "run", "definitely-not-a-file.mp3")
    assert proc.returncode == 1
    assert "neither a URL nor an existing file" in proc.stdout


def test_doctor_reports_the_setup(env) -> None:
    proc = cli(env, "doctor")
    assert proc.returncode == 0, proc.stdout
    for name in ("ffmpeg", "ffprobe", "fpcalc", "libchromaprint", "library", "DAGSTER_HOME"):
        assert name in proc.stdout


def test_doctor_with_eagle_closed_prints_no_traceback(env) -> None:
    """Eagle looked for at a closed port, as on a machine without it: one calm line, and none of
    the SQLAlchemy tracebacks Dagster's leftover in-memory instances printed at exit before."""
    from .services import free_port

    proc = cli({**env, "EAGLE_API_BASE": f"http://127.0.0.1:{free_port()}"}, "doctor")
    assert "Eagle: Eagle not reachable" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-2000:]


def test_doctor_tells_a_configured_spotify_to_log_in(env, tmp_path) -> None:
    env = {**env, "SPOTIFY_CLIENT_ID": "abc", "SPOTIFY_CLIENT_SECRET": "secret-value",
           "SPOTIFY_TOKEN_CACHE": str(tmp_path / "token.json")}
    proc = cli(env, "doctor")
    assert proc.returncode != 0 and "not logged in" in proc.stdout and "spotify-login" in proc.stdout
    assert "secret-value" not in proc.stdout + proc.stderr
    (tmp_path / "token.json").write_text("{}")
    proc = cli(env, "doctor")
    assert proc.returncode == 0 and "Spotify: configured, logged in" in proc.stdout


def test_doctor_says_what_to_fix(env, tmp_path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    env = {**env, "MUSIC_LIBRARY": str(locked / "library"), "PATH": "/nonexistent"}
    proc = subprocess.run([sys.executable, "-m", "music_pipeline", "doctor"], env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 1
    assert "ffmpeg: not found" in proc.stdout and "apt-get install ffmpeg" in proc.stdout
    assert "fpcalc: not found" in proc.stdout and "libchromaprint-tools" in proc.stdout


def test_add_without_a_running_webserver_says_so(env, tmp_path) -> None:
    local = make_track(tmp_path / "queued.flac", seconds=3, codec_args=["-c:a", "flac"])
    proc = cli(env, "add", str(local), "--webserver", "http://127.0.0.1:9")
    assert proc.returncode == 1
    assert "not reachable" in proc.stdout and "music-pipeline up" in proc.stdout
    assert "nothing was added" in proc.stdout


def test_a_catalog_from_a_newer_version_is_refused_without_a_traceback(env, tmp_path) -> None:
    import sqlite3

    library = Path(env["MUSIC_LIBRARY"])
    library.mkdir(parents=True)
    with sqlite3.connect(library / "catalog.sqlite") as conn:
        conn.execute("PRAGMA user_version = 999")
    local = make_track(tmp_path / "x.flac", seconds=2, codec_args=["-c:a", "flac"])
    proc = cli(env, "run", str(local))
    assert proc.returncode == 2
    assert "newer than this music_pipeline understands" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_library_folder_that_cannot_be_created(env, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {**env, "MUSIC_LIBRARY": str(blocker / "library")}
    doctor = cli(env, "doctor")
    assert doctor.returncode == 1 and "not writable" in doctor.stdout and "MUSIC_LIBRARY" in doctor.stdout
    local = make_track(tmp_path / "y.flac", seconds=2, codec_args=["-c:a", "flac"])
    proc = cli(env, "run", str(local))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "a-file" in proc.stderr


def test_run_reports_a_duplicate_as_such_not_as_a_failure(env, tmp_path) -> None:
    from .audio import write
    from .dedup_audio import transform, tune

    flac = write(tmp_path / "Band - Tune.flac", tune(3, seconds=25), codec_args=["-c:a", "flac"])
    mp3 = transform(flac, tmp_path / "Band - Tune (Official Audio).mp3", "-c:a", "libmp3lame")
    proc = cli(env, "run", str(flac), str(mp3))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is a duplicate of file-" in proc.stdout and "dedup --undo dup-" in proc.stdout
    assert "2 of 2 processed" in proc.stdout
    library = Path(env["MUSIC_LIBRARY"])
    assert len(list((library / "ALAC").rglob("*.m4a"))) == 1
    assert len(list((library / "duplicates").rglob("*.mp3"))) == 1


@pytest.fixture
def slow_urls(tmp_path):
    """Four WAVs served at about 40 KB/s: each download takes a while."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    names = [f"Slow {n}.wav" for n in range(4)]
    for n, name in enumerate(names):
        make_track(root / name, seconds=6, bpm=100 + 7 * n, seed=70 + n)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SlowHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{httpd.server_address[1]}/{name.replace(' ', '%20')}" for name in names]
    httpd.shutdown()


@pytest.mark.parametrize("how, settle", [("run", 1.0), ("process all", 1.0), ("process all", 0.0)],
                         ids=["run", "process all", "process all, as a lane starts its run"])
def test_ctrl_c_stops_the_whole_run_not_just_the_current_track(env, slow_urls, how, settle) -> None:
    """Before, the track run swallowed the interrupt: Ctrl-C failed the current track and the
    command went on with the next ones. `run` goes one track at a time; `process all` runs
    two lanes on this machine, whose current tracks stop too. Interrupted as the second lane
    was still starting its track run, that run was once left STARTED (CI): none may be."""
    import signal
    import time

    from dagster._core.instance.ref import InstanceRef

    from music_pipeline.core.library.steps import register_target
    from music_pipeline.resources import LibraryResource

    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True)
    if how == "run":
        args = ["run", *slow_urls]
    else:
        library = LibraryResource(root=env["MUSIC_LIBRARY"]).get()
        for url in slow_urls:
            register_target(library, url)
        args = ["process", "all"]
    proc = subprocess.Popen([sys.executable, "-m", "music_pipeline", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
            while time.time() < deadline and not instance.get_runs(
                    filters=RunsFilter(job_name="process_track", statuses=[DagsterRunStatus.STARTED])):
                time.sleep(0.5)
            time.sleep(settle)  # every lane has its track, or one is starting its run
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
            track_runs = instance.get_runs(filters=RunsFilter(job_name="process_track"))
            bulk_runs = instance.get_runs(filters=RunsFilter(job_name="process_tracks"))
        assert proc.returncode != 0, out
        assert 1 <= len(track_runs) <= 2, out  # the tracks after the interrupted ones never started
        assert all(r.status != DagsterRunStatus.STARTED for r in track_runs)
        assert bulk_runs[0].status != DagsterRunStatus.SUCCESS
    finally:
        if proc.poll() is None:
            proc.kill()


SECRETS = ("PassWord", "SeCrEt-TOKEN", "sig-4f2a9c", "AKIAEXAMPLE", "sess-77")


def _secret_url(http_server, name: str) -> str:
    host = http_server.url(name).split("//", 1)[1]
    return (f"http://dj:PassWord@{host}?token=SeCrEt-TOKEN&X-Amz-Signature=sig-4f2a9c"
            f"&X-Amz-Credential=AKIAEXAMPLE%2F20261126&X-Amz-Date=20261126T000000Z#session=sess-77")


def test_url_secrets_never_leave_the_catalog(env, tmp_path, http_server) -> None:
    """A signed link with a password: downloaded with its exact spelling, but its secrets appear
    nowhere else: not in the index (CSV, Parquet), the tags, the Dagster instance (run tags,
    config, event logs), nor the command's output."""
    make_track(http_server.root / "Signed - Link.flac", seconds=3, codec_args=["-c:a", "flac"])
    url = _secret_url(http_server, "Signed%20-%20Link.flac")
    proc = cli(env, "run", url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    library = Path(env["MUSIC_LIBRARY"])
    (row,) = Catalog(library / "catalog.sqlite").tracks.all()
    assert "dj:PassWord@" in row.source_url and "token=SeCrEt-TOKEN" in row.source_url  # case kept

    shown = proc.stdout + proc.stderr
    for path in [*library.rglob("*"), *Path(env["DAGSTER_HOME"]).rglob("*")]:
        if path.is_file() and not path.name.startswith("catalog.sqlite"):
            data = path.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in data, f"{secret} leaked into {path}"
    for secret in SECRETS:
        assert secret not in shown
    index = (library / "library_index.csv").read_text()
    assert "dj:***@" in index and "token=***" in index  # masked, not dropped: still tells where it came from
