"""Changes to tracks' files asked for by hand, each a run.

`music-pipeline dedup --move` and `dedup --undo` rename files of several tracks at once
(the copies to ``duplicates/<group>/`` and back, the keeper retagged and renamed). Each is a
run of a job here, executed in the command's process against DAGSTER_HOME's instance (as
`music-pipeline run` executes its bulk run), and that run records every partition it touched
as it is now (``assets.touched``): the UI shows the change, who asked for it, and metadata
that matches the files on disk. The library-wide pass (``dedup_groups``) and the steps of a
track's own run record what they touch the same way. (`pin` is a catalog decision, recorded
in the bulk run that then processes the track: ``BulkConfig.pins``.)
"""


import uuid

from dagster import (
    Config,
    DagsterInstance,
    Failure,
    OpExecutionContext,
    Output,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from ..assets import touched
from ..core.library import duplicates
from ..instance import WORKER_TAG, worker_tag
from ..resources import LibraryResource
from .bulk import ORIGIN_TAG


class MoveConfig(Config):
    groups: list[str] = Field(description="Saved duplicate groups to apply, by id (`music-pipeline dedup --move`).")


class UndoConfig(Config):
    group: str = Field(description="The duplicate group to put back (`music-pipeline dedup --undo GROUP`).")


@op(description="Apply saved duplicate groups: merge each into its keeper and move the others' files to "
                "duplicates/<group>/; every touched track's files recorded as they are now.")
def move_duplicates(context: OpExecutionContext, config: MoveConfig, library: LibraryResource) -> Output:
    lib = library.get()
    moved, changed = 0, []
    for group_id in config.groups:
        record = lib.catalog.groups.get(group_id)
        if record is None:
            raise Failure(f"There is no duplicate group {group_id}; nothing of it was moved.")
        before = len(record.moves)
        record = duplicates.apply_saved(lib, record)
        moved += len(record.moves) - before
        changed += record.members
        context.log.info(f"{group_id}: {record.state}, {len(record.moves) - before} file(s) moved")
    recorded = touched.record(context, lib, changed)
    return Output(None, metadata={"groups": len(config.groups), "files_moved": moved,
                                  "track_assets_recorded": recorded})


@op(description="Put a duplicate group back: its files where they were, its tracks' status, the keeper's merge "
                "taken back; every touched track's files recorded as they are now.")
def undo_duplicates(context: OpExecutionContext, config: UndoConfig, library: LibraryResource) -> Output:
    lib = library.get()
    record = duplicates.undo(lib, config.group)  # a TrackError is the user's message (an unknown group, ...)
    recorded = touched.record(context, lib, record.members)
    restored = [m for m in record.members if m != record.keeper]
    return Output(None, metadata={"files_put_back": len(record.moves), "restored": ", ".join(restored),
                                  "track_assets_recorded": recorded})


@job(executor_def=in_process_executor, tags={"music_pipeline/kind": "change"},
     description="`music-pipeline dedup --move`: saved duplicate groups applied, the touched tracks recorded.")
def dedup_move():
    move_duplicates()


@job(executor_def=in_process_executor, tags={"music_pipeline/kind": "change"},
     description="`music-pipeline dedup --undo GROUP`: a group put back, the touched tracks recorded.")
def dedup_undo():
    undo_duplicates()


CHANGE_JOBS = [dedup_move, dedup_undo]


def execute(instance: DagsterInstance, job_def, config: dict, library: LibraryResource, origin: str) -> dict:
    """Execute a change job here, now, against ``instance``, and return its op's output
    metadata. The op's own error (a ``TrackError``: an unknown group, a file changed since)
    is raised as it is, for the command to say in one line; the run shows it failed."""
    run_id = str(uuid.uuid4())  # known before the run starts: its worker tag names it
    result = job_def.execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}, "ops": {
            next(iter(job_def.graph.node_dict)): {"config": config}}},
        instance=instance, resources={"library": library}, run_id=run_id,
        tags={ORIGIN_TAG: origin, WORKER_TAG: worker_tag(run_id)})
    for event in result.all_events:
        if event.is_successful_output and event.step_output_data.metadata:
            return {k: v.value for k, v in event.step_output_data.metadata.items()}
    return {}
