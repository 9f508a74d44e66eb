"""Celery workers for several machines: ``music-pipeline worker`` runs
``celery -A music_pipeline.workers worker``.

Per-track and library-wide runs arrive as dagster-celery's ``execute_job`` tasks (sent by
``instance.DistributedRunLauncher``); each is executed inside a warm pool process: the code
location is imported once, in the worker's main process before its pool processes are forked,
not once per run. The worker opens the same instance (``DagsterInstance.get()``: DAGSTER_HOME
with the same dagster.yaml, on PostgreSQL) and the same library folder (MUSIC_LIBRARY, the
shared folder mounted at the same path on every machine).

``worker_info`` (a task, and the same answer as a ``worker_info`` inspect command, which
doctor uses to ask every worker at once) says what a worker sees: host, library folder,
catalog, ffmpeg and fpcalc, and the kind of Dagster storage.
"""

import os
import shutil
import socket
from pathlib import Path

from celery import signals
from celery.worker.control import inspect_command

from . import settings
from .platform._dagster_internal import TASK_EXECUTE_JOB_NAME, TASK_RESUME_JOB_NAME, create_task, make_app

QUEUE = "dagster"
WORKER_INFO = "music_pipeline.worker_info"


def app_args() -> dict:
    broker = os.environ.get("CELERY_BROKER_URL")
    return {"broker": broker, "backend": os.environ.get("CELERY_RESULT_BACKEND") or broker,
            "include": [], "task_default_queue": QUEUE,
            "config_source": {"worker_prefetch_multiplier": 1, "task_acks_late": False,
                              "broker_connection_retry_on_startup": True,
                              "worker_hijack_root_logger": False}}


def build_app():
    celery = make_app(app_args())
    celery.conf.update(app_args()["config_source"])
    return celery


app = build_app()
execute_plan = create_task(app)

def _run_body(args_packed, as_type, body) -> int:
    """dagster-celery's execute_job/resume_job, with one change: the run's instance holds its
    PostgreSQL connections in a small pool (as Dagster's webserver does) for the run's length."""
    from .platform._dagster_internal import unpack_value

    args = unpack_value(args_packed, as_type=as_type)
    return body(instance=_runs_instance(), run_id=args.run_id, write_stream_fn=lambda _event: None,
                set_exit_code_on_failure=(args.set_exit_code_on_failure
                                          if args.set_exit_code_on_failure is not None else True))


_instance = None


def _runs_instance():
    """This pool process's instance, opened once and kept (as the daemon keeps its own) with its
    connections pooled: opening one per run cost about a second of the worker's time between
    runs (its storages inspect the database's tables as they open)."""
    global _instance
    if _instance is None:
        from dagster import DagsterInstance

        from .instance import pooled

        _instance = pooled(DagsterInstance.get())
    return _instance


@app.task(bind=True, name=TASK_EXECUTE_JOB_NAME, track_started=True)
def execute_job(_self, execute_job_args_packed) -> int:
    from .platform._dagster_internal import ExecuteRunArgs, execute_run_command_body

    return _run_body(execute_job_args_packed, ExecuteRunArgs, execute_run_command_body)


@app.task(bind=True, name=TASK_RESUME_JOB_NAME, track_started=True)
def resume_job(_self, execute_job_args_packed) -> int:  # the name CeleryRunLauncher.resume_run sends
    from .platform._dagster_internal import ResumeRunArgs, resume_run_command_body

    return _run_body(execute_job_args_packed, ResumeRunArgs, resume_run_command_body)


def worker_info_now(worker: str = "") -> dict:
    from .core.library.catalog import CATALOG_FILE

    root = settings.library_root()
    home = os.environ.get(settings.DAGSTER_HOME, "")
    config = os.path.join(home, "dagster.yaml") if home else ""
    storage = "unknown (DAGSTER_HOME not set)"
    if config:
        from .instance import uses_postgres

        storage = "postgres" if uses_postgres(Path(config)) else "sqlite"
    return {"hostname": socket.gethostname(), "worker": worker, "library_root": str(root),
            "catalog": (root / CATALOG_FILE).is_file(), "ffmpeg": bool(shutil.which("ffmpeg")),
            "fpcalc": bool(shutil.which("fpcalc")), "dagster_home": home, "dagster_storage": storage,
            "pid": os.getpid()}


@app.task(bind=True, name=WORKER_INFO)
def worker_info(self) -> dict:
    return worker_info_now(self.request.hostname or "")


@inspect_command(name="worker_info")
def worker_info_command(state) -> dict:
    return worker_info_now(state.consumer.hostname)


@signals.worker_init.connect
def _preload(**_kwargs) -> None:
    """The code location imported in the worker's main process, so each pool process (forked
    from it) starts every run warm."""
    from dagster import DagsterInstance

    import music_pipeline.definitions  # noqa: F401

    from .instance import init_pools

    with DagsterInstance.get() as instance:  # closed before the pool processes are forked
        init_pools(instance)


@signals.task_prerun.connect
def _tag_run(sender=None, task=None, kwargs=None, **_rest) -> None:
    """Which worker (and process) executes a run, as tags on the run: the UI shows it, and run
    monitoring on this machine can tell from the pid whether it is alive."""
    if task is None or task.name not in ("execute_job", "resume_job"):
        return
    from .instance import CELERY_WORKER_TAG, WORKER_TAG, worker_tag
    from .platform._dagster_internal import ExecuteRunArgs, ResumeRunArgs, unpack_value

    packed = (kwargs or {}).get("execute_job_args_packed") or (kwargs or {}).get("resume_job_args_packed")
    if packed is None:
        return
    args = unpack_value(packed, as_type=(ExecuteRunArgs, ResumeRunArgs))
    _runs_instance().add_run_tags(args.run_id, {CELERY_WORKER_TAG: task.request.hostname or socket.gethostname(),
                                                WORKER_TAG: worker_tag(args.run_id)})
