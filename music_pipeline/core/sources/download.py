"""Downloading source audio with yt-dlp used as a library.

The best audio stream is fetched as it is (no re-encode at download time: transcoding is
the pipeline's job, done once from the original). yt-dlp reports every failure as a
``DownloadError``; this module turns the common causes (404, unsupported URL, DRM,
geo-blocking, private or removed videos) into messages a user can act on.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..domain.errors import SourceUnavailable, TrackError, UnsupportedSource
from ..domain.identity import redact_url, spotify_id


@dataclass(frozen=True)
class DownloadOptions:
    format: str = "bestaudio/best"
    socket_timeout: float = 30.0
    retries: int = 3
    rate_limit: int | None = None  # bytes per second
    cookies_file: str | None = None
    proxy: str | None = None


@dataclass
class Downloaded:
    """What one download produced: the audio file and the source's metadata."""

    path: Path
    info: dict = field(default_factory=dict)
    thumbnail: Path | None = None

    @property
    def metadata(self) -> dict:
        """The fields the catalog keeps from yt-dlp's info dict."""
        info = self.info
        artists = info.get("artists") or []
        artist = info.get("artist") or (", ".join(artists) if artists else None) or info.get("creator") \
            or info.get("uploader") or info.get("channel")
        thumbs = info.get("thumbnails") or []
        return {
            "title": info.get("track") or info.get("title"),
            "artist": artist,
            "album": info.get("album"),
            "isrc": info.get("isrc"),
            "source_duration_s": info.get("duration"),
            "webpage_url": info.get("webpage_url") or info.get("original_url"),
            "thumbnail_url": info.get("thumbnail") or (thumbs[-1].get("url") if thumbs else None),
            "extractor": info.get("extractor_key") or info.get("extractor"),
        }


class _QuietLogger:
    """yt-dlp's messages go to our logger (and from there to the Dagster run log)."""

    def __init__(self, log: Callable[[str], None] | None) -> None:
        self._log = log or logging.getLogger(__name__).debug

    def debug(self, msg: str) -> None:
        if not msg.startswith("[debug] "):
            self._log(msg)

    def info(self, msg: str) -> None:
        self._log(msg)

    def warning(self, msg: str) -> None:
        self._log(f"warning: {msg}")

    def error(self, msg: str) -> None:
        self._log(msg)


def download(url: str, dest_dir: Path, options: DownloadOptions | None = None,
             log: Callable[[str], None] | None = None) -> Downloaded:
    """Download ``url``'s best audio into ``dest_dir`` (a scratch folder the caller owns)."""
    import yt_dlp

    if spotify_id(url):
        raise UnsupportedSource(
            "Spotify audio is DRM-protected and cannot be downloaded.",
            hint="Spotify tracks are matched to a downloadable source by the Spotify sync; "
                 "add a YouTube or SoundCloud URL of the song meanwhile.",
        )
    options = options or DownloadOptions()
    last_percent = [-10]
    if log is not None:  # yt-dlp echoes the URL; keep signed-link tokens out of run logs
        raw_log, shown = log, redact_url(url)
        log = lambda message: raw_log(message.replace(url, shown))  # noqa: E731

    def progress(state: dict) -> None:
        if state.get("status") != "downloading" or log is None:
            return
        total = state.get("total_bytes") or state.get("total_bytes_estimate")
        if total:
            percent = int(100 * state.get("downloaded_bytes", 0) / total)
            if percent >= last_percent[0] + 10:
                last_percent[0] = percent
                log(f"downloading: {percent}% of {total / 1e6:.1f} MB")

    params = {
        "format": options.format,
        "outtmpl": {"default": str(Path(dest_dir) / "source.%(ext)s"),
                    "thumbnail": str(Path(dest_dir) / "thumbnail.%(ext)s")},
        "noplaylist": True,
        "playlist_items": "1",  # a safety net: never fetch a whole playlist into the library
        "writethumbnail": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "cachedir": False,
        "overwrites": True,
        "socket_timeout": options.socket_timeout,
        "retries": options.retries,
        "fragment_retries": options.retries,
        "logger": _QuietLogger(log),
        "progress_hooks": [progress],
    }
    for name, value in (("ratelimit", options.rate_limit), ("cookiefile", options.cookies_file),
                        ("proxy", options.proxy)):
        if value:
            params[name] = value
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            info = ydl.extract_info(url, download=True)
    except yt_dlp.utils.DownloadError as err:
        from .listings import entry_error  # DRM, geo, private, removed: reasons the sync does not retry

        raise entry_error(url, err) from err
    if info is None:
        raise SourceUnavailable(f"yt-dlp returned nothing for {url}.")
    if info.get("_type") == "playlist":
        raise UnsupportedSource(
            f"{url} is a playlist; add its tracks one by one (playlist sync comes with the sources)."
        )
    requested = info.get("requested_downloads") or []
    path = Path(requested[0]["filepath"]) if requested and requested[0].get("filepath") else None
    if path is None or not path.exists():
        candidates = sorted(p for p in Path(dest_dir).glob("source.*") if p.suffix != ".part")
        path = candidates[0] if candidates else None
    if path is None:
        raise SourceUnavailable(f"yt-dlp finished but wrote no audio file for {url}.")
    # yt-dlp records the thumbnail's path before its MoveFiles step renames it: look on disk.
    thumbnail = next((p for p in sorted(Path(dest_dir).glob("thumbnail.*")) if p.suffix != ".part"), None)
    return Downloaded(path=path, info=ydl.sanitize_info(info), thumbnail=thumbnail)


_HTTP = re.compile(r"HTTP Error (\d{3})")


def explain_download_error(url: str, err: Exception) -> TrackError:
    """A yt-dlp DownloadError as the error a user understands."""
    import yt_dlp

    original = err.exc_info[1] if getattr(err, "exc_info", None) else None
    text = re.sub(r"^ERROR:\s*", "", str(err)).strip().replace(url, redact_url(url))
    url = redact_url(url)
    lowered = text.lower()
    if isinstance(original, yt_dlp.utils.GeoRestrictedError) or "not available in your country" in lowered \
            or "geo restrict" in lowered or "geo-restrict" in lowered:
        return SourceUnavailable(f"{url} is geo-blocked where this machine is: {text}",
                                 hint="Use a proxy or VPN in an allowed country (downloader proxy setting).")
    if "drm" in lowered:
        return SourceUnavailable(f"{url} is DRM-protected and cannot be downloaded: {text}")
    if isinstance(original, yt_dlp.utils.UnsupportedError) or "unsupported url" in lowered:
        return UnsupportedSource(f"No downloader supports {url}.",
                                 hint="Use a direct link to the audio file or a supported site.")
    match = _HTTP.search(text)
    if match:
        code = int(match.group(1))
        meaning = {404: "not found", 403: "forbidden", 410: "gone", 401: "needs a login",
                   429: "rate-limited; try again later"}.get(code, "refused by the server")
        return SourceUnavailable(f"{url} could not be downloaded: HTTP {code} ({meaning}).")
    if "private" in lowered or "removed" in lowered or "unavailable" in lowered or "terminated" in lowered:
        return SourceUnavailable(f"{url} is not available: {text}")
    if "unable to download" in lowered or "timed out" in lowered or "connection" in lowered:
        return SourceUnavailable(f"{url} could not be reached: {text}", hint="Check the network and retry.")
    return SourceUnavailable(f"Downloading {url} failed: {text}")


def scratch_dir(parent: Path) -> tempfile.TemporaryDirectory:
    """A scratch folder on the library's volume, so the final move is a rename."""
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="download-", dir=parent)


def resolve_id(url: str, options: DownloadOptions | None = None) -> tuple[str, str]:
    """(extractor, id) of a URL whose id is not in the URL itself, asking the site via yt-dlp
    without downloading. Used for SoundCloud permalinks."""
    import yt_dlp

    options = options or DownloadOptions()
    params = {"quiet": True, "no_warnings": True, "skip_download": True, "noplaylist": True,
              "socket_timeout": options.socket_timeout, "cachedir": False, "logger": _QuietLogger(None)}
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            info = ydl.extract_info(url, download=False, process=False)
    except yt_dlp.utils.DownloadError as err:
        raise explain_download_error(url, err) from err
    if not info or not info.get("id"):
        raise SourceUnavailable(f"Could not look up the id of {url}.")
    return str(info.get("extractor_key") or info.get("extractor") or "url"), str(info["id"])
