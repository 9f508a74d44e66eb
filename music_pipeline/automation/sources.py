"""Sensors that keep the library in sync with the user's accounts, and the schedules that
replace the original system's cron jobs.

Every sensor has a minimum interval, a JSON cursor and a default status (documented in
its description and the README). A new track becomes a dynamic partition and part of a
batch run request in the same tick. A 429, a network error or a missing login skips the
tick with the reason and keeps the cursor, so nothing is lost or requested twice; a first
sync of a large account is split across ticks (``MAX_PER_TICK``) so no tick comes near
Dagster's sensor time limit.
"""


import hashlib
import json
from collections.abc import Callable

from dagster import (
    AssetSelection,
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Failure,
    OpExecutionContext,
    Output,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    in_process_executor,
    job,
    op,
    sensor,
)

from .. import settings
from ..assets import dedup_groups, tracks
from ..assets import steps as track_steps
from ..core import sources
from ..core.errors import TrackError
from ..core.spotify import RateLimited
from ..resources import (
    AnalysisResource,
    DownloaderResource,
    LibraryResource,
    SoundCloudResource,
    SpotifyResource,
)
from .batch import BATCH_SIZE, BatchConfig, process_batch, process_track, run_config, select_keys

MAX_PER_TICK = 200  # tracks listed (first sync) or registered per tick
TICK_BUDGET_S = 30.0  # stop listing playlists after this long; the rest next tick (Dagster's limit is 60 s)


def batch_requests(keys: list[str], origin: str) -> list[RunRequest]:
    """Batch runs of at most BATCH_SIZE tracks; the run key makes a re-evaluated tick harmless."""
    requests = []
    for start in range(0, len(keys), BATCH_SIZE):
        chunk = keys[start:start + BATCH_SIZE]
        digest = hashlib.sha1("\n".join(chunk).encode()).hexdigest()[:12]
        requests.append(RunRequest(job_name=process_batch.name, run_key=f"{origin}:{digest}",
                                   run_config=run_config(keys=chunk),
                                   tags={"music_pipeline/origin": origin, "music_pipeline/tracks": str(len(chunk))}))
    return requests


def _tick(context: SensorEvaluationContext, origin: str, work: Callable[[dict], sources.Pass]) -> SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    try:
        result = work(cursor)
    except RateLimited as err:
        return SensorResult(skip_reason=f"{origin}: rate limited; trying again after {err.retry_after:.0f} s "
                                        "(cursor kept)", cursor=context.cursor)
    except TrackError as err:  # not configured, not logged in, network down: say so, keep the cursor
        return SensorResult(skip_reason=f"{origin}: {err}", cursor=context.cursor)
    for note in result.notes[:50]:
        context.log.info(note)
    return SensorResult(
        run_requests=batch_requests(result.new, origin),
        dynamic_partitions_requests=[tracks.build_add_request(result.new)] if result.new else [],
        cursor=json.dumps(result.cursor),
        skip_reason=None if result.new else f"{origin}: nothing new",
    )


def _spotify(spotify: SpotifyResource):
    if not spotify.configured:
        raise TrackError("Spotify is not configured.",
                         hint="Set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET, then run `music-pipeline spotify-login`.")
    return spotify.client()


@sensor(job=process_batch, minimum_interval_seconds=300, default_status=DefaultSensorStatus.RUNNING,
        description="New Spotify likes become tracks (matched to a downloadable source). Every 5 min; "
                    "running by default, skips while Spotify is not configured.")
def spotify_liked(context: SensorEvaluationContext, library: LibraryResource, spotify: SpotifyResource):
    return _tick(context, "spotify_liked",
                 lambda cursor: sources.spotify_likes(library.get(), _spotify(spotify), cursor, MAX_PER_TICK))


@sensor(job=process_batch, minimum_interval_seconds=900, default_status=DefaultSensorStatus.RUNNING,
        description="Tracks of the user's Spotify playlists (changed snapshots only); membership kept in the "
                    "catalog. Every 15 min; running by default, skips while Spotify is not configured.")
def spotify_playlists(context: SensorEvaluationContext, library: LibraryResource, spotify: SpotifyResource):
    return _tick(context, "spotify_playlists",
                 lambda cursor: sources.spotify_playlists(library.get(), _spotify(spotify), cursor, MAX_PER_TICK,
                                                          budget_s=TICK_BUDGET_S))


@sensor(job=process_batch, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED,
        description="The track playing on Spotify right now joins the library. Every minute; stopped by "
                    "default (turn it on to collect what you listen to).")
def spotify_now_playing(context: SensorEvaluationContext, library: LibraryResource, spotify: SpotifyResource):
    return _tick(context, "spotify_now_playing",
                 lambda cursor: sources.spotify_now_playing(library.get(), _spotify(spotify)))


def _soundcloud(soundcloud: SoundCloudResource) -> str:
    return soundcloud.require()


@sensor(job=process_batch, minimum_interval_seconds=600, default_status=DefaultSensorStatus.RUNNING,
        description="New SoundCloud likes (yt-dlp, flat listing) become tracks. Every 10 min; running by "
                    "default, skips while SOUNDCLOUD_USER is not set.")
def soundcloud_likes(context: SensorEvaluationContext, library: LibraryResource, soundcloud: SoundCloudResource,
                     downloader: DownloaderResource):
    return _tick(context, "soundcloud_likes", lambda cursor: sources.soundcloud_likes(
        library.get(), _soundcloud(soundcloud), downloader.options(), cursor, MAX_PER_TICK))


@sensor(job=process_batch, minimum_interval_seconds=1800, default_status=DefaultSensorStatus.RUNNING,
        description="Tracks of the user's SoundCloud sets (playlists). Every 30 min; running by default, skips "
                    "while SOUNDCLOUD_USER is not set.")
def soundcloud_playlists(context: SensorEvaluationContext, library: LibraryResource,
                         soundcloud: SoundCloudResource, downloader: DownloaderResource):
    return _tick(context, "soundcloud_playlists", lambda cursor: sources.soundcloud_sets(
        library.get(), _soundcloud(soundcloud), downloader.options(), cursor, MAX_PER_TICK))


SOURCE_SENSORS = [spotify_liked, spotify_playlists, spotify_now_playing, soundcloud_likes, soundcloud_playlists]


# -- schedules ------------------------------------------------------------------------------------


class SyncConfig(Config):
    process: bool = True  # process what was found (and queued tracks) in this run


def sync_all(lib, spotify: SpotifyResource, soundcloud: SoundCloudResource, downloader: DownloaderResource,
             log: Callable[[str], None]) -> list[str]:
    """Every configured source in full (no per-tick limit); returns the new keys."""
    passes: list[tuple[str, Callable[[], sources.Pass]]] = []
    if spotify.configured:
        passes += [("Spotify likes", lambda: sources.spotify_likes(lib, spotify.client(), {}, None)),
                   ("Spotify playlists", lambda: sources.spotify_playlists(lib, spotify.client(), {}, None))]
    if soundcloud.configured:
        options = downloader.options()
        passes += [("SoundCloud likes", lambda: sources.soundcloud_likes(lib, soundcloud.user, options, {}, None)),
                   ("SoundCloud sets", lambda: sources.soundcloud_sets(lib, soundcloud.user, options, {}, None,
                                                                       prune=False))]
    new: list[str] = []
    for name, work in passes:
        try:
            result = work()
        except TrackError as err:  # one source down does not stop the others
            log(f"{name}: {err}")
            continue
        new += result.new
        log(f"{name}: {len(result.new)} new track(s)")
    return list(dict.fromkeys(new))


@op(pool="download", description="List every configured source in full, register new tracks, process "
                                 "them and every queued track.")
def sync_sources(context: OpExecutionContext, config: SyncConfig, library: LibraryResource,
                 spotify: SpotifyResource, soundcloud: SoundCloudResource, downloader: DownloaderResource,
                 analysis: AnalysisResource):
    lib = library.get()
    new = sync_all(lib, spotify, soundcloud, downloader, context.log.info)
    keys = select_keys(lib, BatchConfig(select="all")) if config.process else []
    known = set(context.instance.get_dynamic_partitions(tracks.name))
    if missing := [k for k in keys if k not in known]:
        context.instance.add_dynamic_partitions(tracks.name, missing)
    outcomes = [process_track(context, lib, key, downloader=downloader, analysis=analysis, spotify=spotify)
                for key in keys]
    return Output(None, metadata={"new_tracks": len(new), "processed": len(keys),
                                  "done": outcomes.count("done"), "failed": outcomes.count("failed")})


@job(executor_def=in_process_executor, description="Sync every source and process what is new.")
def sync_job():
    sync_sources()


@op(description="Verify every finished track's files (decode, duration, tags, checksum); report only.")
def verify_files(context: OpExecutionContext, library: LibraryResource):
    """Reports, changes nothing: a DJ tool writing cue points changes a checksum, an
    unmounted volume makes every file "missing", and neither should unmake the library."""
    lib = library.get()
    if not lib.root.is_dir():
        raise Failure(f"The library folder {lib.root} is not there (an unmounted volume?); nothing was checked.")
    done = lib.catalog.tracks("done")
    bad: list[str] = []
    for number, row in enumerate(done, 1):
        for fmt in track_steps.ASSET_NAMES:
            problems = lib.verify(row["key"], fmt)
            if problems:
                bad.append(f"{row['key']} {fmt}: {'; '.join(problems)}")
                context.log.warning(bad[-1])
        if number % 100 == 0:
            context.log.info(f"verified {number}/{len(done)} tracks")
    return Output(None, metadata={"tracks": len(done), "problems": len(bad), "details": "\n".join(bad[:100])})


@job(executor_def=in_process_executor, description="Re-verify the whole library.")
def verify_library_job():
    verify_files()


dedup_job = define_asset_job("dedup_job", selection=AssetSelection.assets(dedup_groups),
                             executor_def=in_process_executor, description="The library-wide duplicate pass.")

TIMEZONE = settings.timezone()
nightly_sync = ScheduleDefinition(
    name="nightly_sync", job=sync_job, cron_schedule="0 3 * * *", execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"03:00 ({TIMEZONE}) every night: every source in full, then processing. Running by default.")
weekly_verification = ScheduleDefinition(
    name="weekly_verification", job=verify_library_job, cron_schedule="0 4 * * 0", execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Sundays 04:00 ({TIMEZONE}): every file checked again. Running by default.")
weekly_dedup = ScheduleDefinition(
    name="weekly_dedup", job=dedup_job, cron_schedule="0 5 * * 0", execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Sundays 05:00 ({TIMEZONE}): the library-wide duplicate pass. Running by default.")

SCHEDULES = [nightly_sync, weekly_verification, weekly_dedup]
JOBS = [process_batch, sync_job, verify_library_job, dedup_job]
