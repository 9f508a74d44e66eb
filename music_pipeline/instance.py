"""The Dagster instance this code location expects: the dagster.yaml that `up` writes, and
a run launcher whose runs are watched by run monitoring.

Dagster's default launcher cannot tell whether a run's process is alive, so a run worker
killed with SIGKILL (or by the kernel's out-of-memory killer) stays STARTED forever and its
track is never requested again. ``MonitoredRunLauncher`` launches exactly as the default
one does and answers run monitoring's question from the process id: the one the run
worker reports when it starts, or the ``music_pipeline/worker`` tag that a bulk run puts on
the track runs it executes in its own process.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

#: "<host>:<pid>:<run id>" of the process executing a run (set on the runs a bulk run or a
#: command executes in its own process). The run id ties it to its run: a re-execution from
#: the UI copies its parent's tags, and must not be judged by the parent's dead process.
WORKER_TAG = "music_pipeline/worker"


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


class MonitoredRunLauncher(DefaultRunLauncher):
    """The default launcher (runs start in the code server's subprocesses), plus the health
    check run monitoring needs to notice a dead run worker."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        tag = run.tags.get(WORKER_TAG)
        if worker_alive(tag, run.run_id) is None:  # not ours, or copied from a parent run
            tag = self._reported_worker(run)
        alive = worker_alive(tag, run.run_id)
        if alive is False:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the process running it ({tag}) is gone: killed, "
                                                             "or out of memory")
        return CheckRunHealthResult(WorkerStatus.RUNNING, "alive" if alive else "cannot tell from here")

    def _reported_worker(self, run: DagsterRun) -> str | None:
        """The pid from the run worker's "Started process for run (pid: N)" engine event."""
        records = self._instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT,
                                                     limit=20).records
        for record in records:
            event = record.event_log_entry.dagster_event
            data = getattr(event, "engine_event_data", None) if event else None
            pid = data.metadata.get("pid") if data and data.metadata else None
            if pid is not None:
                return f"{socket.gethostname()}:{pid.value}:{run.run_id}"
        return None


def default_concurrency() -> tuple[int, int]:
    """(runs at once, slots per pool) for this machine: each pool (downloads, ffmpeg,
    analysis) as wide as the cores, and room for the library-wide runs beside the bulk ones."""
    cores = os.cpu_count() or 2
    return max(4, cores * 2), max(2, cores)


def dagster_yaml() -> str:
    runs, pool = default_concurrency()
    return f"""\
# Written by music-pipeline on first start; edit freely (`music-pipeline doctor` says when a
# setting it relies on is missing).
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


#: What doctor looks for in an existing dagster.yaml, and why.
REQUIRED_SETTINGS = {
    "run_monitoring": "a run whose process was killed stays STARTED forever and its track is never retried",
    "MonitoredRunLauncher": "run monitoring cannot tell whether a run's process is alive",
    "free_slots_after_run_end_seconds": "a killed run keeps its pool slots and the pool jams",
    "run_retries": "a crashed bulk run is not retried",
    "max_concurrent_runs": "nothing bounds how many runs start at once",
    "pools": "downloads and ffmpeg are not bounded across runs",
}


def missing_settings(config: Path) -> list[str]:
    """Settings an existing dagster.yaml lacks, each with what goes wrong without it."""
    try:
        text = config.read_text()
    except OSError:
        return []
    return [f"{name}: {why}" for name, why in REQUIRED_SETTINGS.items() if name not in text]
