"""Errors a user can act on.

Every failure that reaches a user (a run in the UI, the catalog row, the CLI) is a
``TrackError`` whose message says what went wrong and what to do about it, in words
rather than tracebacks. Library code raises the most specific subclass it can.
"""

from __future__ import annotations


class TrackError(Exception):
    """A track could not be processed; ``str(err)`` is the message shown to the user."""

    #: Short machine-readable reason, stored in the catalog next to the message.
    reason = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class SourceUnavailable(TrackError):
    """The source URL cannot be downloaded: 404, removed, private, DRM or geo-blocked."""

    reason = "source-unavailable"


class UnsupportedSource(TrackError):
    """No downloader knows this URL, or the argument is neither a URL nor a file."""

    reason = "unsupported-source"


class NotAudio(TrackError):
    """The input holds no decodable audio: empty, truncated, corrupt or not audio at all."""

    reason = "not-audio"


class MediaToolError(TrackError):
    """ffmpeg/ffprobe/fpcalc failed or is missing."""

    reason = "media-tool"


class DiskFull(TrackError):
    """The library volume ran out of space while writing."""

    reason = "disk-full"


class NotRegistered(TrackError):
    """A partition was materialised for a track the catalog does not know."""

    reason = "not-registered"


# Why a source cannot be fetched, when it never will be from here. Subclasses of
# SourceUnavailable, so ``except SourceUnavailable`` handlers keep working; the catalog
# stores the reason ("drm", "geo", ...) and the sync does not retry these.


class DrmProtected(SourceUnavailable):
    """The source's audio is encrypted (DRM); yt-dlp cannot and will not download it."""

    reason = "drm"


class GeoBlocked(SourceUnavailable):
    """The source is not available from this machine's country."""

    reason = "geo"


class PrivateSource(SourceUnavailable):
    """The source (one track, or a whole collection) is private."""

    reason = "private"


class RemovedSource(SourceUnavailable):
    """The source was deleted, taken down or never existed."""

    reason = "removed"


class LoginRequired(SourceUnavailable):
    """The source needs an account (age check, members-only, premium)."""

    reason = "login"


#: Failure reasons that may pass on another try (the network, a full disk, a crash, a tool
#: that failed once); the others (DRM, geo, private, removed, login, not audio, a bad
#: check, needs review) fail again until a person acts.
RETRYABLE_REASONS = frozenset({"source-unavailable", "disk-full", "internal", "media-tool", "rate-limited",
                               "error", "crashed"})


def is_retryable(reason: str | None) -> bool:
    return (reason or "error") in RETRYABLE_REASONS
