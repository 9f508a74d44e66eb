"""What every command shares: the check marks, the library, Dagster's instance and the
resources as the environment configures them, a progress bar."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time

from .. import settings

DEFAULT_WEBSERVER = os.environ.get("DAGSTER_WEBSERVER_URL", "http://127.0.0.1:3000")


def tty() -> bool:
    return sys.stdout.isatty()


def mark(ok: bool, bad: str = "FAIL") -> str:
    return ("\033[32m✓\033[0m" if ok else "\033[31m✗\033[0m") if tty() else ("ok  " if ok else bad)


def open_library():
    from ..resources import build_resources

    return build_resources()["library"].get()



def reap(library, instance=None) -> None:
    """Runs a killed command left STARTED on this home, marked failed now (no daemon may be
    running to notice), before a command looks at what is in flight."""
    from ..automation.bulk import reap_dead_runs

    if instance is not None:
        reap_dead_runs(instance, library)
        return
    instance = open_instance()
    try:
        reap_dead_runs(instance, library)
    finally:
        instance.dispose()


def open_instance():
    """DAGSTER_HOME's instance. Its SQLite storages create their tables on first use, and
    two processes doing that at once on a fresh home fail ("table secondary_indexes already
    exists"): the first use happens here, under a lock on the folder."""
    from dagster import DagsterInstance

    from ..core.library.store import exclusive
    from ..instance import init_pools

    home = settings.ensure_dagster_home()
    with exclusive(home):
        instance = DagsterInstance.get()
        instance.get_runs_count()  # run storage
        instance.event_log_storage.get_asset_records([])  # event log (and its index) storage
        instance.all_instigator_state()  # schedule storage
        init_pools(instance)  # before two runs race to create them
    return instance



class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else 0
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                         f"  {elapsed:.0f} s, ~{eta:.0f} s left ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")



def open_resources() -> dict:
    """The resources for use here, outside a run: their ``EnvVar``s resolved (a run resolves
    its own, and keeps them out of its config)."""
    from ..resources import build_resources

    # each initialised in a context kept open until the command ends, then closed: Dagster's
    # init context holds an in-memory instance, which, left to the garbage collector, printed
    # SQLAlchemy "Cannot operate on a closed database" tracebacks under doctor's output
    return {name: _OPEN.enter_context(resource.process_config_and_initialize_cm())
            for name, resource in build_resources().items()}


_OPEN = contextlib.ExitStack()
atexit.register(_OPEN.close)
