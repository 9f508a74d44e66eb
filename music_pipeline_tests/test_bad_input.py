"""Bad input: the track fails alone with a message a user understands, the message is in
the run and in the catalog row, nothing partial is left in the library, and a retry after
the cause is fixed succeeds."""

import os
import shutil
import subprocess

import pytest
import yt_dlp

from music_pipeline.core.domain.errors import Reason
from music_pipeline.core.library.steps import Library

from .audio import make_track
from .conftest import library_files, output_files


def failure_message(result) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            return event.step_failure_data.error.message
    raise AssertionError("the run did not fail")


def assert_failed_cleanly(result, library: Library, key: str, step: str, *phrases: str) -> str:
    assert not result.success
    message = failure_message(result)
    row = library.catalog.tracks.get(key)
    assert row.status == "failed" and row.error_step == step
    for phrase in phrases:
        assert phrase in message, message
        assert phrase in row.error, row.error
    assert "Traceback" not in row.error
    assert output_files(library.root) == set()  # no output, no .part file
    assert not any(name.startswith(f"_raw/{key}") for name in library_files(library.root))
    return message


def test_404_url_then_retry_when_it_exists(process, library, http_server) -> None:
    key, result = process(http_server.url("later.flac"))
    assert_failed_cleanly(result, library, key, "raw_audio", "HTTP 404 (not found)", http_server.url("later.flac"))
    assert library.catalog.tracks.get(key).error_reason == "removed"  # not retried by itself: it would fail again
    make_track(http_server.root / "later.flac", seconds=3, codec_args=["-c:a", "flac"])
    key_again, retry = process(http_server.url("later.flac"))
    assert key_again == key and retry.success
    assert library.catalog.tracks.get(key).status == "done" and library.catalog.tracks.get(key).error is None


def test_url_no_extractor_supports(process, library, http_server) -> None:
    (http_server.root / "blog.html").write_text("<html><body><p>just words</p></body></html>")
    key, result = process(http_server.url("blog.html"))
    assert_failed_cleanly(result, library, key, "raw_audio", "No downloader supports")


def test_drm_protected_stream_is_refused_by_real_yt_dlp(process, library, http_server) -> None:
    (http_server.root / "drm.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
        '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://key",KEYFORMAT="com.apple.streamingkeydelivery"\n'
        "#EXTINF:10.0,\nseg0.ts\n#EXT-X-ENDLIST\n")
    key, result = process(http_server.url("drm.m3u8"))
    assert_failed_cleanly(result, library, key, "raw_audio", "DRM-protected")


def test_geo_blocked_source(process, library, http_server, monkeypatch) -> None:
    """No site geo-blocks 127.0.0.1, so the extractor raises what YouTube's does; yt-dlp's own
    machinery turns it into the DownloadError the pipeline sees."""
    def blocked(self, url):
        raise yt_dlp.utils.GeoRestrictedError(
            "The uploader has not made this video available in your country.", countries=["DE"])

    monkeypatch.setattr(yt_dlp.extractor.generic.GenericIE, "_real_extract", blocked)
    key, result = process(http_server.url("geo.flac"))
    assert_failed_cleanly(result, library, key, "raw_audio", "geo-blocked", "proxy")


def test_spotify_url_explains_drm(process, library) -> None:
    key, result = process("https://open.spotify.com/track/4cOdK2wGLETKBW3PvgPWqT")
    assert_failed_cleanly(result, library, key, "raw_audio", "its audio is DRM-protected")


def test_file_that_is_not_audio(process, library, tmp_path) -> None:
    fake = tmp_path / "holiday.mp3"
    fake.write_text("These are my holiday notes, not a song.\n" * 20)
    key, result = process(str(fake))
    assert_failed_cleanly(result, library, key, "raw_audio", "holiday.mp3 is not an audio file")


def test_image_file_has_no_audio_stream(process, library, tmp_path) -> None:
    image = tmp_path / "cover.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1",
                    "-f", "image2", "-c:v", "png", str(image)], check=True)
    key, result = process(str(image))
    assert_failed_cleanly(result, library, key, "raw_audio", "cover.flac")


def test_zero_byte_file(process, library, tmp_path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    key, result = process(str(empty))
    assert_failed_cleanly(result, library, key, "raw_audio", "empty.wav is empty (0 bytes)")


@pytest.mark.parametrize("suffix, codec", [(".wav", "pcm_s16le"), (".flac", "flac")])
def test_truncated_file(process, library, tmp_path, suffix, codec) -> None:
    whole = make_track(tmp_path / f"whole{suffix}", seconds=20, codec_args=["-c:a", codec])
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    key, result = process(str(cut))
    assert_failed_cleanly(result, library, key, "raw_audio", f"cut{suffix} is truncated")
    # the whole file goes through afterwards
    _, retry = process(str(whole))
    assert retry.success


def test_ffmpeg_failure_then_retry(process, library, tmp_path, monkeypatch, song_file) -> None:
    """ffmpeg dies while encoding ALAC (a wrapper in PATH makes the real ffmpeg fail for that
    one job): the track fails with ffmpeg's message and no partial file; with the real
    ffmpeg back, a retry succeeds."""
    real = shutil.which("ffmpeg")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ffmpeg"
    wrapper.write_text(f"""#!/bin/sh
case "$*" in
  *"-c:a alac"*) echo "Error while opening encoder for output stream #0:0" >&2; exit 1;;
esac
exec {real} "$@"
""")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    key, result = process(str(song_file))
    assert not result.success
    row = library.catalog.tracks.get(key)
    assert row.status == "failed" and row.error_step == "m4a_alac"
    assert "transcoding to ALAC failed" in row.error and "Error while opening encoder" in row.error
    assert "transcoding to ALAC failed" in failure_message(result)
    assert not any(name.startswith("ALAC/") or ".part-" in name for name in library_files(library.root))
    monkeypatch.setenv("PATH", os.environ["PATH"].split(os.pathsep, 1)[1])
    _, retry = process(str(song_file))
    assert retry.success and library.catalog.tracks.get(key).status == "done"


@pytest.fixture
def small_disk(tmp_path):
    """A real 6 MB filesystem (tmpfs), so writes fail with ENOSPC as on a full disk."""
    if os.geteuid() != 0:
        pytest.fail("the full-disk test mounts a tmpfs and needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk_resources(small_disk) -> dict:
    """The pipeline's resources with the library on the small disk."""
    from music_pipeline.resources import (
        AnalysisResource,
        DownloaderResource,
        LibraryResource,
        SpotifyResource,
    )

    return {"library": LibraryResource(root=str(small_disk / "library")),
            "downloader": DownloaderResource(retries=0), "analysis": AnalysisResource(), "spotify": SpotifyResource()}


def test_full_disk_then_retry_after_space_is_freed(process, tmp_path, small_disk, small_disk_resources,
                                                   instance) -> None:
    resources = small_disk_resources
    lib = resources["library"].get()
    # 24 s of 24-bit 48 kHz stereo: ~7 MB as WAV, more than the disk holds once the rest is written.
    source = make_track(tmp_path / "Big - Track.flac", seconds=24, rate=48_000,
                        codec_args=["-c:a", "flac", "-sample_fmt", "s32"])
    key, result = process(str(source), library_override=lib, resources_override=resources)
    assert not result.success
    row = lib.catalog.tracks.get(key)
    assert row.status == "failed" and row.error_reason == "disk-full"
    assert "full" in row.error and "Free some space" in row.error
    assert not any(".part-" in name for name in library_files(lib.root))
    for fmt in ("ALAC", "AIFF", "WAV"):
        record = lib.catalog.files.get(key, fmt)
        # whatever was written is complete and verified; the failed format left nothing behind
        assert record is None or lib.verify(key, fmt) == []
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    _, retry = process(str(source), library_override=lib, resources_override=resources)
    assert retry.success and lib.catalog.tracks.get(key).status == "done"


def test_tokens_in_a_failing_url_stay_out_of_messages(process, library, http_server) -> None:
    url = http_server.url("private.flac?token=s3cr3t-value&id=1")
    key, result = process(url)
    message = assert_failed_cleanly(result, library, key, "raw_audio", "HTTP 404")
    assert "s3cr3t-value" not in message and "s3cr3t-value" not in library.catalog.tracks.get(key).error
    logs = " ".join(str(e.message) for e in result.all_events if e.message)
    assert "s3cr3t-value" not in logs


def test_vbr_mp3_without_a_xing_header_is_not_called_truncated(process, library, tmp_path) -> None:
    """Without a Xing header ffprobe guesses an MP3's length from its first frames' bitrate;
    a guess that is off must not reject an intact file."""
    import numpy as np

    from music_pipeline.core.audio import media

    from .audio import write

    # 5 s of silence (tiny frames) then 15 s of noise (big frames): the bitrate guess from the
    # first frames puts the length near two minutes.
    noise = np.random.default_rng(0).standard_normal((44_100 * 15, 2)) * 0.5
    signal = np.concatenate([np.zeros((44_100 * 5, 2)), noise]).astype(np.float32)
    mp3 = write(tmp_path / "vbr.mp3", signal, 44_100, ["-c:a", "libmp3lame", "-q:a", "0", "-write_xing", "0"])
    assert media.probe(mp3).duration_s > 60  # the header guess really is wrong
    key, result = process(str(mp3))
    assert result.success, failure_message(result)
    assert abs(library.track(key).duration_s - media.decoded_duration(mp3)) < 0.05


def test_a_disk_filling_up_during_a_download_is_a_full_disk_not_the_source(process, small_disk, small_disk_resources,
                                                                             http_server) -> None:
    """yt-dlp reports ENOSPC inside a DownloadError; it is a full disk (retried when space
    returns), not "source-unavailable"."""
    resources = small_disk_resources
    lib = resources["library"].get()
    # noise does not compress: ~11 MB of FLAC, more than the 6 MB disk can take during the download
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anoisesrc=d=60:a=0.5:r=48000",
                    "-ac", "2", "-c:a", "flac", str(http_server.root / "Huge - Noise.flac")], check=True)
    key, result = process(http_server.url("Huge%20-%20Noise.flac"), library_override=lib,
                          resources_override=resources)
    assert not result.success
    row = lib.catalog.tracks.get(key)
    assert row.status == "failed" and row.error_reason == "disk-full", row.error
    assert "full" in row.error and "Free some space" in row.error
    assert Reason.of(row.error_reason).retryable
    assert not list((small_disk / "library" / "_raw").glob("download-*"))  # nothing half-downloaded kept
