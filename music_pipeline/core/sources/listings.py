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
from ..domain.identity import _PLAYLIST_EXTRACTOR, canonical_url, redact_url, safe_id, spotify_id, youtube_id
from .download import DownloadOptions, _QuietLogger, explain_download_error

__all__ = [
    "DrmProtected",
    "Entry",
    "GeoBlocked",
    "Listing",
    "LoginRequired",
    "PrivateSource",
    "RemovedSource",
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


# -- yt-dlp ------------------------------------------------------------------------------


def _params(options: DownloadOptions, log: Callable[[str], None] | None, **extra: object) -> dict:
    params: dict = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "skip_download": True,
        "cachedir": False,
        "socket_timeout": options.socket_timeout,
        "retries": options.retries,
        "extractor_retries": options.retries,
        "logger": _QuietLogger(log),
        **extra,
    }
    if options.cookies_file:
        params["cookiefile"] = options.cookies_file
    if options.proxy:
        params["proxy"] = options.proxy
    return params


def list_collection(url: str, options: DownloadOptions | None = None,
                    log: Callable[[str], None] | None = None, first: int | None = None) -> Listing:
    """The tracks of a likes page, set or playlist, in order, without visiting any track;
    only the ``first`` ones when given (likes are newest first: enough to see what is new)."""
    import yt_dlp

    if spotify_id(url) or "open.spotify.com" in url:
        raise UnsupportedSource(f"{redact_url(url)} is a Spotify collection; yt-dlp cannot list it.",
                                hint="Spotify playlists are read by the Spotify sync.")
    options = options or DownloadOptions()
    params = _params(options, log, extract_flat="in_playlist", noplaylist=False,
                     **({"playlistend": first} if first else {}))
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            info = ydl.extract_info(url, download=False)
    except yt_dlp.utils.DownloadError as err:
        raise collection_error(url, err) from err
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
        if raw.get("_type") == "playlist" or not ie_key or _PLAYLIST_EXTRACTOR.search(ie_key):
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


# -- errors ------------------------------------------------------------------------------

_HTTP = re.compile(r"HTTP Error (\d{3})", re.IGNORECASE)
_REPORT_TAIL = re.compile(r";?\s*please report this issue on.*$", re.S | re.I)


def _error_text(url: str, err: Exception) -> str:
    text = re.sub(r"^ERROR:\s*", "", str(err)).strip()
    text = _REPORT_TAIL.sub("", text).replace(url, redact_url(url))
    return text.splitlines()[0] if text else type(err).__name__


def _http_status(original: BaseException | None, text: str) -> int | None:
    from yt_dlp.networking.exceptions import HTTPError

    if isinstance(original, HTTPError):  # the generic extractor raises it unwrapped
        return original.status
    cause = getattr(original, "cause", None)
    if isinstance(cause, HTTPError):
        return cause.status
    match = _HTTP.search(text)
    return int(match.group(1)) if match else None


def collection_error(url: str, err: Exception) -> TrackError:
    """A DownloadError on a whole collection as an error saying whether retrying helps."""
    import yt_dlp
    from yt_dlp.networking.exceptions import HTTPError, TransportError

    original = err.exc_info[1] if getattr(err, "exc_info", None) else None
    text = _error_text(url, err)
    lowered = text.lower()
    shown = redact_url(url)
    status = _http_status(original, text)
    cause = getattr(original, "cause", None)
    if isinstance(original, yt_dlp.utils.UnsupportedError) or "unsupported url" in lowered:
        return UnsupportedSource(f"No extractor can list {shown}.",
                                 hint="Use a SoundCloud likes/set URL or a YouTube playlist URL.")
    if status in (404, 410) or "does not exist" in lowered or "not found" in lowered:
        return UnsupportedSource(f"{shown} was not found: the user, set or playlist does not exist "
                                 f"(or was deleted). ({text})",
                                 hint="Check the user name or playlist URL in the settings.")
    if status in (401, 403) or "private" in lowered or "sign in" in lowered or "log in" in lowered:
        return UnsupportedSource(f"{shown} is private or needs a login. ({text})",
                                 hint="Make it public, or give the downloader a cookies file of an "
                                      "account that can see it.")
    if isinstance(original, yt_dlp.utils.GeoRestrictedError):
        return UnsupportedSource(f"{shown} is geo-blocked where this machine is. ({text})",
                                 hint="Use a proxy in an allowed country (downloader proxy setting).")
    if (status is not None and (status == 429 or status >= 500)) or \
            (isinstance(cause, TransportError) and not isinstance(cause, HTTPError)) or \
            any(word in lowered for word in ("timed out", "connection", "resolve", "network",
                                             "unable to download", "temporary failure")):
        return SourceUnavailable(f"{shown} could not be listed right now: {text}",
                                 hint="Retrying at the next sync.")
    return SourceUnavailable(f"Listing {shown} failed: {text}", hint="Retrying at the next sync.")


def entry_error(url: str, err: Exception) -> TrackError:
    """A DownloadError on one track as the most specific error: DRM and geo get their own
    reason so the sync can stop retrying them; the wording is explain_download_error's."""
    import yt_dlp

    base = explain_download_error(url, err)
    original = err.exc_info[1] if getattr(err, "exc_info", None) else None
    lowered = _error_text(url, err).lower()
    status = _http_status(original, lowered)
    kind: type[TrackError] | None = None
    if isinstance(original, yt_dlp.utils.GeoRestrictedError) or "geo restriction" in lowered \
            or "not available in your country" in lowered or "geo-restrict" in lowered:
        kind = GeoBlocked
    elif "drm" in lowered:
        kind = DrmProtected
    elif "private" in lowered:
        kind = PrivateSource
    elif "sign in" in lowered or "members" in lowered or "premium" in lowered or "log in" in lowered:
        kind = LoginRequired
    elif status in (404, 410) or any(word in lowered for word in (
            "removed", "deleted", "terminated", "no longer available", "video unavailable")):
        kind = RemovedSource
    return kind(base.message, hint=base.hint) if kind else base


def probe_entry(url: str, options: DownloadOptions | None = None,
                log: Callable[[str], None] | None = None) -> None:
    """Fully extract ONE track (formats included, nothing downloaded) to learn whether it
    can be downloaded here. Returns quietly if so; raises DrmProtected ("drm"),
    GeoBlocked ("geo"), PrivateSource, RemovedSource, LoginRequired or SourceUnavailable."""
    import yt_dlp

    options = options or DownloadOptions()
    params = _params(options, log, format=options.format, noplaylist=True, playlist_items="1")
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            info = ydl.extract_info(url, download=False)
    except yt_dlp.utils.DownloadError as err:
        raise entry_error(url, err) from err
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
