"""Errors a user can act on.

Every failure that reaches a user (a run in the UI, the catalog row, the CLI) is a
``TrackError`` whose message says what went wrong and what to do about it, in words
rather than tracebacks. Library code raises the most specific subclass it can.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a track failed, as the catalog stores it; whether a retry may help is a
    property of the reason, so every caller (bulk retries, ``process all``) agrees."""

    ERROR = "error"
    SOURCE_UNAVAILABLE = "source-unavailable"  # the network or the server: may pass
    UNSUPPORTED_SOURCE = "unsupported-source"
    NOT_AUDIO = "not-audio"
    MEDIA_TOOL = "media-tool"
    DISK_FULL = "disk-full"
    NOT_REGISTERED = "not-registered"
    CATALOG = "catalog"
    DEDUP = "dedup"
    NEEDS_REVIEW = "needs-review"
    DRM = "drm"
    GEO = "geo"
    PRIVATE = "private"
    REMOVED = "removed"
    LOGIN = "login"
    RATE_LIMITED = "rate-limited"
    INTERNAL = "internal"  # a bug or an unexpected exception in a step
    CRASHED = "crashed"  # the run's process died (killed, out of memory)
    SPOTIFY_NOT_CONFIGURED = "spotify-not-configured"
    SPOTIFY_NOT_LOGGED_IN = "spotify-not-logged-in"
    SPOTIFY_LOGIN_FAILED = "spotify-login-failed"
    SPOTIFY_FORBIDDEN = "spotify-forbidden"

    @property
    def retryable(self) -> bool:
        """May another try pass (the network, a full disk, a crash, a tool that failed
        once)? DRM, geo, private, removed, login, not audio, needs review: not until a
        person acts."""
        return self in _RETRYABLE

    @classmethod
    def of(cls, value: str | None) -> Reason:
        """The reason a catalog row holds (``None`` and values from older versions read
        as a plain error)."""
        try:
            return cls(value or cls.ERROR)
        except ValueError:
            return cls.ERROR


_RETRYABLE = frozenset({Reason.SOURCE_UNAVAILABLE, Reason.DISK_FULL, Reason.INTERNAL, Reason.MEDIA_TOOL,
                        Reason.RATE_LIMITED, Reason.ERROR, Reason.CRASHED})


class TrackError(Exception):
    """A track could not be processed; ``str(err)`` is the message shown to the user."""

    #: Short machine-readable reason, stored in the catalog next to the message.
    reason: Reason = Reason.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class SourceUnavailable(TrackError):
    """The source URL cannot be downloaded: 404, removed, private, DRM or geo-blocked."""

    reason = Reason.SOURCE_UNAVAILABLE


class UnsupportedSource(TrackError):
    """No downloader knows this URL, or the argument is neither a URL nor a file."""

    reason = Reason.UNSUPPORTED_SOURCE


class NotAudio(TrackError):
    """The input holds no decodable audio: empty, truncated, corrupt or not audio at all."""

    reason = Reason.NOT_AUDIO


class MediaToolError(TrackError):
    """ffmpeg/ffprobe/fpcalc failed or is missing."""

    reason = Reason.MEDIA_TOOL


class DiskFull(TrackError):
    """The library volume ran out of space while writing."""

    reason = Reason.DISK_FULL


class NotRegistered(TrackError):
    """A partition was materialised for a track the catalog does not know."""

    reason = Reason.NOT_REGISTERED


# Why a source cannot be fetched, when it never will be from here. Subclasses of
# SourceUnavailable, so ``except SourceUnavailable`` handlers keep working; the catalog
# stores the reason ("drm", "geo", ...) and the sync does not retry these.


class DrmProtected(SourceUnavailable):
    """The source's audio is encrypted (DRM); yt-dlp cannot and will not download it."""

    reason = Reason.DRM


class GeoBlocked(SourceUnavailable):
    """The source is not available from this machine's country."""

    reason = Reason.GEO


class PrivateSource(SourceUnavailable):
    """The source (one track, or a whole collection) is private."""

    reason = Reason.PRIVATE


class RemovedSource(SourceUnavailable):
    """The source was deleted, taken down or never existed."""

    reason = Reason.REMOVED


class LoginRequired(SourceUnavailable):
    """The source needs an account (age check, members-only, premium)."""

    reason = Reason.LOGIN
