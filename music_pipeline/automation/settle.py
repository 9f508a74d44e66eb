"""Tracks the catalog calls ``running`` that no run is working on.

A track run records its track's end in the catalog. When it cannot (the catalog's PostgreSQL
server stopped mid-run, the disk holding it vanished), the run ends failed in Dagster but the
row stays ``running``: a state that is no longer true, shown in the UI, Notion and the CLI
until someone runs the track again. The next command (and the reaper, when it runs this)
settles such a row: failed, as a crash (retryable), with a sentence saying what happened.
"""

from __future__ import annotations

from dagster import DagsterInstance, RunsFilter

from ..core.domain.errors import Reason
from ..core.domain.lifecycle import Status
from ..core.library.steps import Library
from .bulk import PARTITION_TAG


def settle_running_tracks(instance: DagsterInstance, library: Library) -> list[str]:
    """Fail the tracks marked ``running`` whose latest per-track run has finished; returns
    their keys. A track whose latest run is queued or under way is left alone."""
    if not library.has_catalog():
        return []
    settled = []
    for row in library.catalog.tracks.all(Status.RUNNING):
        key = row.key
        runs = instance.get_runs(filters=RunsFilter(job_name="process_track", tags={PARTITION_TAG: key}), limit=1)
        if not runs or not runs[0].is_finished:
            continue
        run = runs[0]
        library.catalog.tracks.mark_failed(
            key, "run", f"Its last run ({run.run_id[:8]}, {run.status.value.lower()}) ended without recording how in "
                        "the catalog (it could not be reached then); it can run again.", Reason.CRASHED)
        settled.append(key)
    return settled
