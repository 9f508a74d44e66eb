"""A stateful fake of the Spotify Web API and Accounts service on 127.0.0.1.

Real spotipy talks to it over HTTP exactly as to api.spotify.com / accounts.spotify.com:
Bearer tokens are checked, paging parameters validated (limit > 50 is a 400 with the real
error shape), ``next`` links are absolute URLs back to this server, the token endpoint checks
client credentials, codes and redirect URIs. Tests change its state directly::

    with FakeSpotify() as fake:
        fake.add_like(make_track(name="Strobe", artists=["deadmau5"]))
        fake.rate_limit_next(1, retry_after=7)
        client = SpotifyClient(fake.config(tmp_path / "token.json"))
        fake.login_cache(tmp_path / "token.json")   # as if `spotify-login` had run

Shapes follow the 2025/2026 API: no popularity/available_markets, no genres on tracks,
playlist summaries under ``items`` (``tracks`` null), playlist entries under ``item``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from .base import FakeServer, JsonHandler

DEFAULT_SCOPE = (
    "user-library-read playlist-read-private playlist-read-collaborative "
    "user-read-currently-playing user-read-playback-state"
)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SCOPE_FOR = {  # endpoint -> scope it needs, as the real API enforces
    "me/tracks": "user-library-read",
    "me/player/currently-playing": "user-read-currently-playing",
}


# --------------------------------------------------------------------------- builders


def spotify_id(seed: str | None = None) -> str:
    """A 22-character base62 id: random, or derived from ``seed`` (stable across runs)."""
    raw = hashlib.sha256(seed.encode()).digest() if seed is not None else secrets.token_bytes(32)
    n = int.from_bytes(raw, "big")
    chars = []
    for _ in range(22):
        n, r = divmod(n, 62)
        chars.append(_BASE62[r])
    return "".join(chars)


def _images(kind: str, item_id: str) -> list[dict]:
    # Real albums list 640, 300 and 64 px, largest first.
    return [{"url": f"https://i.scdn.co/image/{kind}{size}{item_id}", "width": size, "height": size}
            for size in (640, 300, 64)]


def make_track(
    id: str | None = None,
    name: str = "Untitled",
    artists: list[str] | tuple[str, ...] = ("Unknown Artist",),
    isrc: str | None = None,
    duration_ms: int = 210_000,
    *,
    album: str = "Some Album",
    release_date: str = "2021-06-04",
    track_number: int = 1,
    images: list[dict] | None = None,
    genres: list[str] | None = None,
) -> dict:
    """A full track object shaped like GET /tracks/{id} returns it (2025+: no popularity,
    no available_markets, no genres unless given)."""
    track_id = id or spotify_id(f"track:{name}:{','.join(artists)}")
    album_id = spotify_id(f"album:{album}")
    artist_objs = [
        {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{(aid := spotify_id('artist:' + a))}"},
            "href": f"https://api.spotify.com/v1/artists/{aid}",
            "id": aid,
            "name": a,
            "type": "artist",
            "uri": f"spotify:artist:{aid}",
        }
        for a in artists
    ]
    track: dict[str, Any] = {
        "album": {
            "album_type": "album",
            "artists": artist_objs[:1],
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
            "href": f"https://api.spotify.com/v1/albums/{album_id}",
            "id": album_id,
            "images": _images("ab67616d0000b273", album_id) if images is None else images,
            "name": album,
            "release_date": release_date,
            "release_date_precision": {4: "year", 7: "month"}.get(len(release_date), "day"),
            "total_tracks": max(track_number, 10),
            "type": "album",
            "uri": f"spotify:album:{album_id}",
        },
        "artists": artist_objs,
        "disc_number": 1,
        "duration_ms": duration_ms,
        "explicit": False,
        "external_ids": {"isrc": isrc} if isrc else {},
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
        "href": f"https://api.spotify.com/v1/tracks/{track_id}",
        "id": track_id,
        "is_local": False,
        "name": name,
        "track_number": track_number,
        "type": "track",
        "uri": f"spotify:track:{track_id}",
    }
    if genres is not None:
        track["genres"] = genres
    return track


def make_episode(name: str = "Some Podcast Episode") -> dict:
    """A podcast episode object, as found in playlists and in currently-playing."""
    eid = spotify_id(f"episode:{name}")
    return {
        "type": "episode",
        "id": eid,
        "name": name,
        "duration_ms": 3_600_000,
        "uri": f"spotify:episode:{eid}",
        "external_urls": {"spotify": f"https://open.spotify.com/episode/{eid}"},
        "images": _images("ab6765630000ba8a", eid),
        "release_date": "2024-01-01",
        "show": {"name": "Some Show", "id": spotify_id("show")},
    }


def make_local_track(name: str = "my-edit.mp3", artist: str = "Me") -> dict:
    """A local file in a playlist: no id, ``is_local`` true, ``spotify:local:`` URI."""
    return {
        "album": {"name": "", "images": [], "id": None, "type": "album"},
        "artists": [{"name": artist, "id": None, "type": "artist"}],
        "duration_ms": 180_000,
        "external_ids": {},
        "external_urls": {},
        "href": None,
        "id": None,
        "is_local": True,
        "name": name,
        "track_number": 0,
        "type": "track",
        "uri": f"spotify:local:{artist}::{name}:180",
    }


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- server


@dataclass
class Request:
    """One request the fake received (secrets are not recorded)."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)  # token endpoint: grant_type etc., no secrets


@dataclass
class _Token:
    scope: str
    refresh_token: str
    valid: bool = True


class FakeSpotify(FakeServer):
    """The Web API (``/v1``) and Accounts service (``/authorize``, ``/api/token``) in one server."""

    def __init__(self, client_id: str = "fake-client-id", client_secret: str = "fake-client-secret") -> None:
        super().__init__(_Handler)
        self.client_id = client_id
        self.client_secret = client_secret
        # --- library state, set freely from tests
        self.likes: list[dict] = []  # saved-track objects {"added_at", "track"}, newest first
        self.playlists: dict[str, dict] = {}  # id -> {"name", "snapshot_id", "items": [...], "owner"?}
        self.tracks: dict[str, dict] = {}  # extra catalog for GET /tracks/{id}
        self.now_playing: dict | None = None  # a track (or episode) dict; None -> 204
        self.is_playing = True
        self.playlist_item_field = "item"  # "item" (2026 API) or "track" (legacy shape)
        # --- behaviour switches
        self.deny_next_authorization = False
        # --- observations (and ``requests``: every Request received)
        self.token_grants: list[str] = []  # grant_type of every successful token request
        self.issued_access_tokens: list[str] = []
        self.issued_refresh_tokens: list[str] = []
        # --- internals
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> scope
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (redirect_uri, scope)
        self._rate_limits: list[float] = []
        self._failures: list[int] = []
        self._unauthorized = 0
        self._clock = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)

        self.api_prefix = f"{self.url}/v1/"
        self.accounts_url = self.url

    # ---- state helpers

    def add_like(self, track: dict, added_at: str | None = None) -> dict:
        """Like ``track`` now: it goes to the front (the API lists newest first)."""
        if added_at is None:
            self._clock += timedelta(minutes=1)
            added_at = _iso(self._clock)
        entry = {"added_at": added_at, "track": track}
        self.likes.insert(0, entry)
        return entry

    def add_playlist(self, name: str, items: list[dict | None], *, id: str | None = None,
                     owner: str = "dj") -> str:
        pid = id or spotify_id(f"playlist:{name}")
        self.playlists[pid] = {"name": name, "snapshot_id": spotify_id(f"snap:{pid}:{len(items)}"),
                               "items": list(items), "owner": owner}
        return pid

    def rate_limit_next(self, n: int, retry_after: float) -> None:
        """The next ``n`` Web API calls get 429 with ``Retry-After: retry_after``."""
        with self._lock:
            self._rate_limits.extend([retry_after] * n)

    def fail_next(self, n: int, status: int = 503) -> None:
        """The next ``n`` Web API calls fail with ``status`` (a 5xx outage)."""
        with self._lock:
            self._failures.extend([status] * n)

    def unauthorized_next(self, n: int) -> None:
        """The next ``n`` Web API calls get 401 although their token is valid (revoked upstream)."""
        with self._lock:
            self._unauthorized += n

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (refresh tokens keep working)."""
        with self._lock:
            for token in self._access.values():
                token.valid = False

    def revoke_refresh_tokens(self) -> None:
        """The user removed the app's access: refresh tokens get ``invalid_grant``."""
        with self._lock:
            self._refresh.clear()
            for token in self._access.values():
                token.valid = False

    def issue_tokens(self, scope: str = DEFAULT_SCOPE) -> dict:
        """A fresh token response, as from ``POST /api/token`` (authorization_code grant)."""
        with self._lock:
            refresh = "AQ" + secrets.token_urlsafe(48)
            self._refresh[refresh] = scope
            self.issued_refresh_tokens.append(refresh)
            return {**self._new_access(scope, refresh), "refresh_token": refresh}

    def login_cache(self, path: Path, scope: str = DEFAULT_SCOPE) -> dict:
        """Write a token cache as spotipy stores it after a login; returns its content."""
        info = self.issue_tokens(scope)
        info["expires_at"] = int(time.time()) + info["expires_in"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info))
        path.chmod(0o600)
        return info

    def config(self, token_cache: Path, **overrides: Any):
        """A SpotifyConfig pointed at this fake."""
        from music_pipeline.core.sources.spotify.models import SpotifyConfig

        settings: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "token_cache": Path(token_cache),
            "api_prefix": self.api_prefix,
            "accounts_url": self.accounts_url,
            "timeout_s": 5.0,
            **overrides,
        }
        return SpotifyConfig(**settings)

    def api_calls(self, path_prefix: str = "/v1/") -> list[Request]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    # ---- internals used by the handler

    def _new_access(self, scope: str, refresh: str) -> dict:
        access = "BQ" + secrets.token_urlsafe(64)
        self._access[access] = _Token(scope=scope, refresh_token=refresh)
        self.issued_access_tokens.append(access)
        return {"access_token": access, "token_type": "Bearer", "expires_in": 3600, "scope": scope}

    def _find_track(self, track_id: str) -> dict | None:
        if track_id in self.tracks:
            return self.tracks[track_id]
        candidates = [e.get("track") for e in self.likes]
        candidates += [t for p in self.playlists.values() for t in p.get("items", [])]
        candidates.append(self.now_playing)
        return next((t for t in candidates if isinstance(t, dict) and t.get("id") == track_id
                     and t.get("type") == "track"), None)


class _Handler(JsonHandler):
    owner: FakeSpotify

    # ---- plumbing

    def _api_error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": {"status": status, "message": message}}, headers)

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # ---- accounts service

    def do_GET(self) -> None:
        path, query = self._split()
        fake = self.owner
        fake.record(Request("GET", path, query))
        if path == "/authorize":
            self._authorize(query)
        elif path.startswith("/v1/"):
            self._api(path[len("/v1/"):], query)
        else:
            self._api_error(404, "Service not found")

    def do_POST(self) -> None:
        path, _ = self._split()
        form = {k: v[-1] for k, v in parse_qs(self._body().decode()).items()}
        fake = self.owner
        safe = {k: v for k, v in form.items() if k in ("grant_type", "redirect_uri", "scope")}
        fake.record(Request("POST", path, {}, safe))
        if path == "/api/token":
            self._token(form)
        else:
            self._api_error(405, "Method not allowed")

    def _authorize(self, query: dict[str, str]) -> None:
        fake = self.owner
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != fake.client_id:
            self._page(400, "INVALID_CLIENT: Invalid client")
            return
        if not redirect_uri.startswith(("http://127.0.0.1:", "http://[::1]:", "https://")):
            self._page(400, "INVALID_CLIENT: Insecure redirect URI")
            return
        if query.get("response_type") != "code":
            self._page(400, "unsupported_response_type")
            return
        params: dict[str, str] = {}
        with fake._lock:
            if fake.deny_next_authorization:
                fake.deny_next_authorization = False
                params["error"] = "access_denied"
            else:
                code = "AQ" + secrets.token_urlsafe(96)
                fake._codes[code] = (redirect_uri, query.get("scope", ""))
                params["code"] = code
        if "state" in query:
            params["state"] = query["state"]
        self.send_response(302)
        self.send_header("Location", f"{redirect_uri}?{urlencode(params)}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _page(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _client_ok(self, form: dict[str, str]) -> bool:
        fake = self.owner
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        return cid == fake.client_id and secret == fake.client_secret

    def _token(self, form: dict[str, str]) -> None:
        fake = self.owner

        def oauth_error(error: str, description: str, status: int = 400) -> None:
            self._json(status, {"error": error, "error_description": description})

        if not self._client_ok(form):
            oauth_error("invalid_client", "Invalid client", 401 if "Authorization" in self.headers else 400)
            return
        grant = form.get("grant_type")
        with fake._lock:
            body, error = self._grant(grant, form)
            if body is not None:
                fake.token_grants.append(str(grant))
        if error:
            oauth_error(*error)
        else:
            self._json(200, body)

    def _grant(self, grant: str | None, form: dict[str, str]) -> tuple[dict | None, tuple[str, str] | None]:
        """The token response for one grant, or the OAuth error (caller holds the lock)."""
        fake = self.owner
        if grant == "authorization_code":
            found = fake._codes.pop(form.get("code", ""), None)  # a code works once
            if found is None:
                return None, ("invalid_grant", "Invalid authorization code")
            redirect_uri, scope = found
            if redirect_uri != form.get("redirect_uri"):
                return None, ("invalid_grant", "Invalid redirect URI")
            refresh = "AQ" + secrets.token_urlsafe(48)
            fake._refresh[refresh] = scope
            fake.issued_refresh_tokens.append(refresh)
            return {**fake._new_access(scope, refresh), "refresh_token": refresh}, None
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in fake._refresh:
                return None, ("invalid_grant", "Refresh token revoked")
            # like Spotify: a new access token; the refresh token usually stays the same
            return fake._new_access(fake._refresh[refresh], refresh), None
        return None, ("unsupported_grant_type",
                      "grant_type must be client_credentials, authorization_code or refresh_token")

    # ---- web api

    def _api(self, route: str, query: dict[str, str]) -> None:
        fake = self.owner
        with fake._lock:
            failure = fake._failures.pop(0) if fake._failures else None
            retry_after = fake._rate_limits.pop(0) if failure is None and fake._rate_limits else None
        if failure is not None:
            self._api_error(failure, "Service unavailable" if failure == 503 else "Server error")
            return
        if retry_after is not None:
            self._api_error(429, "API rate limit exceeded", {"Retry-After": f"{retry_after:g}"})
            return

        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            self._api_error(401, "No token provided")
            return
        with fake._lock:
            token = fake._access.get(header[7:])
            forced = fake._unauthorized > 0
            if forced:
                fake._unauthorized -= 1
        if token is None:
            self._api_error(401, "Invalid access token")
            return
        if not token.valid or forced:
            self._api_error(401, "The access token expired")
            return
        needed = _SCOPE_FOR.get(route)
        if needed and needed not in token.scope.split():
            self._api_error(403, "Insufficient client scope")
            return

        parts = route.strip("/").split("/")
        if route == "me/tracks":
            self._paged(route, query, fake.likes)
        elif route == "me/playlists":
            self._paged(route, query, [self._playlist_summary(pid, p) for pid, p in fake.playlists.items()])
        elif len(parts) == 3 and parts[0] == "playlists" and parts[2] == "items":
            self._playlist_items(parts[1], query)
        elif route == "me/player/currently-playing":
            self._currently_playing(query)
        elif len(parts) == 2 and parts[0] == "tracks":
            self._track(parts[1])
        else:
            self._api_error(404, "Service not found")

    def _paged(self, route: str, query: dict[str, str], items: list, max_limit: int = 50) -> None:
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= max_limit:
            self._api_error(400, "Invalid limit")
            return
        try:
            offset = int(query.get("offset", "0"))
        except ValueError:
            offset = -1
        if offset < 0:
            self._api_error(400, "Invalid offset")
            return
        base = f"{self.owner.url}/v1/{route}"
        extra = {k: v for k, v in query.items() if k not in ("limit", "offset")}

        def link(o: int) -> str:
            return f"{base}?{urlencode({'offset': o, 'limit': limit, **extra})}"

        total = len(items)
        self._json(200, {
            "href": link(offset),
            "items": items[offset:offset + limit],
            "limit": limit,
            "next": link(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
        })

    def _playlist_summary(self, pid: str, playlist: dict) -> dict:
        owner = playlist.get("owner", "dj")
        return {
            "collaborative": False,
            "description": "",
            "external_urls": {"spotify": f"https://open.spotify.com/playlist/{pid}"},
            "href": f"{self.owner.url}/v1/playlists/{pid}",
            "id": pid,
            "images": [],
            "items": {"href": f"{self.owner.url}/v1/playlists/{pid}/items",
                      "total": len(playlist.get("items", []))},
            "name": playlist.get("name", ""),
            "owner": {"display_name": owner, "id": owner, "type": "user", "uri": f"spotify:user:{owner}"},
            "public": False,
            "snapshot_id": playlist.get("snapshot_id"),
            "tracks": None,  # renamed to "items" in 2026
            "type": "playlist",
            "uri": f"spotify:playlist:{pid}",
        }

    def _playlist_items(self, pid: str, query: dict[str, str]) -> None:
        playlist = self.owner.playlists.get(pid)
        if playlist is None:
            self._api_error(404, "Resource not found")
            return
        types = set(query.get("additional_types", "track").split(","))
        entries = []
        for i, obj in enumerate(playlist.get("items", [])):
            if isinstance(obj, dict) and obj.get("type") == "episode" and "episode" not in types:
                obj = None  # clients that do not ask for episodes get nulls
            entries.append({
                "added_at": _iso(datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i)),
                "added_by": {"id": playlist.get("owner", "dj"), "type": "user"},
                "is_local": bool(isinstance(obj, dict) and obj.get("is_local")),
                "primary_color": None,
                self.owner.playlist_item_field: obj,
            })
        self._paged(f"playlists/{pid}/items", query, entries)

    def _currently_playing(self, query: dict[str, str]) -> None:
        fake = self.owner
        obj = fake.now_playing
        if obj is None:
            self._empty(204)
            return
        kind = obj.get("type", "track")
        types = set(query.get("additional_types", "track").split(","))
        self._json(200, {
            "timestamp": int(time.time() * 1000),
            "context": None,
            "progress_ms": 42_000,
            "item": obj if kind == "track" or kind in types else None,
            "currently_playing_type": kind,
            "actions": {"disallows": {"resuming": True}},
            "is_playing": fake.is_playing,
        })

    def _track(self, track_id: str) -> None:
        if len(track_id) != 22 or any(c not in _BASE62 for c in track_id):
            self._api_error(400, "Invalid base62 id")
            return
        track = self.owner._find_track(track_id)
        if track is None:
            self._api_error(404, "Resource not found")
        else:
            self._json(200, track)
