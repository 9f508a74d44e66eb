"""The mirrors as per-track assets, downstream of the catalog: the track's Notion page and
its Eagle item.

A sink that is not configured, or not reachable, or refuses the integration (401, 403, a
database not shared) does not fail the track: the asset reports why and materialises
nothing, and the rest of the pipeline is unaffected. A sink that answers but fails on the way
(5xx after retries, a network cut) fails this asset alone; the next run picks up where it
stopped, and nothing is created twice (pages are found by key, URL and ISRC first).
"""


from collections.abc import Iterator

from dagster import AssetExecutionContext, AssetObservation, Failure, MaterializeResult, MetadataValue, asset

from ..core.domain.errors import TrackError
from ..core.domain.paths import FORMATS
from ..core.library import mirrors
from ..core.sources import eagle as eagle_api
from ..resources import EagleResource, LibraryResource, NotionResource
from .tracks import GROUP, catalog, tracks

_reported: set[tuple] = set()  # schema problems are said once per process, not once per track


def _skip(context: AssetExecutionContext, why: str, **metadata) -> Iterator[MaterializeResult]:
    context.log.info(f"{context.partition_key}: {why}")
    context.log_event(AssetObservation(asset_key=context.asset_key, partition=context.partition_key,
                                       metadata={"skipped": why, **metadata}))
    return
    yield  # a generator: nothing materialised


@asset(partitions_def=tracks, group_name=GROUP, deps=[catalog], kinds={"notion"}, output_required=False)
def notion_records(context: AssetExecutionContext, library: LibraryResource,
                   notion: NotionResource) -> Iterator[MaterializeResult]:
    """The track's page in the Notion tracks database (TRACKS_DB_ID): found by the track key,
    then a source URL, then the ISRC before one is created; only what changed is written, and
    a value a person edited by hand since the last sync is kept. Pages of the same track made
    by hand are merged into it and put in Notion's trash (never deleted)."""
    if not notion.configured:
        yield from _skip(context, notion.why_not)
        return
    lib = library.get()
    key = context.partition_key
    try:
        mirror = notion.mirror()
        sent = mirror.api.requests
        problems = tuple(mirror.schema.problems)
        if problems and (notion.tracks_db_id, problems) not in _reported:
            _reported.add((notion.tracks_db_id, problems))
            context.log.warning("Notion tracks database: " + "; ".join(problems))
        outcome = mirrors.sync_notion(lib, mirror, key)
    except TrackError as err:
        if getattr(err, "misconfigured", False):
            context.log.error(f"{key}: Notion: {err}")
            yield from _skip(context, f"Notion refused: {err}")
            return
        raise Failure(description=f"Notion sync of {key} failed: {err}", metadata={"track": key},
                      allow_retries=err.reason.retryable) from err
    if outcome.kept:
        context.log.info(f"{key}: kept what a person typed in {', '.join(outcome.kept)}")
    yield MaterializeResult(metadata={
        "page": MetadataValue.url(outcome.url) if outcome.url else outcome.page_id,
        "page_id": outcome.page_id,
        "action": outcome.action,
        "changed": ", ".join(outcome.changed),
        "kept_hand_edits": ", ".join(outcome.kept),
        "merged_pages": ", ".join(page for page, _ in outcome.merged),
        "schema_problems": MetadataValue.md("\n".join(f"- {p}" for p in mirror.schema.problems) or "none"),
        "notion_requests": mirror.api.requests - sent,
    })


@asset(partitions_def=tracks, group_name=GROUP, deps=[catalog], kinds={"eagle"}, output_required=False)
def eagle_records(context: AssetExecutionContext, library: LibraryResource,
                  eagle: EagleResource) -> Iterator[MaterializeResult]:
    """The track's item in the Eagle app (EAGLE_API_BASE): the preferred format imported once
    (the stored item id, then Eagle's items by checksum, are checked first), with name,
    website, annotation (BPM, key, loudness) and tags, in a folder per playlist. Items of the
    track's duplicates go to Eagle's trash."""
    if not eagle.enabled:
        yield from _skip(context, "skipped: Eagle is turned off (EAGLE_API_BASE=off)")
        return
    if eagle.format not in FORMATS:  # misconfigured: said loudly, not the track's failure
        why = f"EAGLE_FORMAT {eagle.format!r} is not one of {', '.join(FORMATS)}; nothing imported into Eagle"
        context.log.error(why)
        yield from _skip(context, why)
        return
    lib = library.get()
    key = context.partition_key
    try:
        result = mirrors.sync_eagle(lib, eagle.client(), key, eagle.format)
    except (eagle_api.EagleNotReachable, eagle_api.EagleTokenRejected) as err:
        if isinstance(err, eagle_api.EagleTokenRejected):  # misconfigured: said loudly, not the track's failure
            context.log.error(f"{key}: {err}")
        yield from _skip(context, str(err))
        return
    except TrackError as err:
        raise Failure(description=f"Eagle sync of {key} failed: {err}", metadata={"track": key},
                      allow_retries=err.reason.retryable) from err
    if result.stale:
        context.log.info(f"{key}: Eagle's API cannot change the item's {' and '.join(result.stale)}; "
                         "change them in Eagle if you want")
    yield MaterializeResult(metadata={"item_id": result.item_id, "action": result.action,
                                      "trashed_duplicates": ", ".join(result.trashed),
                                      "not_changeable": ", ".join(result.stale)})


MIRROR_ASSETS = [notion_records, eagle_records]
