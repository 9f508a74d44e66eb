"""One repository per aggregate of the catalog, each with its typed rows (``rows.py``):
tracks, files and name reservations, playlists, mirrors (and merges), the fingerprint index,
dedup groups. ``Catalog`` (``catalog.py``) opens the database and exposes them."""

from .files import FileRepository
from .fingerprints import FingerprintRepository
from .groups import GroupRepository
from .mirrors import MirrorRepository
from .playlists import PlaylistRepository
from .tracks import TrackRepository

__all__ = ["FileRepository", "FingerprintRepository", "GroupRepository", "MirrorRepository", "PlaylistRepository",
           "TrackRepository"]
