"""Logging in to Spotify: the one interactive step, the token cache, secrets kept out of logs."""

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
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import spotipy
from spotipy.cache_handler import CacheFileHandler
from spotipy.exceptions import SpotifyOauthError

from ...domain.errors import SourceUnavailable, TrackError
from .models import DEFAULT_REDIRECT_URI, LoginFailed, NotConfigured, NotLoggedIn, RateLimited, SpotifyConfig

logger = logging.getLogger(__name__)

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


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


def auth_manager(config: SpotifyConfig, session: requests.Session | None = None) -> _OAuth:
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


def oauth_error(err: SpotifyOauthError, during: str) -> TrackError:
    """A token endpoint failure in words. spotipy hides the HTTP status; it is on the context."""
    http_error = err.__context__
    status = getattr(getattr(http_error, "response", None), "status_code", None)
    if status == 429:
        retry = getattr(http_error.response, "headers", {}).get("Retry-After")  # type: ignore[union-attr]
        return RateLimited(retry_after_seconds(retry))
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


def retry_after_seconds(value: Any, default: float = 5.0) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds >= 0 else default


# --------------------------------------------------------------------------- login


def authorize_url(config: SpotifyConfig, state: str | None = None) -> str:
    """The page where the user grants access; ``state`` (random when omitted) comes back
    with the redirect and must be checked by whoever receives it."""
    return auth_manager(config).get_authorize_url(state=state or secrets.token_urlsafe(16))


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
    auth = auth_manager(config)
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
        failure = oauth_error(err, "exchanging the authorisation code")
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


