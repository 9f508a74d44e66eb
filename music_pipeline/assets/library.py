"""Library-wide assets."""


from dagster import AssetExecutionContext, AutomationCondition, MaterializeResult, MetadataValue, asset

from ..core.domain import dedup
from ..core.domain.errors import TrackError
from ..core.domain.paths import FORMATS
from ..core.library import duplicates, mirrors, playlists
from ..resources import EagleResource, LibraryResource
from . import touched
from .tracks import catalog


@asset(deps=[catalog], group_name="library", kinds={"pandas", "parquet", "csv"},
       # eager() waits until no upstream partition is missing; with a failed or queued track
       # somewhere that would be never, so refresh whenever any track's catalog row updates.
       automation_condition=AutomationCondition.eager().without(~AutomationCondition.any_deps_missing()))
def library_index(context: AssetExecutionContext, library: LibraryResource) -> MaterializeResult:
    """Every file in the library (format, size, duration, checksum, features) as CSV and
    Parquet in the library root: the volume index other tools read. Refreshed
    automatically whenever a track's catalog row changes."""
    from ..core.library import exports  # pandas and pyarrow only where the index is written

    lib = library.get()
    frame = exports.build(lib.catalog)
    csv_path, parquet_path = exports.write(frame, lib.root)
    table = exports.summary(frame)
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


@asset(deps=[catalog], group_name="library", kinds={"chromaprint", "sqlite"})
def dedup_groups(context: AssetExecutionContext, library: LibraryResource, eagle: EagleResource) -> MaterializeResult:
    """Groups of finished tracks that are the same recording (same canonical source URL,
    ISRC, normalised artist + title, or Chromaprint fingerprint after alignment). Each
    group keeps one track by the keeper rule; the others are merged into it, marked
    duplicate in the catalog and their files moved to ``<library>/duplicates/<group>/``.
    `music-pipeline dedup --undo GROUP` puts a group back. New tracks are already checked
    one by one right after their fingerprint; this pass catches the rest (tracks added
    before the index existed, matches found through metadata that arrived later). Every
    track whose files moved or were retagged is recorded again in this run, as it is now."""
    lib = library.get()
    indexed = duplicates.index_backlog(lib)
    if indexed:
        context.log.info(f"indexed {indexed} fingerprint(s) recorded before the index existed")
    settled, problems = duplicates.settle_all(lib)
    for problem in problems:
        context.log.warning(f"a pending group could not be applied yet: {problem}")
    groups = duplicates.library_groups(lib)
    moved = 0
    changed = [m for record in settled for m in record.members]
    for group in groups:
        record = duplicates.apply(lib, group)
        moved += len(record.moves)
        changed += record.members
        context.log.info(f"{group.id}: {group.reason}; duplicates {', '.join(group.others)} "
                         f"({', '.join(group.matched_by)})")
    recorded = touched.record(context, lib, changed)
    trashed = _eagle_trash(context, lib, eagle)
    rows = ["| group | keeper | duplicates | matched by | best score | reason |", "|---|---|---|---|---|---|"]
    for group in groups:
        scores = [e.score for e in group.evidence if e.score is not None]
        rows.append(f"| {group.id} | {group.keeper} | {', '.join(group.others)} | {', '.join(group.matched_by)} "
                    f"| {max(scores):.3f} | {group.reason} |" if scores else
                    f"| {group.id} | {group.keeper} | {', '.join(group.others)} | {', '.join(group.matched_by)} "
                    f"| - | {group.reason} |")
    return MaterializeResult(metadata={
        "groups": len(groups),
        "duplicates": sum(len(g.others) for g in groups),
        "files_moved": moved,
        "track_assets_recorded": recorded,
        "keeper_rule": dedup.KEEPER_RULE,
        "new_groups": MetadataValue.md("\n".join(rows) if groups else "no new duplicates"),
        "pending_groups_settled": len(settled),
        "eagle_items_trashed": len(trashed),
        "applied_groups_total": len(lib.catalog.groups.all(state="applied")),
    })


def _eagle_trash(context: AssetExecutionContext, lib, eagle: EagleResource) -> list[str]:
    """Duplicates' Eagle items to Eagle's trash (Notion's pages follow through notion_queue)."""
    if not eagle.enabled:
        return []
    try:
        return mirrors.trash_eagle_duplicates(lib, eagle.client())
    except TrackError as err:  # Eagle not running: the next pass or the keeper's run does it
        context.log.info(f"Eagle: {err}")
        return []


@asset(deps=[catalog], group_name="library", kinds={"m3u8"},
       # after tracks finish, and hourly: a track that only left a playlist finishes nothing
       automation_condition=AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
       | AutomationCondition.on_cron("0 * * * *"))
def playlist_exports(context: AssetExecutionContext, library: LibraryResource) -> MaterializeResult:
    """Every playlist (Spotify playlists and likes, SoundCloud likes and sets) as a folder
    per format (``<format>/Playlists/<playlist>/<Artist> - <Title>``, links or copies as
    configured) and an M3U8 per format in ``<library>/Playlists/``. A track that left a
    playlist leaves its folder and M3U8; its files stay in the library. Refreshed
    automatically after tracks finish, and hourly."""
    lib = library.get()
    if library.playlist_mode == "off":
        return MaterializeResult(metadata={"playlists": 0, "mode": "off"})
    found = lib.playlists()
    # Pruning removes the folders and M3U8s of playlists deleted upstream (only what we made).
    reports = playlists.export_all(lib.root, found, FORMATS, mode=library.playlist_mode,
                                   template=library.playlist_template, prune=True)
    added = sum(len(r.added) for r in reports)
    removed = sum(len(r.removed) for r in reports)
    context.log.info(f"{len(found)} playlist(s): {added} entries added, {removed} removed")
    rows = ["| playlist | tracks |", "|---|---|"] + [f"| {p.name} | {len(p.tracks)} |" for p in found]
    return MaterializeResult(metadata={
        "playlists": len(found), "entries_added": added, "entries_removed": removed,
        "mode": library.playlist_mode, "m3u8_folder": MetadataValue.path(str(lib.root / "Playlists")),
        "summary": MetadataValue.md("\n".join(rows)),
    })
