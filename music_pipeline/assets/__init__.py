"""The lineage graph: per-track assets, library-wide assets and their checks."""

from .checks import CHECKS
from .library import library_index
from .tracks import TRACK_ASSETS, tracks

ALL_ASSETS = [*TRACK_ASSETS, library_index]

__all__ = ["ALL_ASSETS", "CHECKS", "TRACK_ASSETS", "library_index", "tracks"]
