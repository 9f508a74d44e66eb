"""The whole graph on PostgreSQL: Dagster's runs, events and schedules (dagster-postgres) and
the catalog (MUSIC_CATALOG_URL) both on a real server started by the tests. A sensor tick
registers dropped files, a bulk run executes one run per track, a copy of a song is set
aside as a duplicate, and the library index lists what was kept."""

from pathlib import Path

import pandas as pd
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter, materialize
from dagster_postgres import PostgresRunStorage

from music_pipeline.assets import library_index, tracks
from music_pipeline.automation.bulk import process_tracks
from music_pipeline.resources import LibraryResource

from .audio import make_track
from .conftest import check_results, requested
from .services import fresh_database
from .test_inbox_sensor import settle, tick

STORAGE = """\
storage:
  postgres:
    postgres_db:
      username: {env: DAGSTER_PG_USERNAME}
      password: {env: DAGSTER_PG_PASSWORD}
      hostname: {env: DAGSTER_PG_HOST}
      db_name: {env: DAGSTER_PG_DB}
      port: {env: DAGSTER_PG_PORT}
telemetry:
  enabled: false
"""


def test_tracks_go_through_the_graph_with_dagster_and_the_catalog_on_postgres(
        tmp_path, postgres_server, library_root, resources, monkeypatch) -> None:
    dagster_db, catalog_db = fresh_database(postgres_server, "dagster"), fresh_database(postgres_server, "catalog")
    for name, value in dagster_db.env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(STORAGE)
    resources = {**resources, "library": LibraryResource(root=str(library_root), catalog_url=catalog_db.url)}
    library = resources["library"].get()

    box = library_root / "inbox"
    first = make_track(box / "Artist One - First.flac", seconds=6, bpm=120, codec_args=["-c:a", "flac"])
    second = make_track(box / "Artist Two - Second.flac", seconds=6, bpm=96, tonic="D", minor=False,
                        codec_args=["-c:a", "flac"])
    copy = make_track(box / "copy" / "Artist One - First.mp3", seconds=6, bpm=120,
                      codec_args=["-c:a", "libmp3lame", "-b:a", "128k"])
    settle(first, second, copy)

    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        result = tick(instance, library_root, None, catalog_url=catalog_db.url)
        keys = requested(result)
        assert len(keys) == 3 and set(instance.get_dynamic_partitions(tracks.name)) == set(keys)
        (request,) = result.run_requests
        bulk = process_tracks.execute_in_process(run_config={**request.run_config}, instance=instance,
                                                 resources=resources, tags=request.tags)
        assert bulk.success

        runs = instance.get_runs(filters=RunsFilter(job_name="process_track"))
        assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(keys)  # one run per track
        assert {r.status for r in runs} == {DagsterRunStatus.SUCCESS}
        rows = {row.key: row for row in library.catalog.tracks.all()}
        assert sorted(row.status for row in rows.values()) == ["done", "done", "duplicate"]
        (dup,) = [row for row in rows.values() if row.status == "duplicate"]
        keeper = rows[dup.duplicate_of]
        assert Path(keeper.source_path).name == "Artist One - First.flac"  # the lossless copy is kept
        for key, row in rows.items():
            if row.status == "done":
                assert set(check_results(instance, key).values()) == {True}

        index = materialize([library_index], instance=instance, resources=resources)
        assert index.success
    csv = pd.read_csv(library_root / "library_index.csv")
    kept = csv[(csv.status == "done") & (csv.format != "SOURCE")]
    assert sorted(set(kept.track_key)) == sorted(k for k, r in rows.items() if r.status == "done")
    assert len(kept) == 6 and all(Path(p).is_file() for p in kept.path)  # ALAC, AIFF and WAV of each kept track
    assert not (library_root / "catalog.sqlite").exists()  # nothing went to a local catalog
