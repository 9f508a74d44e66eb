"""Library-wide assets."""


from dagster import AssetExecutionContext, AutomationCondition, MaterializeResult, MetadataValue, asset

from ..core import index
from ..resources import LibraryResource
from .tracks import catalog


@asset(deps=[catalog], group_name="library", kinds={"pandas", "parquet", "csv"},
       # eager() waits until no upstream partition is missing; with a failed or queued track
       # somewhere that would be never, so refresh whenever any track's catalog row updates.
       automation_condition=AutomationCondition.eager().without(~AutomationCondition.any_deps_missing()))
def library_index(context: AssetExecutionContext, library: LibraryResource) -> MaterializeResult:
    """Every file in the library (format, size, duration, checksum, features) as CSV and
    Parquet in the library root: the volume index other tools read. Refreshed
    automatically whenever a track's catalog row changes."""
    lib = library.get()
    frame = index.build(lib.catalog)
    csv_path, parquet_path = index.write(frame, lib.root)
    table = index.summary(frame)
    context.log.info(f"library index: {len(frame)} files of {frame['track_key'].nunique()} tracks")
    return MaterializeResult(metadata={
        "files": len(frame),
        "tracks": int(frame["track_key"].nunique()),
        "csv": MetadataValue.path(str(csv_path)),
        "parquet": MetadataValue.path(str(parquet_path)),
        "summary": MetadataValue.md(_markdown(table)),
    })


def _markdown(table) -> str:
    if table.empty:
        return "empty library"
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
