"""Sensors: things arriving from outside become partitions and runs in the same tick."""


import hashlib

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from ..assets import tracks
from ..assets.sources import observation
from ..core.domain.errors import SourceUnavailable, TrackError
from ..core.domain.identity import is_collection, source_for
from ..core.domain.status import Status
from ..core.sources import inbox
from ..core.sources.discovery import expand_collection
from ..core.sources.download import resolve_id
from ..resources import DownloaderResource, LibraryResource
from .bulk import bulk_request, in_flight, process_tracks

MAX_ITEMS_PER_TICK = 200


@sensor(job=process_tracks, minimum_interval_seconds=15, default_status=DefaultSensorStatus.RUNNING,
        description="Imports audio files and .txt URL lists dropped into <library>/inbox. "
                    "Running by default.")
def inbox_sensor(context: SensorEvaluationContext, library: LibraryResource,
                 downloader: DownloaderResource) -> SensorResult:
    lib = library.get()
    lib.inbox.mkdir(parents=True, exist_ok=True)
    scan = inbox.scan(lib.inbox, context.cursor, max_items=MAX_ITEMS_PER_TICK)
    for note in scan.skipped:
        context.log.info(note)
    known = set(context.instance.get_dynamic_partitions(tracks.name))
    busy = in_flight(context.instance, lib) if scan.items else set()
    new_keys: list[str] = []
    keys: list[str] = []
    signatures: list[str] = []  # what makes this request unique (a file dropped again is asked again)
    requested: set[str] = set()
    retry: set[str] = set()
    errors: list[str] = []
    options = downloader.options()
    for item in scan.items:
        try:
            if is_collection(item.target):  # a playlist URL: its tracks in this tick's bulk run, and the playlist itself
                registration = expand_collection(lib, item.target, options)
                fresh = [k for k in registration.new if k not in requested and k not in busy]
                requested.update(fresh)
                new_keys += [k for k in fresh if k not in known]
                known.update(fresh)
                keys += fresh
                signatures += [f"{k}@{item.origin}@{item.signature}" for k in fresh]
                context.log.info(f"{item.origin}: {item.target}: {len(registration.keys)} track(s), "
                                 f"{len(fresh)} new")
                continue
            source = source_for(item.target, resolve=lambda url: resolve_id(url, options))
            owner = lib.catalog.find_source(urls=[source.url]) if source.kind == "url" else None
            if owner not in (None, source.key):  # known under another key (a merged duplicate's URL)
                context.log.info(f"{item.origin}: {source.url} is already catalogued as {owner}; skipped")
                continue
            lib.register(source, original=item.target if source.kind == "url" else None)
            row = lib.track(source.key)
        except SourceUnavailable as err:  # e.g. no network to resolve a permalink: look again later
            context.log.warning(f"{item.origin}: {err} (will retry)")
            errors.append(f"{item.origin}: {err} (will retry)")
            retry.add(item.origin)
            continue
        except TrackError as err:
            context.log.warning(f"{item.origin}: {err}")
            errors.append(f"{item.origin}: {err}")
            continue
        if row["status"] in (Status.DONE, Status.DUPLICATE):
            what = "already in the library" if row["status"] == Status.DONE else \
                f"a duplicate of {row['duplicate_of']} (group {row['dedup_group']})"
            context.log.info(f"{item.origin}: {source.key} is {what}; not processed again")
            continue
        if source.key in requested or source.key in busy:
            continue  # the same track twice in one drop, or already queued or running
        requested.add(source.key)
        if source.key not in known:
            known.add(source.key)
            new_keys.append(source.key)
        keys.append(source.key)
        signatures.append(f"{source.key}@{item.origin}@{item.signature}")
    digest = hashlib.sha1("\n".join(signatures).encode()).hexdigest()[:12]
    request = bulk_request(keys, "inbox", run_key=f"inbox:{digest}")
    return SensorResult(
        run_requests=[request] if request else [],
        dynamic_partitions_requests=[tracks.build_add_request(new_keys)] if new_keys else [],
        cursor=inbox.forget(scan.cursor, retry) if retry else scan.cursor,
        asset_events=[observation("inbox", seen=len(scan.items), new=len(keys), errors=errors,
                                  notes=scan.skipped)] if scan.items or errors else [],
        skip_reason=None if request else "nothing new in the inbox",
    )


#: Evaluates the assets' automation conditions (library_index refreshes after new catalog
#: rows). Dagster's implicit default sensor starts stopped; this one runs by default.
library_automation_sensor = AutomationConditionSensorDefinition(
    "library_automation_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Keeps library_index fresh after tracks are processed. Running by default.",
)
