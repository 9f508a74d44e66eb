"""What every DJ export is made from: the finished keepers with their grid and cues, and the
playlists grouped by the source they came from. Plain values, built from the catalog in one
place (``music_pipeline.core.library``) and written by each format's module."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..audio.beatgrid import Cue, Grid


@dataclass(frozen=True)
class DjTrack:
    key: str  # the catalog's track key: stable, the export's track id comes from it
    path: Path  # the exported file on this machine (the format the DJ chose)
    title: str
    artist: str
    duration_s: float
    album: str | None = None
    genre: str | None = None
    bpm: float | None = None
    key_name: str | None = None  # canonical, "F# minor"
    key_short: str | None = None  # classic, "F#m"
    size_bytes: int = 0
    bitrate_kbps: int | None = None
    sample_rate: int | None = None
    date_added: str | None = None  # YYYY-MM-DD
    comment: str | None = None  # the source page, secrets already masked
    grid: Grid | None = None
    cues: tuple[Cue, ...] = ()


@dataclass(frozen=True)
class DjPlaylist:
    name: str
    keys: tuple[str, ...]  # track keys in the playlist's order (keepers only)


@dataclass(frozen=True)
class DjFolder:
    name: str  # the source: "Spotify", "SoundCloud", "Notion", "Inbox"
    playlists: tuple[DjPlaylist, ...] = ()


@dataclass(frozen=True)
class DjLibrary:
    tracks: tuple[DjTrack, ...]
    folders: tuple[DjFolder, ...] = field(default_factory=tuple)
    missing: tuple[str, ...] = ()  # finished tracks left out: their file is not there
