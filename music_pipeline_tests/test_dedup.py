"""Duplicate detection on real audio: fingerprint matching of transformed copies against
look-alikes, the inverted index, keeper choice and merge, files moved and restored, the
check before the transcodes, the library-wide asset and `music-pipeline dedup`."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path

import acoustid
import numpy as np
import pytest
from dagster import materialize

from music_pipeline.assets import dedup_groups
from music_pipeline.cli import main
from music_pipeline.core.audio.fingerprint import fingerprint_file
from music_pipeline.core.audio.tagging import read_tags
from music_pipeline.core.domain import dedup, fpindex
from music_pipeline.core.domain.identity import source_for
from music_pipeline.core.domain.normalize import parse
from music_pipeline.core.library.catalog import Catalog

from .audio import write
from .conftest import output_files
from .dedup_audio import bright, rerender, stem, transform, tune


@pytest.fixture(autouse=True)
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dedup --move` and `--undo` are runs: in a DAGSTER_HOME of the test's own."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One song, its real transformations, and three things that are not it."""
    d = tmp_path_factory.mktemp("copies")
    original = write(d / "original.flac", tune(1), codec_args=["-c:a", "flac"])
    return {
        "original": original,
        "mp3": transform(original, d / "copy.mp3", "-c:a", "libmp3lame", "-b:a", "128k"),
        "aac": transform(original, d / "copy.m4a", "-c:a", "aac", "-b:a", "96k"),
        "trimmed": transform(original, d / "trimmed.flac", "-c:a", "flac", cut_s=3.0),
        "quieter": transform(original, d / "quieter.wav", "-af", "volume=-12dB"),
        "resampled": transform(original, d / "resampled.wav", "-ar", "22050"),
        "other_song": write(d / "other.flac", tune(2), codec_args=["-c:a", "flac"]),
        "stem": write(d / "stem.flac", stem(1), codec_args=["-c:a", "flac"]),
        "rerender": write(d / "rerender.flac", rerender(1), codec_args=["-c:a", "flac"]),
    }


@pytest.fixture(scope="module")
def prints(copies: dict[str, Path]) -> dict[str, np.ndarray]:
    return {name: fpindex.decode(fingerprint_file(path).fingerprint) for name, path in copies.items()}


SAME = ["mp3", "aac", "trimmed", "quieter", "resampled"]
NOT_SAME = ["other_song", "stem", "rerender"]


def test_transformed_copies_match_and_look_alikes_do_not(prints) -> None:
    for name in SAME:
        assert fpindex.score(prints["original"], prints[name]) >= 0.8, name
    for name in NOT_SAME:
        assert fpindex.score(prints["original"], prints[name]) < 0.2, name
    items = [dedup.Item(id=name, fingerprint=fp, duration_s=40) for name, fp in prints.items()]
    assert [sorted(g.members) for g in dedup.find_groups(items)] == [sorted(["original", *SAME])]
    assert len(fpindex.matching_pairs(list(prints.values()))) == len(SAME) * (len(SAME) + 1) // 2


def test_score_is_pyacoustids_comparison(prints) -> None:
    for name in ("mp3", "trimmed", "other_song"):
        a, b = prints["original"], prints[name]
        expected = acoustid._match_fingerprints([int(v) for v in a], [int(v) for v in b])
        assert fpindex.score(a, b) == pytest.approx(expected)
    assert fpindex.score(prints["trimmed"], prints["original"][:50]) == pytest.approx(
        acoustid._match_fingerprints([int(v) for v in prints["trimmed"]], [int(v) for v in prints["original"][:50]]))


def test_the_index_finds_planted_copies_without_comparing_all_pairs(prints) -> None:
    """300 distinct fingerprints (real ones, each scrambled by its own bit mask) and 20
    planted copies (shifted, with bit errors): every copy is a candidate, and the
    candidates are a tiny fraction of the 51,040 pairs."""
    rng = np.random.default_rng(7)
    bases = [prints[name] for name in ("original", "other_song", "stem", "rerender")]
    library = [bases[i % 4] ^ np.uint32(rng.integers(1, 2**32, dtype=np.uint64)) for i in range(300)]
    planted = []
    for index in range(20):
        source = library[index * 7]
        copy = source[int(rng.integers(1, 30)):].copy()
        flips = rng.random(copy.size) < 0.3
        copy[flips] ^= np.uint32(1) << rng.integers(0, 32, size=int(flips.sum())).astype(np.uint32)
        planted.append((index * 7, len(library)))
        library.append(copy)
    pairs = {tuple(p) for p in fpindex.candidate_pairs([fpindex.terms(f) for f in library]).tolist()}
    assert all(pair in pairs for pair in planted)
    assert len(pairs) < 100
    assert sorted(fpindex.matching_pairs(library)) == sorted(planted)


def _item(item_id: str, **fields) -> dedup.Item:
    return dedup.Item(id=item_id, **fields)


def test_keeper_rule_prefers_complete_then_lossless_then_quality_then_metadata() -> None:
    lossy = _item("mp3", lossless=False, bitrate_kbps=320, sample_rate=44100, duration_s=200, codec="mp3")
    flac = _item("flac", lossless=True, bits=16, sample_rate=44100, duration_s=200, codec="flac")
    cut = _item("cut", lossless=True, bits=24, sample_rate=96000, duration_s=150, codec="flac")
    keeper, reason = dedup.choose_keeper([lossy, flac, cut])
    assert keeper.id == "flac" and "lossless (flac) over lossy (mp3)" in reason
    keeper, reason = dedup.choose_keeper([cut, lossy])
    assert keeper.id == "mp3" and "complete" in reason
    low = _item("128", bitrate_kbps=128, duration_s=200, sample_rate=44100)
    high = _item("256", bitrate_kbps=256, duration_s=199, sample_rate=44100)
    assert dedup.choose_keeper([low, high])[0].id == "256"
    hires = _item("24bit", lossless=True, bits=24, sample_rate=48000, duration_s=200)
    assert "bit depth" in dedup.choose_keeper([flac, hires])[1]
    tagged = _item("tagged", bitrate_kbps=128, duration_s=200, metadata={"title": "x", "artist": "y", "isrc": "z"})
    bare = _item("bare", bitrate_kbps=128, duration_s=200, metadata={"title": "x"})
    keeper, reason = dedup.choose_keeper([bare, tagged])
    assert keeper.id == "tagged" and "richer metadata (3 vs 1 fields)" in reason
    older = _item("older", bitrate_kbps=128, duration_s=200, added="2026-01-01T00:00:00")
    newer = _item("newer", bitrate_kbps=128, duration_s=200, added="2026-06-01T00:00:00")
    assert dedup.choose_keeper([newer, older])[0].id == "older"


def test_groups_from_url_isrc_title_and_fingerprint_with_evidence(prints) -> None:
    items = [
        _item("a", urls=frozenset({"https://www.youtube.com/watch?v=dQw4w9WgXcQ"}), duration_s=200),
        _item("b", urls=frozenset({"https://www.youtube.com/watch?v=dQw4w9WgXcQ"}), duration_s=200),
        _item("c", isrc="USRC17607839", duration_s=180),
        _item("d", isrc="USRC17607839", duration_s=181),
        _item("e", name=parse("Daft Punk", "One More Time (Official Video)"), duration_s=320),
        _item("f", name=parse("Daft Punk - Topic", "One More Time"), duration_s=322),
        _item("g", name=parse("Daft Punk", "One More Time (Radio Edit)"), duration_s=230),
        _item("h", fingerprint=prints["original"], duration_s=40),
        _item("i", fingerprint=prints["mp3"], duration_s=40),
        _item("j", fingerprint=prints["rerender"], duration_s=40),
    ]
    groups = {tuple(sorted(g.members)): g for g in dedup.find_groups(items)}
    assert set(groups) == {("a", "b"), ("c", "d"), ("e", "f"), ("h", "i")}
    assert groups[("a", "b")].matched_by == ["url"]
    assert groups[("c", "d")].matched_by == ["isrc"]
    assert groups[("e", "f")].matched_by == ["title"]
    fp = groups[("h", "i")]
    assert fp.matched_by == ["fingerprint"] and fp.evidence[0].score >= 0.9
    assert fp.id == dedup.group_id(["i", "h"])  # stable, whatever the order


def test_a_title_match_is_vetoed_by_audio_that_differs(prints) -> None:
    """Same artist and title, different recordings (say the album version and a
    re-recording): the fingerprints disagree, so they are not merged on the name."""
    same_name = parse("Artist", "Song")
    items = [_item("album", name=same_name, fingerprint=prints["original"], duration_s=40),
             _item("rerecorded", name=same_name, fingerprint=prints["rerender"], duration_s=40),
             _item("short", name=same_name, duration_s=120), _item("long", name=same_name, duration_s=300)]
    assert dedup.find_groups(items) == []


# -- the library -------------------------------------------------------------------------------------


def _tagged(path: Path, source: Path, title: str, artist: str = "Dedup Artist", isrc: str | None = None,
            *codec: str) -> Path:
    args = [*codec, "-metadata", f"title={title}", "-metadata", f"artist={artist}"]
    if isrc:
        args += ["-metadata", f"ISRC={isrc}"]
    return transform(source, path, *args)


def test_a_copy_stops_before_analysis_and_transcodes_and_undo_puts_it_back(process, library, library_root,
                                                                           copies, tmp_path) -> None:
    flac = _tagged(tmp_path / "in" / "Dedup Artist - Song.flac", copies["original"], "Song", "Dedup Artist",
                   None, "-c:a", "flac")
    mp3 = _tagged(tmp_path / "in" / "song (lyric video).mp3", copies["original"], "Song (Lyric Video)",
                  "Dedup Artist", "GBAYE0601498", "-c:a", "libmp3lame", "-b:a", "128k")
    keeper, result = process(str(flac))
    assert result.success
    outputs_before = output_files(library_root)

    copy, result = process(str(mp3))
    assert result.success  # a duplicate is not a failure
    ran = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert "fingerprint" in ran
    assert {"audio_features", "m4a_alac", "aiff", "wav", "catalog"} <= skipped
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert observed and observed[0].event_specific_data.asset_observation.metadata["duplicate_of"].value == keeper
    assert output_files(library_root) == outputs_before  # not one transcode spent
    row = library.catalog.tracks.get(copy)
    assert row.status == "duplicate" and row.duplicate_of == keeper and row.bpm is None
    group = row.dedup_group
    assert Path(row.raw_path).is_relative_to(library_root / "duplicates" / group)
    merged = library.catalog.tracks.get(keeper)
    assert merged.isrc == "GBAYE0601498"  # filled from the copy
    assert merged.title == "Song"  # the keeper's own values win
    saved = library.catalog.groups.get(group)
    assert saved.state == "applied"
    assert {e["by"] for e in saved.evidence} == {"fingerprint", "title"}  # "(Lyric Video)" is noise
    assert next(e for e in saved.evidence if e["by"] == "fingerprint")["score"] >= 0.9
    assert "lossless (flac) over lossy (mp3)" in saved.reason

    assert main(["dedup", "--undo", group]) == 0
    row = library.catalog.tracks.get(copy)
    assert row.status == "queued" and row.duplicate_of is None
    assert Path(row.raw_path).parent == library_root / "_raw" and Path(row.raw_path).exists()
    assert library.catalog.tracks.get(keeper).isrc is None
    assert not (library_root / "duplicates" / group).exists()
    assert library.catalog.groups.get(group).state == "undone"


def test_a_better_copy_replaces_the_old_one_once_it_is_done(process, library, library_root, copies,
                                                            tmp_path) -> None:
    mp3 = _tagged(tmp_path / "in" / "Old Rip.mp3", copies["original"], "Song", "Dedup Artist", None,
                  "-c:a", "libmp3lame", "-b:a", "128k")
    flac = _tagged(tmp_path / "in" / "Lossless.flac", copies["original"], "Song", "Dedup Artist", None,
                   "-c:a", "flac")
    old, result = process(str(mp3))
    assert result.success
    old_files = [Path(f.path) for f in library.catalog.files.all([old])]
    new, result = process(str(flac))
    assert result.success
    assert library.catalog.tracks.get(new).status == "done"
    row = library.catalog.tracks.get(old)
    assert row.status == "duplicate" and row.duplicate_of == new
    group = row.dedup_group
    moved = [Path(f.path) for f in library.catalog.files.all([old])]
    assert all(p.is_relative_to(library_root / "duplicates" / group) and p.exists() for p in moved)
    # the better copy now has the plain names the old one had (not "[key]"-suffixed ones)
    assert sorted(Path(f.path) for f in library.catalog.files.all([new])) == sorted(old_files)
    assert all(library.catalog.files.path_owner(p) == new for p in old_files)
    assert main(["dedup", "--undo", group]) == 0
    assert sorted(Path(f.path) for f in library.catalog.files.all([old])) == sorted(old_files)
    assert all(p.exists() and library.catalog.files.path_owner(p) == old for p in old_files)
    assert all(Path(f.path).exists() and f"[{new}]" in f.path for f in library.catalog.files.all([new]))
    assert library.catalog.tracks.get(old).status == "done"
    assert library.catalog.tracks.get(new).status == "done"


def test_an_isrc_already_catalogued_stops_a_new_track_early(process, library, copies, tmp_path) -> None:
    """Different audio (another master), same ISRC: the ISRC alone says same recording."""
    first = _tagged(tmp_path / "in" / "a.flac", copies["other_song"], "Other", "Some One", "US-RC1-76-07839",
                    "-c:a", "flac")
    second = _tagged(tmp_path / "in" / "b.mp3", copies["stem"], "Other (Live edit)", "Some One", "USRC17607839",
                     "-c:a", "libmp3lame")
    a, _ = process(str(first))
    b, result = process(str(second))
    assert result.success
    row = library.catalog.tracks.get(b)
    assert row.status == "duplicate" and row.duplicate_of == a
    assert library.catalog.groups.get(row.dedup_group).evidence[0]["by"] == "isrc"


def test_dedup_groups_asset_merges_what_metadata_arriving_later_reveals(process, library, library_root, copies,
                                                                       tmp_path, instance, resources) -> None:
    first = _tagged(tmp_path / "in" / "a.flac", copies["other_song"], "Other", "Some One", None, "-c:a", "flac")
    second = _tagged(tmp_path / "in" / "b.mp3", copies["stem"], "Something Else", "Some One", None,
                     "-c:a", "libmp3lame")
    a, _ = process(str(first))
    b, _ = process(str(second))
    assert library.catalog.tracks.get(a).status == library.catalog.tracks.get(b).status == "done"
    for key in (a, b):  # say a Spotify sync told us both are this recording
        library.catalog.tracks.update(key, isrc="USRC17607839")
    result = materialize([dedup_groups], instance=instance, resources=resources)
    assert result.success
    own, *recorded = sorted(result.asset_materializations_for_node("dedup_groups"),
                            key=lambda m: m.asset_key.path != ["dedup_groups"])
    metadata = own.metadata
    # the moved copy's files and the keeper's retagged ones, recorded again in this run
    assert {(m.asset_key.path[0], m.partition) for m in recorded} >= {("catalog", b), ("wav", b), ("wav", a)}
    assert metadata["groups"].value == 1 and metadata["duplicates"].value == 1
    assert "isrc" in metadata["new_groups"].value and a in metadata["new_groups"].value
    assert "lossless over lossy" in metadata["keeper_rule"].value
    assert library.catalog.tracks.get(b).status == "duplicate" and library.catalog.tracks.get(b).duplicate_of == a
    assert all(Path(f.path).is_relative_to(library_root / "duplicates") for f in library.catalog.files.all([b]))
    again = materialize([dedup_groups], instance=instance, resources=resources)
    assert again.asset_materializations_for_node("dedup_groups")[0].metadata["groups"].value == 0


def test_discovery_skips_sources_already_catalogued(library) -> None:
    source = source_for("https://youtu.be/dQw4w9WgXcQ")
    library.register(source, original="https://youtu.be/dQw4w9WgXcQ?si=abc")
    library.catalog.tracks.update(source.key, isrc="USRC17607839")
    library.catalog.tracks.add_source_urls(source.key, ["https://soundcloud.com/artist/song"])
    catalog = library.catalog
    assert catalog.tracks.find_source(urls=["https://www.youtube.com/watch?v=dQw4w9WgXcQ"]) == source.key
    assert catalog.tracks.find_source(urls=["https://soundcloud.com/artist/song"]) == source.key
    assert catalog.tracks.find_source(isrc="us-rc1-76-07839") == source.key
    assert catalog.tracks.find_source(urls=["https://www.youtube.com/watch?v=aaaaaaaaaaa"], isrc="GBAYE0601498") is None


def test_catalog_v2_is_upgraded_with_its_urls_indexed(tmp_path) -> None:
    import sqlite3

    from music_pipeline.core.library.migrations import MIGRATIONS

    path = tmp_path / "catalog.sqlite"
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:2]):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number + 1}; COMMIT;")
    conn.execute("INSERT INTO tracks (key, source_kind, source_url, source_urls, isrc, created_at, updated_at)"
                 " VALUES ('youtube-dQw4w9WgXcQ', 'url', 'https://www.youtube.com/watch?v=dQw4w9WgXcQ',"
                 " '[\"https://youtu.be/dQw4w9WgXcQ\"]', 'us-rc1-76-07839', 'x', 'x')")
    conn.commit()
    conn.close()
    catalog = Catalog(path)
    assert catalog.schema_version == len(MIGRATIONS)
    assert catalog.tracks.find_source(urls=["https://youtu.be/dQw4w9WgXcQ"]) == "youtube-dQw4w9WgXcQ"
    assert catalog.tracks.find_source(isrc="USRC17607839") == "youtube-dQw4w9WgXcQ"


# -- music-pipeline dedup ----------------------------------------------------------------------------


def test_dedup_command_reports_groups_as_json_and_moves_only_when_asked(copies, tmp_path, library_root,
                                                                        capsys) -> None:
    folder = tmp_path / "old library"
    for name in ("original", "mp3", "trimmed", "other_song", "stem", "rerender"):
        target = folder / ("sub" if name == "mp3" else "") / f"{name}{copies[name].suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(copies[name].read_bytes())
    (folder / "broken.mp3").write_bytes(b"not audio at all")
    before = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    code = main(["dedup", "--json", "--jobs", "2", str(folder)])
    out = capsys.readouterr()
    assert code == 1  # one file could not be read
    assert "broken.mp3" in out.err
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert len(lines) == 1
    group = lines[0]
    assert {Path(p).name for p in group["group"]} == {"original.flac", "mp3.mp3", "trimmed.flac"}
    assert Path(group["keeper"]).name == "original.flac" and group["reason"].startswith("keeper")
    assert group["matched_by"] == ["fingerprint"]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == before

    (folder / "broken.mp3").unlink()
    assert main(["dedup", "--move", str(folder)]) == 0
    capsys.readouterr()
    assert not (folder / "sub" / "mp3.mp3").exists() and not (folder / "trimmed.flac").exists()
    moved = sorted(p.name for p in (library_root / "duplicates" / group["id"]).rglob("*") if p.is_file())
    assert moved == ["mp3.mp3", "trimmed.flac"]
    assert main(["dedup", "--undo", group["id"]]) == 0
    assert (folder / "sub" / "mp3.mp3").exists() and (folder / "trimmed.flac").exists()


def test_the_formats_of_one_library_track_are_not_duplicates_of_each_other(process, library_root, song_file,
                                                                           capsys) -> None:
    key, result = process(str(song_file))
    assert result.success
    assert main(["dedup", "--json", str(library_root)]) == 0
    assert capsys.readouterr().out.strip() == ""


def test_undo_of_an_unknown_group_says_which_exist(library, capsys) -> None:
    assert main(["dedup", "--undo", "dup-nope"]) == 2
    assert "no duplicate group dup-nope" in capsys.readouterr().err


def test_candidate_pairs_handles_empty_and_single_inputs() -> None:
    assert fpindex.candidate_pairs([]).shape == (0, 2)
    assert fpindex.candidate_pairs([np.array([], np.uint32)]).shape == (0, 2)
    assert fpindex.matching_pairs([np.arange(100, dtype=np.uint32)]) == {}


def _with_cover(source: Path, dest: Path) -> Path:
    cover = dest.with_suffix(".jpg")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1",
                    str(cover)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-i", str(cover), "-map", "0:a", "-map", "1",
                    "-c:a", "libmp3lame", "-c:v", "mjpeg", "-id3v2_version", "3", "-metadata", "title=Song",
                    "-metadata", "artist=Dedup Artist", "-metadata", "ISRC=GBAYE0601498",
                    "-disposition:v", "attached_pic", str(dest)], check=True)
    return dest


def test_running_a_duplicate_again_moves_nothing_twice_and_undo_sticks(process, library, library_root, copies,
                                                                       tmp_path) -> None:
    flac = _tagged(tmp_path / "in" / "Song.flac", copies["original"], "Song", "Dedup Artist", None, "-c:a", "flac")
    mp3 = _with_cover(copies["original"], tmp_path / "in" / "Song.mp3")
    keeper, _ = process(str(flac))
    copy, _ = process(str(mp3))
    row = library.catalog.tracks.get(copy)
    group = row.dedup_group
    moves = library.catalog.groups.get(group).moves
    assert not (library_root / "_raw" / f"{copy}.decoded.npz").exists()  # no leftover decode

    again_key, result = process(str(mp3))  # the user (or a backfill) runs it again
    assert again_key == copy and result.success
    assert library.catalog.tracks.get(copy).status == "duplicate"
    assert library.catalog.groups.get(group).moves == moves  # nothing moved a second time
    assert not (library_root / "duplicates" / group / "duplicates").exists()

    # the keeper took the cover and ISRC it lacked, in the catalog and in its files' tags
    merged = library.catalog.tracks.get(keeper)
    assert merged.isrc == "GBAYE0601498" and Path(merged.cover_path).exists()
    assert Path(merged.cover_path).parent == library_root / "_raw"
    for record in library.catalog.files.all([keeper]):
        assert library.verify(keeper, record.format) == []
        assert read_tags(Path(record.path), record.format).get("cover_bytes")

    assert main(["dedup", "--undo", group]) == 0
    assert library.catalog.tracks.get(keeper).isrc is None and library.catalog.tracks.get(keeper).cover_path is None
    assert all(library.verify(keeper, r.format) == [] for r in library.catalog.files.all([keeper]))
    _, result = process(str(mp3))  # separated for good: processed in full this time
    assert result.success and library.catalog.tracks.get(copy).status == "done"
    assert library.catalog.tracks.get(keeper).status == "done"


def test_a_keeper_replaced_later_takes_its_duplicates_along(process, library, library_root, copies,
                                                           tmp_path) -> None:
    mp3 = _tagged(tmp_path / "in" / "first.mp3", copies["original"], "Song", "Dedup Artist", None,
                  "-c:a", "libmp3lame", "-b:a", "192k")
    worse = _tagged(tmp_path / "in" / "worse.mp3", copies["original"], "Song", "Dedup Artist", None,
                    "-c:a", "libmp3lame", "-b:a", "96k")
    flac = _tagged(tmp_path / "in" / "best.flac", copies["original"], "Song", "Dedup Artist", None, "-c:a", "flac")
    late = _tagged(tmp_path / "in" / "late.m4a", copies["original"], "Song", "Dedup Artist", None,
                   "-c:a", "aac", "-b:a", "128k")
    a, _ = process(str(mp3))
    b, _ = process(str(worse))
    assert library.catalog.tracks.get(b).duplicate_of == a
    c, _ = process(str(flac))
    assert library.catalog.tracks.get(a).duplicate_of == c
    assert library.catalog.tracks.get(b).duplicate_of == c  # repointed, not left behind a duplicate
    x, _ = process(str(late))
    assert library.catalog.tracks.get(x).duplicate_of == c
    b_group = library.catalog.tracks.get(b).dedup_group
    assert main(["dedup", "--undo", b_group]) == 0  # an older group still undoes cleanly
    row = library.catalog.tracks.get(b)
    assert row.status == "queued" and row.duplicate_of is None  # it was caught before processing
    assert Path(row.raw_path).parent == library_root / "_raw" and Path(row.raw_path).exists()


def test_moving_loose_files_keeps_their_layout_and_undo_works_from_anywhere(copies, tmp_path, library_root,
                                                                            monkeypatch, capsys) -> None:
    folder = tmp_path / "crate"
    for sub, name in (("a", "original"), ("b", "mp3"), ("c", "mp3")):
        target = folder / sub / f"song{copies[name].suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(copies[name].read_bytes())
    monkeypatch.chdir(tmp_path)
    assert main(["dedup", "--json", "--move", "crate"]) == 0
    group = json.loads(capsys.readouterr().out.splitlines()[0])
    moved = library_root / "duplicates" / group["id"]
    assert sorted(p.relative_to(moved).as_posix() for p in moved.rglob("*") if p.is_file()) == \
        ["b/song.mp3", "c/song.mp3"]
    assert (folder / "a" / "song.flac").exists()
    monkeypatch.chdir(library_root)
    assert main(["dedup", "--undo", group["id"]]) == 0
    assert (folder / "b" / "song.mp3").exists() and (folder / "c" / "song.mp3").exists()
    assert not moved.exists()


def test_the_inbox_skips_a_url_the_library_knows_under_another_track(instance, library, library_root) -> None:
    from dagster import build_sensor_context

    from music_pipeline.automation.sensors import inbox_sensor
    from music_pipeline.resources import DownloaderResource, LibraryResource

    source = source_for("https://youtu.be/dQw4w9WgXcQ")
    library.register(source)
    library.catalog.tracks.add_source_urls(source.key, ["https://vimeo.com/76979871"])  # merged from a duplicate
    box = library_root / "inbox"
    box.mkdir(parents=True, exist_ok=True)
    (box / "list.txt").write_text("https://vimeo.com/76979871\n")
    old = 0
    os.utime(box / "list.txt", (old, old))
    context = build_sensor_context(instance=instance, resources={
        "library": LibraryResource(root=str(library_root)), "downloader": DownloaderResource()})
    result = inbox_sensor(context)
    assert result.run_requests == []
    assert library.catalog.tracks.get("vimeo-76979871") is None  # not even registered


# -- the keeper: what the audio says, not only the file ------------------------------------------


@pytest.fixture(scope="module")
def lossy_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An original lossy Ogg and what gets made of it: a 24-bit FLAC "remaster" with its first
    3 s cut and 6 dB less gain, a complete 16-bit FLAC; and, from the wideband master, a true
    lossless FLAC, one missing its last 3 s, and an MP3 with 2 s of silence added at each end.
    90 s, so that 3 s missing is within 5 % of the length."""
    d = tmp_path_factory.mktemp("lossy_set")
    master = write(d / "master.wav", bright(3, 90.0))
    original = transform(master, d / "set" / "original.ogg", "-c:a", "libvorbis", "-q:a", "2")
    return {
        "original": original,
        "remaster": transform(original, d / "set" / "remaster.flac", "-af", "volume=-6dB", "-c:a", "flac",
                              "-sample_fmt", "s32", cut_s=3.0),
        "copy": transform(original, d / "set" / "copy.flac", "-c:a", "flac", "-sample_fmt", "s16"),
        "true": transform(master, d / "true" / "true.flac", "-c:a", "flac"),
        "short_end": transform(master, d / "more" / "short_end.flac", "-t", "87", "-c:a", "flac"),
        "padded": transform(master, d / "more" / "padded.mp3", "-af", "adelay=2000:all=1,apad=pad_dur=2",
                            "-c:a", "libmp3lame", "-b:a", "320k"),
        # a song that begins after 2.3 s of silence, and a copy cut by 3 s: 0.7 s of music lost
        "late": transform(master, d / "late" / "late.flac", "-af", "adelay=2300:all=1", "-c:a", "flac"),
        "late_cut": transform(master, d / "late" / "late_cut.flac", "-af", "adelay=2300:all=1,volume=-6dB",
                              "-c:a", "flac", "-sample_fmt", "s32", "-ss", "3"),
    }


def test_a_lossless_file_of_lossy_audio_or_a_copy_cut_short_does_not_win(lossy_set) -> None:
    from music_pipeline.core.library.duplicates import file_item

    items = {name: file_item(path) for name, path in lossy_set.items()}
    assert items["remaster"].lossy_origin and items["copy"].lossy_origin
    assert 14_000 < items["remaster"].cutoff_hz < 19_000
    assert not items["true"].lossy_origin and items["true"].cutoff_hz is None
    assert not items["original"].lossy_origin  # lossy, not "of lossy origin"
    assert items["padded"].leading_silence_s == pytest.approx(2.0, abs=0.1)
    assert items["padded"].trailing_silence_s == pytest.approx(2.0, abs=0.2)

    missing = dedup.missing_audio(list(items.values()))
    assert missing[items["remaster"].id][0] == pytest.approx(3.0, abs=0.2)
    assert missing[items["short_end"].id][1] == pytest.approx(3.0, abs=0.2)
    for name in ("original", "copy", "true", "padded", "late"):  # the padding is silence: it adds nothing
        assert sum(missing[items[name].id]) < dedup.COMPLETE_MISSING_S, name
    # A track catalogued before silence was measured: its copy's measured silence is not "missing".
    unmeasured = dataclasses.replace(items["padded"], id="catalogued earlier", leading_silence_s=None,
                                     trailing_silence_s=None)
    assert all(sum(gap) < dedup.COMPLETE_MISSING_S
               for gap in dedup.missing_audio([items["padded"], unmeasured]).values())

    def keeper(*names: str) -> tuple[str, str]:
        chosen, reason = dedup.choose_keeper([items[n] for n in names])
        return next(n for n in names if items[n] is chosen), reason

    name, reason = keeper("original", "remaster", "copy")
    assert name == "original"
    assert "a lossy file (vorbis) over a lossless file of lossy origin (flac, cut off at 1" in reason
    name, reason = keeper("remaster", "padded")  # 24 bits of a cut copy lose to a whole MP3
    assert name == "padded" and "complete" in reason and "the runner-up lacks 3.0 s at the start" in reason
    name, reason = keeper("late_cut", "late")  # silence cut is not missing, the music after it is
    assert name == "late" and re.search(r"the runner-up lacks 0\.[678] s at the start", reason), reason
    name, reason = keeper("short_end", "original")
    assert name == "original" and "the runner-up lacks 3.0 s at the end" in reason
    name, reason = keeper("true", "padded", "remaster", "copy", "original")
    assert name == "true" and "lossless (flac) over lossy (mp3)" in reason
    name, reason = keeper("true", "copy")
    assert name == "true" and "over a lossless file of lossy origin (flac, cut off at 1" in reason


def test_dedup_command_says_why_a_degraded_copy_lost(lossy_set, library_root, capsys) -> None:
    folder = lossy_set["original"].parent
    assert main(["dedup", "--json", str(folder)]) == 0
    group = json.loads(capsys.readouterr().out)
    assert {Path(p).name for p in group["group"]} == {"original.ogg", "remaster.flac", "copy.flac"}
    assert Path(group["keeper"]).name == "original.ogg"
    assert "a lossy file (vorbis) over a lossless file of lossy origin" in group["reason"]
    notes = {Path(path).name: note for path, note in group["notes"].items()}
    assert set(notes) == {"remaster.flac", "copy.flac"}
    assert "lossy origin: cut off at 1" in notes["remaster.flac"] and "lacks 3.0 s at the start" in notes["remaster.flac"]

    assert main(["dedup", str(folder), str(lossy_set["true"])]) == 0
    out = capsys.readouterr().out
    assert f"keep {lossy_set['true']}\n" in out and "lossless (flac) over lossy (vorbis)" in out
    assert f"duplicate: {lossy_set['remaster']} (lossy origin: cut off at 1" in out


def test_lossless_files_of_lossy_audio_do_not_replace_the_original_in_the_library(process, library,
                                                                                   lossy_set) -> None:
    """The check after the fingerprint step uses what the decode found, stored in the catalog."""
    original, result = process(str(lossy_set["original"]))
    assert result.success
    metadata = result.asset_materializations_for_node("audio_features")[0].metadata
    remaster, result = process(str(lossy_set["remaster"]))  # 24 bits, but cut short and of lossy origin
    assert result.success
    row = library.catalog.tracks.get(remaster)
    assert row.status == "duplicate" and row.duplicate_of == original
    assert "the runner-up lacks 3.0 s at the start" in library.catalog.groups.get(row.dedup_group).reason
    assert 14_000 < metadata["cutoff_hz"].value < 19_000 and metadata["lossy_origin"].value is None
    assert row.lossy_origin == 1 and row.cutoff_hz == pytest.approx(metadata["cutoff_hz"].value, abs=300)
    copy, result = process(str(lossy_set["copy"]))  # whole, but lossy audio in a FLAC
    assert result.success
    row = library.catalog.tracks.get(copy)
    assert row.status == "duplicate" and row.duplicate_of == original
    assert "a lossy file (vorbis) over a lossless file of lossy origin" in library.catalog.groups.get(row.dedup_group).reason
    assert library.catalog.tracks.get(original).status == "done"
