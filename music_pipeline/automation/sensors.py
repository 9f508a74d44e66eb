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

from .. import settings
from ..assets import tracks
from ..assets.sources import observation
from ..core.domain.errors import SourceUnavailable, TrackError
from ..core.domain.identity import is_collection, redact_url
from ..core.domain.lifecycle import Status
from ..core.library.steps import register_target
from ..core.sources import inbox
from ..core.sources.discovery import expand_collection
from ..core.sources.download import resolve_id
from ..resources import DownloaderResource, LibraryResource
from .bulk import bulk_request, in_flight, process_tracks, reap_dead_runs


@sensor(job=process_tracks, minimum_interval_seconds=15, default_status=DefaultSensorStatus.RUNNING,
        description="Imports audio files and .txt URL lists dropped into <library>/inbox. "
                    "Running by default.")
def inbox_sensor(context: SensorEvaluationContext, library: LibraryResource,
                 downloader: DownloaderResource) -> SensorResult:
    """At most ``settings.inbox_per_tick()`` entries a tick (a long list is read on over the
    next ticks, in turns with the other files), so no tick nears Dagster's time limit: a
    tick cut off keeps no cursor and leaves rows registered without partitions or runs (the
    next tick reads the same lines again and requests them)."""
    lib = library.get()
    lib.inbox.mkdir(parents=True, exist_ok=True)
    scan = inbox.scan(lib.inbox, context.cursor, max_items=settings.inbox_per_tick())
    for note in scan.skipped:
        context.log.info(note)
    for refusal in scan.rejected:
        context.log.warning(refusal)
    known = set(context.instance.get_dynamic_partitions(tracks.name))
    if scan.items:
        reap_dead_runs(context.instance, lib)
    busy = in_flight(context.instance) if scan.items else set()
    new_keys: list[str] = []
    keys: list[str] = []
    signatures: list[str] = []  # what makes this request unique (a file dropped again is asked again)
    requested: set[str] = set()
    retry: list[inbox.InboxItem] = []
    errors: list[str] = list(scan.rejected)
    options = downloader.options()
    for item in scan.items:
        where = f"{item.origin}, line {item.line}" if item.line else item.origin
        try:
            if is_collection(item.target):  # a playlist URL: its tracks in this tick's bulk run, and the playlist itself
                registration = expand_collection(lib, item.target, options)
                fresh = [k for k in registration.new if k not in requested and k not in busy]
                requested.update(fresh)
                new_keys += [k for k in fresh if k not in known]
                known.update(fresh)
                keys += fresh
                signatures += [f"{k}@{item.origin}@{item.signature}" for k in fresh]
                context.log.info(f"{where}: {redact_url(item.target)}: {len(registration.keys)} track(s), "
                                 f"{len(fresh)} new")
                continue
            source, row = register_target(lib, item.target, resolve=lambda url: resolve_id(url, options))
            if row.key != source.key:  # known under another key (a merged duplicate's URL)
                context.log.info(f"{where}: {redact_url(item.target)} is already catalogued as {row.key}; skipped")
                continue
        except SourceUnavailable as err:  # e.g. no network to resolve a permalink: look again later
            message = f"{where}: {_redacted(err, item)} (will retry)"
            context.log.warning(message)
            errors.append(message)
            retry.append(item)
            continue
        except TrackError as err:
            message = f"{where}: {_redacted(err, item)}"
            context.log.warning(message)
            errors.append(message)
            continue
        if row.status in (Status.DONE, Status.DUPLICATE):
            what = "already in the library" if row.status == Status.DONE else \
                f"a duplicate of {row.duplicate_of} (group {row.dedup_group})"
            context.log.info(f"{where}: {source.key} is {what}; not processed again")
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
        skip_reason=None if request else
        "nothing new in the inbox" + (f"; {len(errors)} problem(s), see the log" if errors else ""),
    )


def _redacted(err: Exception, item: inbox.InboxItem) -> str:
    """The error's message with the list's URL redacted (a signed link's token stays out
    of the log); a file's path is shown as it is."""
    text = str(err)
    return text.replace(item.target, redact_url(item.target)) if item.line else text


#: Evaluates the assets' automation conditions (library_index refreshes after new catalog
#: rows). Dagster's implicit default sensor starts stopped; this one runs by default.
library_automation_sensor = AutomationConditionSensorDefinition(
    "library_automation_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Keeps library_index fresh after tracks are processed. Running by default.",
)
