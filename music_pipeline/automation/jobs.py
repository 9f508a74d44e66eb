"""Jobs over the track graph.

``process_track`` is the one definition of a track's work: every way a track comes in ends
in a run of it (one run per track, so a failed track is a failed partition). Bulk work
(``bulk.process_tracks``) executes these runs in its own warm process, or in lanes forked
from a warm fork server.
"""


from dagster import AssetSelection, Definitions, JobDefinition, define_asset_job, in_process_executor

from ..assets import ALL_ASSETS, CHECKS, MIRROR_ASSETS, TRACK_ASSETS, library_index, tracks
from ..platform._dagster_internal import UnresolvedAssetJobDefinition

#: One track through every per-track step and its checks. Runs in one process: the steps
#: are short and mostly wait on ffmpeg, so a process per step would cost more start-up
#: than it saves.
process_track_job = define_asset_job(
    name="process_track",
    selection=AssetSelection.assets(*TRACK_ASSETS, *MIRROR_ASSETS),
    partitions_def=tracks,
    executor_def=in_process_executor,
    description="Download or import, transcode, analyse, fingerprint, tag and catalog one track, then mirror it "
                "into Notion and Eagle.",
)

#: One finished track's mirrors again (its Notion page and Eagle item): after configuring a
#: sink, or to repair one (`music-pipeline mirror`).
mirror_track_job = define_asset_job(
    name="mirror_track",
    selection=AssetSelection.assets(*MIRROR_ASSETS),
    partitions_def=tracks,
    executor_def=in_process_executor,
    description="Mirror one finished track into Notion and Eagle (its page and item found or created, only "
                "what changed written).",
)

#: One track's asset checks alone, against the files on disk now (the weekly verification:
#: report only, the catalog is not changed).
verify_track_job = define_asset_job(
    name="verify_track",
    selection=AssetSelection.checks(*CHECKS),
    partitions_def=tracks,
    executor_def=in_process_executor,
    description="Run one track's asset checks again (decode, duration, tags, WAV header, checksum).",
)

TRACK_JOBS = {job.name: job for job in (process_track_job, verify_track_job, mirror_track_job)}

#: Rebuild the CSV/Parquet volume index (also kept fresh automatically by its automation condition).
library_index_job = define_asset_job(
    name="library_index_job",
    selection=AssetSelection.assets(library_index),
    executor_def=in_process_executor,
    description="Rewrite library_index.csv and .parquet from the catalog.",
)


def bind(job: UnresolvedAssetJobDefinition, resources: dict) -> JobDefinition:
    """An asset job bound to ``resources``, to execute inside an already running process."""
    defs = Definitions(assets=ALL_ASSETS, asset_checks=CHECKS, jobs=[job], resources=resources)
    return defs.resolve_job_def(job.name)
