"""The one door to Dagster's internals: every private symbol of Dagster (``dagster._…``) and of
dagster-celery (anything but its public ``celery_executor``) that music_pipeline uses is named
here, with what we use it for and why Dagster's public API does not serve, and the product
imports it from here only.

Why a door: Dagster moves or changes its private modules in any release, patch releases
included. Behind the door such a change breaks here, and ``test_platform_contract.py`` (in the
fast part of the suite) says which symbol moved or changed, what we rely on in it, and which
module of ours to fix. pyproject.toml pins the exact Dagster release these were checked
against; to move the pin, install the new release and run that test first.

What the public API serves is used from ``dagster`` directly, not through here:
``DagsterInstance``, ``DagsterRun``, ``DagsterRunStatus``, ``RunsFilter``,
``DefaultRunLauncher``, ``DagsterExecutionInterruptedError``, ``instance.report_run_failed``
and ``report_run_canceled``, dagster.yaml's documented ``storage:``, ``run_coordinator:`` and
``run_launcher:`` settings.

Each symbol is loaded when first imported from here (``from .platform._dagster_internal
import X``): dagster-celery's pull in Celery and Dagster's CLI, which a process that only opens
the SQLite storage (every Dagster process of a one-machine home) never needs; and a symbol a
release moved fails with a sentence naming it, not a bare ImportError from deep in Dagster.
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; at run time each symbol is loaded from SYMBOLS below
    from dagster._cli.api import _execute_run_command_body as execute_run_command_body
    from dagster._cli.api import _resume_run_command_body as resume_run_command_body
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
    from dagster._core.events import EngineEventData
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, ResumeRunContext, WorkerStatus
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
        INDEX_SHARD_NAME,
        SQLITE_BUSY_TIMEOUT_SECONDS,
        SqliteEventLogStorage,
    )
    from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
    from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
    from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
    from dagster._core.storage.sqlite_storage import _event_logs_directory as event_logs_directory
    from dagster._core.storage.sqlite_storage import _runs_directory as runs_directory
    from dagster._core.storage.sqlite_storage import _schedule_directory as schedule_directory
    from dagster._core.storage.tags import (
        AUTO_RETRY_RUN_ID_TAG,
        PARENT_RUN_ID_TAG,
        RETRY_NUMBER_TAG,
        ROOT_RUN_ID_TAG,
        WILL_RETRY_TAG,
    )
    from dagster._grpc.types import ExecuteRunArgs, ResumeRunArgs
    from dagster._record import copy as copy_record
    from dagster._serdes import ConfigurableClassData, unpack_value
    from dagster_celery.config import TASK_EXECUTE_JOB_NAME, TASK_RESUME_JOB_NAME
    from dagster_celery.launcher import CeleryRunLauncher
    from dagster_celery.launcher import _get_run_priority as get_run_priority
    from dagster_celery.make_app import make_app
    from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG, DAGSTER_CELERY_TASK_ID_TAG
    from dagster_celery.tasks import create_task


@dataclass(frozen=True)
class Private:
    """One private symbol: where it lives, which of our modules use it, and why."""

    module: str
    name: str
    used_by: tuple[str, ...]
    why: str

    @property
    def where(self) -> str:
        return f"{self.module}.{self.name}"

    def load(self) -> Any:
        try:
            return getattr(importlib.import_module(self.module), self.name)
        except (ImportError, AttributeError) as err:
            raise ImportError(f"{moved(self)} ({type(err).__name__}: {err})") from err


def installed() -> str:
    """The installed Dagster and dagster-celery releases, for messages."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("dagster", "dagster-celery"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"no {package}")
    return ", ".join(found)


def moved(symbol: Private) -> str:
    """What to say when ``symbol`` is not where we expect it."""
    return (f"{installed()} has no {symbol.where}: music_pipeline uses it in "
            f"{', '.join(symbol.used_by)} ({symbol.why}); fix those modules through "
            f"music_pipeline/platform/_dagster_internal.py, or install the pinned Dagster release "
            f"(pyproject.toml)")


_INSTANCE = ("music_pipeline/instance.py",)
_STORAGE = ("music_pipeline/storage.py",)
_BULK = ("music_pipeline/automation/bulk.py",)
_WORKERS = ("music_pipeline/workers.py",)
#: without_compute_logs below (for automation/bulk.py's track runs)
_DOOR = ("music_pipeline/platform/_dagster_internal.py",)

#: Every private symbol we use: our name for it -> where it lives and why we use it.
SYMBOLS: dict[str, Private] = {
    # -- run launchers -----------------------------------------------------------------------
    "CheckRunHealthResult": Private(
        "dagster._core.launcher", "CheckRunHealthResult", _INSTANCE,
        "what our launchers' check_run_worker_health returns: run monitoring asks a custom launcher "
        "whether a run's process or Celery task is alive; dagster exports RunLauncher's subclass "
        "DefaultRunLauncher, not the types of its methods"),
    "WorkerStatus": Private(
        "dagster._core.launcher", "WorkerStatus", _INSTANCE,
        "the run worker states in a CheckRunHealthResult (RUNNING, FAILED, SUCCESS); not exported"),
    "LaunchRunContext": Private(
        "dagster._core.launcher", "LaunchRunContext", _INSTANCE,
        "what launch_run receives (its dagster_run): DistributedRunLauncher routes by job; not exported"),
    "ResumeRunContext": Private(
        "dagster._core.launcher", "ResumeRunContext", _INSTANCE,
        "what resume_run receives (a type hint: our launcher refuses to resume); not exported"),
    "EngineEventData": Private(
        "dagster._core.events", "EngineEventData", _INSTANCE,
        "the metadata of the engine event saying which Celery task a run went to, as dagster-celery "
        "reports it; report_engine_event takes no plain dict"),
    "CeleryRunLauncher": Private(
        "dagster_celery.launcher", "CeleryRunLauncher", _INSTANCE,
        "DistributedRunLauncher subclasses it (launch, terminate, task health) and overrides "
        "_launch_celery_task_run to tag the task id before the task is sent; dagster-celery exports "
        "only celery_executor"),
    "get_run_priority": Private(
        "dagster_celery.launcher", "_get_run_priority", _INSTANCE,
        "a run's Celery priority from its tags, exactly as dagster-celery's own launch computes it"),
    "DAGSTER_CELERY_QUEUE_TAG": Private(
        "dagster_celery.tags", "DAGSTER_CELERY_QUEUE_TAG", _INSTANCE,
        "the tag choosing a run's Celery queue, read as dagster-celery reads it"),
    "DAGSTER_CELERY_TASK_ID_TAG": Private(
        "dagster_celery.tags", "DAGSTER_CELERY_TASK_ID_TAG", _INSTANCE,
        "the tag holding a run's Celery task id, by which dagster-celery terminates it and run "
        "monitoring finds its task"),
    # -- the warm SQLite storage -------------------------------------------------------------
    "SqliteEventLogStorage": Private(
        "dagster._core.storage.event_log.sqlite.sqlite_event_log", "SqliteEventLogStorage", _STORAGE,
        "WarmSqliteEventLogStorage subclasses it and overrides _connect (one pooled connection per "
        "file, not an engine per statement); Dagster offers it only as dagster.yaml's storage: sqlite:"),
    "INDEX_SHARD_NAME": Private(
        "dagster._core.storage.event_log.sqlite.sqlite_event_log", "INDEX_SHARD_NAME", _STORAGE,
        "the event log's index file, the one shard that is not a run's (kept open, never checkpointed "
        "for the UI's watcher)"),
    "SQLITE_BUSY_TIMEOUT_SECONDS": Private(
        "dagster._core.storage.event_log.sqlite.sqlite_event_log", "SQLITE_BUSY_TIMEOUT_SECONDS", _STORAGE,
        "the busy timeout Dagster opens its SQLite files with; our pooled connections use the same"),
    "DagsterSqliteStorage": Private(
        "dagster._core.storage.sqlite_storage", "DagsterSqliteStorage", _STORAGE,
        "WarmSqliteStorage subclasses it: the same storage as storage: sqlite: (the instance and "
        "doctor treat it so) with our event log"),
    "runs_directory": Private(
        "dagster._core.storage.sqlite_storage", "_runs_directory", _STORAGE,
        "where storage: sqlite: keeps runs.db under base_dir: the same files, so a home can switch "
        "to the warm storage and back"),
    "event_logs_directory": Private(
        "dagster._core.storage.sqlite_storage", "_event_logs_directory", _STORAGE,
        "where storage: sqlite: keeps the event log's files under base_dir (as runs_directory)"),
    "schedule_directory": Private(
        "dagster._core.storage.sqlite_storage", "_schedule_directory", _STORAGE,
        "where storage: sqlite: keeps schedules.db under base_dir (as runs_directory)"),
    "SqliteRunStorage": Private(
        "dagster._core.storage.runs.sqlite.sqlite_run_storage", "SqliteRunStorage", _STORAGE,
        "the run storage WarmSqliteStorage opens, as DagsterSqliteStorage opens it"),
    "SqliteScheduleStorage": Private(
        "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage", "SqliteScheduleStorage", _STORAGE,
        "the schedule storage WarmSqliteStorage opens, as DagsterSqliteStorage opens it"),
    "ConfigurableClassData": Private(
        "dagster._serdes", "ConfigurableClassData", (*_STORAGE, *_DOOR),
        "a class named by module and config as dagster.yaml names one: what our storage's "
        "from_config_value receives, and the compute log manager without_compute_logs puts in an "
        "InstanceRef; not exported"),
    # -- bulk runs -----------------------------------------------------------------------------
    "InstanceRef": Private(
        "dagster._core.instance.ref", "InstanceRef", _DOOR,
        "what DagsterInstance.get_ref returns and from_ref takes: a bulk run reopens its instance in "
        "lanes, and without capturing compute logs again (without_compute_logs); the public API opens "
        "an instance only from a dagster.yaml as it is"),
    "NoOpComputeLogManager": Private(
        "dagster._core.storage.noop_compute_log_manager", "NoOpComputeLogManager", _DOOR,
        "the compute log manager that captures nothing, for track runs inside a bulk run (whose own "
        "step captures the whole process); dagster.yaml can name it, Python cannot import it publicly"),
    "PARENT_RUN_ID_TAG": Private(
        "dagster._core.storage.tags", "PARENT_RUN_ID_TAG", _BULK,
        "the tag linking run_retries' retry to the failed run: a bulk run follows the retry of a "
        "track run it submitted; no public constant"),
    "WILL_RETRY_TAG": Private(
        "dagster._core.storage.tags", "WILL_RETRY_TAG", _BULK,
        "the tag saying run_retries will retry a failed run, so a bulk run waits for the retry; no "
        "public constant"),
    "ROOT_RUN_ID_TAG": Private(
        "dagster._core.storage.tags", "ROOT_RUN_ID_TAG", _BULK,
        "the tag grouping a run and its retries: a bulk run submitting the retry run_retries missed "
        "puts it in the failed run's group, as run_retries would; no public constant"),
    "RETRY_NUMBER_TAG": Private(
        "dagster._core.storage.tags", "RETRY_NUMBER_TAG", _BULK,
        "the tag run_retries counts a retry by (and finds an existing retry by, so it never makes a "
        "second): on the retry a bulk run submits when run_retries missed it; no public constant"),
    "AUTO_RETRY_RUN_ID_TAG": Private(
        "dagster._core.storage.tags", "AUTO_RETRY_RUN_ID_TAG", _BULK,
        "the tag on a failed run naming its retry (the UI links them by it); no public constant"),
    "copy_record": Private(
        "dagster._record", "copy", _BULK,
        "a Dagster record with fields replaced: a submitted track run's remote_job_origin is its "
        "bulk run's for another job; creating a run from Python as the UI does has no public API"),
    "UnresolvedAssetJobDefinition": Private(
        "dagster._core.definitions.unresolved_asset_job_definition", "UnresolvedAssetJobDefinition",
        ("music_pipeline/automation/jobs.py",),
        "what define_asset_job returns (a type hint: bind takes one); not exported"),
    # -- Celery workers ----------------------------------------------------------------------
    "execute_run_command_body": Private(
        "dagster._cli.api", "_execute_run_command_body", _WORKERS,
        "the body of `dagster api execute_run`: executes an existing run by id in this process, so a "
        "worker's warm pool process runs it; public Dagster has only that CLI (a new interpreter per "
        "run, about 3 CPU-s) and execute_job (which creates another run)"),
    "resume_run_command_body": Private(
        "dagster._cli.api", "_resume_run_command_body", _WORKERS,
        "the body of `dagster api resume_run`, for dagster-celery's resume_job task (as "
        "execute_run_command_body)"),
    "ExecuteRunArgs": Private(
        "dagster._grpc.types", "ExecuteRunArgs", _WORKERS,
        "what dagster-celery's launcher packs into an execute_job task (its run_id); not exported"),
    "ResumeRunArgs": Private(
        "dagster._grpc.types", "ResumeRunArgs", _WORKERS,
        "what dagster-celery's launcher packs into a resume_job task (its run_id); not exported"),
    "unpack_value": Private(
        "dagster._serdes", "unpack_value", _WORKERS,
        "reads a task's packed arguments (a dict); public deserialize_value takes a JSON string"),
    "TASK_EXECUTE_JOB_NAME": Private(
        "dagster_celery.config", "TASK_EXECUTE_JOB_NAME", _WORKERS,
        "the task name dagster-celery's launcher sends a run under; our worker's task takes it"),
    "TASK_RESUME_JOB_NAME": Private(
        "dagster_celery.config", "TASK_RESUME_JOB_NAME", _WORKERS,
        "the task name dagster-celery's launcher sends a resumed run under; our worker's task takes it"),
    "make_app": Private(
        "dagster_celery.make_app", "make_app", _WORKERS,
        "dagster-celery's Celery app (its queue, routes and priorities), which our worker serves"),
    "create_task": Private(
        "dagster_celery.tasks", "create_task", _WORKERS,
        "registers dagster-celery's execute_plan task (its step executor) on our worker's app"),
}


def __getattr__(name: str) -> Any:
    """``from .platform._dagster_internal import X``: X loaded from where SYMBOLS says."""
    symbol = SYMBOLS.get(name)
    if symbol is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = symbol.load()
    globals()[name] = value
    return value


def make_new_run_id() -> str:
    """A new run's id, chosen before the run exists (a bulk run tags a track run with its own
    worker and run id before executing it). Dagster's run ids are UUID4 strings, which its
    private ``make_new_run_id`` makes in one line; this is that line, without the import."""
    return str(uuid.uuid4())


def without_compute_logs(ref: InstanceRef) -> InstanceRef:
    """``ref`` (an ``InstanceRef``) with a compute log manager that captures nothing."""
    noop = __getattr__("NoOpComputeLogManager")
    return ref._replace(compute_logs_data=__getattr__("ConfigurableClassData")(noop.__module__, noop.__name__, "{}"))


__all__ = [
    "AUTO_RETRY_RUN_ID_TAG",
    "DAGSTER_CELERY_QUEUE_TAG",
    "DAGSTER_CELERY_TASK_ID_TAG",
    "INDEX_SHARD_NAME",
    "PARENT_RUN_ID_TAG",
    "RETRY_NUMBER_TAG",
    "ROOT_RUN_ID_TAG",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "SYMBOLS",
    "TASK_EXECUTE_JOB_NAME",
    "TASK_RESUME_JOB_NAME",
    "WILL_RETRY_TAG",
    "CeleryRunLauncher",
    "CheckRunHealthResult",
    "ConfigurableClassData",
    "DagsterSqliteStorage",
    "EngineEventData",
    "ExecuteRunArgs",
    "InstanceRef",
    "LaunchRunContext",
    "NoOpComputeLogManager",
    "Private",
    "ResumeRunArgs",
    "ResumeRunContext",
    "SqliteEventLogStorage",
    "SqliteRunStorage",
    "SqliteScheduleStorage",
    "UnresolvedAssetJobDefinition",
    "WorkerStatus",
    "copy_record",
    "create_task",
    "event_logs_directory",
    "execute_run_command_body",
    "get_run_priority",
    "make_app",
    "make_new_run_id",
    "resume_run_command_body",
    "runs_directory",
    "schedule_directory",
    "unpack_value",
    "without_compute_logs",
]
