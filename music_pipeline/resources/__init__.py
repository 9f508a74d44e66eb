"""Dagster resources: configuration for each outside system, built from the environment."""

from .analysis import AnalysisResource
from .downloader import DownloaderResource
from .library import LibraryResource
from .mirrors import EagleResource, NotionResource
from .sources import SoundCloudResource, SpotifyResource


def build_resources(**overrides) -> dict:
    """The resources for this environment, built in one place for the code location, the
    command line and the tests (the library root from MUSIC_LIBRARY, WAV_BACKUP_DIR when
    set, the accounts from their variables); ``overrides`` replaces any of them."""
    from .. import settings

    resources = {
        "library": LibraryResource(root=str(settings.library_root()), wav_backup_dir=settings.wav_backup_dir()),
        "downloader": DownloaderResource(),
        "analysis": AnalysisResource(),
        "spotify": SpotifyResource(**settings.spotify_resource_config()),
        "soundcloud": SoundCloudResource(user=settings.soundcloud_user()),
        "notion": NotionResource(**settings.notion_resource_config()),
        "eagle": EagleResource(**settings.eagle_resource_config()),
    }
    return {**resources, **overrides}


__all__ = ["AnalysisResource", "DownloaderResource", "EagleResource", "LibraryResource", "NotionResource", "SoundCloudResource", "SpotifyResource",
           "build_resources"]
