"""Bulk runs on a persistent instance: several tracks at once in lanes forked from a warm fork
server, each still a run of process_track with its own status and checks."""

import os
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from music_pipeline.automation import bulk
from music_pipeline.core.domain.identity import source_for
from music_pipeline.instance import WORKER_TAG

from .audio import make_track
from .conftest import check_results


def test_tracks_run_in_lanes_each_a_run_of_its_own(library, library_root, resources, tmp_path: Path) -> None:
    songs = [make_track(tmp_path / f"Lane Band - Song {n}.flac", seconds=3, bpm=90 + 11 * n, seed=60 + n,
                        codec_args=["-c:a", "flac"]) for n in range(4)]
    bad = tmp_path / "Lane Band - Broken.wav"
    bad.write_text("not audio")
    keys = [source_for(str(p)).key for p in (*songs, bad)]
    for path in (*songs, bad):
        library.register(source_for(str(path)))
    home = tmp_path / "home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        result = bulk.process_tracks.execute_in_process(run_config=bulk.run_config(keys, parallel=2),
                                                        instance=instance, resources=resources,
                                                        raise_on_error=False)
        assert not result.success  # the broken one failed, alone
        runs = {r.tags["dagster/partition"]: r for r in instance.get_runs(
            filters=RunsFilter(job_name="process_track", tags={bulk.BULK_TAG: result.run_id}))}
        assert set(runs) == set(keys)
        assert [runs[k].status for k in keys] == [DagsterRunStatus.SUCCESS] * 4 + [DagsterRunStatus.FAILURE]
        workers = {runs[k].tags[WORKER_TAG].split(":")[1] for k in keys}  # host:pid:run id
        assert len(workers) == 2 and str(os.getpid()) not in workers  # two lanes, neither this process
        assert all(runs[k].tags[WORKER_TAG].endswith(runs[k].run_id) for k in keys)
        for key in keys[:4]:
            assert check_results(instance, key) == {"raw_audio:decodes": True, "m4a_alac:valid": True,
                                                    "aiff:valid": True, "wav:valid": True}
    assert [library.catalog.tracks.get(k).status for k in keys] == ["done"] * 4 + ["failed"]
    assert library.catalog.tracks.get(keys[4]).error_reason == "not-audio"  # not retried: it would fail again


def test_runs_whose_process_died_are_failed_and_their_tracks_requested_again(library, tmp_path: Path) -> None:
    """Without a daemon (commands only) nothing else would notice: a killed `process` left its
    bulk run and a track run STARTED, which kept the tracks "in flight" for ever."""
    import socket
    import subprocess

    from dagster._core.test_utils import create_run_for_test
    from dagster._core.utils import make_new_run_id

    song = make_track(tmp_path / "Gone Band - Song.flac", seconds=2, codec_args=["-c:a", "flac"])
    key = source_for(str(song)).key
    library.register(source_for(str(song)))
    library.catalog.tracks.mark_running(key)
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    ids = {name: make_new_run_id() for name in ("bulk", "track", "alive", "copied")}
    home = tmp_path / "home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        killed_bulk = create_run_for_test(instance, job_name="process_tracks", status=DagsterRunStatus.STARTED,
                                          run_id=ids["bulk"], run_config=bulk.run_config([key, "other"]),
                                          tags={WORKER_TAG: f"{host}:{dead.pid}:{ids['bulk']}"})
        killed_track = create_run_for_test(instance, job_name="process_track", status=DagsterRunStatus.STARTED,
                                           run_id=ids["track"], tags={WORKER_TAG: f"{host}:{dead.pid}:{ids['track']}",
                                                                      "dagster/partition": key})
        running = create_run_for_test(instance, job_name="process_track", status=DagsterRunStatus.STARTED,
                                      run_id=ids["alive"], tags={WORKER_TAG: f"{host}:{os.getpid()}:{ids['alive']}",
                                                                 "dagster/partition": "busy-track"})
        # a re-execution from the UI copies its parent's tags: the dead parent says nothing about it
        copied = create_run_for_test(instance, job_name="process_track", status=DagsterRunStatus.STARTED,
                                     run_id=ids["copied"], tags={WORKER_TAG: f"{host}:{dead.pid}:{ids['track']}",
                                                                 "dagster/partition": "re-executed"})
        assert bulk.in_flight(instance) == {"busy-track", "re-executed"}  # the living ones count
        assert instance.get_run_by_id(killed_bulk.run_id).status == DagsterRunStatus.STARTED  # a query only
        assert library.catalog.tracks.get(key).status == "running"
        assert set(bulk.reap_dead_runs(instance, library)) == {killed_bulk.run_id, killed_track.run_id}
        for run in (killed_bulk, killed_track):
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
        for run in (running, copied):
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    row = library.catalog.tracks.get(key)
    assert row.status == "failed" and row.error_reason == "crashed" and "is gone" in row.error
