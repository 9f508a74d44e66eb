"""The one place yt-dlp is called: its options, its calls and what its errors mean.

yt-dlp is used as a library for three things, all through :func:`extract`: downloading
one track (``download``), listing a collection flat (``listings``) and searching YouTube
(``matching``). Every call gets its options from :func:`params`, so a proxy, a cookies
file or a timeout set once in the downloader resource applies everywhere, and every
``DownloadError`` goes through :func:`classify`, so the same failure reads the same and
carries the same reason (which decides whether a retry may help) wherever it happened.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..domain.errors import (
    DiskFull,
    DrmProtected,
    GeoBlocked,
    LoginRequired,
    PrivateSource,
    RemovedSource,
    SourceUnavailable,
    TrackError,
    UnsupportedSource,
)
from ..domain.identity import redact_text, redact_url

#: What the failing call was about: one track (download, probe, id lookup), a whole
#: collection (a likes page, a set, a playlist) or a search.
Scope = Literal["track", "collection", "search"]


@dataclass(frozen=True)
class DownloadOptions:
    format: str = "bestaudio/best"
    socket_timeout: float = 30.0
    retries: int = 3
    rate_limit: int | None = None  # bytes per second
    cookies_file: str | None = None
    proxy: str | None = None


class QuietLogger:
    """yt-dlp's messages go to our logger (and from there to the Dagster run log) with every
    URL masked: yt-dlp echoes the URL it works on (sometimes shortened), signed-link tokens
    and passwords included."""

    def __init__(self, log: Callable[[str], None] | None) -> None:
        self._log = log or logging.getLogger(__name__).debug

    def _emit(self, msg: str) -> None:
        self._log(redact_text(msg))

    def debug(self, msg: str) -> None:
        if not msg.startswith("[debug] "):
            self._emit(msg)

    def info(self, msg: str) -> None:
        self._emit(msg)

    def warning(self, msg: str) -> None:
        self._emit(f"warning: {msg}")

    def error(self, msg: str) -> None:
        self._emit(msg)


def params(options: DownloadOptions, log: Callable[[str], None] | None = None, **extra: object) -> dict:
    """yt-dlp's options for any call: quiet, no cache, the network settings of ``options``;
    ``extra`` adds what the call needs (a format and output template, flat listing...)."""
    result: dict = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "cachedir": False,
        "socket_timeout": options.socket_timeout,
        "retries": options.retries,
        "extractor_retries": options.retries,
        "logger": QuietLogger(log),
    }
    for name, value in (("cookiefile", options.cookies_file), ("proxy", options.proxy)):
        if value:
            result[name] = value
    result.update(extra)
    return result


def extract(url: str, options: dict, *, download: bool = False, scope: Scope = "track",
            process: bool = True) -> dict | None:
    """``YoutubeDL(options).extract_info(url)``, its info dict made JSON-safe, and its
    failures raised as the :class:`TrackError` :func:`classify` chooses."""
    import yt_dlp

    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=download, **({} if process else {"process": False}))
    except yt_dlp.utils.DownloadError as err:
        raise classify(url, err, scope=scope) from err
    return yt_dlp.YoutubeDL.sanitize_info(info) if download and info else info


# -- errors ------------------------------------------------------------------------------

_HTTP = re.compile(r"HTTP Error (\d{3})", re.IGNORECASE)
_REPORT_TAIL = re.compile(r";?\s*please report this issue on.*$", re.S | re.I)
_HTTP_MEANING = {404: "not found", 403: "forbidden", 410: "gone", 401: "needs a login",
                 429: "rate-limited; try again later"}
_TRANSIENT_WORDS = ("timed out", "connection", "resolve", "network", "unable to download", "temporary failure")
_REMOVED_WORDS = ("removed", "deleted", "terminated", "no longer available", "video unavailable")


@dataclass(frozen=True)
class _Failure:
    """What a DownloadError says, read once."""

    shown: str  # the URL, masked
    text: str  # yt-dlp's message, first line, URL masked, without "ERROR:" and the bug-report tail
    status: int | None  # the HTTP status, when there was one
    geo: bool
    unsupported: bool
    disk_full: bool
    transient: bool  # the network or the server, not the source itself

    @property
    def lowered(self) -> str:
        return self.text.lower()


def _read(url: str, err: Exception) -> _Failure:
    import yt_dlp
    from yt_dlp.networking.exceptions import HTTPError, TransportError

    original = err.exc_info[1] if getattr(err, "exc_info", None) else None
    text = redact_text(_REPORT_TAIL.sub("", re.sub(r"^ERROR:\s*", "", str(err)).strip()).replace(url, redact_url(url)))
    text = text.splitlines()[0] if text else type(err).__name__
    lowered = text.lower()
    cause = getattr(original, "cause", None)
    if isinstance(original, HTTPError):  # the generic extractor raises it unwrapped
        status: int | None = original.status
    elif isinstance(cause, HTTPError):
        status = cause.status
    else:
        match = _HTTP.search(text)
        status = int(match.group(1)) if match else None
    disk_full = any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in (original, cause)) \
        or "no space left on device" in lowered
    return _Failure(
        shown=redact_url(url), text=text, status=status,
        geo=isinstance(original, yt_dlp.utils.GeoRestrictedError) or "not available in your country" in lowered
        or "geo restrict" in lowered or "geo-restrict" in lowered,
        unsupported=isinstance(original, yt_dlp.utils.UnsupportedError) or "unsupported url" in lowered,
        disk_full=disk_full,
        transient=(status is not None and (status == 429 or status >= 500))
        or (isinstance(cause, TransportError) and not isinstance(cause, HTTPError))
        or any(word in lowered for word in _TRANSIENT_WORDS),
    )


def classify(url: str, err: Exception, *, scope: Scope = "track") -> TrackError:
    """A yt-dlp ``DownloadError`` as the most specific error a user can act on.

    One track: DRM, geo, private, login and removed get their own reasons (never retried),
    the network and the server stay ``source-unavailable`` (retried), a full disk is
    ``disk-full``. A collection: what will not pass (not found, private, geo, unsupported)
    is ``unsupported-source``, so a sensor does not hammer a dead profile; the rest is
    retried next sync. A search: always ``source-unavailable``.
    """
    f = _read(url, err)
    if f.disk_full:
        return DiskFull(f"The disk holding the library is full: the download of {f.shown} stopped.",
                        hint="Free some space on the library's volume; the track is retried.")
    if scope == "search":
        hint = ("YouTube is rate-limiting this machine; wait a while or set cookies in the downloader settings."
                if f.status == 429 or "429" in f.text else
                "Check the network (and the downloader's proxy setting), then retry.")
        query = url.split(":", 1)[1] if url.startswith("ytsearch") else url
        return SourceUnavailable(f"Searching YouTube for {query!r} failed: {f.text}", hint=hint)
    if scope == "collection":
        return _collection_error(f)
    return _track_error(f)


def _track_error(f: _Failure) -> TrackError:
    """The wording says what happened; the class (its reason) says whether retrying helps."""
    lowered, shown, text = f.lowered, f.shown, f.text
    hint = None
    if f.geo:
        message = f"{shown} is geo-blocked where this machine is: {text}"
        hint = "Use a proxy or VPN in an allowed country (downloader proxy setting)."
    elif "drm" in lowered:
        message = f"{shown} is DRM-protected and cannot be downloaded: {text}"
    elif f.unsupported:
        message, hint = f"No downloader supports {shown}.", "Use a direct link to the audio file or a supported site."
    elif f.status is not None:
        meaning = _HTTP_MEANING.get(f.status, "refused by the server")
        message = f"{shown} could not be downloaded: HTTP {f.status} ({meaning})."
    elif any(word in lowered for word in ("private", "removed", "unavailable", "terminated")):
        message = f"{shown} is not available: {text}"
    elif f.transient:
        message, hint = f"{shown} could not be reached: {text}", "Check the network and retry."
    else:
        message = f"Downloading {shown} failed: {text}"
    kind: type[TrackError] = UnsupportedSource if f.unsupported else SourceUnavailable
    if f.geo:
        kind = GeoBlocked
    elif "drm" in lowered:
        kind = DrmProtected
    elif "private" in lowered:
        kind = PrivateSource
    elif any(word in lowered for word in ("sign in", "members", "premium", "log in")):
        kind = LoginRequired
    elif f.status in (404, 410) or any(word in lowered for word in _REMOVED_WORDS):
        kind = RemovedSource
    return kind(message, hint=hint)


def _collection_error(f: _Failure) -> TrackError:
    lowered, shown, text = f.lowered, f.shown, f.text
    if f.unsupported:
        return UnsupportedSource(f"No extractor can list {shown}.",
                                 hint="Use a SoundCloud likes/set URL or a YouTube playlist URL.")
    if f.status in (404, 410) or "does not exist" in lowered or "not found" in lowered:
        return UnsupportedSource(f"{shown} was not found: the user, set or playlist does not exist "
                                 f"(or was deleted). ({text})",
                                 hint="Check the user name or playlist URL in the settings.")
    if f.status in (401, 403) or "private" in lowered or "sign in" in lowered or "log in" in lowered:
        return UnsupportedSource(f"{shown} is private or needs a login. ({text})",
                                 hint="Make it public, or give the downloader a cookies file of an "
                                      "account that can see it.")
    if f.geo:
        return UnsupportedSource(f"{shown} is geo-blocked where this machine is. ({text})",
                                 hint="Use a proxy in an allowed country (downloader proxy setting).")
    if f.transient:
        return SourceUnavailable(f"{shown} could not be listed right now: {text}", hint="Retrying at the next sync.")
    return SourceUnavailable(f"Listing {shown} failed: {text}", hint="Retrying at the next sync.")
