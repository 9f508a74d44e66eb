"""The Dagster instance this code location expects: the dagster.yaml that `up` writes, and
a run launcher whose runs are watched by run monitoring. (Its storage, Dagster's SQLite files
with the event log's connections kept open, is ``storage.py``.)

Dagster's default launcher cannot tell whether a run's process is alive, so a run worker
killed with SIGKILL (or by the kernel's out-of-memory killer) stays STARTED forever and its
track is never requested again. ``MonitoredRunLauncher`` launches exactly as the default
one does and answers run monitoring's question from the process id: the one the run
worker reports when it starts, or the ``music_pipeline/worker`` tag that a bulk run puts on
the track runs it executes in its own process.

On several machines (``production_yaml``, written by ``music-pipeline up --production``) the
instance lives in PostgreSQL and ``DistributedRunLauncher`` hands per-track and library-wide
runs to warm Celery workers (``music_pipeline.workers``), while bulk runs, which only
coordinate, start on the daemon's machine as ``MonitoredRunLauncher`` starts them.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path

from dagster import DagsterEventType, DagsterRun, DagsterRunStatus, DefaultRunLauncher

from .platform._dagster_internal import (
    DAGSTER_CELERY_TASK_ID_TAG,
    CeleryRunLauncher,
    CheckRunHealthResult,
    LaunchRunContext,
    ResumeRunContext,
    WorkerStatus,
)

#: "<host>:<pid>:<run id>" of the process executing a run (set on the runs a bulk run or a
#: command executes in its own process). The run id ties it to its run: a re-execution from
#: the UI copies its parent's tags, and must not be judged by the parent's dead process.
WORKER_TAG = "music_pipeline/worker"
#: The Celery worker ("name@host") a run was executed by (set by the worker as it starts the run).
CELERY_WORKER_TAG = "music_pipeline/celery_worker"
#: Same values as in automation.bulk (not imported from there: this module is imported by
#: every Dagster process before the code location).
BULK_TAG = "music_pipeline/bulk"
BULK_JOB = "process_tracks"
ENDED = (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED, DagsterRunStatus.SUCCESS)


def worker_tag(run_id: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}"


def worker_alive(tag: str | None, run_id: str) -> bool | None:
    """Whether the process a worker tag names for this run is alive; None when this machine
    cannot tell (another host, no tag, a tag copied from another run)."""
    parts = (tag or "").rsplit(":", 2)
    if len(parts) != 3:
        return None
    host, pid, tagged_run = parts
    if host != socket.gethostname() or not pid.isdigit() or tagged_run != run_id:
        return None
    return _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead for our purposes
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def orphaned_by_bulk(instance, run: DagsterRun) -> str | None:
    """Why ``run`` is dead although no process on this machine can say so: a track run that a
    bulk run executed in its own process (or a lane of it), on any machine, is still STARTED
    while that bulk run has ended. (Track runs a bulk run launched onto Celery workers, which
    carry a Celery task id, run on without it and are judged by their task.)"""
    bulk_id = run.tags.get(BULK_TAG)
    if (run.status != DagsterRunStatus.STARTED or not bulk_id or run.job_name == BULK_JOB
            or DAGSTER_CELERY_TASK_ID_TAG in run.tags):
        return None
    bulk = instance.get_run_by_id(bulk_id)
    if bulk is None or bulk.status not in ENDED:
        return None
    return (f"its bulk run {bulk_id} ended ({bulk.status.value}) while this run was still marked running: "
            "the process executing it is gone")


class MonitoredRunLauncher(DefaultRunLauncher):
    """The default launcher (runs start in the code server's subprocesses), plus the health
    check run monitoring needs to notice a dead run worker."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        orphan = orphaned_by_bulk(self._instance, run)
        if orphan:
            return CheckRunHealthResult(WorkerStatus.FAILED, orphan)
        return pid_health(self._instance, run)

    def _reported_worker(self, run: DagsterRun) -> str | None:
        return reported_worker(self._instance, run)


def pid_health(instance, run: DagsterRun) -> CheckRunHealthResult:
    """A run's health from the process id: its worker tag, else the pid its run worker reported."""
    tag = run.tags.get(WORKER_TAG)
    if worker_alive(tag, run.run_id) is None:  # not ours, or copied from a parent run
        tag = reported_worker(instance, run)
    alive = worker_alive(tag, run.run_id)
    if alive is False:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the process running it ({tag}) is gone: killed, "
                                                         "or out of memory")
    return CheckRunHealthResult(WorkerStatus.RUNNING, "alive" if alive else "cannot tell from here")


def reported_worker(instance, run: DagsterRun) -> str | None:
    """The pid from the run worker's "Started process for run (pid: N)" engine event."""
    records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = getattr(event, "engine_event_data", None) if event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None:
            return f"{socket.gethostname()}:{pid.value}:{run.run_id}"
    return None


class DistributedRunLauncher(CeleryRunLauncher):
    """Per-track and library-wide runs as Celery tasks onto warm workers (``music-pipeline
    worker``: no interpreter started per run); bulk runs (``process_tracks``), which only
    coordinate, start on this machine exactly as ``MonitoredRunLauncher`` starts them.

    Run monitoring's health check: a Celery-launched run by its task's state (a worker process
    killed mid-run is a FAILURE with WorkerLostError), a run carrying our worker tag by its
    process id when it is on this machine, a locally launched bulk run as
    ``MonitoredRunLauncher`` judges it. A failed run is never resumed: run_retries starts a
    new one."""

    LOCAL_JOBS = frozenset({BULK_JOB})

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._local = MonitoredRunLauncher()

    def register_instance(self, instance) -> None:
        super().register_instance(instance)
        self._local.register_instance(instance)

    def local(self, run: DagsterRun) -> bool:
        return run.job_name in self.LOCAL_JOBS

    def launch_run(self, context: LaunchRunContext) -> None:
        if self.local(context.dagster_run):
            self._local.launch_run(context)
        else:
            super().launch_run(context)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None:
            return False
        if self.local(run) or DAGSTER_CELERY_TASK_ID_TAG not in run.tags:
            return self._local.terminate(run_id)
        return super().terminate(run_id)

    def _launch_celery_task_run(self, run: DagsterRun, task_signature, routing_key: str) -> None:
        """As dagster-celery launches, but the task id tagged on the run before the task is sent:
        tagging it after races the worker's own tags on the run (one update lost)."""
        from .platform._dagster_internal import DAGSTER_CELERY_QUEUE_TAG, EngineEventData, get_run_priority

        task_id = str(uuid.uuid4())
        queue = run.tags.get(DAGSTER_CELERY_QUEUE_TAG, self.default_queue)
        self._instance.add_run_tags(run.run_id, {DAGSTER_CELERY_TASK_ID_TAG: task_id})
        task_signature.apply_async(priority=get_run_priority(run), queue=queue, routing_key=f"{queue}.{routing_key}",
                                   task_id=task_id)
        self._instance.report_engine_event(
            "Celery task has been forwarded to the broker.", run,
            EngineEventData({"Run ID": run.run_id, "Celery Task ID": task_id, "Celery Queue": queue}),
            cls=self.__class__)

    @property
    def supports_resume_run(self) -> bool:
        return False  # a crashed run is retried whole by run_retries, never resumed half-way

    def resume_run(self, context: ResumeRunContext) -> None:  # pragma: no cover - not offered
        raise NotImplementedError("runs are retried by run_retries, not resumed")

    def dispose(self) -> None:
        self._local.dispose()
        super().dispose()

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        orphan = orphaned_by_bulk(self._instance, run)
        if orphan:
            return CheckRunHealthResult(WorkerStatus.FAILED, orphan)
        if self.local(run) or DAGSTER_CELERY_TASK_ID_TAG not in run.tags:
            return pid_health(self._instance, run)
        health = self.task_health(run.tags[DAGSTER_CELERY_TASK_ID_TAG])
        if health.status == WorkerStatus.RUNNING and worker_alive(run.tags.get(WORKER_TAG), run.run_id) is False:
            # on this machine, and gone before its worker stored the task's failure
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the worker process running it "
                                                             f"({run.tags[WORKER_TAG]}) is gone: killed, or out of memory")
        return health

    def task_health(self, task_id: str) -> CheckRunHealthResult:
        result = self.celery.AsyncResult(task_id)
        try:
            state = result.state
        except Exception as err:  # noqa: BLE001 - the result backend down: say so, fail nothing
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"cannot tell: the Celery result backend "
                                                              f"did not answer ({type(err).__name__})")
        if state == "SUCCESS":
            return CheckRunHealthResult(WorkerStatus.SUCCESS)
        if state in ("FAILURE", "REVOKED"):
            return CheckRunHealthResult(WorkerStatus.FAILED, task_failure(result))
        if state == "STARTED":
            return CheckRunHealthResult(WorkerStatus.RUNNING, "its Celery task is running")
        # PENDING (no state stored: not picked up yet, or the result expired), RECEIVED, RETRY
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"cannot tell from its Celery task ({state})")


def task_failure(result) -> str:
    """Why a Celery task failed, in words: a killed worker process says so."""
    err = result.result
    name = type(err).__name__ if isinstance(err, BaseException) else "error"
    if name == "WorkerLostError":
        return f"the worker process was killed (WorkerLostError: {err})"
    if result.state == "REVOKED":
        return "its Celery task was revoked (terminated)"
    return f"its Celery task failed ({name}: {err})"


def pooled(instance):
    """``instance`` holding its storage connections in a small pool, as Dagster's webserver does,
    for a process that executes runs one after another (a worker's run, a bulk run's track
    runs). Without it dagster-postgres opens a connection, a server process and a password
    login, for every storage call: about 500 per track run (benchmarks/distributed.py).
    SQLite storage is unchanged."""
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=2)
    return instance


def default_concurrency() -> tuple[int, int]:
    """(runs at once, slots per pool) for this machine: each pool (downloads, ffmpeg,
    analysis) as wide as the cores, and room for the library-wide runs beside the bulk ones."""
    cores = os.cpu_count() or 2
    return max(4, cores * 2), max(2, cores)


def sqlite_storage_yaml(home: Path) -> str:
    """Runs, events and schedules in SQLite files under ``home``, as Dagster keeps them by
    default, with each process keeping its event log connections open (``storage.py``)."""
    return f"""\
storage:
  custom:
    # Dagster's SQLite storage; each process keeps its event log connections open
    module: music_pipeline.storage
    class: WarmSqliteStorage
    config:
      base_dir: {json.dumps(str(home), ensure_ascii=False)}
"""


def dagster_yaml(home: Path, storage: str | None = None) -> str:
    """The dagster.yaml `up` writes into ``home``; ``storage``: another storage block (the
    benchmarks' PostgreSQL one)."""
    runs, pool = default_concurrency()
    return f"""\
# Written by music-pipeline on first start; edit freely (`music-pipeline doctor` says when a
# setting it relies on is missing).
{(storage or sqlite_storage_yaml(home)).rstrip()}
concurrency:
  runs:
    max_concurrent_runs: {runs}
  pools:
    # downloads, ffmpeg and analysis steps across every run, bulk or not
    default_limit: {pool}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 2  # a queued run starts within two seconds, not five
run_launcher:
  module: music_pipeline.instance
  class: MonitoredRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 15
  start_timeout_seconds: 180
  # a killed run's download/ffmpeg/analysis slots go back to their pool, or the pool jams
  free_slots_after_run_end_seconds: 15
run_retries:
  enabled: true
  max_retries: 1
  # only crashed runs; a track's own failures are retried per step when they may pass
  retry_on_asset_or_op_failure: false
telemetry:
  enabled: false
"""


#: The pools the per-track steps take slots from (assets/tracks.py).
POOLS = ("download", "analysis", "ffmpeg")


def init_pools(instance) -> None:
    """Create each pool's limit row before any run needs it. Dagster creates it on a step's
    first claim, and on PostgreSQL two runs doing that at once (two workers, a fresh database)
    fail one step with a duplicate key; so `up` and every worker create them first."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    known = set(storage.get_concurrency_keys())
    for pool in POOLS:
        if pool in known:
            continue
        try:
            storage.initialize_concurrency_limit_to_default(pool)
        except Exception:  # noqa: BLE001 - another machine made it meanwhile
            if pool not in set(storage.get_concurrency_keys()):
                raise


#: What `up --production` and a worker need in the environment (the dagster.yaml names them).
PRODUCTION_ENV = ("DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT",
                  "DAGSTER_PG_DB", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


def missing_production_env() -> list[str]:
    return [name for name in PRODUCTION_ENV if not os.environ.get(name)]


def production_yaml() -> str:
    """The dagster.yaml for several machines: runs, events and schedules in PostgreSQL, per-track
    and library-wide runs on Celery workers; every connection setting read from the environment
    (the file holds no password, and the same file serves every machine)."""
    runs, pool = default_concurrency()
    return f"""\
# Written by `music-pipeline up --production`; edit freely. Every machine (the one running the
# webserver and daemon, and every `music-pipeline worker`) uses this same file, with the same
# environment variables: DAGSTER_PG_* (PostgreSQL), CELERY_BROKER_URL, CELERY_RESULT_BACKEND.
storage:
  postgres:
    postgres_db:
      username: {{env: DAGSTER_PG_USERNAME}}
      password: {{env: DAGSTER_PG_PASSWORD}}
      hostname: {{env: DAGSTER_PG_HOST}}
      port: {{env: DAGSTER_PG_PORT}}
      db_name: {{env: DAGSTER_PG_DB}}
      scheme: postgresql+psycopg2  # the driver installed with music_pipeline (SQLAlchemy 2.1 defaults to psycopg 3)
concurrency:
  runs:
    # runs at once across every worker; more than the workers' total concurrency wait in the broker
    max_concurrent_runs: {runs}
  pools:
    # downloads, ffmpeg and analysis steps across every run on every machine
    default_limit: {pool}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 2
run_launcher:
  # per-track and library-wide runs go to `music-pipeline worker`s; bulk runs start here
  module: music_pipeline.instance
  class: DistributedRunLauncher
  config:
    broker: {{env: CELERY_BROKER_URL}}
    backend: {{env: CELERY_RESULT_BACKEND}}
run_monitoring:
  enabled: true
  poll_interval_seconds: 15
  # a run waits in the broker until a worker is free: give it time before calling it stuck
  start_timeout_seconds: 900
  max_resume_run_attempts: 0  # a crashed run is retried whole (run_retries), never resumed
  # a killed run's download/ffmpeg/analysis slots go back to their pool, or the pool jams
  free_slots_after_run_end_seconds: 15
run_retries:
  enabled: true
  max_retries: 1
  # only crashed runs (a worker killed, a machine gone); a track's own failures are retried per step
  retry_on_asset_or_op_failure: false
telemetry:
  enabled: false
"""


#: What doctor looks for in an existing dagster.yaml, and why.
REQUIRED_SETTINGS = {
    "run_monitoring": "a run whose process was killed stays STARTED forever and its track is never retried",
    "MonitoredRunLauncher|DistributedRunLauncher": "run monitoring cannot tell whether a run's process is alive",
    "free_slots_after_run_end_seconds": "a killed run keeps its pool slots and the pool jams",
    "run_retries": "a crashed bulk run is not retried",
    "max_concurrent_runs": "nothing bounds how many runs start at once",
    "pools": "downloads and ffmpeg are not bounded across runs",
    "WarmSqliteStorage|postgres": "each Dagster event opens, checkpoints and closes its SQLite files "
                                  "(about 0.4 CPU-s more a track)",
}


def missing_settings(config: Path) -> list[str]:
    """Settings an existing dagster.yaml lacks, each with what goes wrong without it."""
    try:
        text = config.read_text()
    except OSError:
        return []
    lacking = [f"{name.replace('|', ' or ')}: {why}" for name, why in REQUIRED_SETTINGS.items()
               if not any(alternative in text for alternative in name.split("|"))]
    base_dir = _storage_base_dir(text)
    if base_dir and Path(base_dir).resolve() != config.parent.resolve():  # Dagster does not expand ~
        lacking.append(f"storage base_dir set to this home: it names {base_dir}, so runs are kept there "
                       f"(was the home moved? set base_dir to {config.parent})")
    return lacking


def _storage_base_dir(text: str) -> str | None:
    import yaml

    try:
        storage = ((yaml.safe_load(text) or {}).get("storage") or {}).get("custom") or {}
    except yaml.YAMLError:
        return None
    base_dir = (storage.get("config") or {}).get("base_dir") if storage.get("class") == "WarmSqliteStorage" else None
    return base_dir if isinstance(base_dir, str) else None  # {env: ...} follows the variable


def production_database() -> dict[str, str] | None:
    """``psycopg2.connect`` keywords for the PostgreSQL database a production instance
    (``up --production``: DAGSTER_HOME's dagster.yaml on PostgreSQL) keeps Dagster in, read from
    DAGSTER_PG_* as every machine of it has them; None on a single machine. What the machines
    must share beyond Dagster (the Notion rate limit) goes there too."""
    home = os.environ.get("DAGSTER_HOME")
    names = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD")
    if not home or not uses_postgres(Path(home) / "dagster.yaml") or not all(os.environ.get(n) for n in names):
        return None
    host, port, db, user, password = (os.environ[n] for n in names)
    return {"host": host, "port": port, "dbname": db, "user": user, "password": password}


def uses_postgres(config: Path) -> bool:
    try:
        return "postgres_db" in config.read_text() or "PostgresRunStorage" in config.read_text()
    except OSError:
        return False


def uses_celery(config: Path) -> bool:
    try:
        return "DistributedRunLauncher" in config.read_text()
    except OSError:
        return False
