"""Track identity: one stable partition key per recording source.

The key is what the Dagster UI shows per track, so it must be the same for every form
of one source (all YouTube URL shapes give ``youtube-<id>``) and must never depend on
anything that changes (titles, file names, mtimes). Keys use only ``[A-Za-z0-9_-]``:
YouTube ids are case-sensitive, so case is kept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, unquote_plus, urlsplit, urlunsplit

from .errors import UnsupportedSource

_YT_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YT_HOSTS = {
    "youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtube-nocookie.com",
    "youtu.be",
}
_YT_PATH_ID = re.compile(r"^/(?:shorts|embed|live|v|e)/([A-Za-z0-9_-]{11})(?:[/?]|$)")
_SPOTIFY_PATH = re.compile(r"^/(?:intl-[a-z]{2}(?:-[a-z]{2})?/)?track/([A-Za-z0-9]{22})(?:/|$)", re.I)
_SPOTIFY_URI = re.compile(r"^spotify:track:([A-Za-z0-9]{22})$")
_SC_API = re.compile(r"^/tracks/(?:soundcloud:tracks:)?(\d+)(?:/|$)")
_SC_URI = re.compile(r"^soundcloud:tracks:(\d+)$")
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")
_TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|fbclid|gclid|si|feature|pp)$")

FILE_KEY_HEX = 16  # 64 bits of sha256: collisions need ~4 billion files


@dataclass(frozen=True)
class TrackSource:
    """Where a track comes from, as registered in the catalog before any download."""

    key: str
    kind: str  # "url" or "file"
    url: str | None = None  # canonical URL for kind == "url"
    path: str | None = None  # absolute path for kind == "file"


def _host(netloc: str) -> str:
    host = netloc.lower().rsplit("@", 1)[-1].split(":", 1)[0]
    return host[4:] if host.startswith("www.") else host


def youtube_id(url: str) -> str | None:
    """The 11-character video id of any YouTube URL form, else None."""
    parts = urlsplit(url.strip())
    host = _host(parts.netloc)
    if host not in _YT_HOSTS:
        return None
    if host == "youtu.be":
        candidate = parts.path.strip("/").split("/", 1)[0]
        return candidate if _YT_ID.match(candidate) else None
    if parts.path in ("/watch", "/watch/"):
        values = parse_qs(parts.query).get("v", [])
        return values[0] if values and _YT_ID.match(values[0]) else None
    match = _YT_PATH_ID.match(parts.path)
    return match.group(1) if match else None


def spotify_id(url: str) -> str | None:
    """The track id of an open.spotify.com track URL or a ``spotify:track:`` URI."""
    text = url.strip()
    if match := _SPOTIFY_URI.match(text):
        return match.group(1)
    parts = urlsplit(text)
    if _host(parts.netloc) != "open.spotify.com":
        return None
    match = _SPOTIFY_PATH.match(parts.path)
    return match.group(1) if match else None


def soundcloud_id(url: str) -> str | None:
    """The numeric id of an API-style SoundCloud URL or URI; permalinks need resolving."""
    text = url.strip()
    if match := _SC_URI.match(text):
        return match.group(1)
    parts = urlsplit(text)
    if _host(parts.netloc) in ("api.soundcloud.com", "api-v2.soundcloud.com"):
        match = _SC_API.match(parts.path)
        return match.group(1) if match else None
    return None


def is_soundcloud_permalink(url: str) -> bool:
    parts = urlsplit(url.strip())
    return _host(parts.netloc) in ("soundcloud.com", "m.soundcloud.com") and parts.path.count("/") >= 2


def canonical_url(url: str) -> str:
    """One spelling per source: the form stored in the catalog and used for download."""
    text = url.strip()
    if vid := youtube_id(text):
        return f"https://www.youtube.com/watch?v={vid}"
    if sid := spotify_id(text):
        return f"https://open.spotify.com/track/{sid}"
    if scid := soundcloud_id(text):
        return f"https://api.soundcloud.com/tracks/{scid}"
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsupportedSource(f"{redact_url(url)!r} is not an http(s) URL.")
    # Only the scheme and host are case-insensitive: a password, a path or a signed query
    # keeps its exact spelling (re-encoding a signed link's query breaks its signature).
    query = "&".join(pair for pair in parts.query.split("&")
                     if pair and not _TRACKING_PARAMS.match(unquote_plus(pair.split("=", 1)[0])))
    userinfo, at, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo}{at}{host.lower()}"
    scheme, path = parts.scheme.lower(), parts.path or "/"
    if is_soundcloud_permalink(text):  # one spelling: https, no host prefix, no query, no trailing slash
        scheme, netloc, query, path = "https", "soundcloud.com", "", path.rstrip("/")
    return urlunsplit((scheme, netloc, path, query, ""))


# yt-dlp extractors that yield many tracks: registering one as a track would download them all.
PLAYLIST_EXTRACTOR = re.compile(r"(Tab|Playlist|Album|Set|Sets|Channel|User|Search|Likes|Feed|Mix)(IE)?$")
_SECRET_PARAM = re.compile(r"(token|key|sig|auth|pass|pwd|secret|session|credential|x-amz-|policy|hmac|jwt|code"
                           r"|accessid|hash)", re.I)


def redact_url(url: str) -> str:
    """A URL fit for logs, run metadata and error messages: passwords and token-like
    query values (signed links, API keys) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable (a bad IPv6 host...): keep nothing that could be a secret
        return re.sub(r"//[^/@]*@", "//***@", re.split(r"[?#]", url, maxsplit=1)[0]) + ("?***" if "?" in url else "")
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if ":" in userinfo else f"***@{host}"
    path = parts.path
    if "soundcloud.com" in netloc.lower():  # a private track's share link: its secret is in the path
        path = _SOUNDCLOUD_SECRET.sub("/s-***", path)
    return urlunsplit((parts.scheme, netloc, path, _redact_pairs(parts.query), _redact_pairs(parts.fragment)))


_SOUNDCLOUD_SECRET = re.compile(r"/s-[A-Za-z0-9]{4,}(?=/|$)")


_URL_IN_TEXT = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.I)


def redact_text(text: str) -> str:
    """``text`` with every URL in it masked by :func:`redact_url`, including URLs a tool
    shortened with an ellipsis (yt-dlp does), which a plain replace would miss."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def _redact_pairs(text: str) -> str:
    """``a=1&token=x`` with secret-looking values masked (a fragment can carry a token too:
    ``#access_token=...``)."""
    return "&".join(
        f"{k}=***" if _SECRET_PARAM.search(unquote_plus(k)) else (f"{k}={v}" if v else k)
        for k, v in (pair.split("=", 1) if "=" in pair else (pair, "") for pair in text.split("&") if pair)
    )


def safe_id(text: str, limit: int = 64) -> str:
    """Reduce an extractor id to partition-key characters, hashing if nothing survives."""
    cleaned = _SAFE.sub("_", text).strip("_")[:limit]
    return cleaned or hashlib.sha256(text.encode()).hexdigest()[:FILE_KEY_HEX]


@lru_cache(maxsize=1)
def _extractors() -> tuple:
    from yt_dlp.extractor import gen_extractor_classes

    return tuple(ie for ie in gen_extractor_classes() if ie.ie_key() != "Generic")


def _specific_extractor(url: str):
    return next((ie for ie in _extractors() if ie.suitable(url)), None)


#: Resolves a URL whose id is not in the URL itself (SoundCloud permalinks) to
#: (extractor name, id). Network-bound; injected so this module stays offline.
Resolver = Callable[[str], tuple[str, str]]


_SC_COLLECTION = re.compile(r"^/[^/]+/(sets/[^/]+|sets|likes|reposts|tracks)/?$")


def is_collection(url: str) -> bool:
    """Whether ``url`` lists many tracks (a YouTube playlist, a SoundCloud set or likes
    page, a channel): it is expanded into its tracks, never registered as one."""
    text = url.strip()
    if youtube_id(text):
        return False  # a video, even when it came with its playlist (&list=...)
    parts = urlsplit(text)
    if _host(parts.netloc) in ("soundcloud.com", "m.soundcloud.com"):
        return bool(_SC_COLLECTION.match(parts.path))
    if not looks_like_url(text):
        return False
    ie = _specific_extractor(text)
    return ie is not None and bool(PLAYLIST_EXTRACTOR.search(ie.ie_key()))


def key_for_url(url: str, resolve: Resolver | None = None) -> TrackSource:
    """The partition key of a URL, offline whenever the URL itself carries the id.

    SoundCloud permalinks (soundcloud.com/artist/title) carry no id, so ``resolve`` is
    asked for it; without a resolver they are rejected rather than given a key that a
    later, resolved form of the same track would not share.
    """
    canon = canonical_url(url)
    if vid := youtube_id(canon):
        return TrackSource(f"youtube-{vid}", "url", url=canon)
    if sid := spotify_id(canon):
        return TrackSource(f"spotify-{sid}", "url", url=canon)
    if scid := soundcloud_id(canon):
        return TrackSource(f"soundcloud-{scid}", "url", url=canon)
    if is_soundcloud_permalink(canon) and is_collection(canon):
        raise UnsupportedSource(f"{redact_url(url)} is a SoundCloud set or profile page, not one track.",
                                hint="Its tracks are added one by one (`music-pipeline add` expands it).")
    if is_soundcloud_permalink(canon):
        if resolve is None:
            raise UnsupportedSource(
                f"{redact_url(url)} is a SoundCloud permalink; its track id can only be looked up online."
            )
        extractor, track_id = resolve(canon)
        return TrackSource(f"soundcloud-{safe_id(track_id)}", "url", url=canon)
    ie = _specific_extractor(canon)
    if ie is not None and PLAYLIST_EXTRACTOR.search(ie.ie_key()):
        raise UnsupportedSource(
            f"{redact_url(url)} is a playlist, channel or search ({ie.ie_key()}), not one track.",
            hint="`music-pipeline add`/`sync` and the inbox expand it into its tracks.",
        )
    if ie is not None:
        temp_id = ie.get_temp_id(canon)
        if temp_id:
            return TrackSource(f"{safe_id(ie.ie_key().lower(), 24)}-{safe_id(temp_id)}", "url", url=canon)
    # The generic extractor's id is the file name, which collides across hosts: hash the URL.
    digest = hashlib.sha256(canon.encode()).hexdigest()[:FILE_KEY_HEX]
    return TrackSource(f"url-{digest}", "url", url=canon)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def key_for_file(path: Path) -> TrackSource:
    """``file-<sha256 prefix>``: the same bytes get the same key wherever they are dropped."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise UnsupportedSource(f"{path} does not exist or is not a file.")
    return TrackSource(f"file-{file_sha256(path)[:FILE_KEY_HEX]}", "file", path=str(path))


def looks_like_url(text: str) -> bool:
    return bool(re.match(r"^(https?://|spotify:|soundcloud:)", text.strip(), re.I))


def source_for(target: str, resolve: Resolver | None = None) -> TrackSource:
    """A CLI argument or inbox line (URL or file path) to its TrackSource."""
    if looks_like_url(target):
        return key_for_url(target, resolve)
    path = Path(target).expanduser()
    if path.exists():
        return key_for_file(path)
    raise UnsupportedSource(f"{target!r} is neither a URL nor an existing file.")


def normalise_isrc(isrc: str) -> str:
    """ISRCs are written with or without hyphens and in either case: CC-XXX-YY-NNNNN."""
    return "".join(ch for ch in isrc.upper() if ch.isalnum())
