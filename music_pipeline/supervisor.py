"""`music-pipeline up` stays the parent of everything it starts, and stops all of it.

`dagster dev` ignores SIGTERM (the signal `docker stop`, systemd and Kubernetes send): it dies
at once, its webserver and daemon follow through their shutdown pipes, and the code server
and the run workers it started go on processing tracks with nobody watching. So `up` runs
`dagster dev` as its child, adopts every orphan of that tree (Linux's child subreaper), and on
SIGTERM, SIGINT or SIGHUP passes the stop on to the whole tree: SIGINT first (Dagster's own
graceful stop: a run worker interrupts its step), SIGTERM to what is left, then SIGKILL, all
within :data:`STOP_WITHIN_S`. The runs it leaves unfinished are then marked canceled, and
their tracks failed (retryable), with a message saying the product was stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

#: Everything `up` started is gone this long after the signal (a container's stop grace
#: period is 10 s for docker, 30 s for Kubernetes and systemd's default is 90 s).
STOP_WITHIN_S = 25.0
INTERRUPT_S = 12.0  # SIGINT's grace: a run worker records its interruption, the webserver closes
TERMINATE_S = 8.0  # then SIGTERM's
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def supervise(argv: Sequence[str], companions: Sequence[tuple[str, Sequence[str]]] = ()) -> int:
    """Run ``argv`` (``dagster dev ...``) as a child until it ends or this process is told to
    stop; then stop the whole tree and mark what it left running. Returns the exit code.
    ``companions``: (name, argv) of servers that live beside it (the share endpoint), stopped
    with it; one that ends early is said once."""
    _become_subreaper()
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in STOP_SIGNALS}
    try:
        child = subprocess.Popen(list(argv))
        beside = {name: subprocess.Popen(list(command)) for name, command in companions}  # stopped with the tree
        while child.poll() is None and not received:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1.0)
            for name, process in list(beside.items()):
                if process.poll() is not None:
                    print(f"{name} stopped (exit code {process.returncode}); the rest goes on", flush=True)
                    del beside[name]
            _reap(keep={child.pid, *(p.pid for p in beside.values())})
        if not received:  # dagster dev ended by itself: what it left is stopped all the same
            unfinished = _unfinished_runs()
            stop_tree(os.getpid(), interrupt=False)
            mark_interrupted(unfinished, f"dagster dev under music-pipeline up ended (exit code {child.returncode}) "
                                         "while this run was going; its tracks can run again.")
            return child.returncode or 0
        why = signal.Signals(received[0]).name
        print(f"\n{why} received: stopping the Dagster UI, daemon, code server and run workers", flush=True)
        unfinished = _unfinished_runs()
        # a terminal's Ctrl-C already sent SIGINT to the whole foreground group
        stop_tree(os.getpid(), interrupt=received[0] != signal.SIGINT)
        mark_interrupted(unfinished, f"music-pipeline up was stopped ({why}) while this run was going; "
                                     "its tracks can run again.")
        print("stopped; runs and partitions are kept in DAGSTER_HOME", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _become_subreaper() -> None:
    """Linux: orphans of the tree (a run worker whose code server died first) are adopted by
    this process instead of init, so they are still found among its descendants."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, state) of every process: from /proc, or `ps` where there is none."""
    if not Path("/proc/self/stat").exists():
        out = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "stat="], capture_output=True,
                             text=True, check=False).stdout
        return [(int(pid), int(ppid), state[:1]) for pid, ppid, state in
                (line.split()[:3] for line in out.splitlines() if len(line.split()) >= 3)]
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
                found.append((int(entry.name), int(ppid), state))
    return found


def descendants(pid: int) -> set[int]:
    """Every living process under ``pid`` (zombies are dead)."""
    children: dict[int, list[int]] = {}
    for child, parent, state in _processes():
        if state not in ("Z", "X"):
            children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _reap(keep: set[int] = frozenset()) -> None:
    """Collect the adopted orphans that exited (zombies otherwise, until this process ends);
    ``keep`` (dagster dev, the companions) are left to their Popen, which wants their exit code."""
    me = os.getpid()
    for pid, parent, state in _processes():
        if parent == me and state == "Z" and pid not in keep:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def stop_tree(root: int, *, interrupt: bool = True) -> set[int]:
    """Stop every process under ``root``: SIGINT (unless it was already sent), SIGTERM, then
    SIGKILL. Processes started meanwhile are caught too. Returns those that were still there
    at the end (none, barring an unkillable process)."""
    deadline = time.monotonic() + STOP_WITHIN_S
    steps = [(signal.SIGINT if interrupt else None, INTERRUPT_S), (signal.SIGTERM, TERMINATE_S),
             (signal.SIGKILL, max(1.0, STOP_WITHIN_S - INTERRUPT_S - TERMINATE_S))]
    left = descendants(root)
    for sig, grace in steps:
        if not left:
            break
        if sig is not None:
            _signal_all(left, sig)
        until = min(deadline, time.monotonic() + grace)
        while time.monotonic() < until:
            _reap()
            left = descendants(root)
            if not left:
                break
            if sig is not None:  # processes started after the signal get it too
                _signal_all(left, sig)
            time.sleep(0.2)
    _reap()
    return descendants(root)


def _unfinished_runs() -> list[str]:
    """The ids of the runs under way in processes `up` started, before the stop: a run whose
    worker tag names a process of this tree, or one with no worker tag when runs are launched
    here (not to Celery workers: those runs go on, on their machines). Queued runs stay queued:
    the daemon launches them when `up` starts again."""
    import socket

    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    from .instance import CELERY_WORKER_TAG, WORKER_TAG, DistributedRunLauncher

    tree = descendants(os.getpid())
    under_way = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]

    def ours(run, launched_here: bool) -> bool:
        host, pid, _run = (run.tags.get(WORKER_TAG, "").rsplit(":", 2) + ["", "", ""])[:3]
        if run.tags.get(CELERY_WORKER_TAG) or (pid and host != socket.gethostname()):
            return False
        return int(pid) in tree if pid.isdigit() else launched_here

    try:
        with DagsterInstance.get() as instance:
            launched_here = not isinstance(instance.run_launcher, DistributedRunLauncher)
            return [run.run_id for run in instance.get_runs(filters=RunsFilter(statuses=under_way))
                    if ours(run, launched_here)]
    except Exception:  # noqa: BLE001 - a storage that cannot be read now: nothing to mark
        return []


def mark_interrupted(run_ids: list[str], message: str) -> None:
    """The runs the stop left unfinished are canceled with ``message`` (their pool slots freed),
    those it ended carry it as an event, and their tracks still ``running`` in the catalog are
    failed with it (a crash: retryable)."""
    if not run_ids:
        return
    from dagster import DagsterInstance, RunsFilter

    from .automation.bulk import PARTITION_TAG
    from .core.domain.errors import Reason
    from .core.domain.lifecycle import Status
    from .resources import build_resources

    library = build_resources()["library"].get()
    with DagsterInstance.get() as instance:
        for run in instance.get_runs(filters=RunsFilter(run_ids=run_ids)):
            if run.is_finished:
                instance.report_engine_event(message, run)
            else:
                instance.report_run_canceled(run, message)
                if instance.event_log_storage.supports_global_concurrency_limits:
                    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            key = run.tags.get(PARTITION_TAG)
            if key and library.has_catalog():
                row = library.catalog.tracks.get(key)
                if row is not None and row.status == Status.RUNNING:
                    library.catalog.tracks.mark_failed(key, "run", message, Reason.CRASHED)
