"""Spotify Web API access: the DJ's likes, playlists and what is playing now.

A thin layer over spotipy that turns its dicts into frozen dataclasses and its failures into
``TrackError``s a user can act on. Why it is more than ``spotipy.Spotify(...)``:

* Dagster sensors and runs must never block on a prompt. spotipy falls back to an interactive
  login (``input()``) when the token cache is missing or lacks a scope; here that raises
  ``NotLoggedIn`` instead, and the one interactive step is ``login()``, run once from the CLI.
* ``login()`` works headless: it prints the URL (open it on any device) and waits on the
  redirect URI's loopback port for the answer, checking ``state`` against forged redirects.
* The token cache is shared by several processes: it is written atomically (temp file +
  rename) with mode 0600 from the start, so a reader never sees half a file and no other
  user can ever read the refresh token.
* spotipy's own retry loop sleeps up to minutes on 429 inside a sensor tick; it is off. A 429
  becomes ``RateLimited(retry_after)`` and the caller decides (a sensor skips the tick).
* A 401 although the token looked valid (revoked or clock skew) gets one forced refresh and
  one retry before giving up with ``NotLoggedIn``.
* Secrets (client secret, tokens, auth codes) are redacted from spotipy's debug logs and never
  put into messages or reprs.

API facts as of 2025/2026 this relies on: audio features are gone, ``genres`` and
``popularity`` are often absent, playlist items live at ``/playlists/{id}/items`` with the
track under ``item`` (formerly ``track``), and most paged endpoints allow at most 50 per page.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import http.server
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import requests
import spotipy
from spotipy.cache_handler import CacheFileHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError

from ..domain.errors import SourceUnavailable, TrackError
from ..domain.identity import spotify_id

logger = logging.getLogger(__name__)

LOGIN_HINT = "run `music-pipeline spotify-login`"
DEFAULT_SCOPE = (
    "user-library-read playlist-read-private playlist-read-collaborative "
    "user-read-currently-playing user-read-playback-state"
)
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"
#: The Web API's page size limit for likes, playlists and playlist items.
MAX_PAGE = 50
_BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _default_token_cache() -> Path:
    # One per user, outside the repository and the library, readable by every Dagster process.
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "music-pipeline" / "spotify-token.json"


# --------------------------------------------------------------------------- errors


class NotConfigured(TrackError):
    """The Spotify app credentials are missing or were rejected."""

    reason = "spotify-not-configured"


class NotLoggedIn(TrackError):
    """No usable Spotify login: never logged in, revoked, or missing permissions."""

    reason = "spotify-not-logged-in"

    def __init__(self, message: str = "Not logged in to Spotify.", *, hint: str | None = LOGIN_HINT) -> None:
        super().__init__(message, hint=hint)


class LoginFailed(TrackError):
    """The interactive login did not complete (declined, timed out, forged or stale answer)."""

    reason = "spotify-login-failed"


class RateLimited(TrackError):
    """Spotify answered 429; ``retry_after`` is how many seconds it asks us to wait."""

    reason = "rate-limited"

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message or f"Spotify is rate limiting us; try again in {retry_after:g} s.")


class AccessDenied(TrackError):
    """Spotify answered 403: the account or app may not read this."""

    reason = "spotify-forbidden"


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
    if not isinstance(track_id, str) or not _BASE62_ID.match(track_id):
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


# --------------------------------------------------------------------------- secrets


_SECRET_PATTERNS = [
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
    (re.compile(r"(['\"](?:access_token|refresh_token|code|client_secret)['\"]\s*:\s*)(['\"])[^'\"]*\2"),
     r"\1\2***\2"),
    (re.compile(r"\b(access_token|refresh_token|code|client_secret)=[^&\s'\"]+"), r"\1=***"),
]


def redact(text: str) -> str:
    """``text`` with bearer/basic credentials, tokens and auth codes replaced by ***."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class _RedactSecrets(logging.Filter):
    """spotipy logs request headers and token payloads at DEBUG; strip the secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


for _name in ("spotipy.client", "spotipy.oauth2", "spotipy.cache_handler"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactSecrets) for f in _logger.filters):
        _logger.addFilter(_RedactSecrets())


# --------------------------------------------------------------------------- token cache


def save_token(path: Path, token_info: dict) -> None:
    """Write the token cache atomically with mode 0600 (never briefly world-readable)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(token_info, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise TrackError(
            f"Could not save the Spotify login to {path}: {err.strerror or err}.",
            hint="check that the folder exists and is writable, then log in again",
        ) from None


def load_token(path: Path) -> dict | None:
    """The cached token, or None when there is none or it is unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class _TokenCache(CacheFileHandler):
    """spotipy's file cache, writing through ``save_token`` (atomic, 0600)."""

    def __init__(self, path: Path) -> None:
        super().__init__(cache_path=str(path))
        self.path = Path(path)

    def save_token_to_cache(self, token_info: dict) -> None:
        save_token(self.path, token_info)


class _OAuth(spotipy.SpotifyOAuth):
    """SpotifyOAuth that never prompts: outside ``login()`` an interactive step is an error."""

    def get_auth_response(self, open_browser: bool | None = None) -> str:
        raise NotLoggedIn("The saved Spotify login is missing or does not cover the needed permissions.")


def _check_config(config: SpotifyConfig) -> None:
    # spotipy would silently fall back to SPOTIPY_* environment variables; be explicit instead.
    if not config.client_id or not config.client_secret:
        raise NotConfigured(
            "The Spotify client id or secret is not set.",
            hint="create an app at https://developer.spotify.com/dashboard and set "
                 "SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET",
        )


def _auth_manager(config: SpotifyConfig, session: requests.Session | None = None) -> _OAuth:
    _check_config(config)
    auth = _OAuth(
        client_id=config.client_id,
        client_secret=config.client_secret,
        redirect_uri=config.redirect_uri,
        scope=config.scope,
        cache_handler=_TokenCache(config.token_cache),
        requests_session=session or requests.Session(),
        requests_timeout=config.timeout_s,
        open_browser=False,
    )
    if config.accounts_url:
        base = config.accounts_url.rstrip("/")
        auth.OAUTH_AUTHORIZE_URL = f"{base}/authorize"
        auth.OAUTH_TOKEN_URL = f"{base}/api/token"
    return auth


def _oauth_error(err: SpotifyOauthError, during: str) -> TrackError:
    """A token endpoint failure in words. spotipy hides the HTTP status; it is on the context."""
    http_error = err.__context__
    status = getattr(getattr(http_error, "response", None), "status_code", None)
    if status == 429:
        retry = getattr(http_error.response, "headers", {}).get("Retry-After")  # type: ignore[union-attr]
        return RateLimited(_seconds(retry))
    if isinstance(status, int) and status >= 500:
        return SourceUnavailable(f"Spotify's login service failed ({status}) while {during}.",
                                 hint="try again later")
    if err.error == "invalid_client":
        return NotConfigured("Spotify rejected the client id or secret.",
                             hint="check SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET against your app "
                                  "in the Spotify developer dashboard")
    if err.error == "invalid_grant":
        return NotLoggedIn("The saved Spotify login was revoked or has expired.")
    description = err.error_description or err.error or "unknown error"
    return NotLoggedIn(f"Spotify refused the login while {during}: {redact(str(description))}.")


def _seconds(value: Any, default: float = 5.0) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds >= 0 else default


# --------------------------------------------------------------------------- login


def authorize_url(config: SpotifyConfig, state: str | None = None) -> str:
    """The page where the user grants access; ``state`` (random when omitted) comes back
    with the redirect and must be checked by whoever receives it."""
    return _auth_manager(config).get_authorize_url(state=state or secrets.token_urlsafe(16))


def _loopback(redirect_uri: str) -> tuple[str, int, str]:
    parts = urlsplit(redirect_uri)
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or host not in _LOOPBACK_HOSTS or not parts.port:
        raise NotConfigured(
            f"The Spotify redirect URI {redirect_uri} is not a loopback address with a port.",
            hint=f"use {DEFAULT_REDIRECT_URI} here and in the app's settings in the Spotify dashboard",
        )
    return ("127.0.0.1" if host == "localhost" else host), parts.port, parts.path or "/"


class _CallbackServer(http.server.HTTPServer):
    """Receives the one redirect from Spotify; ``result`` holds its query parameters."""

    def __init__(self, host: str, port: int, path: str, state: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.path = path
        self.state = state
        self.result: dict[str, str] | None = None
        super().__init__((host, port), _CallbackHandler)


def _same_state(received: str | None, expected: str) -> bool:
    return hmac.compare_digest((received or "").encode(), expected.encode())


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 10  # a stalled browser connection must not hang the login

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != self.server.path:  # favicon.ico and the like
            self._reply(404, "Not found.")
            return
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.server.result = params
        if not _same_state(params.get("state"), self.server.state):
            self._reply(400, "This answer does not belong to the login now running. See the terminal.")
        elif "code" in params:
            self._reply(200, "Spotify answered. You can close this tab and return to the terminal.")
        else:
            self._reply(400, "Spotify did not grant access. See the terminal for details.")

    def _reply(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>music-pipeline</title><p>{text}</p>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the URL carries the auth code
        pass


def login(config: SpotifyConfig, *, timeout_s: float = 300, announce: Callable[[str], None] = print) -> None:
    """Headless authorisation-code flow: print the URL to open (on any device), listen once on
    the redirect URI's loopback host/port for ``?code=...&state=...`` (state checked), exchange
    the code and store the token in ``config.token_cache``. Needs no browser on this machine."""
    auth = _auth_manager(config)
    host, port, path = _loopback(config.redirect_uri)
    state = secrets.token_urlsafe(24)
    try:  # listen before printing the URL, so a fast redirect cannot arrive before us
        server = _CallbackServer(host, port, path, state)
    except OSError as err:
        busy = err.errno == errno.EADDRINUSE
        raise LoginFailed(
            f"Cannot listen on {host}:{port} for Spotify's answer: "
            f"{'the port is in use' if busy else err.strerror or err}.",
            hint="stop what uses the port, or pick another redirect URI here and in the Spotify dashboard",
        ) from None
    try:
        announce(
            "Open this URL in a browser (on any device), log in to Spotify and allow access:\n\n"
            f"    {auth.get_authorize_url(state=state)}\n\n"
            f"Waiting up to {timeout_s:g} s for Spotify to redirect to {config.redirect_uri} ...\n"
            "Browser on another device? The redirect to 127.0.0.1 then fails there: copy the address "
            f"it ended on and run  curl '<that address>'  here, or first  ssh -L {port}:127.0.0.1:{port} "
            "<this machine>  from that device."
        )
        deadline = time.monotonic() + timeout_s
        server.timeout = 0.2
        while server.result is None and time.monotonic() < deadline:
            server.handle_request()
        answer = server.result
    finally:
        server.server_close()

    if answer is None:
        raise LoginFailed(f"Spotify's answer did not arrive within {timeout_s:g} s.",
                          hint="run the login again and open the new URL")
    if not _same_state(answer.get("state"), state):
        raise LoginFailed("The answer did not belong to this login attempt (state mismatch).",
                          hint="run the login again and use only the URL it prints")
    if "error" in answer:
        declined = answer["error"] == "access_denied"
        raise LoginFailed("Access was declined on the Spotify page." if declined
                          else f"Spotify did not grant access: {redact(answer['error'])}.",
                          hint="run the login again and choose Agree")
    if not answer.get("code"):
        raise LoginFailed("Spotify's answer carried no authorisation code.", hint="run the login again")

    try:
        auth.get_access_token(code=answer["code"], as_dict=False, check_cache=False)
    except SpotifyOauthError as err:
        failure = _oauth_error(err, "exchanging the authorisation code")
        if isinstance(failure, NotLoggedIn):  # expired or already used code, wrong redirect URI
            failure = LoginFailed(failure.message, hint="run the login again")
        raise failure from None
    except requests.RequestException as err:
        raise SourceUnavailable(f"Could not reach Spotify to finish the login ({type(err).__name__}).",
                                hint="check the network and run the login again") from None
    token = load_token(config.token_cache)
    if not token or not token.get("refresh_token"):
        raise LoginFailed("Spotify sent no refresh token; the login would not last.",
                          hint="run the login again")
    logger.info("Spotify login saved to %s", config.token_cache)


# --------------------------------------------------------------------------- client

T = TypeVar("T")


class SpotifyClient:
    """Read-only access to the logged-in user's Spotify library (see the module docstring)."""

    def __init__(self, config: SpotifyConfig) -> None:
        self.config = config
        session = requests.Session()  # a plain session: no urllib3 retries, no sleeping on 429
        self._auth = _auth_manager(config, session)
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
        tid = track_id.strip() if _BASE62_ID.match(track_id.strip()) else spotify_id(track_id)
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
            raise _oauth_error(err, f"refreshing the login for {what}") from None
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
        return RateLimited(_seconds((err.headers or {}).get("Retry-After")))
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
