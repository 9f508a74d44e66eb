"""Every change to a track's files is a run, and the UI's latest metadata matches the disk.

`dedup --move`, `dedup --undo`, `pin`, the library-wide dedup pass and a track's own steps
setting older copies aside rename and retag files of several tracks. After each, every
touched partition's latest materialisation in DAGSTER_HOME's instance (what the UI shows)
names files that exist, with their size and checksum. A group the user undid stays apart in
every later pass. A `music-pipeline run` killed mid-way is marked failed by the next one.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    materialize,
)

from music_pipeline.assets import dedup_groups
from music_pipeline.automation import bulk
from music_pipeline.cli import main
from music_pipeline.core.domain import dedup
from music_pipeline.core.domain.identity import source_for

from .audio import make_track, write
from .dedup_audio import transform, tune

FORMAT_ASSETS = {"ALAC": "m4a_alac", "AIFF": "aiff", "WAV": "wav"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, library_root: Path) -> Path:
    """The commands' DAGSTER_HOME (the instance the UI would show)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SOUNDCLOUD_USER", raising=False)
    return tmp_path / "home"


def _latest(instance: DagsterInstance, asset: str, key: str) -> dict | None:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[key]), limit=1).records
    if not records:
        return None
    return {name: getattr(value, "value", value) for name, value in records[0].asset_materialization.metadata.items()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_ui_matches_disk(library, keys: list[str]) -> None:
    """For every track: each asset's latest materialisation names files that are on disk,
    where the catalog has them, with their checksum and size; the catalog asset's status and
    file table are the row's."""
    with DagsterInstance.get() as instance:
        for key in keys:
            row = library.catalog.tracks.get(key)
            files = library.catalog.files.all([key])
            for record in files:
                shown = _latest(instance, FORMAT_ASSETS[record.format], key)
                assert shown is not None, f"{key} {record.format}: never materialised"
                path = Path(shown["path"])
                assert path == Path(record.path) and path.is_file(), (key, record.format, path)
                assert shown["sha256"] == _sha256(path), (key, record.format, "checksum")
                assert shown["size_mb"] == round(path.stat().st_size / 1e6, 2)
            raw = _latest(instance, "raw_audio", key)
            if row.raw_path and raw is not None:
                assert Path(raw["path"]) == Path(row.raw_path) and Path(raw["path"]).is_file(), (key, raw["path"])
            shown = _latest(instance, "catalog", key)
            if shown is not None:
                assert shown["status"] == row.status, key
                table = shown["files"]
                for record in files:
                    assert f"`{record.path}`" in table, (key, record.path, table)
                for listed in table.split("`")[1::2]:
                    assert Path(listed).is_file(), (key, listed)


def _song(tmp_path: Path, name: str, seed: int, *, fmt: str = "flac", **tags: str) -> Path:
    codec = ["-c:a", "flac"] if fmt == "flac" else ["-c:a", "libmp3lame", "-b:a", "128k"]
    return make_track(tmp_path / "in" / f"{name}.{fmt}", seconds=5, seed=seed, bpm=100 + 7 * seed,
                      codec_args=codec, metadata=tags)


def _key(path: Path) -> str:
    return source_for(str(path)).key


def _under_duplicates(library, key: str) -> bool:
    paths = [Path(f.path) for f in library.catalog.files.all([key])] + [Path(library.catalog.tracks.get(key).raw_path)]
    return all(p.is_relative_to(library.root / "duplicates") for p in paths)


def test_dedup_move_undo_and_every_later_pass_are_runs_that_keep_the_ui_true(home, library, tmp_path,
                                                                              capsys) -> None:
    songs = [_song(tmp_path, "Band - First", 1), _song(tmp_path, "Band - Second", 2)]
    assert main(["run", *map(str, songs)]) == 0
    keys = [_key(p) for p in songs]
    for key in keys:  # a sync told us later that both are one recording
        library.catalog.tracks.update(key, isrc="USRC17607839")
    capsys.readouterr()

    assert main(["dedup", "--move"]) == 0
    assert "file(s) moved" in capsys.readouterr().err
    copy = next(k for k in keys if library.catalog.tracks.get(k).status == "duplicate")
    group = library.catalog.tracks.get(copy).dedup_group
    assert _under_duplicates(library, copy)
    assert_ui_matches_disk(library, keys)
    with DagsterInstance.get() as instance:
        (run,) = instance.get_runs(filters=RunsFilter(job_name="dedup_move"))
        assert run.status == DagsterRunStatus.SUCCESS and run.tags[bulk.ORIGIN_TAG] == "cli dedup_move"

    assert main(["dedup", "--undo", group]) == 0
    assert f"{group}: " in capsys.readouterr().out
    assert library.catalog.tracks.get(copy).status == "done" and not _under_duplicates(library, copy)
    assert_ui_matches_disk(library, keys)

    assert main(["dedup", "--move"]) == 0  # the undone group stays apart (below): nothing moves
    with DagsterInstance.get() as instance:
        assert materialize([dedup_groups], instance=instance, resources={
            "library": library_resource(library), "eagle": eagle_off()}).success
    assert_ui_matches_disk(library, keys)


def test_a_group_undone_stays_where_the_undo_put_it(home, library, tmp_path, capsys) -> None:
    """An undo is the user's decision: neither `dedup --move` again nor the library-wide pass
    moves the group's files again."""
    songs = [_song(tmp_path, "Crew - Left", 7), _song(tmp_path, "Crew - Right", 8)]
    assert main(["run", *map(str, songs)]) == 0
    keys = [_key(p) for p in songs]
    for key in keys:
        library.catalog.tracks.update(key, isrc="GBAYE0601499")
    assert main(["dedup", "--move"]) == 0
    group = next(library.catalog.tracks.get(k).dedup_group for k in keys if library.catalog.tracks.get(k).dedup_group)
    assert main(["dedup", "--undo", group]) == 0
    put_back = {k: sorted(f.path for f in library.catalog.files.all([k])) for k in keys}
    capsys.readouterr()

    assert main(["dedup", "--move"]) == 0
    assert "0 duplicate group(s)" in capsys.readouterr().err
    assert {k: sorted(f.path for f in library.catalog.files.all([k])) for k in keys} == put_back
    with DagsterInstance.get() as instance:
        assert materialize([dedup_groups], instance=instance, resources={
            "library": library_resource(library), "eagle": eagle_off()}).success
    assert {k: sorted(f.path for f in library.catalog.files.all([k])) for k in keys} == put_back
    assert [library.catalog.tracks.get(k).status for k in keys] == ["done", "done"]
    assert library.catalog.groups.get(group).state == "undone"


def library_resource(library):
    from music_pipeline.resources import LibraryResource

    return LibraryResource(root=str(library.root))


def eagle_off():
    from music_pipeline.resources import EagleResource

    return EagleResource(enabled=False)


def test_an_undone_group_stays_apart_even_through_a_third_copy() -> None:
    """Three uploads of one song: the user undid the group of the first two; a third copy
    found later joins one of them, never both (that would put the undone pair together)."""
    url = frozenset({"https://www.youtube.com/watch?v=dQw4w9WgXcQ"})
    items = [dedup.Item(id="a", urls=url, duration_s=200), dedup.Item(id="b", isrc="USRC17607839", duration_s=200),
             dedup.Item(id="c", urls=url, isrc="USRC17607839", duration_s=200)]  # a ~ c by URL, b ~ c by ISRC
    groups = dedup.find_groups(items, separated={frozenset(("a", "b"))})
    assert groups and all(not {"a", "b"} <= set(g.members) for g in groups)


def test_a_step_setting_older_copies_aside_records_their_partitions(home, library, tmp_path) -> None:
    """The fingerprint step of a copy merges it into its keeper (the keeper's tags change);
    the catalog step of a better copy moves the older one's files aside and takes their names."""
    flac = write(tmp_path / "in" / "Pair - One.flac", tune(3, seconds=15), codec_args=["-c:a", "flac"],
                 metadata={"ISRC": "GBAYE0601498", "title": "One", "artist": "Pair"})
    mp3 = transform(flac, tmp_path / "in" / "one copy.mp3", "-c:a", "libmp3lame", "-b:a", "128k",
                    "-metadata", "album=Found Later")
    assert main(["run", str(flac)]) == 0
    assert main(["run", str(mp3)]) == 0  # a copy: stopped at its fingerprint, merged into the keeper
    assert library.catalog.tracks.get(_key(mp3)).status == "duplicate"
    assert library.catalog.tracks.get(_key(flac)).album == "Found Later"  # retagged with what the copy had
    assert_ui_matches_disk(library, [_key(flac), _key(mp3)])

    better = write(tmp_path / "in" / "Other - Two.flac", tune(4, seconds=15), codec_args=["-c:a", "flac"],
                   metadata={"ISRC": "USRC17607840", "title": "Two", "artist": "Other"})
    old = transform(better, tmp_path / "in" / "two rip.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    assert main(["run", str(old)]) == 0
    assert main(["run", str(better)]) == 0  # the better copy: the old one set aside at its catalog step
    assert library.catalog.tracks.get(_key(old)).status == "duplicate" and _under_duplicates(library, _key(old))
    assert_ui_matches_disk(library, [_key(old), _key(better)])


def test_pin_is_set_inside_a_run(home, library, tmp_path, http_server, capsys) -> None:
    song = _song(tmp_path, "Pin - Song", 5)
    assert main(["run", str(song)]) == 0
    key = _key(song)
    make_track(http_server.root / "pin-elsewhere.flac", seconds=5, seed=6, codec_args=["-c:a", "flac"])
    url = http_server.url("pin-elsewhere.flac")

    assert main(["pin", key, url, "--later"]) == 0
    assert f"{key} will be downloaded from {url}" in capsys.readouterr().out
    assert library.catalog.tracks.get(key).status == "queued"
    with DagsterInstance.get() as instance:
        (run,) = instance.get_runs(filters=RunsFilter(tags={bulk.ORIGIN_TAG: "cli pin"}))
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.run_config["ops"]["run_tracks"]["config"]["pins"] == {key: url}

    assert main(["pin", key, url]) == 0  # pinned and processed in one run
    assert library.catalog.tracks.get(key).status == "done" and library.catalog.tracks.get(key).match_pinned == 1
    with DagsterInstance.get() as instance:
        shown = _latest(instance, "raw_audio", key)
        assert shown["matched_source"] == library.catalog.tracks.get(key).match_url and shown["match_pinned"] is True
    assert_ui_matches_disk(library, [key])


@pytest.mark.slow  # starts the product, a server to stop, or waits out a client's back-off
def test_a_run_killed_under_the_command_is_failed_by_the_next_command(home, library_root, tmp_path) -> None:
    """No daemon runs on this home: the next `music-pipeline run` marks the killed bulk run
    and its track run failed, with a message, and processes the track."""
    song = make_track(tmp_path / "Killed Artist - Long Song.flac", seconds=30, rate=96_000,
                      codec_args=["-c:a", "flac", "-sample_fmt", "s32"])
    env = {**os.environ, "MUSIC_LIBRARY": str(library_root), "DAGSTER_HOME": str(home)}
    killed = subprocess.run([sys.executable, "-m", "music_pipeline_tests.faults", "transcode", "--", "run",
                             str(song)], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    with DagsterInstance.get() as instance:
        left = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        assert {r.job_name for r in left} == {"process_tracks", "process_track"}  # nobody noticed

    again = subprocess.run([sys.executable, "-m", "music_pipeline", "run", str(song)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    with DagsterInstance.get() as instance:
        for run in left:
            run = instance.get_run_by_id(run.run_id)
            assert run.status == DagsterRunStatus.FAILURE, run.job_name
            messages = [e.dagster_event.message or "" for e in
                        instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)]
            assert any("is gone" in m for m in messages), (run.job_name, messages)
    from music_pipeline.core.library.catalog import Catalog

    assert Catalog(library_root / "catalog.sqlite").tracks.get(_key(song)).status == "done"  # runnable again
