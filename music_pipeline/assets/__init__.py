"""The lineage graph: per-track assets, library-wide assets and their checks."""

from .checks import CHECKS
from .library import dedup_groups, library_index, playlist_exports
from .mirrors import MIRROR_ASSETS, eagle_records, notion_records
from .sources import SOURCE_ASSETS
from .tracks import TARGET_TAG, TRACK_ASSETS, tracks

ALL_ASSETS = [*SOURCE_ASSETS, *TRACK_ASSETS, *MIRROR_ASSETS, library_index, dedup_groups, playlist_exports]

__all__ = ["ALL_ASSETS", "CHECKS", "MIRROR_ASSETS", "TARGET_TAG", "TRACK_ASSETS", "dedup_groups", "eagle_records",
           "notion_records", "library_index", "playlist_exports", "tracks"]
