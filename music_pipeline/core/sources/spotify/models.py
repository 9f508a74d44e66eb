"""Spotify's objects as frozen dataclasses, its failures as errors a user can act on."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...domain.errors import Reason, SourceUnavailable, TrackError

LOGIN_HINT = "run `music-pipeline spotify-login`"
DEFAULT_SCOPE = (
    "user-library-read playlist-read-private playlist-read-collaborative "
    "user-read-currently-playing user-read-playback-state"
)
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"
#: The Web API's page size limit for likes, playlists and playlist items.
MAX_PAGE = 50
BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")


def _default_token_cache() -> Path:
    # One per user, outside the repository and the library, readable by every Dagster process.
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "music-pipeline" / "spotify-token.json"


# --------------------------------------------------------------------------- errors


class NotConfigured(TrackError):
    """The Spotify app credentials are missing or were rejected."""

    reason = Reason.SPOTIFY_NOT_CONFIGURED


class NotLoggedIn(TrackError):
    """No usable Spotify login: never logged in, revoked, or missing permissions."""

    reason = Reason.SPOTIFY_NOT_LOGGED_IN

    def __init__(self, message: str = "Not logged in to Spotify.", *, hint: str | None = LOGIN_HINT) -> None:
        super().__init__(message, hint=hint)


class LoginFailed(TrackError):
    """The interactive login did not complete (declined, timed out, forged or stale answer)."""

    reason = Reason.SPOTIFY_LOGIN_FAILED


class RateLimited(TrackError):
    """Spotify answered 429; ``retry_after`` is how many seconds it asks us to wait."""

    reason = Reason.RATE_LIMITED

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message or f"Spotify is rate limiting us; try again in {retry_after:g} s.")


class AccessDenied(TrackError):
    """Spotify answered 403: the account or app may not read this."""

    reason = Reason.SPOTIFY_FORBIDDEN


class TrackNotFound(SourceUnavailable):
    """Spotify has no such track or playlist (404): removed, or a wrong id."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SpotifyConfig:
    """Everything needed to talk to Spotify. ``api_prefix``/``accounts_url`` exist for tests."""

    client_id: str
    client_secret: str = field(repr=False)  # never in logs or tracebacks
    redirect_uri: str = DEFAULT_REDIRECT_URI
    token_cache: Path = field(default_factory=_default_token_cache)
    scope: str = DEFAULT_SCOPE
    api_prefix: str | None = None
    accounts_url: str | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class SpotifyTrack:
    id: str
    name: str
    artists: tuple[str, ...]
    album: str | None
    isrc: str | None
    duration_s: float
    release_date: str | None
    track_number: int | None
    artwork_url: str | None
    url: str
    genres: tuple[str, ...] = ()  # often empty: the API stopped returning genres for many apps
    added_at: str | None = None  # when it was liked / added to the playlist

    @property
    def key(self) -> str:
        """The catalog key, the same one ``identity`` derives from the track's URL."""
        return f"spotify-{self.id}"


@dataclass(frozen=True)
class SpotifyPlaylist:
    id: str
    name: str
    snapshot_id: str | None  # changes whenever the playlist's contents change
    owner: str | None
    url: str
    total: int


@dataclass(frozen=True)
class Page:
    items: list[SpotifyTrack]
    next_offset: int | None  # None on the last page
    total: int


# --------------------------------------------------------------------------- parsing


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _largest_image(images: Any) -> str | None:
    """The largest image's URL; Spotify lists them largest first but says nothing of order."""
    if not isinstance(images, list):
        return None
    best, best_area = None, -1
    for image in images:
        if not isinstance(image, dict) or not _str(image.get("url")):
            continue
        area = (image.get("width") or 0) * (image.get("height") or 0)
        if area > best_area:
            best, best_area = image["url"], area
    return best


def parse_track(obj: Any, *, added_at: str | None = None) -> SpotifyTrack | None:
    """A track object as the Web API returns it, or None for what is not a Spotify track
    (episodes, legacy episode-as-track objects, local files, nulls)."""
    if not isinstance(obj, dict) or obj.get("type", "track") != "track":
        return None
    if obj.get("is_local") or obj.get("episode") is True:
        return None
    track_id = obj.get("id")
    if not isinstance(track_id, str) or not BASE62_ID.match(track_id):
        return None
    album = obj.get("album") if isinstance(obj.get("album"), dict) else {}
    external_ids = obj.get("external_ids") if isinstance(obj.get("external_ids"), dict) else {}
    artists = tuple(
        name for a in obj.get("artists") or [] if isinstance(a, dict) and (name := _str(a.get("name")))
    )
    genres = obj.get("genres") or album.get("genres") or ()
    duration_ms = obj.get("duration_ms")
    track_number = obj.get("track_number")
    isrc = _str(external_ids.get("isrc"))
    return SpotifyTrack(
        id=track_id,
        name=_str(obj.get("name")) or "",
        artists=artists,
        album=_str(album.get("name")),
        isrc=isrc.upper() if isrc else None,
        duration_s=duration_ms / 1000 if isinstance(duration_ms, int | float) else 0.0,
        release_date=_str(album.get("release_date")),
        track_number=track_number if isinstance(track_number, int) else None,
        artwork_url=_largest_image(album.get("images")),
        # Built from the id rather than external_urls: one canonical spelling for the catalog.
        url=f"https://open.spotify.com/track/{track_id}",
        genres=tuple(g for g in genres if isinstance(g, str) and g),
        added_at=_str(added_at),
    )


def parse_playlist(obj: Any) -> SpotifyPlaylist | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return None
    owner = obj.get("owner") if isinstance(obj.get("owner"), dict) else {}
    # Since 2026 the summary is under "items"; older responses (and extended-quota apps) use "tracks".
    summary = next((s for s in (obj.get("items"), obj.get("tracks")) if isinstance(s, dict)), {})
    total = summary.get("total")
    return SpotifyPlaylist(
        id=obj["id"],
        name=_str(obj.get("name")) or "",
        snapshot_id=_str(obj.get("snapshot_id")),
        owner=_str(owner.get("display_name")) or _str(owner.get("id")),
        url=f"https://open.spotify.com/playlist/{obj['id']}",
        total=total if isinstance(total, int) else 0,
    )
