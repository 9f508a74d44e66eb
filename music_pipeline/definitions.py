"""The code location: `dagster dev -w workspace.yaml` loads ``defs`` from here."""

from __future__ import annotations

from dagster import Definitions

from . import settings
from .assets import ALL_ASSETS, CHECKS
from .automation import (
    JOBS,
    SCHEDULES,
    SOURCE_SENSORS,
    inbox_sensor,
    library_automation_sensor,
    library_index_job,
    process_track_job,
)
from .resources import (
    AnalysisResource,
    DownloaderResource,
    LibraryResource,
    SoundCloudResource,
    SpotifyResource,
)


def build_resources() -> dict:
    """Resources for this environment, chosen in one place (the library root from
    MUSIC_LIBRARY; WAV_BACKUP_DIR when set)."""
    return {
        "library": LibraryResource(root=str(settings.library_root()), wav_backup_dir=settings.wav_backup_dir()),
        "downloader": DownloaderResource(),
        "analysis": AnalysisResource(),
        "spotify": SpotifyResource(**settings.spotify_resource_config()),
        "soundcloud": SoundCloudResource(user=settings.soundcloud_user()),
    }


defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=CHECKS,
    jobs=[process_track_job, library_index_job, *JOBS],
    sensors=[inbox_sensor, library_automation_sensor, *SOURCE_SENSORS],
    schedules=SCHEDULES,
    resources=build_resources(),
)
