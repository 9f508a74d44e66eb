"""The Notion queue: pages a person adds to the tracks database become tracks, and every
page follows its track (status, error, duplicates merged into their keeper's page)."""


import time

from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, sensor

from ..assets import tracks
from ..assets.sources import observation
from ..core.domain.errors import TrackError
from ..core.domain.lifecycle import Status
from ..core.library import mirrors
from ..core.sources.download import resolve_id
from ..resources import DownloaderResource, LibraryResource, NotionResource
from .bulk import bulk_request, in_flight, process_tracks, reap_dead_runs

#: Pages taken from the queue, and pages brought up to date, per tick: at 3 requests a
#: second this keeps a tick near 30 s at most, inside Dagster's 60 s limit.
QUEUE_PER_TICK = 30
FOLLOW_PER_TICK = 40
TICK_BUDGET_S = 20.0  # for each half: no page begun after this (Dagster's limit is 60 s)


@sensor(job=process_tracks, minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Pages queued in the Notion tracks database (a SoundCloud, YouTube or Spotify link and no status) "
                    "become tracks; every page's status follows its track, and duplicates' pages are merged into "
                    "their keeper's. Every minute; running by default, skips while Notion is not configured.")
def notion_queue(context: SensorEvaluationContext, library: LibraryResource, notion: NotionResource,
                 downloader: DownloaderResource) -> SensorResult:
    if not notion.configured:
        return SensorResult(skip_reason=notion.why_not)
    lib = library.get()
    options = downloader.options()
    try:
        mirror = notion.mirror()
        reap_dead_runs(context.instance, lib)
        taken = mirrors.take_queue(lib, mirror, lambda url: resolve_id(url, options), limit=QUEUE_PER_TICK,
                                   budget_s=TICK_BUDGET_S)
        busy = in_flight(context.instance)  # after taking: a run the webhook requested meanwhile counts
        followed = mirrors.follow_notion(lib, mirror, limit=FOLLOW_PER_TICK, budget_s=TICK_BUDGET_S)
    except TrackError as err:  # not shared, token revoked, Notion down: say so, try again next tick
        context.log.warning(f"Notion: {err}")
        return SensorResult(skip_reason=f"Notion: {err}",
                            asset_events=[observation("notion_queue", seen=0, new=0, errors=[str(err)])])
    for note in taken.notes:
        context.log.info(note)
    errors = taken.errors + followed.errors
    for error in errors:
        context.log.warning(error)
    # and tracks taken from the queue earlier whose run never came (a tick cut off after taking them)
    waiting = [s.track_key for s in lib.catalog.mirrors.all(mirrors.NOTION) if s.track_status == Status.QUEUED]
    keys = [k for k in dict.fromkeys([*taken.keys, *waiting]) if k not in busy]
    known = set(context.instance.get_dynamic_partitions(tracks.name))
    new = [k for k in keys if k not in known]
    request = bulk_request(keys, "notion_queue", run_key=f"notion_queue:{time.time():.0f}")  # a page queued again runs again
    notes = [*taken.notes, f"{followed.statuses} page status(es) brought up to date",
             *(f"{key}: page merged into its keeper's" for key in followed.merged)]
    if followed.left:
        notes.append(f"{followed.left} more page(s) to bring up to date next tick")
    return SensorResult(
        run_requests=[request] if request else [],
        dynamic_partitions_requests=[tracks.build_add_request(new)] if new else [],
        asset_events=[observation("notion_queue", seen=len(taken.keys) + len(taken.errors), new=len(keys),
                                  errors=errors, notes=notes)]
        if taken.keys or errors or followed.statuses or followed.merged else [],
        skip_reason=None if request else "nothing queued in Notion"
        + (f"; {followed.statuses} status(es) updated" if followed.statuses else ""),
    )
