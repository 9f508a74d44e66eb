"""Sensors that keep the library in sync with the user's accounts, and the schedules that
replace the original system's cron jobs.

Every sensor has a minimum interval, a JSON cursor and a default status (documented in
its description and the README). New tracks become dynamic partitions and one bulk run
(``bulk.process_tracks``) in the same tick, and the sensor reports what it saw as an
observation of its source asset. A 429, a network error or a missing login skips the tick
with the reason and keeps the cursor, so nothing is lost or requested twice; a first sync of
a large account is split across ticks (``MAX_PER_TICK``) so no tick comes near Dagster's
sensor time limit.
"""


import json
from collections.abc import Callable

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    in_process_executor,
    sensor,
)

from .. import settings
from ..assets import dedup_groups, tracks
from ..assets.sources import observation
from ..core.domain.errors import TrackError
from ..core.sources import discovery
from ..core.sources.spotify.models import RateLimited
from ..resources import DownloaderResource, LibraryResource, SoundCloudResource, SpotifyResource
from .bulk import bulk_request, in_flight, process_tracks, reap_dead_runs, run_config

MAX_PER_TICK = 200  # tracks listed (first sync) or registered per tick
TICK_BUDGET_S = 30.0  # stop listing playlists after this long; the rest next tick (Dagster's limit is 60 s)


def _tick(context: SensorEvaluationContext, origin: str, source: str, library: LibraryResource,
          work: Callable[[dict], discovery.Pass]) -> SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    reap_dead_runs(context.instance, library.get())
    busy = in_flight(context.instance)  # before the pass registers anything
    try:
        result = work(cursor)
    except RateLimited as err:
        reason = f"{origin}: rate limited; trying again after {err.retry_after:.0f} s (cursor kept)"
        return SensorResult(skip_reason=reason, cursor=context.cursor,
                            asset_events=[observation(source, seen=0, new=0, cursor=context.cursor, errors=[reason])])
    except TrackError as err:  # not configured, not logged in, network down: say so, keep the cursor
        return SensorResult(skip_reason=f"{origin}: {err}", cursor=context.cursor)
    for note in result.notes[:50]:
        context.log.info(note)
    keys = [k for k in result.new if k not in busy]
    request = bulk_request(keys, origin)
    cursor_text = json.dumps(result.cursor)
    return SensorResult(
        run_requests=[request] if request else [],
        dynamic_partitions_requests=[tracks.build_add_request(result.new)] if result.new else [],
        cursor=cursor_text,
        asset_events=[observation(source, seen=result.seen, new=len(result.new), cursor=cursor_text,
                                  notes=result.notes)],
        skip_reason=None if request else f"{origin}: nothing new",
    )


def _spotify(spotify: SpotifyResource):
    if not spotify.configured:
        raise TrackError("Spotify is not configured.",
                         hint="Set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET, then run `music-pipeline spotify-login`.")
    return spotify.client()


@sensor(job=process_tracks, minimum_interval_seconds=300, default_status=DefaultSensorStatus.RUNNING,
        description="New Spotify likes become tracks (matched to a downloadable source). Every 5 min; "
                    "running by default, skips while Spotify is not configured.")
def spotify_liked(context: SensorEvaluationContext, library: LibraryResource, spotify: SpotifyResource):
    return _tick(context, "spotify_liked", "spotify_likes", library,
                 lambda cursor: discovery.spotify_likes(library.get(), _spotify(spotify), cursor, MAX_PER_TICK))


@sensor(job=process_tracks, minimum_interval_seconds=900, default_status=DefaultSensorStatus.RUNNING,
        description="Tracks of the user's Spotify playlists (changed snapshots only); membership kept in the "
                    "catalog. Every 15 min; running by default, skips while Spotify is not configured.")
def spotify_playlists(context: SensorEvaluationContext, library: LibraryResource, spotify: SpotifyResource):
    return _tick(context, "spotify_playlists", "spotify_playlists", library,
                 lambda cursor: discovery.spotify_playlists(library.get(), _spotify(spotify), cursor, MAX_PER_TICK,
                                                          budget_s=TICK_BUDGET_S))


@sensor(job=process_tracks, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED,
        description="The track playing on Spotify right now joins the library. Every minute; stopped by "
                    "default (turn it on to collect what you listen to).")
def spotify_now_playing(context: SensorEvaluationContext, library: LibraryResource, spotify: SpotifyResource):
    return _tick(context, "spotify_now_playing", "spotify_now_playing", library,
                 lambda cursor: discovery.spotify_now_playing(library.get(), _spotify(spotify)))


def _soundcloud(soundcloud: SoundCloudResource) -> str:
    return soundcloud.require()


@sensor(job=process_tracks, minimum_interval_seconds=600, default_status=DefaultSensorStatus.RUNNING,
        description="New SoundCloud likes (yt-dlp, flat listing) become tracks. Every 10 min; running by "
                    "default, skips while SOUNDCLOUD_USER is not set.")
def soundcloud_likes(context: SensorEvaluationContext, library: LibraryResource, soundcloud: SoundCloudResource,
                     downloader: DownloaderResource):
    return _tick(context, "soundcloud_likes", "soundcloud_likes", library, lambda cursor: discovery.soundcloud_likes(
        library.get(), _soundcloud(soundcloud), downloader.options(), cursor, MAX_PER_TICK))


@sensor(job=process_tracks, minimum_interval_seconds=1800, default_status=DefaultSensorStatus.RUNNING,
        description="Tracks of the user's SoundCloud sets (playlists). Every 30 min; running by default, skips "
                    "while SOUNDCLOUD_USER is not set.")
def soundcloud_playlists(context: SensorEvaluationContext, library: LibraryResource,
                         soundcloud: SoundCloudResource, downloader: DownloaderResource):
    return _tick(context, "soundcloud_playlists", "soundcloud_sets", library, lambda cursor: discovery.soundcloud_sets(
        library.get(), _soundcloud(soundcloud), downloader.options(), cursor, MAX_PER_TICK))


SOURCE_SENSORS = [spotify_liked, spotify_playlists, spotify_now_playing, soundcloud_likes, soundcloud_playlists]


# -- schedules ------------------------------------------------------------------------------------


dedup_job = define_asset_job("dedup_job", selection=AssetSelection.assets(dedup_groups),
                             executor_def=in_process_executor, description="The library-wide duplicate pass.")

TIMEZONE = settings.timezone()
nightly_sync = ScheduleDefinition(
    name="nightly_sync", job=process_tracks, cron_schedule="0 3 * * *", execution_timezone=TIMEZONE,
    run_config=run_config(select="all", sync=True), tags={"music_pipeline/origin": "nightly_sync"},
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"03:00 ({TIMEZONE}) every night: every source in full, then every queued track and retryable "
                "failure, each a run of process_track. Running by default.")
weekly_verification = ScheduleDefinition(
    name="weekly_verification", job=process_tracks, cron_schedule="0 4 * * 0", execution_timezone=TIMEZONE,
    run_config=run_config(select="reprocess", job_name="verify_track"),
    tags={"music_pipeline/origin": "weekly_verification"},
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Sundays 04:00 ({TIMEZONE}): every finished track's asset checks again, each a run of "
                "verify_track (report only). Running by default.")
weekly_dedup = ScheduleDefinition(
    name="weekly_dedup", job=dedup_job, cron_schedule="0 5 * * 0", execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Sundays 05:00 ({TIMEZONE}): the library-wide duplicate pass. Running by default.")

SCHEDULES = [nightly_sync, weekly_verification, weekly_dedup]
JOBS = [process_tracks, dedup_job]
