"""Read-only access to the logged-in user's Spotify library."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import requests
import spotipy
from spotipy.exceptions import SpotifyException, SpotifyOauthError

from ...domain.errors import SourceUnavailable, TrackError
from ...domain.identity import spotify_id
from .auth import auth_manager, load_token, oauth_error, redact, retry_after_seconds
from .models import (
    BASE62_ID,
    LOGIN_HINT,
    MAX_PAGE,
    AccessDenied,
    NotLoggedIn,
    Page,
    RateLimited,
    SpotifyConfig,
    SpotifyPlaylist,
    SpotifyTrack,
    TrackNotFound,
    parse_playlist,
    parse_track,
)

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- client

def _next_offset(page: dict, offset: int) -> int | None:
    """The offset of the next page, read from its ``next`` URL (absolute, with ?offset=)."""
    nxt = page.get("next")
    if not nxt:
        return None
    values = parse_qs(urlsplit(nxt).query).get("offset")
    with contextlib.suppress(ValueError, TypeError):
        return int(values[0]) if values else offset + len(page.get("items") or [])
    return offset + len(page.get("items") or [])


def _page_dict(result: Any, what: str) -> dict:
    if not isinstance(result, dict):
        raise SourceUnavailable(f"Spotify sent an unreadable answer for {what}.", hint="try again later")
    return result



T = TypeVar("T")


class SpotifyClient:
    """Read-only access to the logged-in user's Spotify library (see the module docstring)."""

    def __init__(self, config: SpotifyConfig) -> None:
        self.config = config
        session = requests.Session()  # a plain session: no urllib3 retries, no sleeping on 429
        self._auth = auth_manager(config, session)
        self._sp = spotipy.Spotify(
            auth_manager=self._auth,
            requests_session=session,
            requests_timeout=config.timeout_s,
            retries=0,
            status_retries=0,
        )
        if config.api_prefix:
            self._sp.prefix = config.api_prefix

    def __repr__(self) -> str:
        return f"SpotifyClient(client_id={self.config.client_id!r}, token_cache={str(self.config.token_cache)!r})"

    # ---- public API

    def liked(self, offset: int = 0, limit: int = MAX_PAGE) -> Page:
        """One page of liked songs, newest first (GET /me/tracks)."""
        limit = max(1, min(limit, MAX_PAGE))
        page = _page_dict(self._call("your liked songs", self._sp.current_user_saved_tracks,
                                     limit=limit, offset=offset), "your liked songs")
        items = [
            t for entry in page.get("items") or [] if isinstance(entry, dict)
            if (t := parse_track(entry.get("track"), added_at=entry.get("added_at")))
        ]
        return Page(items, _next_offset(page, offset), _total(page))

    def playlists(self) -> list[SpotifyPlaylist]:
        """All the user's playlists, own and followed (GET /me/playlists, every page)."""
        what = "your playlists"
        page = _page_dict(self._call(what, self._sp.current_user_playlists, limit=MAX_PAGE), what)
        found: list[SpotifyPlaylist] = []
        seen: set[str] = set()
        while True:
            found.extend(p for obj in page.get("items") or [] if (p := parse_playlist(obj)))
            nxt = page.get("next")
            if not nxt or nxt in seen:  # a repeated next URL would loop forever
                return found
            seen.add(nxt)
            page = _page_dict(self._call(what, self._sp.next, page), what)

    def playlist_items(self, playlist_id: str, offset: int = 0, limit: int = MAX_PAGE) -> Page:
        """One page of a playlist's tracks (GET /playlists/{id}/items). Episodes, local files and
        removed tracks are skipped, so a page may hold fewer than ``limit`` items; page with
        ``next_offset``, not by counting."""
        limit = max(1, min(limit, MAX_PAGE))
        what = f"playlist {playlist_id}"
        page = _page_dict(self._call(what, self._sp.playlist_items, playlist_id, limit=limit,
                                     offset=offset, additional_types=("track", "episode")), what)
        items = []
        for entry in page.get("items") or []:
            if not isinstance(entry, dict) or entry.get("is_local"):
                continue
            obj = entry.get("item") if entry.get("item") is not None else entry.get("track")
            if track := parse_track(obj, added_at=entry.get("added_at")):
                items.append(track)
        return Page(items, _next_offset(page, offset), _total(page))

    def now_playing(self) -> SpotifyTrack | None:
        """The track playing right now; None when idle, paused, or playing a podcast or ad."""
        result = self._call("what is playing now", self._sp.current_user_playing_track)
        if not isinstance(result, dict):  # 204 No Content: nothing is playing
            return None
        if result.get("currently_playing_type", "track") != "track" or result.get("is_playing") is False:
            return None
        return parse_track(result.get("item"))

    def track(self, track_id: str) -> SpotifyTrack:
        """One track by id, ``spotify:track:`` URI or open.spotify.com URL (GET /tracks/{id})."""
        tid = track_id.strip() if BASE62_ID.match(track_id.strip()) else spotify_id(track_id)
        if not tid:
            raise TrackError(f"{track_id!r} is not a Spotify track id or link.",
                             hint="use an id like 4cOdK2wGLETKBW3PvgPWqT or an open.spotify.com/track/ URL")
        what = f"track {tid}"
        track = parse_track(_page_dict(self._call(what, self._sp.track, tid), what))
        if track is None:
            raise SourceUnavailable(f"Spotify's answer for {what} is not a playable track.")
        return track

    # ---- plumbing

    def _require_login(self) -> None:
        """Fail fast, without network, when there is no usable login; refresh a token spotipy
        could not judge (no expiry recorded)."""
        token = load_token(self.config.token_cache)
        if not token or not token.get("refresh_token"):
            raise NotLoggedIn(f"Not logged in to Spotify (no saved login in {self.config.token_cache}).")
        missing = set(self.config.scope.split()) - set(str(token.get("scope") or "").split())
        if missing:
            raise NotLoggedIn("The saved Spotify login lacks permissions this version needs: "
                              f"{', '.join(sorted(missing))}.")
        if not token.get("access_token") or not isinstance(token.get("expires_at"), int | float):
            self._refresh(token)

    def _refresh(self, token: dict | None = None) -> None:
        token = token or load_token(self.config.token_cache)
        if not token or not token.get("refresh_token"):
            raise NotLoggedIn(f"Not logged in to Spotify (no saved login in {self.config.token_cache}).")
        self._auth.refresh_access_token(token["refresh_token"])

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with failures in words; a 401 gets one refresh and one retry."""
        try:
            self._require_login()
            try:
                return fn(*args, **kwargs)
            except SpotifyException as err:
                if err.http_status != 401:
                    raise
            logger.info("Spotify rejected the access token for %s; refreshing it once", what)
            self._refresh()
            try:
                return fn(*args, **kwargs)
            except SpotifyException as err:
                if err.http_status == 401:
                    raise NotLoggedIn("Spotify rejected the saved login even after refreshing it.") from None
                raise
        except SpotifyException as err:
            raise _api_error(err, what) from None
        except SpotifyOauthError as err:
            raise oauth_error(err, f"refreshing the login for {what}") from None
        except requests.Timeout:
            raise SourceUnavailable(f"Spotify did not answer within {self.config.timeout_s:g} s ({what}).",
                                    hint="check the network; the next run tries again") from None
        except requests.RequestException as err:
            raise SourceUnavailable(f"Could not reach Spotify ({what}): {type(err).__name__}.",
                                    hint="check the network; the next run tries again") from None


def _total(page: dict) -> int:
    total = page.get("total")
    return total if isinstance(total, int) else len(page.get("items") or [])


def _api_error(err: SpotifyException, what: str) -> TrackError:
    """A Web API error status in words (401s that survived the retry are handled by the caller)."""
    status = err.http_status
    # spotipy's msg is "<url>:\n <message>"; the URL adds nothing for a user.
    detail = redact(str(err.msg).rpartition(":\n ")[2].strip() or "no details")
    if status == 429:
        return RateLimited(retry_after_seconds((err.headers or {}).get("Retry-After")))
    if status == 401:
        return NotLoggedIn()
    if status == 403:
        return AccessDenied(
            f"Spotify refused access to {what} ({detail}).",
            hint="in development mode your account must be listed under User Management in the "
                 f"Spotify dashboard; if permissions changed, {LOGIN_HINT}",
        )
    if status == 404:
        return TrackNotFound(f"Spotify has no {what} (removed, private or a wrong id).")
    if status >= 500:
        return SourceUnavailable(f"Spotify failed with {status} for {what}.", hint="try again later")
    return TrackError(f"Spotify rejected the request for {what} ({status}: {detail}).")
