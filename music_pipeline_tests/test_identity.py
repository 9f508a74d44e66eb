"""Track identity: every URL form of one source gives one partition key."""

from pathlib import Path

import pytest

from music_pipeline.core.domain.errors import UnsupportedSource
from music_pipeline.core.domain.identity import canonical_url, key_for_file, key_for_url, source_for

VIDEO = "dQw4w9WgXcQ"


@pytest.mark.parametrize("url", [
    f"https://www.youtube.com/watch?v={VIDEO}",
    f"https://youtube.com/watch?v={VIDEO}&t=42s",
    f"http://m.youtube.com/watch?feature=share&v={VIDEO}",
    f"https://music.youtube.com/watch?v={VIDEO}&list=RDAMVM{VIDEO}",
    f"https://www.youtube.com/watch?v={VIDEO}&list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs&index=3",
    f"https://youtu.be/{VIDEO}",
    f"https://youtu.be/{VIDEO}?si=AbCdEf123&t=10",
    f"https://www.youtube.com/shorts/{VIDEO}",
    f"https://www.youtube.com/embed/{VIDEO}?autoplay=1",
    f"https://www.youtube-nocookie.com/embed/{VIDEO}",
    f"https://www.youtube.com/live/{VIDEO}?feature=shared",
    f"  https://www.youtube.com/watch?v={VIDEO}  ",
])
def test_every_youtube_url_form_gives_one_key(url: str) -> None:
    source = key_for_url(url)
    assert source.key == f"youtube-{VIDEO}"
    assert source.url == f"https://www.youtube.com/watch?v={VIDEO}"


def test_youtube_ids_keep_their_case() -> None:
    assert key_for_url("https://youtu.be/aBcDeFgHiJk").key != key_for_url("https://youtu.be/abcdefghijk").key


@pytest.mark.parametrize("url", [
    "https://open.spotify.com/track/4cOdK2wGLETKBW3PvgPWqT",
    "https://open.spotify.com/track/4cOdK2wGLETKBW3PvgPWqT?si=1a2b3c4d5e",
    "https://open.spotify.com/intl-de/track/4cOdK2wGLETKBW3PvgPWqT",
    "spotify:track:4cOdK2wGLETKBW3PvgPWqT",
])
def test_spotify_forms(url: str) -> None:
    assert key_for_url(url).key == "spotify-4cOdK2wGLETKBW3PvgPWqT"


@pytest.mark.parametrize("url", [
    "https://api.soundcloud.com/tracks/1234567",
    "https://api-v2.soundcloud.com/tracks/1234567",
    "soundcloud:tracks:1234567",
])
def test_soundcloud_id_forms(url: str) -> None:
    assert key_for_url(url).key == "soundcloud-1234567"


@pytest.mark.parametrize("url", [
    "https://soundcloud.com/artist-name/song-title",
    "https://m.soundcloud.com/artist-name/song-title?in=artist-name/sets/summer&utm_source=clipboard",
    "http://www.soundcloud.com/artist-name/song-title/",
    "https://SoundCloud.com/artist-name/song-title#t=1:02",
    "https://soundcloud.com/artist-name/song-title?si=0123abcd&utm_medium=text",
])
def test_soundcloud_permalinks_have_one_canonical_spelling(url: str) -> None:
    """What dedup and discovery compare before the permalink is resolved to its track id."""
    assert canonical_url(url) == "https://soundcloud.com/artist-name/song-title"


def test_soundcloud_permalink_is_resolved_to_its_track_id() -> None:
    asked = []

    def resolve(url: str) -> tuple[str, str]:
        asked.append(url)
        return "Soundcloud", "987654"

    source = key_for_url("https://soundcloud.com/some-artist/some-track?in=x/sets/y&utm_source=clipboard", resolve)
    assert source.key == "soundcloud-987654"
    assert asked == ["https://soundcloud.com/some-artist/some-track"]


def test_soundcloud_permalink_without_resolver_is_refused_not_misfiled() -> None:
    with pytest.raises(UnsupportedSource, match="permalink"):
        key_for_url("https://soundcloud.com/some-artist/some-track")


def test_other_sites_get_a_safe_extractor_key() -> None:
    assert key_for_url("https://vimeo.com/76979871").key == "vimeo-76979871"


def test_generic_urls_are_keyed_by_the_whole_url_not_the_file_name() -> None:
    a = key_for_url("http://127.0.0.1:8000/music/track.wav")
    b = key_for_url("http://127.0.0.1:9000/other/track.wav")
    assert a.key.startswith("url-") and b.key.startswith("url-")
    assert a.key != b.key
    # tracking parameters and fragments do not make a new track
    assert key_for_url("http://127.0.0.1:8000/music/track.wav?utm_source=x#t=3").key == a.key


def test_keys_use_only_partition_safe_characters() -> None:
    import re

    for url in ["https://vimeo.com/76979871", "http://h/ä ö/ü.mp3", f"https://youtu.be/{VIDEO}"]:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", key_for_url(url).key)


def test_files_are_keyed_by_content(tmp_path: Path) -> None:
    a = tmp_path / "a.wav"
    b = tmp_path / "copy with another name.wav"
    a.write_bytes(b"RIFF1234")
    b.write_bytes(b"RIFF1234")
    c = tmp_path / "c.wav"
    c.write_bytes(b"RIFF5678")
    assert key_for_file(a).key == key_for_file(b).key
    assert key_for_file(a).key != key_for_file(c).key
    assert key_for_file(a).key.startswith("file-") and len(key_for_file(a).key) == len("file-") + 16


def test_source_for_rejects_what_is_neither_url_nor_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedSource, match="neither a URL nor an existing file"):
        source_for(str(tmp_path / "nothing-here.mp3"))
    with pytest.raises(UnsupportedSource, match="not an http"):
        canonical_url("ftp://example.com/a.mp3")


def test_secrets_in_urls_are_redacted_for_display() -> None:
    from music_pipeline.core.domain.identity import redact_url

    shown = redact_url("https://me:hunter2@cdn.example.com/a.mp3?X-Amz-Signature=abc123&id=7&access_token=zz")
    assert "hunter2" not in shown and "abc123" not in shown and "zz" not in shown
    assert shown.startswith("https://me:***@cdn.example.com/a.mp3?") and "id=7" in shown
    assert redact_url(f"https://www.youtube.com/watch?v={VIDEO}") == f"https://www.youtube.com/watch?v={VIDEO}"
    # a private SoundCloud track's share link carries its secret in the path
    assert redact_url("https://soundcloud.com/artist/demo/s-AbC123xYz?si=1") == "https://soundcloud.com/artist/demo/s-***?si=1"
    assert redact_url("https://soundcloud.com/artist/s-curve") == "https://soundcloud.com/artist/s-***"  # a title too: masked
    assert redact_url("https://soundcloud.com/artist/sets/summer") == "https://soundcloud.com/artist/sets/summer"


@pytest.mark.parametrize("url", [
    "https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
    "https://www.youtube.com/@SomeChannel/videos",
    "https://artist.bandcamp.com/album/some-album",
])
def test_playlists_and_channels_are_not_one_track(url: str) -> None:
    with pytest.raises(UnsupportedSource, match="playlist, channel or search"):
        key_for_url(url)


def test_source_metadata_is_kept_from_a_real_shaped_info_dict() -> None:
    """What yt-dlp's YouTube extractor returns (trimmed); YouTube itself cannot be reached here."""
    from music_pipeline.core.sources.download import Downloaded

    info = {
        "id": VIDEO, "title": "Rick Astley - Never Gonna Give You Up (Official Music Video)",
        "uploader": "Rick Astley", "channel": "Rick Astley", "duration": 213,
        "webpage_url": f"https://www.youtube.com/watch?v={VIDEO}", "extractor_key": "Youtube",
        "thumbnail": f"https://i.ytimg.com/vi_webp/{VIDEO}/maxresdefault.webp",
        "thumbnails": [{"url": f"https://i.ytimg.com/vi/{VIDEO}/hqdefault.jpg", "preference": -7}],
    }
    meta = Downloaded(path=Path("x.webm"), info=info).metadata
    assert meta["artist"] == "Rick Astley" and meta["source_duration_s"] == 213
    assert meta["title"].startswith("Rick Astley - Never Gonna")
    assert meta["thumbnail_url"].endswith("maxresdefault.webp") and meta["extractor"] == "Youtube"
    music = {**info, "track": "Never Gonna Give You Up", "artists": ["Rick Astley"], "album": "Whenever You Need Somebody"}
    meta = Downloaded(path=Path("x.webm"), info=music).metadata
    assert (meta["title"], meta["artist"], meta["album"]) == ("Never Gonna Give You Up", "Rick Astley",
                                                             "Whenever You Need Somebody")
