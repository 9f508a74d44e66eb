"""The lineage graph: per-track assets, library-wide assets and their checks."""

from .checks import CHECKS
from .library import dedup_groups, library_index, playlist_exports
from .sinks import MIRROR_ASSETS, SINK_ASSETS
from .sources import SOURCE_ASSETS
from .tracks import TARGET_TAG, TRACK_ASSETS, tracks

_by_name = {a.key.path[-1]: a for a in SINK_ASSETS}
notion_records, eagle_records = _by_name["notion_records"], _by_name["eagle_records"]
rekordbox_export, traktor_export = _by_name["rekordbox_export"], _by_name["traktor_export"]

ALL_ASSETS = [*SOURCE_ASSETS, *TRACK_ASSETS, *SINK_ASSETS, library_index, dedup_groups, playlist_exports]

__all__ = ["ALL_ASSETS", "CHECKS", "MIRROR_ASSETS", "SINK_ASSETS", "TARGET_TAG", "TRACK_ASSETS", "dedup_groups",
           "eagle_records", "notion_records", "library_index", "playlist_exports", "rekordbox_export",
           "traktor_export", "tracks"]
