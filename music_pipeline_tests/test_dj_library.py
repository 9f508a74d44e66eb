"""The library in the DJ's software: tracks processed by the pipeline, exported, and read back
by readers we did not write (pyrekordbox, traktor-nml-utils, serato-tools)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from dagster import AssetKey, DagsterEventType, EventRecordsFilter, materialize

from music_pipeline.assets import rekordbox_export, traktor_export
from music_pipeline.core.audio import analysis
from music_pipeline.core.library import duplicates
from music_pipeline.core.sinks import dj
from music_pipeline.resources import DjResource

from .audio import make_track, write
from .dedup_audio import transform, tune
from .test_dj_exports import rb_path, read_traktor


def _grid_song(folder: Path, name: str, bpm: float, seed: int) -> Path:
    return make_track(folder / f"{name}.flac", seconds=24, bpm=bpm, seed=seed, codec_args=["-c:a", "flac"],
                      metadata={"title": name.split(" - ")[1], "artist": name.split(" - ")[0]})


@pytest.fixture
def finished(process, library, tmp_path):
    """Two songs and a lossy copy of a third's FLAC (set aside as its duplicate), all in one
    Spotify playlist: [copy, A, B]; and the third's keeper in an inbox-only position."""
    a = _grid_song(tmp_path, "Alpha - One #1 & 100%", 124.0, 1)
    b = _grid_song(tmp_path, "Beta - Twö", 87.0, 2)
    flac = write(tmp_path / "Gamma - Tune.flac", tune(5, seconds=25), codec_args=["-c:a", "flac"])
    mp3 = transform(flac, tmp_path / "Gamma - Tune (copy).mp3", "-c:a", "libmp3lame")
    keys = {}
    for name, path in (("a", a), ("b", b), ("keeper", flac), ("copy", mp3)):
        keys[name], result = process(str(path))
        assert result.success, name
    assert library.track(keys["copy"]).status == "duplicate"
    library.catalog.playlists.save("spotify-playlist-x", "spotify", "Peak Time", "https://open.spotify.com/x", "s1")
    library.catalog.playlists.set_tracks("spotify-playlist-x", [keys["copy"], keys["a"], keys["b"]])
    return keys


def _rekordbox(path: Path):
    from pyrekordbox import RekordboxXml

    return RekordboxXml(str(path))


def test_rekordbox_export_of_processed_tracks_reads_back_with_grid_cues_and_keepers(finished, library, tmp_path):
    keys = finished
    dest = tmp_path / "out" / "rekordbox.xml"
    report = dj.RekordboxExport(dj.DjSettings(), dest).write_library(library)
    assert report.action == "written" and report.metadata["tracks"] == 3
    xml = _rekordbox(dest)
    tracks = {t["Name"]: t for t in xml.get_tracks()}
    assert set(tracks) == {"One #1 & 100%", "Twö", "Tune"}  # the duplicate is not there
    alpha = tracks["One #1 & 100%"]
    row = library.track(keys["a"])
    aiff = Path(library.catalog.files.get(keys["a"], "AIFF").path)
    assert os.path.samefile(rb_path(alpha["Location"]), aiff)
    raw = next(t for t in ET.parse(dest).getroot().iter("TRACK") if t.get("Name") == alpha["Name"])
    assert raw.get("Location") == "file://localhost" + "/".join(quote(p, safe="") for p in str(aiff).split("/"))
    assert abs(alpha["AverageBpm"] - 124.0) <= 0.02 and alpha["AverageBpm"] == row.bpm
    assert alpha["Tonality"] == row.key_short and alpha["TotalTime"] >= 23
    assert alpha["Kind"] == "AIFF File" and alpha["SampleRate"] == 44100
    tempo = alpha.tempos[0]
    assert abs(tempo.Inizio - row.first_beat_s) <= 0.001 and tempo.Bpm == row.bpm and tempo.Metro == "4/4"
    marks = alpha.marks
    assert any(m.Num == -1 for m in marks) and any(m.Num == 0 and m.Name == "Intro" for m in marks)
    colours = [m for m in raw.findall("POSITION_MARK") if m.get("Num") == "0"]
    assert colours and colours[0].get("Red") is not None
    # the playlist, in its folder, names the keeper where it named the duplicate
    playlist = xml.get_playlist("Spotify", "Peak Time")
    ids = {t["Name"]: t["TrackID"] for t in tracks.values()}
    assert playlist.get_tracks() == [ids["Tune"], ids["One #1 & 100%"], ids["Twö"]]


def test_the_export_follows_the_library_and_a_rewrite_with_nothing_changed_writes_nothing(finished, library,
                                                                                           process, tmp_path):
    keys = finished
    dest = tmp_path / "rekordbox.xml"
    sink = dj.RekordboxExport(dj.DjSettings(), dest)
    sink.write_library(library)
    stamp = dest.stat().st_mtime_ns
    again = sink.write_library(library)
    assert again.action == "unchanged" and dest.stat().st_mtime_ns == stamp and again.changed == ()
    # a playlist reordered upstream
    library.catalog.playlists.set_tracks("spotify-playlist-x", [keys["b"], keys["a"], keys["copy"]])
    moved = sink.write_library(library)
    assert moved.action == "written" and moved.metadata["playlists_changed"] == 1
    ids = {t["Name"]: t["TrackID"] for t in _rekordbox(dest).get_tracks()}
    assert _rekordbox(dest).get_playlist("Spotify", "Peak Time").get_tracks() == [ids["Twö"], ids["One #1 & 100%"],
                                                                                   ids["Tune"]]
    # a track analysed again, here asked for a faster octave: its BPM and grid change
    library.analyse(keys["b"], analysis.Settings(bpm_range=(150.0, 230.0), fingerprint=False))
    reanalysed = sink.write_library(library)
    assert reanalysed.metadata["tracks_updated"] == 1 and f"~{keys['b']}" in reanalysed.changed
    beta = next(t for t in _rekordbox(dest).get_tracks() if t["Name"] == "Twö")
    assert abs(beta["AverageBpm"] - 174.0) <= 0.05
    # the duplicate put back (dedup --undo): the playlist no longer names the keeper in its
    # place, and once processed it is a track of its own in the export
    duplicates.undo(library, library.track(keys["copy"]).dedup_group)
    undone = sink.write_library(library)
    assert undone.metadata["playlists_changed"] == 1
    ids = {t["Name"]: t["TrackID"] for t in _rekordbox(dest).get_tracks()}
    assert _rekordbox(dest).get_playlist("Spotify", "Peak Time").get_tracks() == [ids["Twö"], ids["One #1 & 100%"]]
    key, result = process(library.track(keys["copy"]).source_path or library.track(keys["copy"]).source_url)
    assert result.success and key == keys["copy"] and library.track(key).status == "done"
    processed = sink.write_library(library)
    assert f"+{keys['copy']}" in processed.changed and processed.metadata["tracks"] == 4


def test_traktor_collection_reads_back_through_a_parser_we_did_not_write(finished, library, tmp_path):
    dest = tmp_path / "collection.nml"
    dj.TraktorExport(dj.DjSettings(format="ALAC"), dest).write_library(library)
    entries = {e.title: e for e in read_traktor(dest.read_bytes()).collection.entry}
    alpha = entries["One #1 & 100%"]
    row = library.track(finished["a"])
    m4a = Path(library.catalog.files.get(finished["a"], "ALAC").path)
    assert alpha.location.file == m4a.name and alpha.location.dir.replace("/:", "/") == str(m4a.parent) + "/"
    assert abs(float(alpha.tempo.bpm) - row.bpm) <= 0.001
    grid = [c for c in alpha.cue_v2 if c.type == 4]
    assert grid and abs(float(grid[0].start) - row.downbeat_s * 1000) <= 1.0
    assert alpha.lock == 1
    keys = {"C major": 0, "A minor": 21}
    if row.key_name in keys:
        assert alpha.musical_key.value_attribute == keys[row.key_name]


def test_serato_reads_the_grid_and_cues_the_pipeline_wrote_into_the_files(finished, library):
    from serato_tools.track_beatgrid import TrackBeatgrid
    from serato_tools.track_cues_v2 import TrackCuesV2

    row = library.track(finished["a"])
    aiff = library.catalog.files.get(finished["a"], "AIFF").path
    terminal = next(e for e in TrackBeatgrid(aiff).entries if isinstance(e, TrackBeatgrid.TerminalBeatgridMarker))
    assert abs(terminal.position - row.downbeat_s) <= 0.001 and abs(terminal.bpm - row.bpm) <= 0.01
    cues = {e.index: e for e in TrackCuesV2(aiff).entries if isinstance(e, TrackCuesV2.CueEntry)}
    assert cues[0].name == "Intro" and abs(cues[0].position - round(row.cues[1][0] * 1000)) <= 1


def test_the_exports_are_assets_whose_metadata_says_what_they_wrote(finished, library, instance, resources, tmp_path):
    out = tmp_path / "exports"
    resources = {**resources, "dj": DjResource(export_dir=str(out), library_root="/Volumes/VIBES")}
    result = materialize([rekordbox_export, traktor_export], instance=instance, resources=resources)
    assert result.success
    meta = {m.asset_key.to_user_string(): m.metadata for m in
            (ev.event_specific_data.materialization for ev in result.get_asset_materialization_events())}
    assert meta["rekordbox_export"]["tracks"].value == 3 and meta["rekordbox_export"]["rewritten"].value
    text = (out / "rekordbox.xml").read_text()
    assert "file://localhost/Volumes/VIBES/AIFF/" in text and str(library.root) not in text
    assert 'VOLUME="VIBES"' in (out / "collection.nml").read_text()
    # nothing changed: materialised again, the files are not rewritten
    stamp = (out / "rekordbox.xml").stat().st_mtime_ns
    again = materialize([rekordbox_export], instance=instance, resources=resources)
    materialization = again.get_asset_materialization_events()[0].event_specific_data.materialization
    assert not materialization.metadata["rewritten"].value and (out / "rekordbox.xml").stat().st_mtime_ns == stamp
    # the track's audio_features materialisation shows its grid
    events = instance.get_event_records(EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION,
                                                           AssetKey("audio_features")))
    shown = events[0].event_log_entry.dagster_event.event_specific_data.materialization.metadata
    assert {"first_beat_s", "downbeat_s", "beats_per_bar", "grid_confidence", "grid_segments", "cues"} <= set(shown)


def test_export_command_writes_the_file_named_and_says_what_it_holds(finished, library, tmp_path):
    env = {**os.environ, "MUSIC_LIBRARY": str(library.root), "DAGSTER_HOME": str(tmp_path / "home"),
           "DJ_LIBRARY_ROOT": "E:\\"}
    dest = tmp_path / "for the laptop" / "rekordbox.xml"
    proc = subprocess.run([sys.executable, "-m", "music_pipeline", "export", "rekordbox", str(dest)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 track(s) (AIFF)" in proc.stdout and "E:\\" in proc.stdout and "written" in proc.stdout
    locations = [t.get("Location") for t in ET.parse(dest).getroot().iter("TRACK") if t.get("Location")]
    assert locations and all(loc.startswith("file://localhost/E:/AIFF/") for loc in locations)
    assert all(unquote(loc).isprintable() for loc in locations)
    again = subprocess.run([sys.executable, "-m", "music_pipeline", "export", "traktor", str(tmp_path / "c.nml"),
                            "--format", "wav", "--root", ""], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "(WAV)" in again.stdout and (tmp_path / "c.nml").exists()
    bad = subprocess.run([sys.executable, "-m", "music_pipeline", "export", "rekordbox", str(dest)],
                         env={**env, "DJ_LIBRARY_ROOT": "relative/folder"}, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "DJ_LIBRARY_ROOT" in bad.stderr and "Traceback" not in bad.stderr


def test_a_grid_that_needs_a_look_is_exported_as_a_tempo_only_and_left_unlocked(finished, library, tmp_path):
    key = finished["b"]
    grid = {**library.track(key).grid, "needs_look": True}
    library.catalog.tracks.update(key, grid=grid)
    dj.RekordboxExport(dj.DjSettings(), tmp_path / "r.xml").write_library(library)
    beta = next(t for t in _rekordbox(tmp_path / "r.xml").get_tracks() if t["Name"] == "Twö")
    assert beta.tempos == [] and beta.marks == [] and beta["AverageBpm"] > 0
    dj.TraktorExport(dj.DjSettings(), tmp_path / "c.nml").write_library(library)
    entries = {e.title: e for e in read_traktor((tmp_path / "c.nml").read_bytes()).collection.entry}
    assert entries["Twö"].lock == 0 and not entries["Twö"].cue_v2  # Traktor grids it itself
    assert entries["One #1 & 100%"].lock == 1


def test_missing_files_are_left_out_and_a_missing_drive_leaves_the_export_alone(finished, library, tmp_path):
    from music_pipeline.core.domain.errors import TrackError

    dest = tmp_path / "rekordbox.xml"
    sink = dj.RekordboxExport(dj.DjSettings(), dest)
    sink.write_library(library)
    aiff = Path(library.catalog.files.get(finished["a"], "AIFF").path)
    aiff.rename(tmp_path / "away.aiff")
    report = sink.write_library(library)
    assert report.metadata["missing_files"] == 1 and report.metadata["tracks"] == 2
    assert any("left out" in w for w in report.warnings)
    before = dest.read_bytes()
    for fmt_dir in (library.root / "AIFF",):
        fmt_dir.rename(tmp_path / "AIFF-unmounted")
    with pytest.raises(TrackError, match="left as it was"):
        sink.write_library(library)
    assert dest.read_bytes() == before


def test_a_cue_a_dj_set_in_serato_survives_the_pipeline_rewriting_the_tags(finished, library):
    from serato_tools.track_cues_v2 import TrackCuesV2

    from music_pipeline.core.audio.beatgrid import Cue, from_catalog
    from music_pipeline.core.dj import serato

    key = finished["a"]
    aiff = Path(library.catalog.files.get(key, "AIFF").path)
    grid, _ = from_catalog(library.track(key).grid, None)
    serato.write(aiff, grid, [Cue(12.5, "My mix-in", 3, (0, 0, 255))])  # as the DJ left it in Serato
    library.catalog.tracks.update(key, album="A New Album")  # then a merge brings new tags
    library.after_merge(key)
    cues = {e.index: e.name for e in TrackCuesV2(str(aiff)).entries if isinstance(e, TrackCuesV2.CueEntry)}
    assert cues == {3: "My mix-in"}
