"""What hostile use found (issue 18, point 7): each test failed before its fix."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .audio import make_track
from .fakes.notion import FakeNotion
from .test_bad_input import assert_failed_cleanly

# -- a file cut short: no format is exempt from the truncation check -------------------------


@pytest.mark.parametrize("suffix, codec", [
    (".mp3", ["-c:a", "libmp3lame", "-q:a", "2"]),  # a Xing header still says the full length
    (".mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]),  # CBR: LAME's Info header, the same promise
    (".flac", ["-c:a", "flac"]),
    (".wav", ["-c:a", "pcm_s16le"]),
    (".m4a", ["-c:a", "aac", "-movflags", "+faststart"]),  # the moov (the length) before the cut
])
def test_a_file_cut_in_half_is_refused_whatever_its_format(process, library, tmp_path, suffix, codec) -> None:
    whole = make_track(tmp_path / f"whole{suffix}", seconds=20, codec_args=codec)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # what `head -c` leaves
    key, result = process(str(cut))
    assert_failed_cleanly(result, library, key, "raw_audio", f"cut{suffix} is truncated")
    if suffix == ".mp3":  # the new verdict never refuses the whole file (the others: test_bad_input)
        _, retry = process(str(whole))
        assert retry.success


# -- the command line: what a failing track prints --------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict:
    return {**os.environ, "MUSIC_LIBRARY": str(tmp_path / "library"), "DAGSTER_HOME": str(tmp_path / "home")}


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "music_pipeline", *args], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow  # starts the product, a server to stop, or waits out a client's back-off
def test_a_track_whose_only_failure_is_notion_is_reported_as_such(env, tmp_path) -> None:
    """The track is processed (its files are in the library); only its Notion page could not be
    written: said as that, never as "another run is processing it"."""
    song = make_track(tmp_path / "Mirror - Fails.flac", seconds=3, codec_args=["-c:a", "flac"])
    with FakeNotion() as fake:
        db = fake.create_database("Tracks", {"Name": "title", "Track ID": "rich_text", "URL": "url"})
        fake.fail_next(10_000, 500)  # Notion answers, but fails every request
        proc = cli({**env, "NOTION_TOKEN": fake.token, "TRACKS_DB_ID": db.id, "NOTION_API_BASE_URL": fake.url},
                   "run", str(song))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "another run is processing it" not in out, out
    line = next(line for line in out.splitlines() if line.startswith("[1/1]"))
    assert "Notion" in line and "processed" in line, out
    assert fake.token not in out + proc.stderr


def test_a_failing_track_is_one_line_and_its_traces_are_in_the_log_it_names(env, tmp_path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    proc = cli(env, "run", str(broken))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("[1/1]") and "broken.wav is not an audio file" in lines[0], proc.stdout
    assert "Stack Trace" not in proc.stdout + proc.stderr and len(proc.stderr.splitlines()) < 5, proc.stderr
    log = Path(lines[0].rsplit("(details: ", 1)[1].rstrip(")"))
    assert log.is_relative_to(Path(env["DAGSTER_HOME"])) and "Stack Trace" in log.read_text()
    verbose = cli(env, "run", "-v", "--force", str(broken))  # -v: the traces printed, as before
    assert "Stack Trace" in verbose.stderr and "details:" not in verbose.stdout


def test_a_wav_backup_folder_that_cannot_be_created_is_named(process, library, library_root, resources) -> None:
    from music_pipeline.resources import LibraryResource

    backup = "/proc/music-backup/volume"  # nothing can make a folder there: as an unmounted volume's path
    song = make_track(library_root.parent / "Backup - Fails.flac", seconds=3, codec_args=["-c:a", "flac"])
    key, result = process(str(song), resources_override={
        **resources, "library": LibraryResource(root=str(library_root), wav_backup_dir=backup)})
    assert not result.success
    row = library.catalog.tracks.get(key)
    assert row.status == "failed" and row.error_step == "wav", row
    assert "Unexpected error" not in row.error and "FileNotFoundError" not in row.error, row.error
    assert f"The WAV backup folder {backup} (WAV_BACKUP_DIR) cannot be written" in row.error, row.error


def test_add_of_a_signed_url_on_a_library_without_a_catalog_says_nothing_was_registered(env, http_server) -> None:
    (http_server.root / "server_info").write_text("{}")  # a webserver that answers, as Dagster's would
    signed = "https://cdn.example.com/set.mp3?X-Amz-Signature=s3cr3tsignature&X-Amz-Expires=600"
    proc = cli(env, "add", signed, "--webserver", http_server.url("").rstrip("/"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "is registered" not in proc.stdout and "nothing was registered or added" in proc.stdout, proc.stdout
    assert "s3cr3tsignature" not in proc.stdout + proc.stderr
    assert not (Path(env["MUSIC_LIBRARY"]) / "catalog.sqlite").exists()


@pytest.fixture
def full_disk(tmp_path):
    """A real 4 MB filesystem (tmpfs), filled to the last byte."""
    if os.geteuid() != 0:
        pytest.fail("the full-disk test mounts a tmpfs and needs root (CI runs as root)")
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    (mount / "library").mkdir()
    with open(mount / "filler", "wb") as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_doctor_does_not_call_a_full_library_disk_ok(env, full_disk) -> None:
    assert shutil.disk_usage(full_disk).free == 0
    proc = cli({**env, "MUSIC_LIBRARY": str(full_disk / "library"), "EAGLE_API_BASE": "off"}, "doctor")
    assert proc.returncode == 1, proc.stdout
    assert re.search(r"FIX .*library .*the disk is full", proc.stdout), proc.stdout
    assert "free some space" in proc.stdout


# -- stopping `up` as docker, systemd and Kubernetes do -------------------------------------------


def _processes_of(home: Path) -> set[int]:
    """Processes whose environment names this DAGSTER_HOME: whatever `up` started, wherever it
    was re-parented."""
    marker = f"DAGSTER_HOME={home}\0".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes() and b"Z" not in \
                        (entry / "stat").read_bytes().rsplit(b")", 1)[1][:3]:
                    found.add(int(entry.name))
    return found


@pytest.mark.slow  # starts the product, a server to stop, or waits out a client's back-off
def test_sigterm_to_up_stops_everything_it_started_and_marks_its_runs_interrupted(tmp_path) -> None:
    import functools
    import http.server
    import signal
    import threading
    import time

    from dagster import DagsterInstance, DagsterRunStatus

    from music_pipeline.core.library.catalog import Catalog

    from .conftest import SlowHandler
    from .daemon import REPO, free_port, wait

    www = tmp_path / "www"
    www.mkdir()
    # noise does not compress: a download of minutes from the slow server
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anoisesrc=d=30:a=0.3", "-ac", "2",
                    "-c:a", "flac", str(www / "Long - Download.flac")], check=True)
    slow = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SlowHandler, directory=str(www)))
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    library, home, port = tmp_path / "library", tmp_path / "home", free_port()
    env = {**os.environ, "MUSIC_LIBRARY": str(library), "DAGSTER_HOME": str(home), "EAGLE_API_BASE": "off"}
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "up.log", "w") as log:
        up = subprocess.Popen([sys.executable, "-m", "music_pipeline", "up", "--no-install", "--port", str(port)],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        import requests

        def serving() -> bool:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{url}/server_info", timeout=2).ok
            return False

        wait(serving, 120, "the Dagster webserver")
        song = f"http://127.0.0.1:{slow.server_address[1]}/Long%20-%20Download.flac"
        added = subprocess.run([sys.executable, "-m", "music_pipeline", "add", song, "--webserver", url], env=env,
                               capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stdout + added.stderr
        catalog = Catalog(library / "catalog.sqlite")

        def downloading() -> str | None:
            rows = [row for row in catalog.tracks.all() if row.status == "running"]
            return rows[0].key if rows else None

        key = wait(downloading, 180, "the track's run to start downloading")
        time.sleep(2)
        assert _processes_of(home) - {up.pid}, "no code server or run worker to stop"

        os.kill(up.pid, signal.SIGTERM)  # to `up` alone, as docker stop does
        stopped = time.monotonic()
        wait(lambda: up.poll() is not None and not _processes_of(home), 35, "everything `up` started to be gone",
             interval=0.5)
        assert time.monotonic() - stopped < 30, (tmp_path / "up.log").read_text()[-3000:]

        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
            assert runs and all(run.is_finished for run in runs), [(r.job_name, r.status) for r in runs]
            for run in runs:
                assert run.status in (DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE), run.status
                said = [entry.message for entry in instance.all_logs(run.run_id)]
                assert any("music-pipeline up was stopped (SIGTERM)" in m for m in said), (run.job_name, said[-5:])
        row = catalog.tracks.get(key)
        assert row.status == "failed" and "music-pipeline up was stopped" in row.error, row
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGKILL)
        for pid in _processes_of(home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        slow.shutdown()
        slow.server_close()


# -- the catalog's PostgreSQL server stopped mid-run ---------------------------------------------


@pytest.mark.slow  # starts the product, a server to stop, or waits out a client's back-off
def test_a_catalog_server_stopped_mid_run_is_one_sentence_and_the_track_is_not_left_running(tmp_path) -> None:
    import functools
    import http.server
    import threading

    from music_pipeline.core.library.catalog import Catalog

    from . import services
    from .conftest import SlowHandler
    from .daemon import wait

    www = tmp_path / "www"
    www.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anoisesrc=d=3:a=0.3", "-ac", "2",
                    "-c:a", "flac", str(www / "Slow - Song.flac")], check=True)  # ~10 s from the slow server
    slow = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SlowHandler, directory=str(www)))
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    local = make_track(tmp_path / "Next - Run.flac", seconds=2, codec_args=["-c:a", "flac"])
    bindir, os_user = services._pg_bin(), services._pg_os_user()
    try:
        with services.postgres(tmp_path / "pg") as pg:
            env = {**os.environ, "MUSIC_LIBRARY": str(tmp_path / "library"), "DAGSTER_HOME": str(tmp_path / "home"),
                   "MUSIC_CATALOG_URL": pg.url, "EAGLE_API_BASE": "off"}
            catalog = Catalog(tmp_path / "library" / "catalog.sqlite", url=pg.url)
            with open(tmp_path / "run.out", "w") as out:
                run = subprocess.Popen([sys.executable, "-m", "music_pipeline", "run",
                                        f"http://127.0.0.1:{slow.server_address[1]}/Slow%20-%20Song.flac"],
                                       env=env, stdout=out, stderr=subprocess.STDOUT, text=True)

            def running() -> str | None:
                with contextlib.suppress(Exception):
                    return next((row.key for row in catalog.tracks.all() if row.status == "running"), None)
                return None

            key = wait(running, 180, "the track to start", interval=0.3)
            services._stop_postgres(bindir, os_user, pg.data_dir)  # the server stops mid-download
            assert run.wait(timeout=300) == 1
            said = (tmp_path / "run.out").read_text()
            assert "cannot be reached" in said and "PostgreSQL" in said, said
            assert "DagsterExecutionStepExecutionError" not in said and "Error occurred while executing" not in said, said
            assert len(said.strip().splitlines()) <= 3, said
            assert pg.password not in said

            # the server back: the next command tells the truth about the track
            services._run(services._as(os_user, [str(bindir / "pg_ctl"), "start", "-D", str(pg.data_dir), "-l",
                                                 str(pg.data_dir.parent / "postgres.log"), "-w"]), "restarting")
            again = cli(env, "run", str(local))
            assert again.returncode == 0, again.stdout + again.stderr
            row = Catalog(tmp_path / "library" / "catalog.sqlite", url=pg.url).tracks.get(key)
            assert row.status == "failed" and row.error_reason == "crashed", row
    finally:
        slow.shutdown()
        slow.server_close()


def test_a_catalog_connection_cut_by_the_server_is_the_catalog_sentence(postgres_server) -> None:
    """The server ends the session (pg_terminate_backend, as a shutdown does: psycopg2's
    AdminShutdown), or the connection is closed under us: both are "cannot be reached"."""
    import psycopg2
    import sqlalchemy as sa

    from music_pipeline.core.library.damage import CatalogError
    from music_pipeline.core.library.damage import errors as _errors

    conn = psycopg2.connect(postgres_server.url)
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    admin = psycopg2.connect(postgres_server.url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    errors = []
    for _ in range(2):  # the first use meets the termination, the second a closed connection
        with contextlib.suppress(psycopg2.Error):
            try:
                conn.cursor().execute("SELECT 1")
            except psycopg2.Error as err:
                errors.append(err)
                raise
    assert len(errors) == 2
    for cut in errors:
        with pytest.raises(CatalogError, match="cannot be reached"), _errors("postgresql://music:***@db/music"):
            raise sa.exc.OperationalError("SELECT 1", {}, cut)
