"""A track as the mirrors (Notion, Eagle) show it: plain values taken from the catalog.

The catalog is the source of truth; a mirror is told what a track looks like through one of
these and decides itself how to write it (which property, which tag), so the two sinks never
read the catalog on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .identity import canonical_url

#: The site each URL belongs to, for the per-site URL fields.
SITES = ("soundcloud", "youtube", "spotify")


def site_of(url: str) -> str | None:
    host = (url.split("://", 1)[-1].split("/", 1)[0]).lower()
    if host.endswith("soundcloud.com") or host == "snd.sc":
        return "soundcloud"
    if host.endswith("youtube.com") or host == "youtu.be" or host.endswith("youtube-nocookie.com"):
        return "youtube"
    if host.endswith("spotify.com"):
        return "spotify"
    return None


@dataclass(frozen=True)
class OutputFile:
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class TrackRecord:
    key: str
    status: str
    title: str = ""
    artists: tuple[str, ...] = ()
    album: str = ""
    bpm: float | None = None
    key_name: str = ""  # classic notation: F#m
    camelot: str = ""
    lufs: float | None = None
    duration_s: float | None = None
    source_url: str | None = None
    urls: tuple[str, ...] = ()  # every URL the track is known by
    isrc: str = ""
    files: dict[str, OutputFile] = field(default_factory=dict)  # format (ALAC, AIFF, WAV) -> file
    playlists: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    error: str = ""
    processed_at: str | None = None
    lossless: bool | None = None

    def site_url(self, site: str) -> str | None:
        """The track's URL on ``site`` (its source URL first)."""
        for url in (self.source_url, *self.urls):
            if url and site_of(url) == site:
                return url
        return None

    @property
    def identities(self) -> set[str]:
        """Every URL the track is known by, canonical (to find a page or item made for it)."""
        return {canonical_url(u) for u in (self.source_url, *self.urls) if u}

    @property
    def display_name(self) -> str:
        artist = ", ".join(self.artists)
        return f"{artist} - {self.title}" if artist and self.title else self.title or self.key
