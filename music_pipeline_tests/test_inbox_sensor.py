"""The inbox sensor with a real Dagster instance: dropped files and URL lists become
partitions and run requests in the same tick, with a cursor and run keys so nothing is
processed twice."""

import os
import time
from pathlib import Path

from dagster import SensorResult, build_sensor_context

from music_pipeline.assets import tracks
from music_pipeline.automation.bulk import process_tracks
from music_pipeline.automation.sensors import inbox_sensor
from music_pipeline.core.sources import inbox
from music_pipeline.resources import DownloaderResource, LibraryResource

from .audio import make_track
from .conftest import check_results, requested


def settle(*paths: Path) -> None:
    old = time.time() - 60
    for path in paths:
        os.utime(path, (old, old))


def tick(instance, library_root: Path, cursor: str | None) -> SensorResult:
    context = build_sensor_context(instance=instance, cursor=cursor,
                                   resources={"library": LibraryResource(root=str(library_root)),
                                              "downloader": DownloaderResource(socket_timeout=2, retries=0)})
    result = inbox_sensor(context)
    assert isinstance(result, SensorResult)
    # build_sensor_context does not apply partition requests: do what the daemon does.
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_files_and_url_lists_become_partitions_and_runs(instance, library, library_root, tmp_path) -> None:
    box = library_root / "inbox"
    song = make_track(box / "Inbox Artist - Dropped.flac", seconds=3, codec_args=["-c:a", "flac"])
    nested = make_track(box / "album" / "02 - Second.mp3", seconds=3, codec_args=["-c:a", "libmp3lame"])
    urls = box / "to-get.txt"
    urls.write_text("# my list\nhttps://youtu.be/dQw4w9WgXcQ\n\nhttps://www.youtube.com/watch?v=dQw4w9WgXcQ\n"
                    "https://vimeo.com/76979871\n")
    (box / "notes.pdf").write_bytes(b"%PDF-1.4")
    settle(song, nested, urls, box / "notes.pdf")

    result = tick(instance, library_root, None)
    keys = set(instance.get_dynamic_partitions(tracks.name))
    assert len(keys) == 4  # two files, one YouTube video (two URL forms), one Vimeo video
    assert "youtube-dQw4w9WgXcQ" in keys and "vimeo-76979871" in keys
    assert sorted(requested(result)) == sorted(keys)  # each once
    (request,) = result.run_requests  # one unit of bulk work for the tick
    assert request.job_name == "process_tracks" and request.run_key
    (seen,) = result.asset_events  # the inbox source asset's observation
    assert seen.asset_key.to_user_string() == "sources/inbox" and seen.metadata["new_tracks"].value == 4
    assert result.dynamic_partitions_requests[0].partition_keys  # added in the same tick
    # the catalog knows where each came from
    assert library.catalog.get("youtube-dQw4w9WgXcQ")["source_url"] == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert {r["source_kind"] for r in library.catalog.tracks()} == {"file", "url"}

    # the next tick with the cursor finds nothing new
    again = tick(instance, library_root, result.cursor)
    assert not again.run_requests and again.skip_reason

    # an edited list is read again; tracks whose runs are still going are not requested twice
    for key in requested(result):
        _start_run(instance, key)
    urls.write_text(urls.read_text() + "https://youtu.be/aaaaaaaaaaa\n")
    settle(urls)
    edited = tick(instance, library_root, again.cursor)
    assert requested(edited) == ["youtube-aaaaaaaaaaa"]


def _start_run(instance, key: str) -> None:
    """An unfinished run for ``key``, as one is between its request and its end."""
    from dagster import DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test

    create_run_for_test(instance, job_name="process_track", status=DagsterRunStatus.STARTED,
                        tags={"dagster/partition": key})


def test_a_failed_track_dropped_again_is_retried(instance, library, library_root) -> None:
    box = library_root / "inbox"
    song = make_track(box / "retry.flac", seconds=3, codec_args=["-c:a", "flac"])
    settle(song)
    first = tick(instance, library_root, None)
    (request,) = first.run_requests
    (key,) = requested(first)
    library.catalog.mark_failed(key, "raw_audio", "disk full", "disk-full")
    song.touch()  # the user drops it again after freeing space
    settle(song)
    os.utime(song, (time.time() - 30, time.time() - 30))
    second = tick(instance, library_root, first.cursor)
    assert requested(second) == [key]
    assert second.run_requests[0].run_key != request.run_key


def test_files_still_being_copied_wait_for_the_next_tick(instance, library_root) -> None:
    box = library_root / "inbox"
    song = make_track(box / "fresh.flac", seconds=3, codec_args=["-c:a", "flac"])
    first = tick(instance, library_root, None)
    assert not first.run_requests
    settle(song)
    second = tick(instance, library_root, first.cursor)
    assert len(second.run_requests) == 1


def test_dropped_file_is_processed_and_filed_away(instance, library, library_root, resources) -> None:
    box = library_root / "inbox"
    song = make_track(box / "Inbox Artist - Dropped.flac", seconds=4, codec_args=["-c:a", "flac"])
    settle(song)
    result = tick(instance, library_root, None)
    (request,) = result.run_requests
    (key,) = requested(result)
    run = process_tracks.execute_in_process(run_config=request.run_config, instance=instance, resources=resources,
                                            tags=request.tags)
    assert run.success
    assert check_results(instance, key) == {"raw_audio:decodes": True, "m4a_alac:valid": True, "aiff:valid": True,
                                            "wav:valid": True}
    row = library.catalog.get(key)
    assert row["status"] == "done" and (row["artist"], row["title"]) == ("Inbox Artist", "Dropped")
    assert not song.exists()
    assert (box / "imported" / "Inbox Artist - Dropped.flac").exists()  # moved, never deleted
    assert Path(row["source_path"]) == box / "imported" / "Inbox Artist - Dropped.flac"
    # dropping the same song again does not process it twice
    again = make_track(box / "copy of it.flac", seconds=4, codec_args=["-c:a", "flac"])
    settle(again)
    later = tick(instance, library_root, result.cursor)
    assert not later.run_requests


def test_scan_limits_items_per_tick_and_resumes(tmp_path) -> None:
    box = tmp_path / "inbox"
    box.mkdir()
    (box / "many.txt").write_text("".join(f"https://youtu.be/{i:011d}\n" for i in range(3)))
    files = []
    for i in range(5):
        path = box / f"{i}.mp3"
        path.write_bytes(b"x")
        files.append(path)
    settle(box / "many.txt", *files)
    first = inbox.scan(box, None, max_items=2)
    assert first.pending and len(first.items) == 2
    second = inbox.scan(box, first.cursor, max_items=100)
    taken = {i.target for i in first.items} | {i.target for i in second.items}
    assert len(taken) == 8 and not second.pending
