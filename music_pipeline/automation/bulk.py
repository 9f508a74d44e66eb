"""Bulk work: many tracks, each a genuine run of the per-track job, executed inside this
run's already started process (or, on several cores, in lanes forked from a warm fork server).

A run launched by the daemon starts a new interpreter and imports Dagster and the code
location (about 3 CPU-seconds, more than a three-minute track's processing), so one run
per track launched cold would cost more than the work. A bulk run pays that once and then
executes each track's ``process_track`` run (``execute_in_process`` against the same
instance): every track still gets its own run in the UI, with its status, its events, its
failed partition and its check results, linked to the bulk run by the
``music_pipeline/bulk`` tag. Sensors, schedules and the commands all ask for this job; the
rules that choose the tracks are plain code (``core.selection``).

The bulk op holds no pool slot itself: its track runs' steps take the download, ffmpeg and
analysis slots, so a bulk run never waits for a slot it holds. A track run records the
process executing it (``music_pipeline/worker``): if the bulk run's process dies, run
monitoring marks the track runs it left STARTED as failed, and ``reap_dead_runs`` (called by
the sensors before they look, by every bulk run and by the commands at their start) does so
at once, the bulk run included, so the tracks can run again. ``in_flight`` only looks.

On several machines (the instance's launcher is ``instance.DistributedRunLauncher``) a bulk
run executes nothing itself: it submits one ``process_track`` run per track to the run queue,
the daemon hands them to the Celery workers (warm processes there), and the bulk run follows
them as they finish, following run_retries' retry of a crashed one.
"""


import contextlib
import functools
import hashlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator

from dagster import (
    Config,
    DagsterExecutionInterruptedError,
    DagsterInstance,
    DagsterRunStatus,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Output,
    RunRequest,
    RunsFilter,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from ..assets import TARGET_TAG, tracks
from ..core.domain import selection
from ..core.domain.errors import Reason
from ..core.domain.identity import redact_url
from ..core.domain.lifecycle import Status
from ..core.library.rows import Track
from ..core.library.steps import Library
from ..core.sources import discovery
from ..instance import WORKER_TAG, orphaned_by_bulk, pooled, worker_alive, worker_tag
from ..platform._dagster_internal import (
    AUTO_RETRY_RUN_ID_TAG,
    PARENT_RUN_ID_TAG,
    RETRY_NUMBER_TAG,
    ROOT_RUN_ID_TAG,
    WILL_RETRY_TAG,
    copy_record,
    make_new_run_id,
    without_compute_logs,
)
from ..resources import (
    AnalysisResource,
    DjResource,
    DownloaderResource,
    EagleResource,
    LibraryResource,
    NotionResource,
    SoundCloudResource,
    SpotifyResource,
    resolved,
    unresolved,
)
from .jobs import TRACK_JOBS, bind

BULK_TAG = "music_pipeline/bulk"  # on a track run: the bulk run it belongs to
ORIGIN_TAG = "music_pipeline/origin"  # what asked for the work: inbox, spotify_liked, cli run, nightly_sync, ...
PARTITION_TAG = "dagster/partition"
UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
              DagsterRunStatus.STARTED]

MIN_TRACKS_FOR_LANES = 4  # fewer run one after another in the bulk run's own process
SUBMITTED_POLL_S = 1.0  # how often a bulk run on several machines looks at its track runs
RETRY_MISSED_S = 30.0  # run_retries' retry of a crashed track run not there by then: missed (TrackRunner.retry)

#: Per-track outcomes, as the bulk run counts them.
OUTCOMES = ("done", "set aside", "failed", "skipped")


class BulkConfig(Config):
    keys: list[str] = Field(default_factory=list, description="Track keys to process, in order.")
    targets: dict[str, str] = Field(default_factory=dict,
                                    description="URL or file per key, for tracks this catalog may not know yet.")
    select: str = Field(default="", description=f"Instead of keys: {', '.join(selection.MODES)}.")
    limit: int = Field(default=0, description="At most this many tracks (0: no limit).")
    force_download: bool = Field(default=False, description="Download or import the originals again.")
    sync_sources: bool = Field(default=False, description="First list every configured source in full.")
    job: str = Field(default="process_track", description="The per-track job: process_track, verify_track "
                                                           "(the asset checks alone) or mirror_track (Notion "
                                                           "and Eagle alone).")
    parallel: int = Field(default=0, description="Tracks at once, in lanes forked from a fork server that has "
                                                 "the code location imported (0: one per core, from 4 tracks).")
    retries: int = Field(default=1, description="New runs for a track whose failure may pass (network, disk "
                                                "full, a crash); never DRM, geo, not audio or needs review.")
    retry_delay_s: float = Field(default=30.0, description="Seconds before those are tried again.")
    pins: dict[str, str] = Field(default_factory=dict, description="Track key -> the URL to download it from "
                                                                   "(`music-pipeline pin`), set before anything runs.")


def run_config(keys: list[str] | None = None, *, targets: dict[str, str] | None = None, select: str = "",
               limit: int = 0, force: bool = False, sync: bool = False, job_name: str = "process_track",
               parallel: int = 0, pins: dict[str, str] | None = None) -> dict:
    return {"ops": {"run_tracks": {"config": {
        "keys": keys or [], "targets": targets or {}, "select": select, "limit": limit, "force_download": force,
        "sync_sources": sync, "job": job_name, "parallel": parallel, "pins": pins or {}}}}}


def bulk_request(keys: list[str], origin: str, *, run_key: str | None = None) -> RunRequest | None:
    """One bulk run for what a sensor tick found; the run key makes a re-evaluated tick harmless."""
    if not keys:
        return None
    digest = hashlib.sha1("\n".join(keys).encode()).hexdigest()[:12]
    return RunRequest(job_name=process_tracks.name, run_key=run_key or f"{origin}:{digest}",
                      run_config=run_config(keys),
                      tags={ORIGIN_TAG: origin, "music_pipeline/tracks": str(len(keys))})


# -- in flight ------------------------------------------------------------------------------


def in_flight(instance: DagsterInstance, *, waiting: bool = True) -> set[str]:
    """Tracks a queued or running run is working on and, with ``waiting``, tracks waiting in
    an unfinished bulk run: the one rule every sensor and command applies before requesting
    a track. (A bulk run itself gives way only to track runs, checked again as each starts:
    two bulk runs giving way to each other's waiting lists would both skip a track.) A pure
    query: a run whose process died does not count, and is marked failed only by
    ``reap_dead_runs``, which callers run first."""
    keys: set[str] = set()
    for run in instance.get_runs(filters=RunsFilter(job_name="process_track", statuses=UNFINISHED)):
        if run.tags.get(PARTITION_TAG) and not _dead(run, instance):
            keys.add(run.tags[PARTITION_TAG])
    if not waiting:
        return keys
    for run in instance.get_runs(filters=RunsFilter(job_name=process_tracks.name, statuses=UNFINISHED)):
        if not _dead(run):
            keys.update((run.run_config or {}).get("ops", {}).get("run_tracks", {}).get("config", {})
                        .get("keys") or [])
    return keys


def reap_dead_runs(instance: DagsterInstance, library: Library | None = None) -> list[str]:
    """Mark failed every started run whose process is gone (a command's bulk run killed with
    no daemon to notice, the track runs it left, a dead lane's run), free their pool slots
    and fail their tracks, so the tracks can run again; returns their run ids. Run monitoring
    does the same under the daemon, within its poll interval; this does it at once, wherever
    it is called: by the sensors before they query, by every bulk run, and by the commands at
    their start. Bulk runs first: their track runs are then orphans on any machine. Then the
    tracks left `running` by a run that ended without recording it (automation/settle.py)."""
    started = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    reaped = []
    for run in sorted(started, key=lambda r: r.job_name != process_tracks.name):
        if _dead(run, instance):
            fail_orphan(instance, run, library)
            reaped.append(run.run_id)
    if library is not None:  # and tracks a finished run could not record the end of (a catalog outage)
        from .settle import settle_running_tracks

        settle_running_tracks(instance, library)
    return reaped


def _dead(run, instance: DagsterInstance | None = None) -> bool:
    """Its process is gone: by its pid on this machine, or (any machine) it is a track run its
    bulk run executed, and that bulk run has ended."""
    if run.status != DagsterRunStatus.STARTED:
        return False
    if worker_alive(run.tags.get(WORKER_TAG), run.run_id) is False:
        return True
    return instance is not None and orphaned_by_bulk(instance, run) is not None


def fail_orphan(instance: DagsterInstance, run, library: Library | None, message: str | None = None) -> None:
    """Mark a run whose process is gone failed, free its pool slots, and fail its track."""
    if message is None:
        orphan = orphaned_by_bulk(instance, run)
        message = (f"The process running this ({run.tags.get(WORKER_TAG)}) is gone (killed, or out of memory); "
                   "its tracks can run again.") if not orphan else f"This run is dead: {orphan}; its track can run again."
    instance.report_run_failed(run, message)
    if instance.event_log_storage.supports_global_concurrency_limits:  # its pool slots, or they leak
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    key = run.tags.get(PARTITION_TAG)
    if library is not None and key:  # failed only while still running (the lifecycle's "crash")
        library.catalog.tracks.mark_crashed(key, message)


def _busy_elsewhere(instance: DagsterInstance, key: str) -> bool:
    """The last guard before a track run starts: another run of this track is unfinished."""
    runs = instance.get_runs(filters=RunsFilter(job_name="process_track", tags={PARTITION_TAG: key},
                                                statuses=UNFINISHED), limit=1)
    return bool(runs) and not _dead(runs[0], instance)


# -- progress -------------------------------------------------------------------------------

Listener = Callable[[int, int, str, str, float], None]  # (number, total, key, outcome, seconds)
_listeners: list[Listener] = []


@contextlib.contextmanager
def progress(listener: Listener) -> Iterator[None]:
    """Call ``listener`` as each track of a bulk run executed in this process finishes (the
    command line's progress)."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


# -- executing track runs -------------------------------------------------------------------


def _lanes(parallel: int, tracks_count: int, instance: DagsterInstance) -> int:
    """How many track runs at once. More than one needs processes of our own, and an
    instance they can open again (not an in-memory one)."""
    wanted = min(parallel or os.cpu_count() or 1, tracks_count)
    if parallel == 0 and tracks_count < MIN_TRACKS_FOR_LANES:
        return 1  # starting the lanes' fork server (an import of the code location) would cost more
    if wanted <= 1 or instance.is_ephemeral or "forkserver" not in multiprocessing.get_all_start_methods():
        return 1
    return wanted


def _forkserver():
    """Lanes are forked from a fork server that has the code location imported: they start
    warm, and safely (the server is single-threaded; this run's process is not: Dagster
    runs a termination handler and a queue feeder beside the step)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["music_pipeline.definitions"])
    return context


def _without_capture(instance: DagsterInstance):
    """The instance for track runs inside a bulk run, as a context (closed after): the same
    storage, without capturing stdout and stderr again (the bulk run's step captures its whole
    process; capturing per track run starts four helper processes each time)."""
    if instance.is_ephemeral:  # in memory: nothing to reopen (tests)
        return contextlib.nullcontext(instance)
    return pooled(DagsterInstance.from_ref(_ref_without_capture(instance)))


def _ref_without_capture(instance: DagsterInstance):
    return without_compute_logs(instance.get_ref())


class TrackRunner:
    """Executes a per-track job's runs, in this process or in lanes (processes of their own,
    so several tracks run at once on several cores)."""

    def __init__(self, job_name: str, resources: dict, run_config: dict, tags: dict[str, str],
                 again: bool = False, submit_from=None) -> None:
        self.job_name, self.resources, self.run_config, self.tags = job_name, resources, run_config, tags
        self.again = again  # finished tracks run again (--force, reprocess)
        #: (the bulk run, its repository): track runs are submitted to the run queue, for the
        #: Celery workers, instead of executed here
        self.submit_from = submit_from

    @functools.cached_property
    def job(self):
        return bind(TRACK_JOBS[self.job_name], self.resources)

    @functools.cached_property
    def library(self) -> Library:
        # the resources hold their secrets as EnvVars (kept out of the track runs' config):
        # resolved here, where this process reads the catalog itself
        return resolved(self.resources["library"]).get()

    def __getstate__(self) -> dict:
        """What a lane needs: the resources as their settings (a bound resource carries Dagster
        state that does not pickle); the lane builds the job itself."""
        settings = {name: (type(r), {f: getattr(r, f) for f in type(r).model_fields})
                    for name, r in self.resources.items()}
        return {"job_name": self.job_name, "settings": settings, "run_config": self.run_config, "tags": self.tags,
                "again": self.again}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["job_name"], {name: cls(**fields) for name, (cls, fields) in state["settings"].items()},
                      state["run_config"], state["tags"], state["again"])

    def run_one(self, instance: DagsterInstance, key: str, target: str | None, attempt: int) -> tuple[str, str]:
        """(outcome, run id) of one track run; "skipped" when another run has the track, or
        finished it meanwhile. An interruption (Ctrl-C, the UI's Terminate) is not caught:
        it stops the bulk run, not just this track."""
        if _busy_elsewhere(instance, key):
            return "skipped", ""
        row = self.library.catalog.tracks.get(key)
        if self.job_name == "process_track" and row and Status(row.status).finished and not self.again:
            return "skipped", ""
        run_id = make_new_run_id()
        tags = {**self.tags, WORKER_TAG: worker_tag(run_id), PARTITION_TAG: key}
        if target:
            tags[TARGET_TAG] = target
        if attempt > 1:
            tags["music_pipeline/attempt"] = str(attempt)
        # the partition as a tag: Dagster validates ``partition_key`` against the selected
        # assets, and the checks-only job (verify_track) selects none
        result = self.job.execute_in_process(instance=instance, run_config=self.run_config, tags=tags,
                                             run_id=run_id, raise_on_error=False)
        if result.dagster_run.tags.get("dagster/failure_reason") == "UNEXPECTED_TERMINATION" or any(
                event.is_step_failure and event.step_failure_data.error
                and event.step_failure_data.error.cls_name == "DagsterExecutionInterruptedError"
                for event in result.all_events):
            # the track run took the interrupt for itself; pass it on, so the bulk run stops too
            raise DagsterExecutionInterruptedError(f"interrupted while {key} was being processed")
        return _outcome(result, self.library.catalog.tracks.get(key), self.job_name), run_id

    def run_all(self, keys: list[str], targets: dict[str, str], lanes: int, instance: DagsterInstance,
                attempt: int) -> Iterator[tuple[str, str, str, float]]:
        """(key, outcome, run id, seconds) per track, as each finishes."""
        if self.submit_from is not None:
            yield from self._submitted(keys, targets, instance, attempt)
            return
        if lanes <= 1:
            with _without_capture(instance) as quiet:
                for key in keys:
                    started = time.monotonic()
                    outcome, run_id = self.run_one(quiet, key, targets.get(key), attempt)
                    yield key, outcome, run_id, time.monotonic() - started
            return
        yield from self._in_lanes(keys, targets, lanes, instance, attempt)

    # -- on several machines: runs submitted to the queue, executed by the Celery workers --------

    def _skip(self, instance: DagsterInstance, key: str) -> bool:
        if _busy_elsewhere(instance, key):
            return True
        row = self.library.catalog.tracks.get(key)
        return self.job_name == "process_track" and bool(row) and Status(row.status).finished and not self.again

    def submit(self, instance: DagsterInstance, key: str, target: str | None, attempt: int,
               retry_of: dict[str, str] | None = None):
        """Create one track run, as the UI would (job and execution plan snapshots, the origins
        of the bulk run's code location), and put it in the run queue."""
        bulk_run, repository = self.submit_from
        tags = {**self.tags, **(retry_of or {}), PARTITION_TAG: key}
        if target:
            tags[TARGET_TAG] = target
        if attempt > 1:
            tags["music_pipeline/attempt"] = str(attempt)
        run = instance.create_run_for_job(
            repository.get_job(self.job_name), run_id=make_new_run_id(), run_config=self.run_config, tags=tags,
            status=DagsterRunStatus.NOT_STARTED,
            remote_job_origin=copy_record(bulk_run.remote_job_origin, job_name=self.job_name),
            job_code_origin=bulk_run.job_code_origin._replace(job_name=self.job_name))
        return instance.submit_run(run.run_id, workspace=None)

    def _submitted(self, keys, targets, instance, attempt) -> Iterator[tuple[str, str, str, float]]:
        following: dict[str, tuple[str, float]] = {}  # run id -> (key, started)
        ended_at: dict[str, float] = {}  # failed runs waiting for their retry to appear
        for key in keys:
            if self._skip(instance, key):
                yield key, "skipped", "", 0.0
                continue
            following[self.submit(instance, key, targets.get(key), attempt).run_id] = (key, time.monotonic())
        try:
            while following:
                time.sleep(SUBMITTED_POLL_S)
                for run in instance.get_runs(filters=RunsFilter(run_ids=list(following))):
                    if not run.is_finished:
                        continue
                    if run.status == DagsterRunStatus.FAILURE and run.tags.get(WILL_RETRY_TAG) != "false":
                        retries = instance.get_runs(filters=RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}),
                                                    limit=1)
                        waited = time.monotonic() - ended_at.setdefault(run.run_id, time.monotonic())
                        if retries:  # run_retries took it: follow the retry, never retry it here too
                            following[retries[0].run_id] = following.pop(run.run_id)
                            continue
                        promised = run.tags.get(WILL_RETRY_TAG) == "true"
                        if waited < (RETRY_MISSED_S if promised else 10):
                            continue
                        if promised:  # and not made: make it as run_retries would have
                            key = following[run.run_id][0]
                            following[self.retry(instance, run, targets.get(key), attempt).run_id] = \
                                following.pop(run.run_id)
                            continue
                    key, started = following.pop(run.run_id)
                    yield key, self._submitted_outcome(instance, run, key), run.run_id, time.monotonic() - started
        except BaseException:  # interrupted: the track runs not started yet are not started at all
            for run in instance.get_runs(filters=RunsFilter(run_ids=list(following),
                                                            statuses=[DagsterRunStatus.QUEUED,
                                                                      DagsterRunStatus.NOT_STARTED])):
                with contextlib.suppress(Exception):
                    instance.report_run_canceled(run, "its bulk run was interrupted")
            raise

    def retry(self, instance: DagsterInstance, failed, target: str | None, attempt: int):
        """The retry run_retries promised a crashed track run (its will_retry tag) and did not
        make. Dagster's daemon reads each RUN_FAILURE event, then the failed run; Dagster writes
        the run's status after the event, in a transaction of its own. Read between the two, the
        run is still STARTED, is not retried, and the daemon's cursor has moved past it for good.
        Made as run_retries makes it: in the failed run's group, numbered, and named on the failed
        run, so that run_retries, should it come to it after all, finds it and makes no second."""
        retry = self.submit(instance, failed.tags[PARTITION_TAG], target, attempt, retry_of={
            PARENT_RUN_ID_TAG: failed.run_id, ROOT_RUN_ID_TAG: failed.tags.get(ROOT_RUN_ID_TAG, failed.run_id),
            RETRY_NUMBER_TAG: str(int(failed.tags.get(RETRY_NUMBER_TAG, "0")) + 1)})
        instance.add_run_tags(failed.run_id, {AUTO_RETRY_RUN_ID_TAG: retry.run_id})
        instance.report_engine_event(f"Retrying the run: run_retries did not within {RETRY_MISSED_S:.0f} s, "
                                     "so its bulk run did", failed)
        return retry

    def _submitted_outcome(self, instance: DagsterInstance, run, key: str) -> str:
        if self.job_name == "verify_track":
            from dagster import DagsterEventType

            checks = [entry.dagster_event.event_specific_data.passed for entry in
                      instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
            return "done" if run.status == DagsterRunStatus.SUCCESS and all(checks) else "failed"
        status = row.status if (row := self.library.catalog.tracks.get(key)) else None
        if status in (Status.DUPLICATE, Status.NEEDS_REVIEW):
            return "set aside"
        ok = run.status == DagsterRunStatus.SUCCESS and (status == Status.DONE or self.job_name != "process_track")
        return "done" if ok else "failed"

    def _in_lanes(self, keys, targets, lanes, instance, attempt) -> Iterator[tuple[str, str, str, float]]:
        ref = _ref_without_capture(instance)  # lanes need an instance they can reopen
        context = _forkserver()
        queue = list(keys)
        processes = []
        busy: dict = {}  # connection -> (key, started)

        def start_lane():
            parent, child = context.Pipe()
            process = context.Process(target=self._lane, args=(child, ref, targets, attempt), daemon=True)
            process.start()
            child.close()
            processes.append((process, parent))
            return parent

        def give(conn) -> None:
            key = queue.pop(0)
            conn.send(key)
            busy[conn] = (key, time.monotonic())

        try:
            for _ in range(min(lanes, len(queue))):
                give(start_lane())
            while busy:
                for conn in multiprocessing.connection.wait(list(busy)):
                    key, started = busy.pop(conn)
                    try:
                        outcome, run_id = conn.recv()
                    except EOFError:  # the lane died (killed, out of memory): a new lane goes on
                        outcome, run_id = "failed", self._fail_left_behind(instance, key)
                        conn.close()
                        conn = start_lane() if queue else None
                    yield key, outcome, run_id, time.monotonic() - started
                    if queue and conn is not None:
                        give(conn)
        except BaseException:  # interrupted (Terminate, Ctrl-C): the lanes' current track runs stop too
            for process, _ in processes:
                if process.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGINT)
            for process, _ in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
                    process.join()
            # a lane interrupted before its track run took the interrupt for itself (while the
            # run was being created or started) leaves it STARTED, holding the track: stop it here
            for key, _ in busy.values():
                self._fail_left_behind(instance, key, "Stopped: its bulk run was interrupted (Ctrl-C or Terminate) "
                                                      "before this run could stop by itself; the track can run again.")
            raise
        finally:
            for process, conn in processes:
                with contextlib.suppress(OSError):
                    conn.send(None)
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()

    def _fail_left_behind(self, instance: DagsterInstance, key: str, message: str | None = None) -> str:
        """The run a dead lane left STARTED: failed now, its pool slots freed (they would
        narrow the pool for the rest of this bulk run)."""
        runs = instance.get_runs(filters=RunsFilter(job_name=self.job_name, statuses=UNFINISHED,
                                                    tags={BULK_TAG: self.tags[BULK_TAG], PARTITION_TAG: key}))
        for run in runs:
            fail_orphan(instance, run, self.library, message)
        return runs[0].run_id if runs else ""

    def _lane(self, conn, ref, targets: dict[str, str], attempt: int) -> None:
        """A lane: track runs one after another until told to stop; dies with the fork server,
        which exits when the bulk run's process does."""
        _die_with_parent()
        instance = pooled(DagsterInstance.from_ref(ref))
        while (key := conn.recv()) is not None:
            try:
                conn.send(self.run_one(instance, key, targets.get(key), attempt))
            except Exception as err:  # noqa: BLE001 - the lane must answer for every track it took
                conn.send(("failed", ""))
                print(f"{key}: {type(err).__name__}: {err}", file=sys.stderr)


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the bulk run's process dies, so no lane outlives it."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# -- the job --------------------------------------------------------------------------------


def _submit_from(context: OpExecutionContext):
    """(the bulk run, its repository) when its track runs go to the Celery workers: the
    instance launches runs with the DistributedRunLauncher and this bulk run came from the code
    location (a command's bulk run executed in its own process has no origin to give them, and
    executes its tracks itself)."""
    from ..instance import DistributedRunLauncher

    run = context.dagster_run
    try:
        distributed = isinstance(context.instance.run_launcher, DistributedRunLauncher)
    except Exception:  # noqa: BLE001 - a launcher that cannot be built here launches nothing from here
        distributed = False
    if not distributed:
        return None
    if run.remote_job_origin is None or run.job_code_origin is None:
        context.log.info("track runs executed in this process: it was not launched from the code location, so it "
                         "has no origin to give runs for the workers")
        return None
    return run, context.repository_def


def _eagle_together(context: OpExecutionContext, lib: Library, eagle: EagleResource, keys: list[str]) -> None:
    """Several tracks' Eagle items before their runs, through the Eagle sink's batch path: the
    new ones imported in one request, not an import and its polling per track. Each track's run
    then finds its item by the id the catalog noted, and reports it; a track this missed (Eagle
    closed, an import refused) is tried, and its error said, by its own run."""
    from ..core.domain.errors import TrackError
    from ..core.sinks.mirrors import EagleSink

    try:
        reports = EagleSink(eagle).write_tracks(lib, keys)
    except TrackError as err:  # e.g. a file gone: the track's own run says so
        context.log.info(f"Eagle, together: not this time ({err})")
        return
    created = sum(1 for r in reports.values() if not isinstance(r, TrackError) and r.action == "created")
    context.log.info(f"Eagle, together: {created} item(s) imported for {len(keys)} track(s)")


def _outcome(result, row: Track | None, job_name: str) -> str:
    """done, set aside or failed, from the track run's result and the catalog."""
    if job_name == "verify_track":  # count what the checks found
        passed = all(e.passed for e in result.get_asset_check_evaluations())
        return "done" if passed else "failed"
    status = row.status if row else None
    if status in (Status.DUPLICATE, Status.NEEDS_REVIEW):
        return "set aside"
    return "done" if result.success and status == Status.DONE else "failed"


@op(description="Run the per-track job for each track, one after another in this process (no pool slot held "
                "here: the track runs' steps take the download, ffmpeg and analysis slots).")
def run_tracks(context: OpExecutionContext, config: BulkConfig, library: LibraryResource,
               downloader: DownloaderResource, analysis: AnalysisResource, spotify: SpotifyResource,
               soundcloud: SoundCloudResource, notion: NotionResource, eagle: EagleResource, dj: DjResource):
    if config.job not in TRACK_JOBS:
        raise Failure(f"Unknown per-track job {config.job!r}: choose one of {', '.join(TRACK_JOBS)}.")
    lib = library.get()
    instance = context.instance
    if config.job == "verify_track" and not lib.has_catalog():
        raise Failure(f"The library folder {lib.root} has no catalog (an unmounted volume?); nothing was checked.")
    if config.sync_sources:
        new = discovery.sync_everything(lib, spotify.client if spotify.configured else None,
                                      soundcloud.user or None, downloader.options(), context.log.info)
        context.log.info(f"sources: {len(new)} new track(s)")
    for key, url in config.pins.items():  # the source chosen by hand, in this run; the track's run fetches it
        row = discovery.pin(lib, key, url)
        context.log.info(f"{key}: pinned to {redact_url(row.match_url)}")
    if config.pins and not (config.keys or config.select):  # `pin --later`: processed at the next sync
        return Output(None, metadata={"pinned": ", ".join(config.pins), "tracks": 0})
    reap_dead_runs(instance, lib)  # a dead run's tracks are free again
    busy = in_flight(instance, waiting=False)
    if config.keys:
        rows = {r.key: r for r in lib.catalog.tracks.all()} if len(config.keys) > 50 else \
            {k: r for k in config.keys if (r := lib.catalog.tracks.get(k)) is not None}
        chosen = selection.pending(config.keys, rows, in_flight=busy, force=config.force_download,
                                   reprocess=config.job != "process_track")
        keys = chosen.keys[: config.limit] if config.limit else chosen.keys
        for note in chosen.skipped[:50]:
            context.log.info(f"skipped {note}")
    elif config.select:
        mode = "reprocess" if config.job != "process_track" and config.select == "done" else config.select
        if mode not in selection.MODES:
            raise Failure(f"Nothing to process: give keys or select one of {', '.join(selection.MODES)}.")
        keys = selection.choose(lib.catalog.tracks.all(), mode, limit=config.limit, in_flight=busy)
    else:
        raise Failure(f"Nothing to process: give keys or select one of {', '.join(selection.MODES)}.")
    submit_from = _submit_from(context)
    if config.job == "mirror_track" and len(keys) > 1 and not submit_from:
        _eagle_together(context, lib, eagle, keys)
    lanes = 1 if submit_from else _lanes(config.parallel, len(keys), instance)
    if lanes > 1:  # the fork server imports the code location while this process gets ready
        _forkserver()
        multiprocessing.forkserver.ensure_running()

    known = set(instance.get_dynamic_partitions(tracks.name))
    if missing := [k for k in keys if k not in known]:
        instance.add_dynamic_partitions(tracks.name, missing)

    resources = unresolved({"library": library, "downloader": downloader, "analysis": analysis,
                            "spotify": spotify, "soundcloud": soundcloud, "notion": notion, "eagle": eagle,
                            "dj": dj})
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    track_config = {**quiet, "ops": {"raw_audio": {"config": {"force_download": config.force_download}}}} \
        if config.job == "process_track" else quiet
    tags = {BULK_TAG: context.run_id, ORIGIN_TAG: context.run.tags.get(ORIGIN_TAG, f"bulk {context.run_id[:8]}")}
    if not submit_from:  # a crash is retried by retrying the bulk run; a submitted run by run_retries
        tags["dagster/max_retries"] = "0"
    runner = TrackRunner(config.job, resources, track_config, tags,
                         again=config.force_download or config.select == "reprocess", submit_from=submit_from)
    context.log.info(f"{len(keys)} track(s) to {config.job.replace('_', ' ')}"
                     + (f", {lanes} at a time" if lanes > 1 else "")
                     + (", each a run queued for the Celery workers" if submit_from else ""))
    results: dict[str, list[str]] = {name: [] for name in OUTCOMES}
    lines = ["| # | track | outcome | s | run |", "|---|---|---|---|---|"]
    todo, attempt, done = keys, 1, 0
    while todo:
        retry: list[str] = []
        for key, outcome, run_id, seconds in runner.run_all(todo, config.targets, lanes, instance, attempt):
            # a track that finished (done) and failed after, in a mirror, is not tried again here:
            # its next run would skip it as finished; `mirror` retries the mirrors
            if outcome == "failed" and attempt <= config.retries and config.job == "process_track" \
                    and (row := lib.catalog.tracks.get(key)) is not None and row.status != Status.DONE \
                    and Reason.of(row.error_reason).retryable:
                retry.append(key)  # may pass on another try: a new run of the track, once the rest is done
                context.log.warning(f"{key}: failed ({row.error if row else None}); "
                                    f"will try again")
                continue
            done += 1
            results[outcome].append(key)
            lines.append(f"| {done} | {key} | {outcome} | {seconds:.1f} | {run_id[:8]} |")
            context.log.info(f"[{done}/{len(keys)}] {key}: {outcome} ({seconds:.1f} s)"
                             + (f", run {run_id}" if run_id else ", another run has it"))
            for listener in list(_listeners):
                listener(done, len(keys), key, outcome, seconds)
        if retry:
            context.log.info(f"trying {len(retry)} track(s) again in {config.retry_delay_s:.0f} s")
            time.sleep(config.retry_delay_s)
        todo, attempt = retry, attempt + 1

    counts = {name: len(found) for name, found in results.items()}
    context.log.info(", ".join(f"{n} {name}" for name, n in counts.items()))
    metadata = {**{name.replace(" ", "_"): n for name, n in counts.items()}, "tracks": len(keys),
                "track_runs": MetadataValue.md("\n".join(lines[:502])),
                "failed_tracks": ", ".join(results["failed"][:50])}
    if results["failed"]:
        first = lib.catalog.tracks.get(results["failed"][0])
        raise Failure(f"{counts['failed']} of {len(keys)} track(s) failed; the first, {results['failed'][0]}: "
                      f"{(first.error if first else None) or 'see its run'}", metadata=metadata)
    return Output(None, metadata=metadata)


@job(executor_def=in_process_executor, tags={"music_pipeline/kind": "bulk"},
     description="Many tracks, each a run of the per-track job (linked by the music_pipeline/bulk tag), executed "
                 "one after another in this run's process: sensors, the nightly sync, the commands.")
def process_tracks():
    run_tracks()
