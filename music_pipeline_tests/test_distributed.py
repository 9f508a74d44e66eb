"""Several machines, played on one: the instance in a real PostgreSQL, track runs sent through a
real Redis to `music-pipeline worker` processes (Celery, prefork), the real daemon dequeuing,
monitoring and retrying runs. The end-to-end tests share one cluster, started once (``machines``),
each with tracks of its own; the others get a database of their own and an empty Redis."""

import contextlib
import functools
import http.server
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from music_pipeline.core.domain.lifecycle import Status
from music_pipeline.core.library.steps import Library, register_target
from music_pipeline.instance import CELERY_WORKER_TAG, WORKER_TAG, production_yaml
from music_pipeline.resources import LibraryResource

from . import services
from .audio import make_track
from .conftest import SlowHandler
from .daemon import REPO, wait
from .services import Postgres, Redis

FORMATS = {"ALAC", "AIFF", "WAV"}
PY = sys.executable

@dataclass
class Cluster:
    tmp: Path
    env: dict[str, str]
    home: Path
    library_root: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # every track registered in its library

    @functools.cached_property
    def library(self) -> Library:
        return LibraryResource(root=str(self.library_root), catalog_url=self.env["MUSIC_CATALOG_URL"]).get()

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, cwd=REPO, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        return proc

    def worker(self, name: str, concurrency: int = 1, **env: str) -> subprocess.Popen:
        return self.start(name, [PY, "-m", "music_pipeline", "worker", "--name", name, "--concurrency",
                                 str(concurrency)], **env)

    def daemon(self) -> subprocess.Popen:
        return self.start("daemon", [str(Path(PY).with_name("dagster-daemon")), "run", "-w",
                                     str(REPO / "workspace.yaml")])

    def cli(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def ping(self) -> set[str]:
        """Names of the workers answering now."""
        from music_pipeline.workers import build_app

        app = build_app()
        try:
            return set(app.control.inspect(timeout=1.0).ping() or {})
        finally:
            app.close()

    def wait_workers(self, *names: str, timeout: float = 90) -> None:
        def up() -> bool:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited:\n{self.logs[name].read_text()[-3000:]}")
            answered = {n.split("@")[0] for n in self.ping()}
            return set(names) <= answered

        wait(up, timeout, f"workers {', '.join(names)}", interval=0.5)

    def instance(self) -> DagsterInstance:
        return DagsterInstance.get()

    def tail(self) -> str:
        return "\n".join(f"--- {name}\n{log.read_text(errors='replace')[-4000:]}" for name, log in self.logs.items())

    def stop(self) -> None:
        services.stop_groups(self.procs.values(), grace=20)

@contextlib.contextmanager
def _cluster(tmp: Path, postgres_server: Postgres, redis_server: Redis, monkeypatch: pytest.MonkeyPatch,
             redis_db: int = 0) -> Iterator[Cluster]:
    """DAGSTER_HOME with the production dagster.yaml (monitoring polled every 2 s) on a fresh
    database, an empty Redis database ``redis_db``, a library folder; processes started through it
    are stopped after."""
    import redis

    redis.Redis(host=redis_server.host, port=redis_server.port, db=redis_db).flushdb()
    home, root = tmp / "home", tmp / "library"
    home.mkdir()
    (home / "dagster.yaml").write_text(production_yaml().replace("poll_interval_seconds: 15", "poll_interval_seconds: 2")
                                       .replace("free_slots_after_run_end_seconds: 15",
                                                "free_slots_after_run_end_seconds: 2"))
    broker = redis_server.url.rsplit("/", 1)[0] + f"/{redis_db}"
    # Dagster's storage and the catalog each on a database of their own on the same server
    env = {**services.fresh_database(postgres_server, "dagster").env,
           "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker,
           "MUSIC_CATALOG_URL": services.fresh_database(postgres_server, "catalog").url,
           "DAGSTER_HOME": str(home), "MUSIC_LIBRARY": str(root), "EAGLE_API_BASE": "off",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    running = Cluster(tmp, {**os.environ, **env}, home, root)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def cluster(tmp_path: Path, postgres_server: Postgres, redis_server: Redis,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """A cluster of this test's own: a fresh database, an empty Redis, no process started yet."""
    with _cluster(tmp_path, postgres_server, redis_server, monkeypatch) as running:
        yield running


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory, postgres_server: Postgres,
             redis_server: Redis) -> Iterator[Cluster]:
    """The module's cluster, started once: workers w1 and w2 and the daemon (on Redis database 1,
    apart from the other tests' database 0). Its tests register tracks of their own and look only
    at their runs; every track in its library is accounted for (``Cluster.keys``)."""
    with pytest.MonkeyPatch.context() as monkeypatch, \
            _cluster(tmp_path_factory.mktemp("machines"), postgres_server, redis_server, monkeypatch,
                     redis_db=1) as running:
        running.worker("w1")
        running.worker("w2")
        running.daemon()
        running.wait_workers("w1", "w2")
        yield running


def track_runs(instance: DagsterInstance, keys: list[str]) -> list:
    """The track runs of ``keys`` (a test's own tracks on the module's cluster)."""
    return [r for r in instance.get_runs(filters=RunsFilter(job_name="process_track"))
            if r.tags.get("dagster/partition") in keys]

def why(instance: DagsterInstance, runs: list) -> str:
    """The failures of ``runs``, for an assertion's message."""
    lines = []
    for run in runs:
        if run.status == DagsterRunStatus.SUCCESS:
            continue
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event and (event.is_step_failure or event.is_run_failure or event.event_type_value == "ENGINE_EVENT"):
                error = getattr(event.event_specific_data, "error", None)
                lines.append(f"{run.run_id[:8]} {run.tags.get('dagster/partition')} {event.event_type_value}: "
                             f"{entry.message} {error.to_string() if error else ''}")
    return "\n".join(lines)


def outputs(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).parts[0] in FORMATS)

def leftovers(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and (".part" in p.name or p.name.endswith((".tmp", ".ytdl"))))

def register(cluster: Cluster, targets: list[str]) -> list[str]:
    keys = [register_target(cluster.library, target)[0].key for target in targets]
    cluster.keys.extend(keys)
    with cluster.instance() as instance:
        instance.add_dynamic_partitions("tracks", keys)
    return keys

def assert_done_once(cluster: Cluster, keys: list[str]) -> None:
    """Every track DONE, one catalog row each, one file per format each, nothing half-written
    (nor any file beside those of the tracks the cluster was given, all done by now)."""
    rows = [row for row in cluster.library.catalog.tracks.all() if row.key in keys]
    assert sorted(r.key for r in rows) == sorted(keys)
    assert {r.key: r.status for r in rows} == {k: Status.DONE for k in keys}
    for key in keys:
        formats = sorted(f.format.upper() for f in cluster.library.catalog.files.all([key]))
        assert len(formats) == len(set(formats)) == 3, (key, formats)
    on_disk = outputs(cluster.library_root)
    assert len(on_disk) == 3 * len(cluster.keys), on_disk
    assert {Path(p).parts[0] for p in on_disk} == FORMATS
    assert leftovers(cluster.library_root) == []
    assert not (cluster.library_root / "catalog.sqlite").exists()  # every machine wrote to the shared catalog

# -- a) the dagster.yaml -----------------------------------------------------------------------

def test_production_yaml_is_a_postgres_instance_with_the_distributed_launcher(cluster: Cluster) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    from music_pipeline.instance import DistributedRunLauncher

    with cluster.instance() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_launcher, DistributedRunLauncher)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert instance.run_retries_max_retries == 1
        assert instance.event_log_storage.supports_global_concurrency_limits  # pools across machines
        assert instance.run_launcher.broker == os.environ["CELERY_BROKER_URL"]
        assert instance.get_runs_count() == 0  # tables made in the fresh database
    text = (cluster.home / "dagster.yaml").read_text()
    assert os.environ["DAGSTER_PG_PASSWORD"] not in text  # from the environment, never in the file

def test_up_production_refuses_without_the_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_PG_", "CELERY_"))}
    env.update(DAGSTER_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    proc = subprocess.run([PY, "-m", "music_pipeline", "up", "--production", "--no-install"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "DAGSTER_PG_USERNAME" in proc.stderr and "CELERY_BROKER_URL" in proc.stderr
    assert not (tmp_path / "home" / "dagster.yaml").exists()

# -- b) end to end: a backfill over two workers ------------------------------------------------

@pytest.mark.slow
def test_backfill_runs_on_two_workers(machines: Cluster, tmp_path: Path) -> None:
    cluster = machines  # workers w1 and w2 and the daemon
    sources = [make_track(tmp_path / "src" / f"Band - Song {n}.flac", seconds=5, bpm=100 + 8 * n, seed=n,
                          codec_args=["-c:a", "flac"]) for n in range(4)]
    keys = register(cluster, [str(p) for p in sources])
    proc = cluster.cli(PY, "-m", "dagster", "job", "backfill", "-j", "process_track", "--partitions", ",".join(keys),
                       "--noprompt", "-w", str(REPO / "workspace.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    with cluster.instance() as instance:
        def finished():
            runs = track_runs(instance, keys)
            return len(runs) == 4 and all(r.is_finished for r in runs) and runs

        try:
            runs = wait(finished, 240, "four track runs", interval=1)
        except AssertionError:
            raise AssertionError(cluster.tail()) from None
        assert {r.status for r in runs} == {DagsterRunStatus.SUCCESS}, why(instance, runs)
        assert {r.tags["dagster/partition"] for r in runs} == set(keys)
        workers = {r.tags[CELERY_WORKER_TAG].split("@")[0] for r in runs}
        assert workers == {"w1", "w2"}, workers  # both machines took tracks
        assert all(r.tags.get("dagster-celery/task_id") for r in runs)
    assert_done_once(cluster, keys)

# -- c) a worker process killed mid-step ------------------------------------------------------

class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # the killed download's broken pipe
        pass


@pytest.fixture
def slow_www(tmp_path: Path) -> Iterator[tuple[Path, str, QuietServer]]:
    root = tmp_path / "www"
    root.mkdir()
    httpd = QuietServer(("127.0.0.1", 0), functools.partial(SlowHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    httpd.shutdown()
    httpd.server_close()

def launch_bulk(cluster: Cluster, keys: list[str]) -> None:
    """A bulk run (process_tracks) put in the queue as the UI or a sensor would."""
    import json

    from music_pipeline.automation.bulk import run_config

    proc = cluster.cli(str(Path(PY).with_name("dagster")), "job", "launch", "-j", "process_tracks", "-w",
                       str(REPO / "workspace.yaml"), "--config-json", json.dumps(run_config(keys)),
                       "--tags", json.dumps({"music_pipeline/origin": "test"}))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def bulk_runs(instance: DagsterInstance, keys: list[str]) -> list:
    """The bulk runs sent for any of ``keys``."""
    return [r for r in instance.get_runs(filters=RunsFilter(job_name="process_tracks"))
            if set(r.run_config["ops"]["run_tracks"]["config"]["keys"]) & set(keys)]


@pytest.mark.slow
def test_killed_worker_process_is_failed_by_monitoring_and_retried(machines: Cluster, slow_www) -> None:
    """A bulk run on several machines submits the track run; the worker's pool process is killed
    inside the download; monitoring fails the run from its Celery task, run_retries retries it,
    the bulk run follows the retry (and does not retry the track itself too)."""
    cluster = machines  # workers w1 and w2 and the daemon
    root, url, slow = slow_www
    make_track(root / "Slow Band - Long Song.flac", seconds=6, seed=3, codec_args=["-c:a", "flac"])
    (key,) = register(cluster, [f"{url}/Slow%20Band%20-%20Long%20Song.flac"])
    launch_bulk(cluster, [key])

    with cluster.instance() as instance:
        def downloading():
            runs = track_runs(instance, [key])
            run = runs[-1] if runs else None
            if run is None or run.status != DagsterRunStatus.STARTED or WORKER_TAG not in run.tags:
                return None
            from dagster import DagsterEventType

            steps = [e.step_key for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)]
            return run if "raw_audio" in steps else None

        try:
            first = wait(downloading, 120, "the track run inside its download step", interval=0.3)
        except AssertionError:
            raise AssertionError(cluster.tail() + why(instance, bulk_runs(instance, [key]))) from None
        wait(lambda: [p for p in cluster.library_root.rglob("download-*") if p.stat().st_size > 0], 30,
             "the download's first bytes", interval=0.1)  # well inside the slow download
        _host, pid, _ = first.tags[WORKER_TAG].rsplit(":", 2)
        # a pool process, not a worker's main process
        assert int(pid) not in {cluster.procs[name].pid for name in ("w1", "w2")}
        os.kill(int(pid), signal.SIGKILL)

        def settled():
            if instance.get_run_by_id(first.run_id).is_finished:
                slow.throttled = False  # the killed run is failed: its retry need not crawl
            runs = track_runs(instance, [key])
            bulk = bulk_runs(instance, [key])
            return len(runs) == 2 and all(r.is_finished for r in [*runs, *bulk]) and runs

        try:
            runs = wait(settled, 180, "the killed run failed, its retry finished, and the bulk run", interval=1)
        except AssertionError:
            raise AssertionError(cluster.tail() + why(instance, track_runs(instance, [key]))) from None
        killed = instance.get_run_by_id(first.run_id)
        retry = next(r for r in runs if r.run_id != first.run_id)
        assert killed.status == DagsterRunStatus.FAILURE
        assert retry.status == DagsterRunStatus.SUCCESS, why(instance, runs)
        # made by run_retries, or by the bulk run when run_retries missed the failure (bulk.py:
        # TrackRunner.retry): either way one retry, in the killed run's group, named on it
        assert retry.tags.get("dagster/parent_run_id") == first.run_id
        assert killed.tags.get("dagster/auto_retry_run_id") == retry.run_id
        messages = " ".join(e.message or "" for e in instance.all_logs(first.run_id))
        # from the Celery task's WorkerLostError, or (when monitoring looks first) from the pid being gone
        assert ("the worker process was killed" in messages and "WorkerLostError" in messages) or (
            "is gone: killed" in messages), messages[-800:]
        (bulk,) = bulk_runs(instance, [key])
        assert bulk.status == DagsterRunStatus.SUCCESS, why(instance, [bulk])
        assert {r.tags.get("music_pipeline/bulk") for r in runs} == {bulk.run_id}
    assert_done_once(cluster, [key])


# -- d) doctor ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_doctor_checks_postgres_redis_and_the_workers(cluster: Cluster, tmp_path: Path) -> None:
    cluster.worker("w1")
    cluster.wait_workers("w1")
    proc = cluster.cli(PY, "-m", "music_pipeline", "doctor")
    lines = proc.stdout.splitlines()
    pg = os.environ["DAGSTER_PG_PORT"]
    assert any(line.startswith("ok") and f"PostgreSQL 127.0.0.1:{pg}" in line and "reachable" in line
               for line in lines), proc.stdout
    assert any(line.startswith("ok") and "Redis (broker)" in line and "reachable" in line for line in lines), proc.stdout
    assert any(line.startswith("ok") and "Celery workers: 1 answered" in line and "w1@" in line for line in lines), \
        proc.stdout
    assert any(line.startswith("ok") and "worker w1@" in line and f"library {cluster.library_root}" in line
               for line in lines), proc.stdout
    assert any(line.startswith("ok") and "catalog on PostgreSQL" in line and "schema version" in line
               for line in lines), proc.stdout
    assert os.environ["DAGSTER_PG_PASSWORD"] not in proc.stdout

    elsewhere = tmp_path / "elsewhere"
    cluster.worker("w3", MUSIC_LIBRARY=str(elsewhere))
    cluster.wait_workers("w1", "w3")
    proc = cluster.cli(PY, "-m", "music_pipeline", "doctor")
    assert proc.returncode == 1
    fix = [line for line in proc.stdout.splitlines() if line.startswith("FIX") and "worker w3@" in line]
    assert fix and str(elsewhere) in fix[0] and str(cluster.library_root) in fix[0], proc.stdout
    assert any(line.startswith("ok") and "worker w1@" in line for line in proc.stdout.splitlines())

def test_doctor_says_when_no_worker_answers_and_postgres_is_down(cluster: Cluster) -> None:
    proc = cluster.cli(PY, "-m", "music_pipeline", "doctor")
    assert "FIX  Celery workers: no worker answered" in proc.stdout
    assert "music-pipeline worker" in proc.stdout
    env = {**cluster.env, "DAGSTER_PG_PORT": str(services.free_port())}
    down = subprocess.run([PY, "-m", "music_pipeline", "doctor"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    line = next(line for line in down.stdout.splitlines() if "Dagster storage on PostgreSQL" in line)
    assert line.startswith("FIX") and "not reachable" in line and env["DAGSTER_PG_PORT"] in line
    assert cluster.env["DAGSTER_PG_PASSWORD"] not in down.stdout


# -- the cross-machine rule --------------------------------------------------------------------


def test_a_bulk_runs_own_track_run_left_started_after_it_ended_is_dead_on_any_machine() -> None:
    """The bulk run ran on another machine (its worker tag names another host, so no pid can be
    checked here): once the bulk run has ended, its track run still STARTED is dead for run
    monitoring and for in_flight; a track run it sent to a Celery worker is judged by its task."""
    from dagster._core.launcher import WorkerStatus
    from dagster._core.test_utils import create_run_for_test

    from music_pipeline.automation.bulk import BULK_TAG, PARTITION_TAG, in_flight, reap_dead_runs
    from music_pipeline.instance import MonitoredRunLauncher, orphaned_by_bulk

    with DagsterInstance.ephemeral() as instance:
        bulk = create_run_for_test(instance, job_name="process_tracks", status=DagsterRunStatus.STARTED)
        tags = {BULK_TAG: bulk.run_id, PARTITION_TAG: "file-a", WORKER_TAG: "elsewhere:123:x"}
        track = create_run_for_test(instance, job_name="process_track", status=DagsterRunStatus.STARTED, tags=tags)
        sent = create_run_for_test(instance, job_name="process_track", status=DagsterRunStatus.STARTED,
                                   tags={**tags, PARTITION_TAG: "file-b", "dagster-celery/task_id": "t"})
        launcher = MonitoredRunLauncher()
        launcher.register_instance(instance)
        assert orphaned_by_bulk(instance, track) is None  # its bulk run still runs
        assert launcher.check_run_worker_health(track).status == WorkerStatus.RUNNING
        assert in_flight(instance, waiting=False) == {"file-a", "file-b"}

        instance.report_run_failed(instance.get_run_by_id(bulk.run_id), "killed")
        track = instance.get_run_by_id(track.run_id)
        health = launcher.check_run_worker_health(track)
        assert health.status == WorkerStatus.FAILED and bulk.run_id in health.msg
        assert orphaned_by_bulk(instance, instance.get_run_by_id(sent.run_id)) is None
        assert in_flight(instance, waiting=False) == {"file-b"}  # file-a's run is dead: not counted
        assert reap_dead_runs(instance) == [track.run_id]  # and marked failed by the reaper alone
        assert instance.get_run_by_id(track.run_id).status == DagsterRunStatus.FAILURE
