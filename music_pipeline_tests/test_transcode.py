"""Outputs: codec, sample rate, bit depth, duration, WAV header and tags, read back with
ffprobe and mutagen from real ffmpeg transcodes."""

import json
import subprocess
from pathlib import Path

import pytest

from music_pipeline.core.audio import media, tagging
from music_pipeline.core.library.steps import Library, register_target

from .audio import make_track, song, write

CASES = [
    # (name, writer args, expected (rate, bits))
    ("flac16_44k.flac", dict(rate=44_100, codec_args=["-c:a", "flac", "-sample_fmt", "s16"]), (44_100, 16)),
    ("wav16_22k_mono.wav", dict(rate=22_050, codec_args=["-c:a", "pcm_u8", "-ac", "1"]), (22_050, 16)),
    ("flac24_96k.flac", dict(rate=96_000, codec_args=["-c:a", "flac", "-sample_fmt", "s32"]), (48_000, 24)),
    ("wav24_88k.wav", dict(rate=88_200, codec_args=["-c:a", "pcm_s24le"]), (44_100, 24)),
    ("float32.wav", dict(rate=44_100, codec_args=["-c:a", "pcm_f32le"]), (44_100, 24)),
    ("mp3_48k.mp3", dict(rate=48_000, codec_args=["-c:a", "libmp3lame", "-b:a", "192k"]), (48_000, 16)),
    ("aac_44k.m4a", dict(rate=44_100, codec_args=["-c:a", "aac", "-b:a", "160k"]), (44_100, 16)),
    ("opus.opus", dict(rate=48_000, codec_args=["-c:a", "libopus", "-b:a", "96k"]), (48_000, 16)),
]
CODECS = {("ALAC", 16): "alac", ("ALAC", 24): "alac", ("AIFF", 16): "pcm_s16be", ("AIFF", 24): "pcm_s24be",
          ("WAV", 16): "pcm_s16le", ("WAV", 24): "pcm_s24le"}


def ffprobe_stream(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-select_streams",
                          "a:0", str(path)], capture_output=True, check=True).stdout
    return json.loads(out)["streams"][0]


@pytest.mark.parametrize("name, writer, expected", CASES, ids=[c[0] for c in CASES])
def test_outputs_keep_lossless_depth_and_cap_rate(tmp_path: Path, library: Library, name, writer, expected) -> None:
    source = make_track(tmp_path / name, seconds=4, **writer)
    key = register_target(library, str(source))[0].key
    library.fetch_raw(key)
    source_duration = library.track(key).duration_s
    rate, bits = expected
    for fmt in ("ALAC", "AIFF", "WAV"):
        result = library.render(key, fmt)
        stream = ffprobe_stream(result.path)
        assert stream["codec_name"] == CODECS[(fmt, bits)], fmt
        assert int(stream["sample_rate"]) == rate, fmt
        depth = int(stream.get("bits_per_raw_sample") or stream.get("bits_per_sample") or 0)
        assert depth == bits, fmt
        assert abs(media.decoded_duration(result.path) - source_duration) <= 0.05, fmt
        assert library.verify(key, fmt) == []
    # the original really was what we claimed
    assert abs(source_duration - 4.0) <= 0.05


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_wav_header_is_plain_pcm_even_for_24_bit_and_multichannel(tmp_path: Path, library: Library,
                                                                  channels: int) -> None:
    import numpy as np

    rate = 96_000 if channels == 6 else 44_100
    source = write(tmp_path / f"ch{channels}.flac", song(3, rate=rate, channels=channels), rate,
                   ["-c:a", "flac", "-sample_fmt", "s32"])
    key = register_target(library, str(source))[0].key
    library.fetch_raw(key)
    result = library.render(key, "WAV")
    assert media.wav_format_tag(result.path) == 1  # WAVE_FORMAT_PCM, not 0xFFFE
    stream = ffprobe_stream(result.path)
    assert stream["channels"] == channels
    assert stream["codec_name"] == "pcm_s24le"
    # ffmpeg itself would have written WAVE_FORMAT_EXTENSIBLE here: the rule is not moot.
    reference = tmp_path / "ffmpeg.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c:a", "pcm_s24le", str(reference)], check=True)
    assert media.wav_format_tag(reference) == 0xFFFE
    assert np.isclose(media.decoded_duration(result.path), 3.0, atol=0.05)


def test_tags_are_written_into_every_format(tmp_path: Path, library: Library) -> None:
    cover = tmp_path / "cover.jpg"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=blue:s=300x300", "-frames:v", "1",
                    str(cover)], check=True)
    plain = make_track(tmp_path / "plain.flac", seconds=4, codec_args=["-c:a", "flac"])
    source = tmp_path / "Ünïcode Artist - Song (Extended Mix).flac"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(plain), "-i", str(cover), "-map", "0:a", "-map", "1:v",
                    "-c:a", "copy", "-c:v", "mjpeg", "-disposition:v", "attached_pic",
                    "-metadata", "ISRC=GBAYE0601498", "-metadata", "album=Night Album", str(source)], check=True)
    key = register_target(library, str(source))[0].key
    library.fetch_raw(key)
    library.catalog.tracks.update(key, bpm=127.6, key_name="F# minor", key_short="F#m", camelot="11A", open_key="4m")
    for fmt in ("ALAC", "AIFF", "WAV"):
        path = library.render(key, fmt).path
        tags = tagging.read_tags(path, fmt)
        assert tags["title"] == "Song (Extended Mix)"
        assert tags["artist"] == "Ünïcode Artist"
        assert tags["album"] == "Night Album"
        assert tags["bpm"] == 128
        assert tags["key"] == "F#m"
        assert tags["isrc"] == "GBAYE0601498"
        assert tags["source_url"] is None  # a local file has no source page
        assert tags["cover_bytes"] > 100, fmt
        assert library.verify(key, fmt) == []
    assert Path(library.track(key).cover_path).exists()


def test_a_wav_tagged_with_riff_info_is_imported_under_its_artist_and_title(tmp_path: Path, library: Library) -> None:
    """ffmpeg (and many tools) tag a WAV with a RIFF LIST/INFO chunk, which mutagen does not
    read: the tags still reach the catalog, the file names and every output's tags."""
    source = make_track(tmp_path / "take 3.wav", seconds=3, codec_args=["-c:a", "pcm_s16le"],
                        metadata={"title": "Night Drive", "artist": "Kasbo", "album": "Places"})
    assert b"INFO" in source.read_bytes()[:4096] and tagging.read_source_tags(source) == {}  # mutagen alone: none
    key = register_target(library, str(source))[0].key
    row = library.fetch_raw(key)
    assert (row.artist, row.title, row.album) == ("Kasbo", "Night Drive", "Places")
    for fmt in ("ALAC", "AIFF", "WAV"):
        path = library.render(key, fmt).path
        assert path.parent.name == "Kasbo" and path.stem == "Kasbo - Night Drive"
        tags = tagging.read_tags(path, fmt)
        assert (tags["artist"], tags["title"], tags["album"]) == ("Kasbo", "Night Drive", "Places")


def test_a_riff_info_source_field_is_not_taken_for_an_isrc(tmp_path: Path) -> None:
    """RIFF INFO's "ISRC" chunk is the *source* ("Vinyl rip"); only a real ISRC code is kept."""
    rip = make_track(tmp_path / "rip.wav", seconds=1, codec_args=["-c:a", "pcm_s16le"],
                     metadata={"title": "T", "ISRC": "Vinyl rip"})
    coded = make_track(tmp_path / "coded.wav", seconds=1, codec_args=["-c:a", "pcm_s16le"],
                       metadata={"title": "T", "ISRC": "US-RC1-76-07839"})
    assert tagging.read_source_tags(rip, media.probe(rip).tags).get("isrc") is None
    assert tagging.read_source_tags(coded, media.probe(coded).tags)["isrc"] == "USRC17607839"


def test_key_notation_is_configurable(tmp_path: Path, library_root: Path) -> None:
    lib = Library(library_root, key_notation="camelot")
    source = make_track(tmp_path / "k.flac", seconds=3, codec_args=["-c:a", "flac"])
    key = register_target(lib, str(source))[0].key
    lib.fetch_raw(key)
    lib.catalog.tracks.update(key, bpm=120.0, key_name="A minor", key_short="Am", camelot="8A", open_key="1m")
    path = lib.render(key, "ALAC").path
    assert tagging.read_tags(path, "ALAC")["key"] == "8A"


def test_wav_backup_dir_receives_every_wav(tmp_path: Path, library_root: Path) -> None:
    backup = tmp_path / "backup volume"
    lib = Library(library_root, wav_backup_dir=backup)
    source = make_track(tmp_path / "Artist - B.flac", seconds=3, codec_args=["-c:a", "flac"])
    key = register_target(lib, str(source))[0].key
    lib.fetch_raw(key)
    result = lib.render(key, "WAV")
    assert result.backup == backup / "WAV" / "Artist" / "Artist - B.wav"
    assert result.backup.read_bytes() == result.path.read_bytes()


def test_a_file_changed_in_place_or_replaced_is_probed_again(tmp_path: Path) -> None:
    """ffprobe's answer is kept per file identity: a file rewritten in place, or replaced by
    another under the same name, is described as it is now, never as it was."""
    first = make_track(tmp_path / "a.flac", seconds=2, codec_args=["-c:a", "flac"])
    assert media.probe(first).sample_rate == 44_100
    assert media.probe(first).duration_s == pytest.approx(2, abs=0.05)  # the kept answer
    other = make_track(tmp_path / "b.flac", seconds=3, rate=48_000, codec_args=["-c:a", "flac"])
    first.write_bytes(other.read_bytes())  # the same inode, rewritten
    assert (media.probe(first).sample_rate, round(media.probe(first).duration_s)) == (48_000, 3)
    third = make_track(tmp_path / "c.flac", seconds=4, rate=96_000, codec_args=["-c:a", "flac"])
    third.replace(first)  # another file under the name
    assert (media.probe(first).sample_rate, round(media.probe(first).duration_s)) == (96_000, 4)
    media.probe(first).tags["title"] = "changed by a caller"
    assert "title" not in media.probe(first).tags or media.probe(first).tags["title"] != "changed by a caller"
