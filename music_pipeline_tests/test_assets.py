"""The per-track graph through Dagster's testing API, with real yt-dlp, ffmpeg, Chromaprint
and SQLite: a local file and a URL served on 127.0.0.1 become three tagged, analysed
formats and a catalog row."""

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, materialize

from music_pipeline.assets import library_index
from music_pipeline.core.audio import tagging
from music_pipeline.core.library.catalog import Catalog
from music_pipeline.core.library.migrations import SCHEMA_VERSION

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
    row = library.catalog.tracks.get(key)
    assert row.status == "done" and row.error is None and row.processed_at
    assert row.bpm == features["bpm"] and row.camelot == features["camelot"] and row.fingerprint
    assert {f.format for f in library.catalog.files.all([key])} == {"ALAC", "AIFF", "WAV"}
    assert row.album == "Test Album"
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
    row = library.catalog.tracks.get(key)
    assert row.webpage_url == http_server.url("night-drive.html")
    assert row.thumbnail_url == http_server.url("cover.webp")
    assert row.title.startswith("Night Drive")
    assert Path(row.raw_path).read_bytes() == (http_server.root / "night-drive.flac").read_bytes()
    for fmt in ("ALAC", "AIFF", "WAV"):
        tags = tagging.read_tags(Path(library.catalog.files.get(key, fmt).path), fmt)
        assert tags["cover_bytes"] > 100  # the WebP thumbnail, converted to JPEG
        assert tags["source_url"] == http_server.url("night-drive.html")


def test_direct_audio_url(process, library, http_server) -> None:
    make_track(http_server.root / "direct.mp3", seconds=4, codec_args=["-c:a", "libmp3lame"],
               metadata={"title": "Direct Hit", "artist": "Server Band"})
    key, result = process(http_server.url("direct.mp3"))
    assert result.success
    row = library.catalog.tracks.get(key)
    assert (row.artist, row.title) == ("Server Band", "Direct Hit")
    assert row.raw_codec == "mp3" and row.raw_lossless == 0


def test_rematerialising_is_idempotent(process, library, library_root, song_file) -> None:
    key, first = process(str(song_file))
    assert first.success
    before = {p: (library_root / p).stat().st_size for p in library_files(library_root)}
    raw_mtime = Path(library.catalog.tracks.get(key).raw_path).stat().st_mtime_ns
    key_again, second = process(str(song_file))
    assert second.success and key_again == key
    after = {p: (library_root / p).stat().st_size for p in library_files(library_root)}
    assert after == before  # same files, same sizes, nothing extra, no .part leftovers
    assert Path(library.catalog.tracks.get(key).raw_path).stat().st_mtime_ns == raw_mtime  # not re-imported
    assert len(library.catalog.tracks.all()) == 1 and len(library.catalog.files.all()) == 3


def test_retitled_track_moves_and_keeps_old_file_in_trash(process, library, library_root, song_file) -> None:
    key, _ = process(str(song_file))
    old = Path(library.catalog.files.get(key, "WAV").path)
    library.catalog.tracks.update(key, title="Renamed Song")
    result = library.render(key, "WAV")
    assert result.path.name == "Test Artist - Renamed Song.wav"
    assert not old.exists()
    assert [p.name for p in (library_root / "_trash").rglob("*.wav")] == [old.name]


def test_two_songs_with_one_name_do_not_overwrite_each_other(process, library, tmp_path) -> None:
    """Same artist and title, different audio (the fingerprints disagree): two tracks, two files."""
    a = make_track(tmp_path / "a" / "Same - Name.flac", seconds=12, bpm=100, codec_args=["-c:a", "flac"])
    b = make_track(tmp_path / "b" / "Same - Name.flac", seconds=12, bpm=140, tonic="D", minor=False, seed=7,
                   codec_args=["-c:a", "flac"])
    key_a, ra = process(str(a))
    key_b, rb = process(str(b))
    assert ra.success and rb.success and key_a != key_b
    path_a = Path(library.catalog.files.get(key_a, "WAV").path)
    path_b = Path(library.catalog.files.get(key_b, "WAV").path)
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


def _open_catalog(path: str, barrier) -> None:
    barrier.wait()
    Catalog(Path(path))


def test_a_new_catalog_opened_by_several_processes_at_once_is_created_once(tmp_path) -> None:
    """A sensor and a bulk run's lanes may open a new library together: one migrates it, the
    others find it done (before, the losers failed: "table tracks already exists", "database is
    locked" while switching to WAL)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(3):
        path = tmp_path / f"lib{attempt}" / "catalog.sqlite"
        barrier = context.Barrier(6)
        workers = [context.Process(target=_open_catalog, args=(str(path), barrier)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [w.exitcode for w in workers] == [0] * 6
        assert Catalog(path).schema_version == SCHEMA_VERSION


def test_catalog_schema_is_versioned_and_migrates_a_version_0_database(library_root) -> None:
    from music_pipeline.core.library.catalog import Catalog
    from music_pipeline.core.library.damage import CatalogError

    path = library_root / "catalog.sqlite"
    library_root.mkdir(parents=True)
    with sqlite3.connect(path) as conn:  # a database at version 0 (an empty *file* is damage: test_catalog_damage)
        conn.execute("CREATE TABLE notes (text TEXT)")
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
    from music_pipeline.core.library.steps import register_target

    source, _ = register_target(library, "https://youtu.be/dQw4w9WgXcQ")
    register_target(library, "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL123")
    row = library.catalog.tracks.get(source.key)
    assert len(library.catalog.tracks.all()) == 1
    assert "https://youtu.be/dQw4w9WgXcQ" in row.source_urls
    assert "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL123" in row.source_urls


SOURCE_KEYS = [f"sources/{name}" for name in ("inbox", "spotify_likes", "spotify_playlists",
                                                  "spotify_now_playing", "soundcloud_likes", "soundcloud_sets",
                                                  "notion_queue")]


def test_definitions_load() -> None:
    from dagster import AssetKey

    from music_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"raw_audio", "audio_features", "fingerprint", "m4a_alac", "aiff", "wav", "catalog",
                    "notion_records", "eagle_records", "library_index", "dedup_groups", "playlist_exports",
                    "rekordbox_export", "traktor_export", *SOURCE_KEYS}
    for mirror in ("notion_records", "eagle_records"):  # mirrors of the catalog, per track
        assert {k.to_user_string() for k in graph.get(AssetKey(mirror)).parent_keys} == {"catalog"}
    assert defs.resolve_sensor_def("notion_queue") is not None
    raw_audio = graph.get(AssetKey("raw_audio"))
    assert {k.to_user_string() for k in raw_audio.parent_keys} == set(SOURCE_KEYS)  # lineage starts at the sources
    assert defs.resolve_job_def("process_track") is not None
    assert defs.resolve_sensor_def("inbox_sensor") is not None
    assert shutil.which("ffmpeg") and shutil.which("fpcalc")
    # what the automation sensor and the UI's Materialize launch runs in one process, not one per step
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"


def test_loading_the_code_location_imports_no_heavy_module() -> None:
    """Every run's process imports the code location: pandas, pyarrow and scipy wait until
    the index is written or a track is analysed."""
    import subprocess
    import sys

    code = ("import sys, music_pipeline.definitions; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'scipy', 'librosa') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_long_identical_names_still_get_distinct_files(process, library, tmp_path) -> None:
    title = "Extended Remix " * 20  # far beyond the 200-byte name limit
    # different music under one name (the fingerprints disagree, so they are not duplicates)
    a = make_track(tmp_path / "a.flac", seconds=12, bpm=100, codec_args=["-c:a", "flac"],
                   metadata={"title": title, "artist": "Long Name Artist"})
    b = make_track(tmp_path / "b.flac", seconds=12, bpm=140, tonic="D", minor=False, seed=3,
                   codec_args=["-c:a", "flac"], metadata={"title": title, "artist": "Long Name Artist"})
    key_a, ra = process(str(a))
    key_b, rb = process(str(b))
    assert ra.success and rb.success
    for fmt in ("ALAC", "AIFF", "WAV"):
        path_a = Path(library.catalog.files.get(key_a, fmt).path)
        path_b = Path(library.catalog.files.get(key_b, fmt).path)
        assert path_a != path_b and path_a.exists() and path_b.exists()
        assert len(path_b.name.encode()) <= 200 and key_b in path_b.name
        assert len(path_b.relative_to(library.root).as_posix()) <= 220
        assert library.verify(key_a, fmt) == [] and library.verify(key_b, fmt) == []


def test_long_artist_album_and_title_keep_every_library_path_within_220_characters(
        process, instance, resources, library_root, tmp_path) -> None:
    """The README's promise (220 characters per path inside the library) for every output
    and playlist entry, even with the album in the path, a second song of the same name
    (its " [key]" suffix kept) and a long playlist name; the tags keep the full names."""
    import os

    from music_pipeline.assets import playlist_exports
    from music_pipeline.resources import LibraryResource

    res = {**resources, "library": LibraryResource(root=str(library_root),
                                                   path_template="$format/$artist/$album/$artist - $title")}
    lib = res["library"].get()
    names = {"artist": "The Extraordinarily Long Named Philharmonic Orchestra of Somewhere " * 4,
             "album": "Collected Works, Remastered and Expanded Deluxe Edition " * 4,
             "title": "Extended Remix " * 20}
    a = make_track(tmp_path / "a.flac", seconds=12, bpm=100, codec_args=["-c:a", "flac"], metadata=names)
    b = make_track(tmp_path / "b.flac", seconds=12, bpm=140, tonic="D", minor=False, seed=3,
                   codec_args=["-c:a", "flac"], metadata=names)
    key_a, ra = process(str(a), library_override=lib, resources_override=res)
    key_b, rb = process(str(b), library_override=lib, resources_override=res)
    assert ra.success and rb.success
    lib.catalog.playlists.save("spotify-playlist-long", "spotify", "Late Night Drive Through The City " * 8)
    lib.catalog.playlists.set_tracks("spotify-playlist-long", [key_a, key_b])
    assert materialize([playlist_exports], instance=instance, resources=res).success

    for fmt in ("ALAC", "AIFF", "WAV"):
        path_a, path_b = (Path(lib.catalog.files.get(key, fmt).path) for key in (key_a, key_b))
        assert path_a.parent == path_b.parent and f"[{key_b}]" in path_b.name
        assert tagging.read_tags(path_b, fmt)["artist"] == names["artist"].strip()
        links = [p for p in (library_root / fmt / "Playlists").rglob("*") if p.is_symlink()]
        assert len(links) == 2 and all(link.exists() for link in links)
    everything = [Path(folder, name) for folder, dirs, files in os.walk(library_root) for name in dirs + files]
    assert len(everything) > 20
    for path in everything:
        relative = path.relative_to(library_root).as_posix()
        windows_chars = len(relative.encode("utf-16-le")) // 2  # what Windows counts
        assert windows_chars <= 220, relative
        assert len(path.name.encode()) <= 200, relative


def test_names_differing_only_in_case_do_not_share_a_file(process, library, tmp_path) -> None:
    a = make_track(tmp_path / "a.flac", seconds=12, codec_args=["-c:a", "flac"],
                   metadata={"title": "Dancing Queen", "artist": "ABBA"})
    b = make_track(tmp_path / "b.flac", seconds=12, seed=5, bpm=90, tonic="E", minor=False,
                   codec_args=["-c:a", "flac"], metadata={"title": "dancing queen", "artist": "Abba"})
    key_a, _ = process(str(a))
    key_b, rb = process(str(b))
    assert rb.success
    name_a = Path(library.catalog.files.get(key_a, "WAV").path).name
    name_b = Path(library.catalog.files.get(key_b, "WAV").path).name
    assert name_a.casefold() != name_b.casefold()


def test_a_users_own_file_at_the_target_path_is_not_overwritten(process, library, library_root, song_file) -> None:
    mine = library_root / "WAV" / "Test Artist" / "Test Artist - First Song.wav"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own edit, not in the catalog")
    key, result = process(str(song_file))
    assert result.success
    assert mine.read_bytes() == b"my own edit, not in the catalog"
    assert key in Path(library.catalog.files.get(key, "WAV").path).name


def test_a_failed_check_keeps_the_track_from_being_done(process, library, instance, resources, song_file) -> None:
    from dagster import AssetSelection
    from mutagen import aiff

    from music_pipeline.assets import CHECKS, TRACK_ASSETS

    key, _ = process(str(song_file))
    damaged = Path(library.catalog.files.get(key, "AIFF").path)
    aiff.AIFF(damaged).delete()  # someone stripped the tags
    selection = AssetSelection.checks_for_assets(TRACK_ASSETS[4]) | AssetSelection.assets("catalog")
    result = materialize([*TRACK_ASSETS, *CHECKS], partition_key=key, instance=instance, resources=resources,
                         selection=selection, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    # the check is blocking: the catalog step does not run after it fails
    assert not any(e.asset_key == AssetKey("catalog") for e in result.get_asset_materialization_events())
    row = library.catalog.tracks.get(key)
    assert row.status == "failed" and row.error_step == "aiff check"
    assert "tag title is missing" in row.error
    # the catalog refuses to call the track done while a file is missing
    Path(library.catalog.files.get(key, "WAV").path).unlink()
    again = materialize([*TRACK_ASSETS], partition_key=key, instance=instance, resources=resources,
                        selection=["catalog"], raise_on_error=False)
    assert not again.success
    assert "incomplete: no WAV file" in library.catalog.tracks.get(key).error


def test_library_index_refreshes_even_with_failed_tracks(process, library, instance, resources, song_file,
                                                         tmp_path) -> None:
    from dagster import Definitions, evaluate_automation_conditions

    from music_pipeline.assets import ALL_ASSETS

    defs = Definitions(assets=ALL_ASSETS, resources=resources)
    before = evaluate_automation_conditions(defs=defs, instance=instance)  # the daemon's earlier tick
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    process(str(bad))  # a failed track: its catalog partition stays missing
    process(str(song_file))
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    assert after.get_num_requested(AssetKey("library_index")) == 1


def test_run_tag_registers_a_track_the_catalog_does_not_know(instance, resources, library, song_file) -> None:
    """`music-pipeline add` from another folder sends the target with the run."""
    from music_pipeline.assets import CHECKS, TRACK_ASSETS, tracks
    from music_pipeline.assets.tracks import TARGET_TAG
    from music_pipeline.core.domain.identity import key_for_file

    key = key_for_file(song_file).key
    instance.add_dynamic_partitions(tracks.name, [key])
    result = materialize([*TRACK_ASSETS, *CHECKS], partition_key=key, instance=instance, resources=resources,
                         tags={TARGET_TAG: str(song_file)})
    assert result.success and library.catalog.tracks.get(key).status == "done"


def test_an_unknown_partition_fails_with_a_clear_message(instance, resources, library) -> None:
    from music_pipeline.assets import CHECKS, TRACK_ASSETS, tracks

    instance.add_dynamic_partitions(tracks.name, ["file-0000000000000000"])
    result = materialize([*TRACK_ASSETS, *CHECKS], partition_key="file-0000000000000000", instance=instance,
                         resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "is not in the catalog" in failure.step_failure_data.error.message
    assert "music-pipeline add" in failure.step_failure_data.error.message


def test_wav_backup_dir_from_the_environment(monkeypatch, tmp_path) -> None:
    from music_pipeline.resources import build_resources

    monkeypatch.setenv("WAV_BACKUP_DIR", str(tmp_path / "backup"))
    monkeypatch.setenv("MUSIC_LIBRARY", str(tmp_path / "lib"))
    lib = build_resources()["library"].get()
    assert lib.wav_backup_dir == tmp_path / "backup" and lib.root == (tmp_path / "lib").resolve()


def test_a_version_1_catalog_is_migrated_in_place_keeping_its_rows(library_root) -> None:
    from music_pipeline.core.library.catalog import Catalog
    from music_pipeline.core.library.migrations import MIGRATIONS

    path = library_root / "catalog.sqlite"
    library_root.mkdir(parents=True)
    with sqlite3.connect(path) as conn:  # a library written by the first release
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO tracks (key, source_kind, source_url, bpm, created_at, updated_at)"
                     " VALUES ('youtube-dQw4w9WgXcQ', 'url', 'https://youtu.be/x', 113.0, 'then', 'then')")
        conn.execute("PRAGMA user_version = 1")
    catalog = Catalog(path)
    assert catalog.schema_version == SCHEMA_VERSION >= 2
    row = catalog.tracks.get("youtube-dQw4w9WgXcQ")
    assert row.bpm == 113.0 and row.replaygain_track_gain_db is None


def test_replaygain_tags_in_every_output(process, library, song_file) -> None:
    key, result = process(str(song_file))
    assert result.success
    row = library.catalog.tracks.get(key)
    gain, peak = row.replaygain_track_gain_db, row.replaygain_track_peak
    assert gain == pytest.approx(-18.0 - row.lufs, abs=0.01) and 0 < peak <= 1.2
    for fmt in ("ALAC", "AIFF", "WAV"):
        tags = tagging.read_tags(Path(library.catalog.files.get(key, fmt).path), fmt)
        assert tags["replaygain_track_gain"] == f"{gain:+.2f} dB"
        assert tags["replaygain_track_peak"] == f"{peak:.6f}"


def test_one_decode_is_shared_by_fingerprint_and_analysis(library, song_file, monkeypatch) -> None:
    from music_pipeline.core.audio import analysis
    from music_pipeline.core.library.steps import register_target

    key = register_target(library, str(song_file))[0].key
    library.fetch_raw(key)
    calls = []
    real = analysis.decode
    monkeypatch.setattr(analysis, "decode", lambda path: calls.append(path) or real(path))
    library.fingerprint(key)
    cache = library.raw_dir / f"{key}.decoded.npz"
    assert cache.exists()
    library.analyse(key)
    assert len(calls) == 1  # the analysis used the fingerprint step's decode
    assert not cache.exists()  # and the hand-over file is gone
    library.fingerprint(key)
    library.catalog.tracks.update(key, raw_sha256="0" * 64)  # the raw audio changed since
    library.analyse(key)
    assert len(calls) == 3 and not cache.exists()  # a stale decode is not used


def test_a_damaged_decode_cache_is_only_a_lost_shortcut(library, song_file) -> None:
    from music_pipeline.core.library.steps import register_target

    key = register_target(library, str(song_file))[0].key
    library.fetch_raw(key)
    library.fingerprint(key)
    cache = library.raw_dir / f"{key}.decoded.npz"
    cache.write_bytes(cache.read_bytes()[:1000])
    assert library.analyse(key).bpm
