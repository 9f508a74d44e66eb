"""Downloading source audio with yt-dlp used as a library.

The best audio stream is fetched as it is (no re-encode at download time: transcoding is
the pipeline's job, done once from the original). yt-dlp reports every failure as a
``DownloadError``; :mod:`.ytdlp` turns the common causes (404, unsupported URL, DRM,
geo-blocking, private or removed videos, a full disk) into messages a user can act on.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..domain.errors import SourceUnavailable, UnsupportedSource
from ..domain.identity import redact_url, spotify_id
from . import ytdlp
from .ytdlp import DownloadOptions


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


def download(url: str, dest_dir: Path, options: DownloadOptions | None = None,
             log: Callable[[str], None] | None = None) -> Downloaded:
    """Download ``url``'s best audio into ``dest_dir`` (a scratch folder the caller owns)."""
    if spotify_id(url):
        raise UnsupportedSource(
            "Spotify audio is DRM-protected and cannot be downloaded.",
            hint="Spotify tracks are matched to a downloadable source by the Spotify sync; "
                 "add a YouTube or SoundCloud URL of the song meanwhile.",
        )
    options = options or DownloadOptions()
    last_percent = [-10]

    def progress(state: dict) -> None:
        if state.get("status") != "downloading" or log is None:
            return
        total = state.get("total_bytes") or state.get("total_bytes_estimate")
        if total:
            percent = int(100 * state.get("downloaded_bytes", 0) / total)
            if percent >= last_percent[0] + 10:
                last_percent[0] = percent
                log(f"downloading: {percent}% of {total / 1e6:.1f} MB")

    info = ytdlp.extract(url, ytdlp.params(
        options, log,
        format=options.format,
        outtmpl={"default": str(Path(dest_dir) / "source.%(ext)s"),
                 "thumbnail": str(Path(dest_dir) / "thumbnail.%(ext)s")},
        noplaylist=True,
        playlist_items="1",  # a safety net: never fetch a whole playlist into the library
        writethumbnail=True,
        overwrites=True,
        fragment_retries=options.retries,
        progress_hooks=[progress],
        **({"ratelimit": options.rate_limit} if options.rate_limit else {}),
    ), download=True)
    if info is None:
        raise SourceUnavailable(f"yt-dlp returned nothing for {redact_url(url)}.")
    if info.get("_type") == "playlist":
        raise UnsupportedSource(
            f"{redact_url(url)} is a playlist; add its tracks one by one (playlist sync comes with the sources)."
        )
    requested = info.get("requested_downloads") or []
    path = Path(requested[0]["filepath"]) if requested and requested[0].get("filepath") else None
    if path is None or not path.exists():
        candidates = sorted(p for p in Path(dest_dir).glob("source.*") if p.suffix != ".part")
        path = candidates[0] if candidates else None
    if path is None:
        raise SourceUnavailable(f"yt-dlp finished but wrote no audio file for {redact_url(url)}.")
    # yt-dlp records the thumbnail's path before its MoveFiles step renames it: look on disk.
    thumbnail = next((p for p in sorted(Path(dest_dir).glob("thumbnail.*")) if p.suffix != ".part"), None)
    return Downloaded(path=path, info=info, thumbnail=thumbnail)


SCRATCH_PREFIX = "download-"


def scratch_dir(parent: Path, owner: str) -> tempfile.TemporaryDirectory:
    """A scratch folder on the library's volume, so the final move is a rename. Its name
    carries ``owner`` (the track key): a killed download's folder is found and removed by
    that track's next attempt (:func:`scratch_leftovers`)."""
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{owner}-", dir=parent)


def scratch_leftovers(parent: Path, owner: str) -> list[Path]:
    """Scratch folders of ``owner``'s earlier, killed downloads (half-downloaded audio)."""
    if not parent.is_dir():
        return []
    prefix = f"{SCRATCH_PREFIX}{owner}-"
    # Names first (no stat per entry: _raw holds every track's original); tempfile adds 8 characters.
    return [p for p in parent.iterdir() if p.name.startswith(prefix) and len(p.name) == len(prefix) + 8
            and p.is_dir()]


def resolve_id(url: str, options: DownloadOptions | None = None) -> tuple[str, str]:
    """(extractor, id) of a URL whose id is not in the URL itself, asking the site via yt-dlp
    without downloading. Used for SoundCloud permalinks."""
    info = ytdlp.extract(url, ytdlp.params(options or DownloadOptions(), skip_download=True, noplaylist=True),
                         process=False)
    if not info or not info.get("id"):
        raise SourceUnavailable(f"Could not look up the id of {redact_url(url)}.")
    return str(info.get("extractor_key") or info.get("extractor") or "url"), str(info["id"])
