"""Serato's frames in real AIFF, WAV and ALAC files, read back with independent readers:
serato-tools (MIT) parses the BeatGrid, Markers2, Markers_ and Autotags; mutagen shows the
raw GEOB frames and freeform atoms; ffmpeg's md5 of the decoded audio proves it untouched.
Our own module never reads back what it wrote here."""

from __future__ import annotations

import base64
import os
import struct
import subprocess
from pathlib import Path

import pytest
from mutagen import aiff, id3, mp4, wave
from serato_tools.track_autotags import TrackAutotags
from serato_tools.track_beatgrid import TrackBeatgrid
from serato_tools.track_cues_v1 import TrackCuesV1
from serato_tools.track_cues_v2 import TrackCuesV2

from music_pipeline.core.audio import tagging
from music_pipeline.core.audio.beatgrid import Cue, Grid, Segment
from music_pipeline.core.dj import serato
from music_pipeline.core.domain.errors import TrackError

GRID = Grid((Segment(0.25, 128.0, 1),))
CUES = (
    Cue(0.5, "Intro", 0, (0xCC, 0x00, 0x00)),
    Cue(1.2346, "Drop – ü", 3, (0x00, 0x88, 0xCC)),
    Cue(2.0, "Outro", 6, (40, 226, 20)),  # beyond Markers_' five: Markers2 only
    Cue(1.0, "memory", -1),  # Serato has no memory cue
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
ATOMS = {"Serato BeatGrid": "----:com.serato.dj:beatgrid", "Serato Markers2": "----:com.serato.dj:markersv2",
         "Serato Markers_": "----:com.serato.dj:markers", "Serato Autotags": "----:com.serato.dj:autgain"}


def make(path: Path, codec: str, fmt: str | None) -> Path:
    """Three seconds of sine encoded by ffmpeg, tagged by the project's tagging (title,
    artist, cover) unless ``fmt`` is None."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=3", "-c:a", codec, str(path)],
                   check=True)
    if fmt:
        tagging.write_tags(path, fmt, tagging.Tags(title="Title", artist="Artist", cover=PNG))
    return path


def audio_md5(path: Path) -> str:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "md5", "-"],
                          capture_output=True, check=True, text=True).stdout.strip()


def mp4_frame(path: Path, name: str) -> bytes:
    """The frame inside a Serato MP4 atom, unwrapped as serato-tags' tagdump.py does (the
    BeatGrid's extra last character dropped first, as Mixxx's parseBase64Encoded does)."""
    value = bytes(mp4.MP4(path).tags[ATOMS[name]][0])
    assert all(len(line) <= 72 for line in value.split(b"\n"))
    assert b"=" not in value
    value = value[:-1] if name == "Serato BeatGrid" else value
    tail = len(value.splitlines()[-1]) % 4
    data = base64.b64decode(value + {1: b"A==", 2: b"==", 3: b"=", 0: b""}[tail])
    head = b"application/octet-stream\x00\x00" + name.encode() + b"\x00"
    assert data.startswith(head)
    return data[len(head):]


def cue_entries(markers2: TrackCuesV2) -> dict[int, tuple[int, bytes, str]]:
    return {e.index: (e.position, e.color, e.name) for e in markers2.entries if isinstance(e, TrackCuesV2.CueEntry)}


def check_markers2(markers2: TrackCuesV2, locked: bool = True) -> None:
    assert cue_entries(markers2) == {0: (500, b"\xcc\x00\x00", "Intro"), 3: (1235, b"\x00\x88\xcc", "Drop – ü"),
                                     6: (2000, bytes((40, 226, 20)), "Outro")}
    assert markers2.is_beatgrid_locked() is locked
    assert markers2.get_track_color() == b"\xff\xff\xff"


def check_beatgrid(data: TrackBeatgrid) -> None:
    marker, footer = data.entries
    assert isinstance(marker, TrackBeatgrid.TerminalBeatgridMarker)
    assert marker.position == pytest.approx(0.25) and marker.bpm == pytest.approx(128.0)
    assert isinstance(footer, TrackBeatgrid.Footer)


def test_aiff_frames_read_by_serato_tools(tmp_path: Path) -> None:
    path = make(tmp_path / "x.aiff", "pcm_s16be", "AIFF")
    before = audio_md5(path)

    assert serato.write(path, GRID, CUES) is True

    check_beatgrid(TrackBeatgrid(str(path)))
    check_markers2(TrackCuesV2(str(path)))
    autotags = TrackAutotags(str(path))
    assert (autotags.bpm, autotags.autogain, autotags.gaindb) == (128.0, 0.0, 0.0)
    old = TrackCuesV1(str(path)).entries
    assert len(old) == 15  # 5 cues, 9 loops, the track colour
    cues = [(e.start_position, e.color, e.type) for e in old[:5]]
    assert cues == [(500, b"\xcc\x00\x00", TrackCuesV1.EntryType.CUE), (None, b"\x00\x00\x00", 0),
                    (None, b"\x00\x00\x00", 0), (1235, b"\x00\x88\xcc", TrackCuesV1.EntryType.CUE),
                    (None, b"\x00\x00\x00", 0)]
    assert all(e.type == TrackCuesV1.EntryType.LOOP and e.start_position is None for e in old[5:14])
    assert old[14].color == b"\xff\xff\xff"

    tags = aiff.AIFF(path).tags
    geobs = {f.desc: f for f in tags.getall("GEOB")}
    assert set(geobs) == {"Serato BeatGrid", "Serato Markers2", "Serato Markers_", "Serato Autotags"}
    assert {f.mime for f in geobs.values()} == {"application/octet-stream"}
    assert len(geobs["Serato Markers2"].data) == 470  # Serato's pre-allocated size
    assert geobs["Serato Markers2"].data[:2] == b"\x01\x01"
    assert all(len(line) <= 72 for line in geobs["Serato Markers2"].data[2:].rstrip(b"\x00").split(b"\n"))
    assert str(tags["TIT2"]) == "Title" and str(tags["TPE1"]) == "Artist" and tags.getall("APIC")[0].data == PNG
    assert tags.version[:2] == (2, 4)
    assert audio_md5(path) == before


def test_alac_atoms_read_by_serato_tools(tmp_path: Path) -> None:
    path = make(tmp_path / "x.m4a", "alac", "ALAC")
    before = audio_md5(path)

    assert serato.write(path, GRID, CUES) is True

    tags = mp4.MP4(path).tags
    assert {k for k in tags if k.startswith("----:com.serato.dj:")} == set(ATOMS.values())
    check_beatgrid(TrackBeatgrid(mp4_frame(path, "Serato BeatGrid")))
    check_markers2(TrackCuesV2(mp4_frame(path, "Serato Markers2")))
    autotags = TrackAutotags(mp4_frame(path, "Serato Autotags"))
    assert autotags.bpm == 128.0
    # Markers_ in MP4 has its own 19-byte entries (serato-tags' data/mp4-decoded, Mixxx's parseMP4)
    old = mp4_frame(path, "Serato Markers_")
    assert old[:6] == b"\x02\x05\x00\x00\x00\x0e"
    entries = [struct.unpack(">II6s3sBB", old[6 + 19 * i:25 + 19 * i]) for i in range(14)]
    assert [(e[0], e[3], e[4]) for e in entries[:5]] == [
        (500, b"\xcc\x00\x00", 1), (0xFFFFFFFF, b"\x00\x00\x00", 0), (0xFFFFFFFF, b"\x00\x00\x00", 0),
        (1235, b"\x00\x88\xcc", 1), (0xFFFFFFFF, b"\x00\x00\x00", 0)]
    assert all(e[0] == 0xFFFFFFFF and e[4] == 3 for e in entries[5:])
    assert old[6 + 19 * 14:6 + 19 * 14 + 4] == b"\x00\xff\xff\xff"
    assert tags["\xa9nam"] == ["Title"] and tags["\xa9ART"] == ["Artist"] and bytes(tags["covr"][0]) == PNG
    assert audio_md5(path) == before


@pytest.mark.parametrize("name, codec, fmt", [("x.aiff", "pcm_s16be", "AIFF"), ("x.m4a", "alac", "ALAC")])
def test_second_write_of_the_same_data_writes_nothing(tmp_path: Path, name: str, codec: str, fmt: str) -> None:
    path = make(tmp_path / name, codec, fmt)
    assert serato.write(path, GRID, CUES) is True
    stat, content = path.stat(), path.read_bytes()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 5_000_000_000))  # any rewrite would show
    stat = path.stat()

    assert serato.write(path, GRID, CUES) is False
    assert serato.write(path, None, CUES) is False  # no grid: the file's own is kept, nothing to do

    after = path.stat()
    assert (after.st_mtime_ns, after.st_ino) == (stat.st_mtime_ns, stat.st_ino)
    assert path.read_bytes() == content
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def _serato32(value: int) -> bytes:
    """serato-tags' serato_markers_.md conversion, written here from the document."""
    a, b, c = value >> 16 & 0xFF, value >> 8 & 0xFF, value & 0xFF
    return bytes((a >> 5, (b >> 6 | a << 2) & 0x7F, (c >> 7 | b << 1) & 0x7F, c & 0x7F))


def stale_frames() -> dict[str, bytes]:
    """What an earlier Serato session left: a red cue "Old" at 99 s in both marker frames,
    a track colour and a lock in Markers2, Serato's measured auto gain."""
    cue = b"\x00\x02" + struct.pack(">I", 99_000) + b"\x00\xcc\x00\x00\x00\x00Old\x00"
    payload = (b"\x01\x01COLOR\x00" + struct.pack(">I", 4) + b"\x00\x99\x33\x33"
               + b"CUE\x00" + struct.pack(">I", len(cue)) + cue + b"BPMLOCK\x00\x00\x00\x00\x01\x01\x00")
    markers2 = (b"\x01\x01" + base64.b64encode(payload).rstrip(b"=")).ljust(470, b"\x00")
    unset = b"\x7f" * 10 + b"\x00" + b"\x7f" * 5 + b"\x00" * 4
    set_cue = b"\x00" + _serato32(99_000) + b"\x7f" * 5 + b"\x00" + b"\x7f" * 5 + _serato32(0xCC0000) + b"\x01\x00"
    markers = (b"\x02\x05" + struct.pack(">I", 14) + unset + b"\x00\x00" + unset + b"\x00\x00" + set_cue
               + (unset + b"\x00\x00") * 2 + (unset + b"\x03\x00") * 9 + _serato32(0x993333))
    return {"Serato Markers2": markers2, "Serato Markers_": markers,
            "Serato Autotags": b"\x01\x01115.00\x00-3.245\x00-1.500\x00"}


def test_stale_markers_are_replaced_and_user_colour_gain_kept(tmp_path: Path) -> None:
    path = make(tmp_path / "x.aiff", "pcm_s16be", "AIFF")
    audio = aiff.AIFF(path)
    for desc, data in stale_frames().items():
        audio.tags.add(id3.GEOB(encoding=0, mime="application/octet-stream", filename="", desc=desc, data=data))
    audio.save(v2_version=4)
    assert cue_entries(TrackCuesV2(str(path))) == {2: (99_000, b"\xcc\x00\x00", "Old")}  # serato-tools reads it
    assert TrackCuesV1(str(path)).entries[2].start_position == 99_000

    assert serato.write(path, GRID, CUES[:2]) is True

    markers2 = TrackCuesV2(str(path))
    assert set(cue_entries(markers2)) == {0, 3}
    assert markers2.get_track_color() == b"\x99\x33\x33"  # the user's colour stays
    old = TrackCuesV1(str(path)).entries
    assert [e.start_position for e in old[:5]] == [500, None, None, 1235, None]
    assert old[14].color == b"\x99\x33\x33"
    autotags = TrackAutotags(str(path))
    assert (autotags.bpm, autotags.autogain, autotags.gaindb) == (128.0, -3.245, -1.5)
    assert len(aiff.AIFF(path).tags.getall("GEOB")) == 4  # replaced, not added beside


def test_no_grid_keeps_the_files_grid_and_lock(tmp_path: Path) -> None:
    path = make(tmp_path / "x.m4a", "alac", "ALAC")
    serato.write(path, GRID, CUES)
    grid_atom = bytes(mp4.MP4(path).tags[ATOMS["Serato BeatGrid"]][0])

    assert serato.write(path, None, CUES[:1]) is True

    tags = mp4.MP4(path).tags
    assert bytes(tags[ATOMS["Serato BeatGrid"]][0]) == grid_atom
    markers2 = TrackCuesV2(mp4_frame(path, "Serato Markers2"))
    assert set(cue_entries(markers2)) == {0}
    assert markers2.is_beatgrid_locked()


def test_fresh_file_without_grid_is_not_locked(tmp_path: Path) -> None:
    path = make(tmp_path / "x.aiff", "pcm_s16be", None)  # no ID3 at all yet
    assert serato.write(path, None, CUES) is True
    geobs = {f.desc for f in aiff.AIFF(path).tags.getall("GEOB")}
    assert geobs == {"Serato Markers2", "Serato Markers_"}
    check_markers2(TrackCuesV2(str(path)), locked=False)


def test_multi_segment_grid(tmp_path: Path) -> None:
    grid = Grid((Segment(0.5, 120.0, 1), Segment(8.5, 124.0, 1), Segment(12.37, 126.0, 3)))
    path = make(tmp_path / "x.aiff", "pcm_s16be", "AIFF")
    serato.write(path, grid, ())

    first, second, last, _footer = TrackBeatgrid(str(path)).entries
    assert (first.position, first.beats_till_next_marker) == (pytest.approx(0.5), 16)
    third_downbeat = 12.37 + 2 * 60 / 126  # beat 3 of its bar: Serato's markers are downbeats
    assert (second.position, second.beats_till_next_marker) == (pytest.approx(8.5), 10)
    assert (last.position, last.bpm) == (pytest.approx(third_downbeat), pytest.approx(126.0))
    assert TrackAutotags(str(path)).bpm == 120.0  # the main tempo: the longest segment


def test_wav_only_with_id3(tmp_path: Path) -> None:
    tagged = make(tmp_path / "tagged.wav", "pcm_s16le", "WAV")
    assert serato.write(tagged, GRID, CUES) is True
    check_beatgrid(TrackBeatgrid(wave.WAVE(tagged).tags["GEOB:Serato BeatGrid"].data))
    assert str(wave.WAVE(tagged).tags["TIT2"]) == "Title"

    plain = make(tmp_path / "plain.wav", "pcm_s16le", None)
    content = plain.read_bytes()
    assert serato.write(plain, GRID, CUES) is False
    assert plain.read_bytes() == content


def test_documented_layouts() -> None:
    """Byte layouts as serato-tags documents them (docs/serato_beatgrid.md, serato_autotags.md)."""
    assert serato.beatgrid_frame(GRID) == b"\x01\x00\x00\x00\x00\x01" + struct.pack(">ff", 0.25, 128.0) + b"\x00"
    assert serato.autotags_frame(115.0, -3.257) == b"\x01\x01115.00\x00-3.257\x000.000\x00"
    # serato_markers2.md's decoded example: COLOR white, BPMLOCK off, the closing NUL
    payload = bytes.fromhex("0101434f4c4f520000000004 00ffffff 42504d4c4f434b0000000001 00 00")
    empty = serato.markers2_frame((), bpm_locked=False)
    assert empty == (b"\x01\x01" + base64.b64encode(payload)).ljust(470, b"\x00")
    assert len(serato.markers_frame(())) == 2 + 4 + 14 * 22 + 4


def test_unreadable_file_is_a_track_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.aiff"
    broken.write_bytes(b"FORM\x00\x00\x00\x04AIFF" + b"\x00" * 8)
    with pytest.raises(TrackError, match="broken.aiff"):
        serato.write(broken, GRID, CUES)
    with pytest.raises(ValueError, match="flac"):
        serato.write(tmp_path / "x.flac", GRID, CUES)
