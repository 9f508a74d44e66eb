"""Jobs over the track graph."""


from dagster import AssetSelection, define_asset_job, in_process_executor

from ..assets import TRACK_ASSETS, library_index, tracks

#: One track through every per-track step. Runs in one process: the steps are short and
#: mostly wait on ffmpeg, so a process per step would cost more start-up than it saves.
process_track_job = define_asset_job(
    name="process_track",
    selection=AssetSelection.assets(*TRACK_ASSETS),
    partitions_def=tracks,
    executor_def=in_process_executor,
    description="Download or import, transcode, analyse, fingerprint, tag and catalog one track.",
)

#: Rebuild the CSV/Parquet volume index (also kept fresh automatically by its automation condition).
library_index_job = define_asset_job(
    name="library_index_job",
    selection=AssetSelection.assets(library_index),
    executor_def=in_process_executor,
    description="Rewrite library_index.csv and .parquet from the catalog.",
)
