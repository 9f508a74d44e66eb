"""Listing many tracks at once: SoundCloud likes and sets, YouTube playlists.

A DJ's likes page can hold thousands of tracks, so collections are listed with yt-dlp's
*flat* extraction (``extract_flat="in_playlist"``): one request per page of the
collection, nothing per track, no download. Each entry is reduced to the canonical URL
that :func:`identity.source_for` turns into the same partition key as a URL pasted by
hand, so a track liked on SoundCloud and later added by URL is one track.

Flat listings say little about playability: YouTube marks private and deleted videos in
a playlist, SoundCloud marks nothing (its flat entries are only id, title and URL). Whether
one entry is DRM-protected or geo-blocked is learnt with :func:`probe_entry`, a full
extraction of that one track, again without downloading.

Errors: a collection that cannot be listed raises the project's :class:`TrackError`
subclasses: :class:`SourceUnavailable` for what may pass (network, rate limits, server
errors; the caller retries next tick) and :class:`UnsupportedSource` for what will not
(not found, private, unsupported URL), so a sensor does not hammer a dead profile.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlsplit

from ..domain.errors import (
    DrmProtected,
    GeoBlocked,
    LoginRequired,
    PrivateSource,
    RemovedSource,
    SourceUnavailable,
    TrackError,
    UnsupportedSource,
)
from ..domain.identity import PLAYLIST_EXTRACTOR, canonical_url, redact_url, safe_id, spotify_id, youtube_id
from . import ytdlp
from .ytdlp import DownloadOptions

__all__ = [
    "Entry",
    "Listing",
    "check_entries",
    "list_collection",
    "list_soundcloud_sets",
    "probe_entry",
    "soundcloud_likes_url",
    "soundcloud_sets_url",
]


@dataclass(frozen=True)
class Entry:
    """One track of a collection, as listed without visiting the track itself."""

    url: str  # canonical: https://api.soundcloud.com/tracks/<id> or https://www.youtube.com/watch?v=<id>
    id: str
    extractor: str  # yt-dlp's ie_key, lower-cased: "soundcloud", "youtube"
    title: str | None
    artist: str | None
    duration_s: float | None
    position: int  # 0-based place among the collection's tracks
    unavailable: str | None = None  # "<reason>: <text>", e.g. "private: [Private video]"

    @property
    def unavailable_reason(self) -> str | None:
        """The machine-readable part of ``unavailable`` ("drm", "geo", "private"...)."""
        return self.unavailable.split(":", 1)[0] if self.unavailable else None


@dataclass(frozen=True)
class Listing:
    """A collection as listed now: its tracks in order, plus collections nested in it."""

    url: str
    id: str
    title: str
    kind: str  # "likes" | "set" | "playlist"
    entries: tuple[Entry, ...]
    #: URLs of collections listed inside this one (SoundCloud likes include liked sets;
    #: a user's /sets page is only these). Kept apart so they are never taken for tracks.
    nested: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A stable id for the catalog, unique across sources and kinds: a SoundCloud
        user's likes and sets share the user's id, so the kind is part of the key."""
        source = "soundcloud" if "soundcloud.com" in self.url else "youtube" if _is_youtube(self.url) else "url"
        return f"{source}-{self.kind}-{safe_id(self.id)}"


# -- URLs --------------------------------------------------------------------------------

_SC_USER = re.compile(r"^[A-Za-z0-9_-]+$")


def _soundcloud_user(user: str) -> str:
    """Accept "name", "@name" or a profile URL; return the permalink name."""
    text = user.strip().lstrip("@")
    if "://" in text or text.startswith("soundcloud.com"):
        parts = urlsplit(text if "://" in text else f"https://{text}")
        text = parts.path.strip("/").split("/", 1)[0]
    if not _SC_USER.match(text):
        raise UnsupportedSource(f"{user!r} is not a SoundCloud user name.",
                                hint="Use the name from the profile URL: soundcloud.com/<name>.")
    return text


def soundcloud_likes_url(user: str) -> str:
    return f"https://soundcloud.com/{_soundcloud_user(user)}/likes"


def soundcloud_sets_url(user: str) -> str:
    return f"https://soundcloud.com/{_soundcloud_user(user)}/sets"


def _is_youtube(url: str) -> bool:
    host = urlsplit(url).netloc.lower()
    return host.endswith("youtube.com") or host == "youtu.be"


def _kind(url: str, info: dict) -> str:
    path = urlsplit(url).path.rstrip("/")
    key = str(info.get("extractor_key") or "")
    if "soundcloud.com" in url:
        if path.endswith("/likes"):
            return "likes"
        if "/sets/" in path or "/playlists/" in path or key in ("SoundcloudSet", "SoundcloudPlaylist"):
            return "set"
        return "playlist"
    if _is_youtube(url) and parse_qs(urlsplit(url).query).get("list", [""])[0] in ("LL", "LM"):
        return "likes"  # "Liked videos" / YouTube Music likes (need cookies)
    return "playlist"


def list_collection(url: str, options: DownloadOptions | None = None,
                    log: Callable[[str], None] | None = None, first: int | None = None) -> Listing:
    """The tracks of a likes page, set or playlist, in order, without visiting any track;
    only the ``first`` ones when given (likes are newest first: enough to see what is new)."""
    if spotify_id(url) or "open.spotify.com" in url:
        raise UnsupportedSource(f"{redact_url(url)} is a Spotify collection; yt-dlp cannot list it.",
                                hint="Spotify playlists are read by the Spotify sync.")
    options = options or DownloadOptions()
    info = ytdlp.extract(url, ytdlp.params(options, log, skip_download=True,
                                           extract_flat="in_playlist", noplaylist=False,
                                           **({"playlistend": first} if first else {})), scope="collection")
    if not info:
        raise SourceUnavailable(f"yt-dlp listed nothing for {redact_url(url)}.", hint="Retrying next time.")
    if info.get("_type") not in ("playlist", "multi_video"):
        raise UnsupportedSource(f"{redact_url(url)} is a single track, not a playlist, set or likes page.",
                                hint="Add it as a track instead.")
    entries, nested = _entries(info.get("entries") or ())
    listed_url = str(info.get("webpage_url") or url)
    return Listing(
        # canonical_url would cut "watch?v=X&list=Y" down to the video: keep yt-dlp's own form.
        url=listed_url if youtube_id(listed_url) else canonical_url(listed_url),
        id=str(info.get("id") or ""),
        title=str(info.get("title") or info.get("id") or url),
        kind=_kind(url, info),
        entries=entries,
        nested=nested,
    )


def list_soundcloud_sets(user: str, options: DownloadOptions | None = None,
                         log: Callable[[str], None] | None = None) -> list[Listing]:
    """Every set of a SoundCloud user, each listed with its tracks.

    The flat listing of ``/sets`` yields set URLs only, so each set is listed in turn.
    A set that fails raises: a partial answer would read as "that set was deleted" to
    the caller, which would then remove its playlist folder.
    """
    overview = list_collection(soundcloud_sets_url(user), options, log)
    return [list_collection(set_url, options, log) for set_url in overview.nested]


def _entries(raw_entries: Iterable[dict | None]) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
    tracks: list[Entry] = []
    nested: list[str] = []
    for raw in raw_entries:
        if not isinstance(raw, dict) or not raw.get("url"):
            continue  # yt-dlp yields None for collection items it could not resolve
        ie_key = str(raw.get("ie_key") or "")
        if raw.get("_type") == "playlist" or not ie_key or PLAYLIST_EXTRACTOR.search(ie_key):
            # SoundCloud sets inside likes / on /sets come without ie_key (SoundcloudIE
            # does not match set URLs); they are collections, not tracks.
            nested.append(str(raw["url"]))
            continue
        entry = _entry(raw, ie_key.lower(), len(tracks))
        if entry is not None:
            tracks.append(entry)
    return tuple(tracks), tuple(nested)


_PLACEHOLDER_TITLES = {  # YouTube lists unavailable playlist items under these titles
    "[private video]": "private",
    "[deleted video]": "removed",
    "[unavailable video]": "removed",
}
_AVAILABILITY = {"private": "private", "needs_auth": "login", "premium_only": "login",
                 "subscriber_only": "login"}


def _entry(raw: dict, extractor: str, position: int) -> Entry | None:
    track_id = str(raw.get("id") or "")
    if extractor == "soundcloud" and track_id.isdigit():
        # The api URL carries the id: identity gives its key offline, no resolving later.
        url = f"https://api.soundcloud.com/tracks/{track_id}"
    else:
        try:
            url = canonical_url(str(raw["url"]))
        except TrackError:
            return None
    title = raw.get("track") or raw.get("title")
    unavailable = None
    if isinstance(title, str) and title.lower() in _PLACEHOLDER_TITLES:
        unavailable, title = f"{_PLACEHOLDER_TITLES[title.lower()]}: {title}", None
    elif raw.get("availability") in _AVAILABILITY:
        unavailable = f"{_AVAILABILITY[raw['availability']]}: marked {raw['availability']} by {extractor}"
    artists = raw.get("artists") or []
    # Not album_artist: in a SoundCloud set that is the set's owner, not the track's artist.
    artist = raw.get("artist") or (", ".join(artists) if artists else None) or raw.get("creator") \
        or raw.get("uploader") or raw.get("channel")
    duration = raw.get("duration")
    return Entry(
        url=url,
        id=track_id,
        extractor=extractor,
        title=str(title) if title else None,
        artist=str(artist) if artist else None,
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        position=position,
        unavailable=unavailable,
    )


def probe_entry(url: str, options: DownloadOptions | None = None,
                log: Callable[[str], None] | None = None) -> None:
    """Fully extract ONE track (formats included, nothing downloaded) to learn whether it
    can be downloaded here. Returns quietly if so; raises DrmProtected ("drm"),
    GeoBlocked ("geo"), PrivateSource, RemovedSource, LoginRequired or SourceUnavailable."""
    options = options or DownloadOptions()
    info = ytdlp.extract(url, ytdlp.params(options, log, skip_download=True, format=options.format,
                                           noplaylist=True, playlist_items="1"))
    if not info:
        raise SourceUnavailable(f"yt-dlp returned nothing for {redact_url(url)}.")
    if info.get("_type") == "playlist":
        raise UnsupportedSource(f"{redact_url(url)} is a collection, not one track.")


#: Errors that describe the track itself; anything else (network) says nothing about it.
_DEFINITE = (DrmProtected, GeoBlocked, PrivateSource, RemovedSource, LoginRequired)


def check_entries(entries: Iterable[Entry], options: DownloadOptions | None = None, *,
                  probe: Callable[[str, DownloadOptions | None], None] | None = None) -> tuple[Entry, ...]:
    """Entries with ``unavailable`` filled in by probing each one not already marked.

    One full extraction per entry: meant for the few entries new since the last sync, not
    a whole likes page. Network errors leave an entry unmarked (unknown, not unavailable).
    """
    probe = probe or probe_entry
    checked = []
    for entry in entries:
        if entry.unavailable is None:
            try:
                probe(entry.url, options)
            except _DEFINITE as err:
                entry = replace(entry, unavailable=f"{err.reason}: {err.message}")
            except SourceUnavailable:
                pass
        checked.append(entry)
    return tuple(checked)
