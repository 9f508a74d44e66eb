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


def tick(instance, library_root: Path, cursor: str | None, catalog_url: str | None = None) -> SensorResult:
    context = build_sensor_context(instance=instance, cursor=cursor,
                                   resources={"library": LibraryResource(root=str(library_root),
                                                                          catalog_url=catalog_url),
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
    assert library.catalog.tracks.get("youtube-dQw4w9WgXcQ").source_url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert {r.source_kind for r in library.catalog.tracks.all()} == {"file", "url"}

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
    library.catalog.tracks.mark_failed(key, "raw_audio", "disk full", "disk-full")
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
    row = library.catalog.tracks.get(key)
    assert row.status == "done" and (row.artist, row.title) == ("Inbox Artist", "Dropped")
    assert not song.exists()
    assert (box / "imported" / "Inbox Artist - Dropped.flac").exists()  # moved, never deleted
    assert Path(row.source_path) == box / "imported" / "Inbox Artist - Dropped.flac"
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


# -- long lists: a bounded share per tick, resumed inside the file --------------------------------


def test_a_long_list_is_read_over_several_ticks_without_holding_up_later_drops(
        instance, library, library_root, http_server, monkeypatch) -> None:
    """A list of 10,000 URLs once took one tick over five minutes, was cancelled every
    minute and jammed the inbox; now each tick takes a bounded share, in turns with the
    files dropped after it."""
    from music_pipeline.core.domain.identity import source_for

    monkeypatch.setenv("MUSIC_PIPELINE_INBOX_PER_TICK", "100")
    box = library_root / "inbox"
    box.mkdir(parents=True)
    big = box / "big.txt"
    urls = [f"https://youtu.be/{n:011d}" for n in range(1_000)]  # keys from the URL alone: quick to register
    big.write_text("# a long list\n" + "\n".join(urls) + "\n")
    song = make_track(box / "later.flac", seconds=3, codec_args=["-c:a", "flac"])
    more = box / "more.txt"
    more.write_text(f"{http_server.url('direct.wav')}\nhttps://vimeo.com/76979871\n")  # nothing is downloaded
    settle(big)
    settle(song, more)  # dropped after the long list

    per_tick: list[list[str]] = []
    cursor = None
    for _ in range(15):
        result = tick(instance, library_root, cursor)
        cursor = result.cursor
        if not result.run_requests:
            break
        per_tick.append(requested(result))
    assert len(per_tick) == 11 and all(len(keys) <= 100 for keys in per_tick)  # the bound holds: lines, not files
    later = {source_for(str(song)).key, source_for(http_server.url("direct.wav")).key, "vimeo-76979871"}
    assert later <= set(per_tick[0])  # the later drops are not kept waiting
    everything = [key for keys in per_tick for key in keys]
    assert len(everything) == len(set(everything)) == 1_003  # every line requested exactly once
    assert set(everything) == set(instance.get_dynamic_partitions(tracks.name))
    assert {source_for(url).key for url in urls} | later == set(everything)
    assert not tick(instance, library_root, cursor).run_requests  # and then nothing more


def test_rows_left_by_an_interrupted_tick_get_their_partitions_and_runs(instance, library, library_root) -> None:
    """A tick cut off by Dagster's time limit registered rows but returned nothing: no
    partitions, no run, no cursor. The next tick reads the same lines and requests them."""
    from music_pipeline.core.domain.identity import source_for

    box = library_root / "inbox"
    box.mkdir(parents=True)
    lines = [f"https://youtu.be/{n:011d}" for n in range(6)]
    (box / "list.txt").write_text("\n".join(lines) + "\n")
    settle(box / "list.txt")
    for line in lines[:4]:  # what the interrupted tick got through
        library.register(source_for(line), original=line)
    result = tick(instance, library_root, None)
    assert sorted(requested(result)) == sorted(source_for(line).key for line in lines)
    assert set(instance.get_dynamic_partitions(tracks.name)) == set(requested(result))


def test_scan_resumes_a_list_where_it_stopped_and_restarts_an_edited_one(tmp_path) -> None:
    box = tmp_path / "inbox"
    box.mkdir()
    first_list = box / "a.txt"
    first_list.write_text("".join(f"https://youtu.be/{n:011d}\n# note\n" for n in range(10)))
    settle(first_list)
    first = inbox.scan(box, None, max_items=4)
    assert [i.line for i in first.items] == [1, 3, 5, 7] and first.pending
    assert any("a.txt: read to line 8 of 20" in note for note in first.skipped)
    second = inbox.scan(box, first.cursor, max_items=4)
    assert [i.line for i in second.items] == [9, 11, 13, 15]  # resumed inside the file

    # a registration that may pass (no network) rewinds the list to that line, not to its start
    rewound = inbox.forget(second.cursor, [second.items[1]])
    assert [i.line for i in inbox.scan(box, rewound, max_items=2).items] == [11, 13]

    # an edited list is another version: read again from its first line
    first_list.write_text(first_list.read_text() + "https://youtu.be/ccccccccccc\n")
    settle(first_list)
    edited = inbox.scan(box, second.cursor, max_items=100)
    assert len(edited.items) == 11 and edited.items[0].line == 1 and not edited.pending

    # a cursor written before lists were resumed still reads
    old = inbox.scan(box, '{"files": {}}', max_items=100)
    assert len(old.items) == 11


def test_scan_takes_turns_between_lists(tmp_path) -> None:
    box = tmp_path / "inbox"
    box.mkdir()
    (box / "a.txt").write_text("".join(f"https://youtu.be/a{n:010d}\n" for n in range(50)))
    (box / "b.txt").write_text("".join(f"https://youtu.be/b{n:010d}\n" for n in range(3)))
    settle(box / "a.txt", box / "b.txt")
    first = inbox.scan(box, None, max_items=6)
    assert [i.origin for i in first.items] == ["a.txt", "b.txt"] * 3
    second = inbox.scan(box, first.cursor, max_items=6)
    assert {i.origin for i in second.items} == {"a.txt"} and len(second.items) == 6


# -- what the inbox does not trust ----------------------------------------------------------------


def test_a_list_carries_http_urls_only(instance, library, library_root, capfd) -> None:
    """A path in a list imported a file from elsewhere on the machine (/etc/passwd, the
    catalog itself), and each error message showed the path."""
    box = library_root / "inbox"
    box.mkdir(parents=True)
    catalog = str(library.catalog.path)
    refused = ["/etc/passwd", "~/.ssh/id_rsa", "file:///etc/passwd", catalog, "passwords", "ftp://me:pw@host/x.mp3"]
    urls = box / "list.txt"
    urls.write_text("# only these\n" + "\n".join(refused) + "\n")
    settle(urls)
    result = tick(instance, library_root, None)
    log = capfd.readouterr().err
    assert not result.run_requests and not instance.get_dynamic_partitions(tracks.name)
    assert library.catalog.tracks.all() == []
    (seen,) = result.asset_events
    messages = seen.metadata["error_messages"].value
    for number in range(2, len(refused) + 2):  # one message per line, by its number
        assert f"list.txt, line {number}: " in messages and f"list.txt, line {number}: " in log
    assert "a file path" in messages and "file://" in messages
    for line in refused:  # never echoed beyond a few characters
        for text in (log, messages, result.skip_reason):
            assert line not in text and line[:8] not in text
    assert "id_rsa" not in log + messages and "passwd" not in log + messages and "pw@" not in log + messages


def _shown(result, capfd) -> str:
    """Everything a user sees of a tick: the sensor's log and the inbox observation."""
    text = capfd.readouterr().err
    for event in result.asset_events:
        text += "".join(str(value.value) for value in event.metadata.values())
    return text


def test_a_list_linked_from_outside_the_inbox_is_refused_unread(instance, library, library_root, tmp_path,
                                                                 capfd) -> None:
    """A .txt linked to /etc/passwd wrote its lines into the sensor log."""
    box = library_root / "inbox"
    box.mkdir(parents=True)
    secret = tmp_path / "elsewhere" / "secrets.txt"
    secret.parent.mkdir()
    secret.write_text("https://example.com/x.mp3?token=SECRET-TOKEN-123\nroot:x:0:0:SECRET-LINE\n")
    (box / "list.txt").symlink_to(secret)
    settle(secret)
    result = tick(instance, library_root, None)
    shown = _shown(result, capfd)
    assert "SECRET" not in shown and "root:x" not in shown and "example.com" not in shown
    assert "list.txt: a link leading outside the inbox; refused" in shown
    assert not result.run_requests and library.catalog.tracks.all() == []
    # refused once per version of the link, not at every tick
    again = tick(instance, library_root, result.cursor)
    assert not again.asset_events and "refused" not in capfd.readouterr().err


def test_an_audio_file_linked_from_outside_the_inbox_is_refused(instance, library, library_root, tmp_path,
                                                                capfd) -> None:
    box = library_root / "inbox"
    box.mkdir(parents=True)
    song = make_track(tmp_path / "elsewhere" / "private.flac", seconds=3, codec_args=["-c:a", "flac"])
    (box / "song.flac").symlink_to(song)
    inside = make_track(box / "sub" / "real.flac", seconds=3, codec_args=["-c:a", "flac"], seed=1)
    (box / "alias.flac").symlink_to(inside)  # a link within the inbox is read like its target
    settle(song, inside)
    result = tick(instance, library_root, None)
    shown = _shown(result, capfd)
    (key,) = requested(result)  # only the file inside the inbox, once for both names
    assert "song.flac: a link leading outside the inbox; refused" in shown
    assert [r.key for r in library.catalog.tracks.all()] == [key]
    assert library.catalog.tracks.get(key).source_path == str(inside.resolve())


def test_a_linked_folder_is_not_followed(instance, library, library_root, tmp_path, capfd) -> None:
    """Path.rglob in Python 3.11 yields a linked folder but does not enter it; the inbox
    does not rely on that and says why the folder's files are not imported."""
    box = library_root / "inbox"
    box.mkdir(parents=True)
    folder = tmp_path / "elsewhere"
    make_track(folder / "in a linked folder.flac", seconds=3, codec_args=["-c:a", "flac"])
    (folder / "list.txt").write_text("https://youtu.be/ddddddddddd\n")
    (box / "linked").symlink_to(folder, target_is_directory=True)
    settle(*folder.iterdir())
    result = tick(instance, library_root, None)
    assert not result.run_requests and library.catalog.tracks.all() == []
    assert "linked: a link to a folder; not followed" in _shown(result, capfd)
