"""Listing collections through yt-dlp, with yt-dlp replaced at its boundary.

SoundCloud scrapes a client id from soundcloud.com before any API call, so nothing here
can run offline against the real extractors: ``YoutubeDL.extract_info`` is replaced by
recorded info dicts. The SoundCloud dicts were produced by yt-dlp 2026.10.26 itself
(its real SoundcloudUserIE / SoundcloudSetIE code and YoutubeDL's flat processing, with
only ``_call_api`` fed SoundCloud-shaped API JSON); the YouTube one follows
``YoutubeTabBaseIE._extract_video``. Errors are raised the way YoutubeDL raises them: a
``DownloadError`` whose ``exc_info[1]`` is the extractor's exception.
"""

from __future__ import annotations

import copy
import io
import sys

import pytest
import yt_dlp
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from music_pipeline.core.domain.errors import (
    DrmProtected,
    GeoBlocked,
    RemovedSource,
    SourceUnavailable,
    UnsupportedSource,
)
from music_pipeline.core.domain.identity import source_for
from music_pipeline.core.sources import listings as col

_VERSION = {"version": "2026.10.26", "current_git_head": None,
            "release_git_head": "c91f8de0bfb3577894abad716eaaa01659e6bd14", "repository": "yt-dlp/yt-dlp"}

LIKES = {
    "_type": "playlist", "id": "11817582", "title": "DJ Kōji (Likes)",
    "entries": [
        {"ie_key": "Soundcloud", "id": "1083788353", "title": "Midnight Drive", "_type": "url",
         "url": "https://soundcloud.com/kasbo/midnight-drive", "__x_forwarded_for_ip": None},
        {"ie_key": "Soundcloud", "id": "294512011", "title": "東京ナイト", "_type": "url",
         "url": "https://soundcloud.com/yunomi/tokyo-night", "__x_forwarded_for_ip": None},
        # a liked set: SoundcloudIE does not match set URLs, so no ie_key
        {"id": "2284613", "title": "The Royal Concept EP", "_type": "url",
         "url": "https://soundcloud.com/the-concept-band/sets/the-royal-concept-ep", "__x_forwarded_for_ip": None},
        {"ie_key": "Soundcloud", "id": "1524158182", "title": "Café del Mar (Extended Mix)", "_type": "url",
         "url": "https://soundcloud.com/energy52/cafe-del-mar-extended", "__x_forwarded_for_ip": None},
    ],
    "webpage_url": "https://soundcloud.com/djkoji/likes", "original_url": "https://soundcloud.com/djkoji/likes",
    "webpage_url_basename": "likes", "webpage_url_domain": "soundcloud.com",
    "extractor": "soundcloud:user", "extractor_key": "SoundcloudUser", "release_year": None,
    "playlist_count": 4, "epoch": 1795252487, "_version": _VERSION,
}
SETS = {
    "_type": "playlist", "id": "11817582", "title": "DJ Kōji (Sets)",
    "entries": [
        {"id": "2284613", "title": "Warmup", "_type": "url",
         "url": "https://soundcloud.com/djkoji/sets/warmup", "__x_forwarded_for_ip": None},
        {"id": "1759227795", "title": "Peak: Time/Floor", "_type": "url",
         "url": "https://soundcloud.com/djkoji/sets/peak-time-floor", "__x_forwarded_for_ip": None},
    ],
    "webpage_url": "https://soundcloud.com/djkoji/sets", "original_url": "https://soundcloud.com/djkoji/sets",
    "webpage_url_basename": "sets", "webpage_url_domain": "soundcloud.com",
    "extractor": "soundcloud:user", "extractor_key": "SoundcloudUser", "release_year": None,
    "playlist_count": 2, "epoch": 1795252488, "_version": _VERSION,
}


def _set(set_id: str, title: str, slug: str, tracks: list[tuple[str, str]]) -> dict:
    album = {"album": title, "album_artist": "DJ Kōji", "album_type": "playlist"}
    return {
        **album, "uploader": "DJ Kōji", "uploader_id": "11817582", "uploader_url": "https://soundcloud.com/djkoji",
        "duration": 400.0, "thumbnails": None, "id": set_id, "title": title, "_type": "playlist",
        # set entries are url_transparent with the album fields only: no title, no uploader
        "entries": [{**album, "ie_key": "Soundcloud", "id": tid, "_type": "url_transparent", "url": url,
                     "__x_forwarded_for_ip": None} for tid, url in tracks],
        "webpage_url": f"https://soundcloud.com/djkoji/sets/{slug}",
        "original_url": f"https://soundcloud.com/djkoji/sets/{slug}",
        "webpage_url_basename": slug, "webpage_url_domain": "soundcloud.com",
        "extractor": "soundcloud:set", "extractor_key": "SoundcloudSet", "duration_string": "6:40",
        "release_year": None, "album_artists": ["DJ Kōji"], "playlist_count": len(tracks),
        "epoch": 1795252488, "_version": _VERSION,
    }


WARMUP = _set("2284613", "Warmup", "warmup", [
    ("1083788353", "https://soundcloud.com/kasbo/midnight-drive"),
    ("294512011", "https://api-v2.soundcloud.com/tracks/294512011"),  # no permalink in the set JSON
])
PEAK = _set("1759227795", "Peak: Time/Floor", "peak-time-floor", [
    ("1524158182", "https://soundcloud.com/energy52/cafe-del-mar-extended"),
])


def _yt(video_id: str, title: str, duration: int | None, channel: str | None, availability: str | None) -> dict:
    channel_id = "UCBABnxM4Ar9ten8Mdjj1j0Q" if channel else None
    return {
        "_type": "url", "ie_key": "Youtube", "id": video_id, "url": f"https://www.youtube.com/watch?v={video_id}",
        "title": title, "description": None, "duration": duration, "channel_id": channel_id, "channel": channel,
        "channel_url": f"https://www.youtube.com/channel/{channel_id}" if channel_id else None,
        "uploader": channel, "uploader_id": "@cauchemar89" if channel else None,
        "uploader_url": "https://www.youtube.com/@cauchemar89" if channel else None,
        "thumbnails": [{"url": f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg", "height": 94, "width": 168}],
        "timestamp": None, "release_timestamp": None, "availability": availability, "view_count": 1234,
        "live_status": None, "channel_is_verified": None, "__x_forwarded_for_ip": None,
    }


YT_PLAYLIST = {
    "id": "PLw-VjHDlEOgs658kAHR_LAaILBXb-s6Q5", "title": "Warm-up Selects", "availability": "public",
    "channel_follower_count": None, "description": "", "tags": [], "thumbnails": [],
    "modified_date": "20260110", "view_count": 999, "playlist_count": 3,
    "channel": "Cauchemar", "channel_id": "UCBABnxM4Ar9ten8Mdjj1j0Q",
    "uploader": "Cauchemar", "uploader_id": "@cauchemar89", "uploader_url": "https://www.youtube.com/@cauchemar89",
    "channel_url": "https://www.youtube.com/channel/UCBABnxM4Ar9ten8Mdjj1j0Q", "_type": "playlist",
    "entries": [
        _yt("dQw4w9WgXcQ", "Never Gonna Give You Up", 213, "Rick Astley", "public"),
        _yt("aaaaaaaaaaa", "[Private video]", None, None, None),
        _yt("9bZkp7q19f0", "PSY - GANGNAM STYLE(강남스타일) M/V", 253, "officialpsy", None),
    ],
    "extractor_key": "YoutubeTab", "extractor": "youtube:tab",
    "webpage_url": "https://www.youtube.com/playlist?list=PLw-VjHDlEOgs658kAHR_LAaILBXb-s6Q5",
    "original_url": "https://www.youtube.com/playlist?list=PLw-VjHDlEOgs658kAHR_LAaILBXb-s6Q5&si=abc",
    "webpage_url_basename": "playlist", "webpage_url_domain": "youtube.com", "release_year": None,
    "epoch": 1795252490, "_version": _VERSION,
}

RECORDED = {
    "https://soundcloud.com/djkoji/likes": LIKES,
    "https://soundcloud.com/djkoji/sets": SETS,
    "https://soundcloud.com/djkoji/sets/warmup": WARMUP,
    "https://soundcloud.com/djkoji/sets/peak-time-floor": PEAK,
    "https://www.youtube.com/playlist?list=PLw-VjHDlEOgs658kAHR_LAaILBXb-s6Q5&si=abc": YT_PLAYLIST,
}


def _download_error(exc: Exception) -> DownloadError:
    """What YoutubeDL.trouble() raises for an extractor exception."""
    try:
        raise exc
    except Exception:
        return DownloadError(f"ERROR: {exc}", sys.exc_info())


def _http_error(status: int, reason: str) -> HTTPError:
    return HTTPError(Response(io.BytesIO(b""), "https://api-v2.soundcloud.com/resolve", {}, status=status,
                              reason=reason))


@pytest.fixture
def ytdl(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Replace extract_info; map URL -> recorded dict or exception. Calls are recorded."""
    answers: dict = dict(RECORDED)
    calls: list = []

    def extract_info(self, url, download=True, *args, **kwargs):
        calls.append((url, dict(self.params), download))
        answer = answers[url]
        if isinstance(answer, Exception):
            raise _download_error(answer)
        return copy.deepcopy(answer)

    monkeypatch.setattr(yt_dlp.YoutubeDL, "extract_info", extract_info)
    answers["calls"] = calls
    return answers


def test_soundcloud_likes_listing(ytdl: dict) -> None:
    listing = col.list_collection(col.soundcloud_likes_url("djkoji"))
    url, params, download = ytdl["calls"][0]
    assert url == "https://soundcloud.com/djkoji/likes"
    assert params["extract_flat"] == "in_playlist" and download is False
    assert (listing.kind, listing.id, listing.title) == ("likes", "11817582", "DJ Kōji (Likes)")
    assert listing.key == "soundcloud-likes-11817582"
    assert [e.url for e in listing.entries] == [
        "https://api.soundcloud.com/tracks/1083788353",
        "https://api.soundcloud.com/tracks/294512011",
        "https://api.soundcloud.com/tracks/1524158182",
    ]
    assert [e.position for e in listing.entries] == [0, 1, 2]
    assert listing.entries[1].title == "東京ナイト" and listing.entries[1].extractor == "soundcloud"
    assert listing.nested == ("https://soundcloud.com/the-concept-band/sets/the-royal-concept-ep",)
    # the URLs give their partition keys offline, no resolving
    assert [source_for(e.url).key for e in listing.entries] == [
        "soundcloud-1083788353", "soundcloud-294512011", "soundcloud-1524158182"]


def test_likes_entry_marked_drm_and_geo_by_probing(ytdl: dict) -> None:
    """Flat SoundCloud entries carry no playability: probing the entries marks them."""
    ytdl["https://api.soundcloud.com/tracks/1083788353"] = ExtractorError(
        "[soundcloud] 1083788353: This video is DRM protected", expected=True)
    ytdl["https://api.soundcloud.com/tracks/1524158182"] = GeoRestrictedError(
        "[soundcloud] This video is not available from your location due to geo restriction")
    ytdl["https://api.soundcloud.com/tracks/294512011"] = {"_type": "video", "id": "294512011", "title": "東京ナイト"}
    listing = col.list_collection("https://soundcloud.com/djkoji/likes")
    checked = col.check_entries(listing.entries)
    assert [e.unavailable_reason for e in checked] == ["drm", None, "geo"]
    assert "DRM" in checked[0].unavailable


def test_soundcloud_user_url_forms() -> None:
    assert col.soundcloud_likes_url("https://soundcloud.com/djkoji/") == "https://soundcloud.com/djkoji/likes"
    assert col.soundcloud_sets_url("@djkoji") == "https://soundcloud.com/djkoji/sets"
    with pytest.raises(UnsupportedSource):
        col.soundcloud_likes_url("dj koji/../x")


def test_soundcloud_sets(ytdl: dict) -> None:
    sets = col.list_soundcloud_sets("djkoji")
    assert [(s.kind, s.id, s.title) for s in sets] == [("set", "2284613", "Warmup"),
                                                      ("set", "1759227795", "Peak: Time/Floor")]
    warmup = sets[0]
    assert warmup.key == "soundcloud-set-2284613"
    assert [e.url for e in warmup.entries] == ["https://api.soundcloud.com/tracks/1083788353",
                                               "https://api.soundcloud.com/tracks/294512011"]
    # not the set owner: set entries carry album_artist, which is not the track's artist
    assert warmup.entries[0].artist is None and warmup.entries[0].title is None


def test_youtube_playlist(ytdl: dict) -> None:
    url = "https://www.youtube.com/playlist?list=PLw-VjHDlEOgs658kAHR_LAaILBXb-s6Q5&si=abc"
    listing = col.list_collection(url)
    assert listing.kind == "playlist" and listing.title == "Warm-up Selects"
    assert listing.url == "https://www.youtube.com/playlist?list=PLw-VjHDlEOgs658kAHR_LAaILBXb-s6Q5"
    first, private, psy = listing.entries
    assert first == col.Entry(url="https://www.youtube.com/watch?v=dQw4w9WgXcQ", id="dQw4w9WgXcQ",
                              extractor="youtube", title="Never Gonna Give You Up", artist="Rick Astley",
                              duration_s=213.0, position=0)
    assert private.unavailable == "private: [Private video]" and private.title is None
    assert psy.title.startswith("PSY") and psy.position == 2 and psy.unavailable is None
    assert source_for(psy.url).key == "youtube-9bZkp7q19f0"


@pytest.mark.parametrize("exc, phrase", [
    (ExtractorError("[soundcloud:user] Unable to download JSON metadata: HTTP Error 404: Not Found",
                    cause=_http_error(404, "Not Found")), "not found"),
    (ExtractorError("[youtube:tab] PLx: The playlist does not exist.", expected=True), "not found"),
    (ExtractorError("[youtube:tab] PLx: This playlist is private", expected=True), "private"),
    (ExtractorError("[soundcloud:user] Unable to download JSON metadata: HTTP Error 403: Forbidden",
                    cause=_http_error(403, "Forbidden")), "private"),
])
def test_missing_or_private_collection(ytdl: dict, exc: Exception, phrase: str) -> None:
    ytdl["https://soundcloud.com/nobody/likes"] = exc
    with pytest.raises(UnsupportedSource) as info:
        col.list_collection("https://soundcloud.com/nobody/likes")
    assert phrase in str(info.value) and "soundcloud.com/nobody/likes" in str(info.value)
    assert "please report" not in str(info.value)


@pytest.mark.parametrize("exc", [
    ExtractorError("[soundcloud:user] Unable to download webpage: HTTPSConnection(host='soundcloud.com', "
                   "port=443): Failed to resolve 'soundcloud.com' ([Errno -2] Name or service not known)",
                   cause=TransportError("Failed to resolve 'soundcloud.com'")),
    ExtractorError("[soundcloud:user] Unable to download JSON metadata: HTTP Error 503: Service Unavailable",
                   cause=_http_error(503, "Service Unavailable")),
])
def test_network_error_is_retryable(ytdl: dict, exc: Exception) -> None:
    ytdl["https://soundcloud.com/djkoji/likes"] = exc
    with pytest.raises(SourceUnavailable) as info:
        col.list_collection("https://soundcloud.com/djkoji/likes")
    assert not isinstance(info.value, UnsupportedSource)
    assert "retry" in str(info.value).lower()


def test_probe_entry_drm(ytdl: dict) -> None:
    ytdl["https://api.soundcloud.com/tracks/1083788353"] = ExtractorError(
        "[soundcloud] 1083788353: This video is DRM protected", expected=True)
    with pytest.raises(DrmProtected) as info:
        col.probe_entry("https://api.soundcloud.com/tracks/1083788353")
    assert info.value.reason == "drm" and isinstance(info.value, SourceUnavailable)
    _, params, download = ytdl["calls"][0]
    assert download is False and "extract_flat" not in params


def test_probe_entry_geo(ytdl: dict) -> None:
    ytdl["https://www.youtube.com/watch?v=dQw4w9WgXcQ"] = GeoRestrictedError(
        "[youtube] dQw4w9WgXcQ: The uploader has not made this video available in your country",
        countries=["US"])
    with pytest.raises(GeoBlocked) as info:
        col.probe_entry("https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    assert info.value.reason == "geo" and "proxy" in str(info.value).lower()


def test_probe_entry_removed_and_playable(ytdl: dict) -> None:
    ytdl["https://www.youtube.com/watch?v=aaaaaaaaaaa"] = ExtractorError(
        "[youtube] aaaaaaaaaaa: Video unavailable. This video has been removed by the uploader", expected=True)
    with pytest.raises(RemovedSource):
        col.probe_entry("https://www.youtube.com/watch?v=aaaaaaaaaaa")
    ytdl["https://www.youtube.com/watch?v=dQw4w9WgXcQ"] = {"_type": "video", "id": "dQw4w9WgXcQ"}
    assert col.probe_entry("https://www.youtube.com/watch?v=dQw4w9WgXcQ") is None


def test_single_track_and_spotify_are_not_collections(ytdl: dict) -> None:
    ytdl["https://soundcloud.com/kasbo/midnight-drive"] = {"_type": "video", "id": "1083788353"}
    with pytest.raises(UnsupportedSource, match="single track"):
        col.list_collection("https://soundcloud.com/kasbo/midnight-drive")
    with pytest.raises(UnsupportedSource, match="Spotify"):
        col.list_collection("https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M")
