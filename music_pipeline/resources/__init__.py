"""Dagster resources: configuration for each outside system, built from the environment."""

from .downloader import DownloaderResource
from .library import LibraryResource

__all__ = ["DownloaderResource", "LibraryResource"]
