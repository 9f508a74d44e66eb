"""Dagster resources: configuration for each outside system, built from the environment."""

from .analysis import AnalysisResource
from .downloader import DownloaderResource
from .library import LibraryResource
from .sources import SoundCloudResource, SpotifyResource

__all__ = ["AnalysisResource", "DownloaderResource", "LibraryResource", "SoundCloudResource", "SpotifyResource"]
