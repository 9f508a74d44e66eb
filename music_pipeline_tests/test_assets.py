"""The per-track graph through Dagster's testing API, with real yt-dlp, ffmpeg, Chromaprint
and SQLite: a local file and a URL served on 127.0.0.1 become three tagged, analysed
formats and a catalog row."""

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
from dagster import AssetKey, materialize

from music_pipeline.assets import library_index
from music_pipeline.core import tagging
from music_pipeline.core.catalog import SCHEMA_VERSION

from .audio import make_track
from .conftest import library_files

FORMAT_ASSETS = {"m4a_alac": "ALAC", "aiff": "AIFF", "wav": "WAV"}


def _metadata(result, name: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(name)]
    assert events, f"{name} was not materialised"
    return {k: getattr(v, "value", v) for k, v in events[-1].materialization.metadata.items()}


def test_local_file_becomes_three_tagged_analysed_formats_and_a_catalog_row(process, library, song_file) -> None:
    key, result = process(str(song_file))
    assert result.success
    raw = _metadata(result, "raw_audio")
    assert raw["codec"] == "flac" and raw["sample_rate"] == 44_100 and raw["title"] == "First Song"
    features = _metadata(result, "audio_features")
    assert 100 <= features["bpm"] <= 145
    assert features["key"].endswith(("major", "minor")) and features["camelot"][-1] in "AB"
    assert -40 < features["lufs"] < 0 and features["true_peak_db"] <= 0.5
    fp = _metadata(result, "fingerprint")
    assert fp["covers_s"] == 6.0 and fp["fingerprint_chars"] > 20
    for asset_name, fmt in FORMAT_ASSETS.items():
        meta = _metadata(result, asset_name)
        path = Path(meta["path"])
        assert path.exists() and path.parent.parent.name == fmt
        assert path.name == f"Test Artist - First Song.{ {'ALAC': 'm4a', 'AIFF': 'aiff', 'WAV': 'wav'}[fmt]}"
        assert meta["sample_rate"] == 44_100 and meta["bit_depth"] in (16, 24) and meta["size_mb"] > 0
        tags = tagging.read_tags(path, fmt)
        assert tags["bpm"] == round(features["bpm"]) and tags["key"] and tags["isrc"] == "USRC17607839"
    checks = {(c.asset_check_key.asset_key.path[-1], c.asset_check_key.name): c.passed
              for c in result.get_asset_check_evaluations()}
    assert checks == {("raw_audio", "decodes"): True, ("m4a_alac", "valid"): True, ("aiff", "valid"): True,
                      ("wav", "valid"): True}
    row = library.catalog.get(key)
    assert row["status"] == "done" and row["error"] is None and row["processed_at"]
    assert row["bpm"] == features["bpm"] and row["camelot"] == features["camelot"] and row["fingerprint"]
    assert {f["format"] for f in library.catalog.files([key])} == {"ALAC", "AIFF", "WAV"}
    assert row["album"] == "Test Album"
    # the source file is untouched (it was outside the inbox)
    assert song_file.exists()


def test_url_download_keeps_source_metadata_and_thumbnail(process, library, http_server, tmp_path) -> None:
    make_track(http_server.root / "night-drive.flac", seconds=5, codec_args=["-c:a", "flac"])
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=320x320", "-frames:v", "1",
                    str(http_server.root / "cover.webp")], check=True)
    page = http_server.root / "night-drive.html"
    page.write_text(f"""<html><head><title>Night Drive</title>
        <meta property="og:title" content="Night Drive">
        <meta property="og:image" content="{http_server.url('cover.webp')}"></head>
        <body><audio controls src="night-drive.flac"></audio></body></html>""")
    key, result = process(http_server.url("night-drive.html"))
    assert result.success, result
    assert key.startswith("url-")
    row = library.catalog.get(key)
    assert row["webpage_url"] == http_server.url("night-drive.html")
    assert row["thumbnail_url"] == http_server.url("cover.webp")
    assert row["title"].startswith("Night Drive")
    assert Path(row["raw_path"]).read_bytes() == (http_server.root / "night-drive.flac").read_bytes()
    for fmt in ("ALAC", "AIFF", "WAV"):
        tags = tagging.read_tags(Path(library.catalog.file(key, fmt)["path"]), fmt)
        assert tags["cover_bytes"] > 100  # the WebP thumbnail, converted to JPEG
        assert tags["source_url"] == http_server.url("night-drive.html")


def test_direct_audio_url(process, library, http_server) -> None:
    make_track(http_server.root / "direct.mp3", seconds=4, codec_args=["-c:a", "libmp3lame"],
               metadata={"title": "Direct Hit", "artist": "Server Band"})
    key, result = process(http_server.url("direct.mp3"))
    assert result.success
    row = library.catalog.get(key)
    assert (row["artist"], row["title"]) == ("Server Band", "Direct Hit")
    assert row["raw_codec"] == "mp3" and row["raw_lossless"] == 0


def test_rematerialising_is_idempotent(process, library, library_root, song_file) -> None:
    key, first = process(str(song_file))
    assert first.success
    before = {p: (library_root / p).stat().st_size for p in library_files(library_root)}
    raw_mtime = Path(library.catalog.get(key)["raw_path"]).stat().st_mtime_ns
    key_again, second = process(str(song_file))
    assert second.success and key_again == key
    after = {p: (library_root / p).stat().st_size for p in library_files(library_root)}
    assert after == before  # same files, same sizes, nothing extra, no .part leftovers
    assert Path(library.catalog.get(key)["raw_path"]).stat().st_mtime_ns == raw_mtime  # not re-imported
    assert len(library.catalog.tracks()) == 1 and len(library.catalog.files()) == 3


def test_retitled_track_moves_and_keeps_old_file_in_trash(process, library, library_root, song_file) -> None:
    key, _ = process(str(song_file))
    old = Path(library.catalog.file(key, "WAV")["path"])
    library.catalog.update(key, title="Renamed Song")
    result = library.render(key, "WAV")
    assert result.path.name == "Test Artist - Renamed Song.wav"
    assert not old.exists()
    assert [p.name for p in (library_root / "_trash").rglob("*.wav")] == [old.name]


def test_two_songs_with_one_name_do_not_overwrite_each_other(process, library, tmp_path) -> None:
    a = make_track(tmp_path / "a" / "Same - Name.flac", seconds=3, bpm=100, codec_args=["-c:a", "flac"])
    b = make_track(tmp_path / "b" / "Same - Name.flac", seconds=3, bpm=140, seed=7, codec_args=["-c:a", "flac"])
    key_a, ra = process(str(a))
    key_b, rb = process(str(b))
    assert ra.success and rb.success and key_a != key_b
    path_a = Path(library.catalog.file(key_a, "WAV")["path"])
    path_b = Path(library.catalog.file(key_b, "WAV")["path"])
    assert path_a != path_b and path_a.exists() and path_b.exists()
    assert key_b in path_b.name


def test_library_index_lists_every_file(process, library, library_root, song_file, instance, resources) -> None:
    key, _ = process(str(song_file))
    result = materialize([library_index], instance=instance, resources=resources)
    assert result.success
    csv = pd.read_csv(library_root / "library_index.csv")
    parquet = pd.read_parquet(library_root / "library_index.parquet")
    assert len(csv) == len(parquet) == 4  # ALAC, AIFF, WAV and the original
    assert set(csv["format"]) == {"ALAC", "AIFF", "WAV", "SOURCE"}
    for record in csv.itertuples():
        assert Path(record.path).stat().st_size == record.size
        assert len(record.sha256) == 64 and record.duration_s > 5.9
    meta = _metadata(result, "library_index")
    assert meta["files"] == 4 and meta["tracks"] == 1 and "| WAV |" in meta["summary"]


def test_catalog_schema_is_versioned_and_migrates_an_empty_file(library_root) -> None:
    from music_pipeline.core.catalog import Catalog, CatalogError

    path = library_root / "catalog.sqlite"
    library_root.mkdir(parents=True)
    sqlite3.connect(path).close()  # an empty database, version 0
    assert Catalog(path).schema_version == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    try:
        Catalog(path)
    except CatalogError as err:
        assert "newer" in str(err)
    else:
        raise AssertionError("a catalog from a newer version must be refused")


def test_registering_again_adds_url_forms(library) -> None:
    from music_pipeline.core.library import register_target

    source, _ = register_target(library, "https://youtu.be/dQw4w9WgXcQ")
    register_target(library, "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL123")
    row = library.catalog.get(source.key)
    assert len(library.catalog.tracks()) == 1
    assert "https://youtu.be/dQw4w9WgXcQ" in row["source_urls"]
    assert "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL123" in row["source_urls"]


def test_definitions_load() -> None:
    from music_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"raw_audio", "audio_features", "fingerprint", "m4a_alac", "aiff", "wav", "catalog",
                    "library_index"}
    assert defs.resolve_job_def("process_track") is not None
    assert defs.resolve_sensor_def("inbox_sensor") is not None
    assert shutil.which("ffmpeg") and shutil.which("fpcalc")
