"""The Notion mirror against a local server that behaves like Notion's API (data sources,
pagination, validation, 429s, 5xx, access errors), with the real notion-client: what the
database holds after a first sync, a re-sync, a hand edit, a merge, a queue, a storm."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from music_pipeline.assets import notion_records, tracks
from music_pipeline.core.domain.errors import Reason
from music_pipeline.core.domain.identity import source_for
from music_pipeline.core.library import mirrors
from music_pipeline.core.library.steps import Library
from music_pipeline.core.sources.notion import mirror as mirror_module
from music_pipeline.resources import LibraryResource, NotionResource
from music_pipeline.resources import mirrors as mirror_resources

from .fakes.notion import FakeNotion

REPO = Path(__file__).resolve().parents[1]
SCHEMA = {
    "Name": "title", "Track ID": "rich_text", "Artist": "multi_select", "Album": "rich_text", "BPM": "number",
    "Key": "select", "Camelot": "select", "LUFS": "number", "Duration": "number", "URL": "url",
    "SoundCloud": "url", "YouTube": "url", "Spotify": "url", "ISRC": "rich_text", "ALAC File": "rich_text",
    "AIFF File": "rich_text", "WAV File": "rich_text", "Playlists": "multi_select", "Genre": "multi_select",
    "Status": "select", "Error": "rich_text", "Processed": "date", "Lossless": "checkbox", "Full URL": "rich_text",
    "Tags": "multi_select", "Notes": "rich_text",  # the user's own: never written by the pipeline
}


@pytest.fixture
def fake():
    with FakeNotion(token=f"ntn_test_{uuid.uuid4().hex}") as server:
        yield server


@pytest.fixture
def db(fake: FakeNotion):
    return fake.create_database("Tracks", SCHEMA)


@pytest.fixture(autouse=True)
def new_process():
    """Each test (and ``restart()``) starts as a fresh process would: no schema or page cache."""
    restart()
    yield
    restart()


def restart() -> None:
    mirror_resources._mirrors.clear()
    mirror_module._snapshots.clear()


def notion(fake: FakeNotion, db, **config) -> NotionResource:
    return NotionResource(token=fake.token, tracks_db_id=db.id, api_base_url=fake.url, **{"backoff_s": 0.05, **config})


def youtube(n: int) -> str:
    return f"https://www.youtube.com/watch?v=track{n:06d}"


def add_done(lib: Library, n: int, *, title: str | None = None, bpm: float = 124.0, playlists: tuple = (),
             isrc: str | None = None, genres: tuple = ("House",)) -> str:
    """A finished track as the catalog holds it after its run (files recorded, status done)."""
    source = source_for(youtube(n))
    lib.register(source)
    key = source.key
    lib.catalog.tracks.update(key, title=title or f"Song {n}", artist=f"Artist {n}", artists=[f"Artist {n}"],
                       album="An Album", bpm=bpm, key_name="F# minor", key_short="F#m", camelot="11A", lufs=-9.14,
                       duration_s=201.27, isrc=isrc, genres=list(genres), raw_lossless=1,
                       webpage_url=youtube(n))
    for fmt, ext in (("ALAC", "m4a"), ("AIFF", "aiff"), ("WAV", "wav")):
        lib.catalog.files.record_file(key, fmt, lib.root / fmt / f"Artist {n} - Song {n}.{ext}", size=1000 + n,
                                sha256=f"{n:064x}", duration_s=201.27, codec="pcm", sample_rate=44100, bits=16)
    for name in playlists:
        lib.catalog.playlists.save(f"yt-{name}", "youtube", name)
        lib.catalog.playlists.add_membership(f"yt-{name}", key, 0)
    lib.catalog.tracks.mark_done(key)
    return key


def pages(fake: FakeNotion, db, trashed: bool = False) -> list[dict]:
    return [FakeNotion.plain(p) | {"id": p["id"], "in_trash": p["in_trash"]}
            for p in fake.pages_in(db.data_source_id, include_trashed=trashed)]


def by_key(fake: FakeNotion, db) -> dict[str, dict]:
    found = {}
    for page in pages(fake, db):
        assert page["Track ID"] not in found, f"two pages for {page['Track ID']}"
        found[page["Track ID"]] = page
    return found


def test_first_sync_creates_one_page_per_track_and_a_resync_writes_nothing(fake, db, library: Library) -> None:
    keys = [add_done(library, n, playlists=("Warmup",) if n % 2 else ()) for n in range(5)]
    resource = notion(fake, db)
    for key in keys:
        outcome = mirrors.sync_notion(library, resource.mirror(), key)
        assert outcome.action == "created"
    held = by_key(fake, db)
    assert set(held) == set(keys)
    page = held[keys[1]]
    assert page["Name"] == "Song 1" and page["Artist"] == ["Artist 1"] and page["BPM"] == 124.0
    assert page["Key"] == "F#m" and page["Camelot"] == "11A" and page["LUFS"] == -9.1 and page["Duration"] == 201.3
    assert page["YouTube"] == youtube(1) and page["URL"] == youtube(1) and page["SoundCloud"] is None
    assert page["ALAC File"].endswith("ALAC/Artist 1 - Song 1.m4a") and page["Playlists"] == ["Warmup"]
    assert page["Status"] == "Done" and page["Genre"] == ["House"] and page["Lossless"] is True
    assert page["Processed"] and page["Notes"] == ""
    requests_first = len(fake.requests)

    restart()  # a new run: a fresh process reads the database again (paged) and writes nothing
    writes_before = len(fake.writes())
    for key in keys:
        assert mirrors.sync_notion(library, notion(fake, db).mirror(), key).action == "unchanged"
    assert len(fake.writes()) == writes_before
    resync = fake.requests[requests_first:]
    assert len(resync) <= 3, [(r.method, r.path) for r in resync]  # schema (2) + one query page


def test_a_value_typed_by_hand_is_kept_and_the_rest_follows_the_library(fake, db, library: Library) -> None:
    key = add_done(library, 1, playlists=("Peak",))
    resource = notion(fake, db)
    mirrors.sync_notion(library, resource.mirror(), key)
    page_id = library.catalog.mirrors.get(key, "notion").remote_id
    # a person corrects the BPM, swaps the pipeline's genre for theirs, adds a playlist, writes a note
    fake.edit_by_hand(page_id, {"BPM": 62.0, "Genre": ["Deep"], "Playlists": ["Peak", "Mine"],
                                "Notes": "great closer"})
    # the library changes: new analysis, another key, a playlist gone, another added
    library.catalog.tracks.update(key, bpm=125.0, key_short="Am", camelot="8A")
    library.catalog.playlists.remove_membership("yt-Peak", key)
    library.catalog.playlists.save("yt-Sunrise", "youtube", "Sunrise")
    library.catalog.playlists.add_membership("yt-Sunrise", key, 0)
    restart()
    outcome = mirrors.sync_notion(library, notion(fake, db).mirror(), key)
    assert outcome.action == "updated" and "BPM" in outcome.kept
    page = by_key(fake, db)[key]
    assert page["BPM"] == 62.0  # the person's value stays
    assert page["Key"] == "Am" and page["Camelot"] == "8A"  # the library's change arrives
    assert page["Genre"] == ["Deep"]  # a name of ours they took away stays away
    assert sorted(page["Playlists"]) == ["Mine", "Sunrise"]  # ours moved on, theirs stayed
    assert page["Notes"] == "great closer"
    writes = len(fake.writes())
    restart()
    assert mirrors.sync_notion(library, notion(fake, db).mirror(), key).action == "unchanged"
    assert len(fake.writes()) == writes


def test_pages_made_by_hand_are_found_and_merged_never_doubled(fake, db, library: Library) -> None:
    key = add_done(library, 7, isrc="GBAYE0601498")
    # before any sync a person had added the track by its URL, and again by its ISRC
    by_url = fake.seed_page(db.data_source_id, {"Name": "song seven", "YouTube": youtube(7), "Tags": ["fav"],
                                                "Notes": "from the radio"})
    by_isrc = fake.seed_page(db.data_source_id, {"Name": "Song 7 (dup)", "ISRC": "GB-AYE-06-01498",
                                                 "Tags": ["vinyl"], "SoundCloud": "https://soundcloud.com/a/b"})
    other = fake.seed_page(db.data_source_id, {"Name": "Another track", "YouTube": youtube(8)})
    outcome = mirrors.sync_notion(library, notion(fake, db).mirror(), key)
    assert outcome.page_id == by_url["id"] and outcome.action == "updated"
    live = pages(fake, db)
    assert {p["id"] for p in live} == {by_url["id"], other["id"]}
    page = next(p for p in live if p["id"] == by_url["id"])
    assert page["Track ID"] == key and page["Name"] == "song seven"  # a title typed by hand stays
    assert sorted(page["Tags"]) == ["fav", "vinyl"] and page["SoundCloud"] == "https://soundcloud.com/a/b"
    assert page["Notes"] == "from the radio" and page["BPM"] == 124.0
    trashed = fake.page(by_isrc["id"])
    assert trashed["in_trash"] and FakeNotion.plain(trashed)["Status"] == "Duplicate"
    assert library.catalog.mirrors.merges("notion", [key])[0].remote_id == by_isrc["id"]


def test_duplicates_pages_merge_into_the_keepers_and_undo_restores_them(fake, db, library: Library) -> None:
    keeper = add_done(library, 1, playlists=("A",), genres=("House",))
    copy = add_done(library, 2, playlists=("B",), genres=("Techno",))
    resource = notion(fake, db)
    for key in (keeper, copy):
        mirrors.sync_notion(library, resource.mirror(), key)
    copy_page = library.catalog.mirrors.get(copy, "notion").remote_id
    library.catalog.tracks.mark_duplicate(copy, keeper, "g-test")
    followed = mirrors.follow_notion(library, resource.mirror())
    assert followed.merged == [copy]
    live = by_key(fake, db)
    assert set(live) == {keeper}
    assert sorted(live[keeper]["Playlists"]) == ["A", "B"] and sorted(live[keeper]["Genre"]) == ["House", "Techno"]
    assert fake.page(copy_page)["in_trash"]
    assert mirrors.follow_notion(library, resource.mirror()).merged == []  # once

    library.catalog.tracks.restore_status(copy, "done")
    assert mirrors.undo_notion(library, resource.mirror(), [copy]) == [copy_page]
    live = by_key(fake, db)
    assert set(live) == {keeper, copy}
    assert live[keeper]["Playlists"] == ["A"] and live[keeper]["Genre"] == ["House"]
    mirrors.follow_notion(library, resource.mirror())
    assert by_key(fake, db)[copy]["Status"] == "Done"


def test_status_follows_the_track_with_its_error(fake, db, library: Library) -> None:
    key = add_done(library, 3)
    resource = notion(fake, db)
    mirrors.sync_notion(library, resource.mirror(), key)
    library.catalog.tracks.mark_failed(key, "raw_audio", "The source was removed (HTTP 404).", Reason.REMOVED)
    late = mirrors.follow_notion(library, resource.mirror(), budget_s=0.0)  # a tick out of time leaves it
    assert (late.statuses, late.left) == (0, 1)
    assert mirrors.follow_notion(library, resource.mirror()).statuses == 1
    page = by_key(fake, db)[key]
    assert page["Status"] == "Failed" and page["Error"] == "The source was removed (HTTP 404)."
    writes = len(fake.writes())
    assert mirrors.follow_notion(library, resource.mirror()).statuses == 0
    assert len(fake.writes()) == writes


def test_schema_mismatches_are_reported_once_and_the_rest_is_written(fake, library: Library) -> None:
    db = fake.create_database("Odd", {"Title": "title", "Track ID": "rich_text", "BPM": "rich_text",
                                      "Key": "number", "Tempo": "number"})
    resource = notion(fake, db, properties={"loudness": "Tempo", "bogus": "X"})
    mirror = resource.mirror()
    problems = " | ".join(mirror.schema.problems)
    assert "'Key' is number" in problems and "no property 'Status'" in problems and "bogus" in problems
    key = add_done(library, 4)
    mirrors.sync_notion(library, mirror, key)
    (page,) = pages(fake, db)
    assert page["Title"] == "Song 4" and page["BPM"] == "124" and page["Tempo"] == -9.1 and page["Key"] is None


def test_a_429_storm_and_a_failure_mid_sync_leave_no_duplicate_and_nothing_lost(fake, db, library: Library) -> None:
    keys = [add_done(library, n) for n in range(6)]
    resource = notion(fake, db)
    mirror = resource.mirror()
    fake.rate_limit_next(4, retry_after=1)
    for key in keys[:3]:
        mirrors.sync_notion(library, mirror, key)
    # Notion goes down in the middle of the rest: some tracks fail, the next sync finishes them
    fake.fail_next(7, status=503)
    failed = []
    for key in keys[3:]:
        try:
            mirrors.sync_notion(library, mirror, key)
        except Exception as err:  # noqa: BLE001 - recorded and asserted below
            failed.append((key, err))
    assert failed and all("503" in str(err) or "Notion" in str(err) for _, err in failed)
    assert all(fake.token not in str(err) for _, err in failed)
    restart()
    for key in keys:
        mirrors.sync_notion(library, notion(fake, db).mirror(), key)
    assert set(by_key(fake, db)) == set(keys)
    limited = [r for r in fake.requests if r.status == 429]
    assert len(limited) == 4


def test_a_database_not_shared_says_what_to_do_and_does_not_fail_the_track(fake, db, library: Library,
                                                                            library_root: Path) -> None:
    key = add_done(library, 5)
    fake.set_access(db.id, "not_shared")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(tracks.name, [key])
        result = materialize([notion_records], partition_key=key, instance=instance, raise_on_error=False,
                             resources={"library": LibraryResource(root=str(library_root)),
                                        "notion": notion(fake, db)})
        assert result.success
        assert not result.get_asset_materialization_events()
        (observed,) = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
        why = observed.event_specific_data.asset_observation.metadata["skipped"].value
        assert "Connections" in why and "TRACKS_DB_ID" in why and fake.token not in why
    assert library.catalog.tracks.get(key).status == "done"


def test_without_a_token_the_asset_says_skipped(library: Library, library_root: Path) -> None:
    key = add_done(library, 6)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(tracks.name, [key])
        result = materialize([notion_records], partition_key=key, instance=instance,
                             resources={"library": LibraryResource(root=str(library_root)), "notion": NotionResource()})
        (observed,) = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
        assert observed.event_specific_data.asset_observation.metadata["skipped"].value.startswith(
            "skipped: Notion is not configured")


def test_queued_pages_become_tracks_and_bad_ones_say_why(fake, db, library: Library) -> None:
    known = add_done(library, 9)
    mirror = notion(fake, db).mirror()
    mirrors.sync_notion(library, mirror, known)
    queued = fake.seed_page(db.data_source_id, {"Name": "to get", "URL": youtube(10)})
    path = fake.seed_page(db.data_source_id, {"Name": "oops", "URL": "/etc/passwd"})
    again = fake.seed_page(db.data_source_id, {"Name": "have it", "YouTube": youtube(9), "Tags": ["x"]})
    done = fake.seed_page(db.data_source_id, {"Name": "old", "URL": youtube(11), "Status": "Done"})
    taken = mirrors.take_queue(library, mirror)
    assert taken.keys == ["youtube-track000010"]
    assert library.catalog.tracks.get("youtube-track000010").status == "queued"
    assert library.catalog.mirrors.get("youtube-track000010", "notion").remote_id == queued["id"]
    page = FakeNotion.plain(fake.page(queued["id"]))
    assert page["Status"] == "Queued" and page["Track ID"] == "youtube-track000010"
    refused = FakeNotion.plain(fake.page(path["id"]))
    assert refused["Status"] == "Failed" and "URL" in refused["Error"]
    assert fake.page(again["id"])["in_trash"]  # the library has it: merged into its page
    known_page = library.catalog.mirrors.get(known, "notion").remote_id
    assert FakeNotion.plain(fake.page(known_page))["Tags"] == ["x"]
    assert FakeNotion.plain(fake.page(done["id"]))["Status"] == "Done" and not fake.page(done["id"])["in_trash"]
    assert mirrors.take_queue(library, mirror).keys == []  # taken once


def test_concurrent_mirror_runs_stay_under_three_requests_a_second(fake, db, library: Library,
                                                                   tmp_path: Path) -> None:
    keys = [add_done(library, n) for n in range(24)]
    env = {**os.environ, "MUSIC_LIBRARY": str(library.root), "DAGSTER_HOME": str(tmp_path / "home"),
           "NOTION_TOKEN": fake.token, "TRACKS_DB_ID": db.id, "NOTION_API_BASE_URL": fake.url}
    (tmp_path / "home").mkdir()
    procs = [subprocess.Popen([sys.executable, "-m", "music_pipeline", "mirror", *half], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for half in (keys[::2], keys[1::2])]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert set(by_key(fake, db)) == set(keys), outputs
    assert fake.token not in "".join(outputs)
    # the token is in no run's config, tags or job snapshot in the instance (only its variable's name)
    from dagster._serdes import serialize_value

    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        track_runs = [r for r in instance.get_runs() if r.job_name == "mirror_track"]
        assert len(track_runs) == len(keys)
        for run in instance.get_runs():
            stored = serialize_value(run) + serialize_value(instance.get_job_snapshot(run.job_snapshot_id))
            assert fake.token not in stored, run.job_name
        assert "NOTION_TOKEN" in serialize_value(instance.get_job_snapshot(track_runs[0].job_snapshot_id))
    times = sorted(r.at for r in fake.requests)
    assert len(times) >= 24 + 4
    burst = 3
    for i in range(len(times)):
        for j in range(i + burst, len(times)):
            # any n requests span at least (n - burst) / 3 seconds: 3 a second on average
            assert times[j] - times[i] >= (j - i + 1 - burst) / 3.0 - 0.05, (i, j, times[j] - times[i])


def test_doctor_checks_the_token_the_sharing_and_the_schema(fake, db, tmp_path: Path) -> None:
    env = {**os.environ, "MUSIC_LIBRARY": str(tmp_path / "library"), "DAGSTER_HOME": str(tmp_path / "home"),
           "NOTION_TOKEN": fake.token, "TRACKS_DB_ID": db.id, "NOTION_API_BASE_URL": fake.url}

    def doctor(**extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "music_pipeline", "doctor"], env={**env, **extra}, cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert fake.token not in done.stdout + done.stderr
        return done.stdout

    shown = doctor()
    assert "Notion: token valid, tracks database shared; 24 of 24 fields mapped" in shown
    assert "Eagle: off" in shown
    fake.set_access(db.id, "not_shared")
    shown = doctor()
    assert "FIX  Notion: cannot use the tracks database" in shown and "Connections" in shown
    fake.set_access(db.id, None)
    odd = fake.create_database("Odd", {"Title": "title", "BPM": "checkbox"})
    shown = doctor(TRACKS_DB_ID=odd.id)
    assert "Notion schema: property 'BPM' is checkbox" in shown
    shown = doctor(NOTION_TOKEN="ntn_not_the_right_one")
    assert "401" in shown and "NOTION_TOKEN" in shown


def test_a_better_copy_gets_its_own_page_and_the_old_copys_page_is_merged_into_it(fake, db, library: Library) -> None:
    old = add_done(library, 20, playlists=("Old Set",))
    resource = notion(fake, db)
    mirrors.sync_notion(library, resource.mirror(), old)
    old_page = library.catalog.mirrors.get(old, "notion").remote_id
    fake.edit_by_hand(old_page, {"Notes": "the intro is cut", "Tags": ["keep"]})
    better = add_done(library, 21)
    library.catalog.tracks.mark_duplicate(old, better, "g-better")  # the better copy superseded it
    outcome = mirrors.sync_notion(library, resource.mirror(), better)
    assert outcome.action == "created" and outcome.page_id != old_page
    live = by_key(fake, db)
    assert set(live) == {better}
    page = live[better]
    assert page["Notes"] == "the intro is cut" and page["Tags"] == ["keep"] and page["Playlists"] == ["Old Set"]
    assert fake.page(old_page)["in_trash"]
    writes = len(fake.writes())
    assert mirrors.follow_notion(library, resource.mirror()).merged == []  # merged once, not again
    assert len(fake.writes()) == writes
    library.catalog.tracks.restore_status(old, "done")
    assert mirrors.undo_notion(library, resource.mirror(), [old]) == [old_page]
    assert set(by_key(fake, db)) == {old, better}
    assert "Notes" not in {k for k, v in by_key(fake, db)[better].items() if v}


def test_follow_up_before_the_keepers_own_sync_never_hands_it_the_copys_page(fake, db, library: Library) -> None:
    old = add_done(library, 30)
    resource = notion(fake, db)
    mirrors.sync_notion(library, resource.mirror(), old)
    old_page = library.catalog.mirrors.get(old, "notion").remote_id
    better = add_done(library, 31)
    library.catalog.tracks.mark_duplicate(old, better, "g-early")
    assert mirrors.follow_notion(library, resource.mirror()).merged == [old]  # the sensor was first
    page = by_key(fake, db)[better]
    assert page["Name"] == "Song 31" and page["YouTube"] == youtube(31) and page["id"] != old_page
    assert fake.page(old_page)["in_trash"]
    restart()
    assert mirrors.sync_notion(library, notion(fake, db).mirror(), better).action == "unchanged"
    # `dedup --undo` while Notion was away: the next pass restores the page by itself
    library.catalog.tracks.restore_status(old, "done")
    followed = mirrors.follow_notion(library, resource.mirror())
    assert followed.restored == [old_page] and not fake.page(old_page)["in_trash"]
    mirrors.follow_notion(library, resource.mirror())
    assert by_key(fake, db)[old]["Status"] == "Done"


def test_a_page_trashed_by_a_person_is_not_written_to_and_the_track_gets_a_live_page(fake, db,
                                                                                     library: Library) -> None:
    key = add_done(library, 40)
    resource = notion(fake, db)
    mirror = resource.mirror()
    mirrors.sync_notion(library, mirror, key)  # the snapshot (this process's) still holds the page
    page_id = library.catalog.mirrors.get(key, "notion").remote_id
    fake.edit_by_hand(page_id, in_trash=True)
    library.catalog.tracks.mark_failed(key, "run", "boom", Reason.CRASHED)
    followed = mirrors.follow_notion(library, mirror)
    assert not followed.errors and fake.page(page_id)["in_trash"]
    library.catalog.tracks.mark_done(key)
    library.catalog.tracks.update(key, bpm=99.0)
    outcome = mirrors.sync_notion(library, mirror, key)
    assert outcome.action == "created" and outcome.page_id != page_id
    assert by_key(fake, db)[key]["BPM"] == 99.0


def test_playlists_and_artists_as_relations_to_their_databases(fake, library: Library) -> None:
    playlists = fake.create_database("Playlists", {"Name": "title"})
    artists = fake.create_database("Artists", {"Artist name": "title"})
    tracks_db = fake.create_database("Tracks", {
        "Name": "title", "Track ID": "rich_text",
        "Playlists": {"relation": {"data_source_id": playlists.data_source_id}},
        "Artist": {"relation": {"data_source_id": artists.data_source_id}}})
    fake.seed_page(playlists.data_source_id, {"Name": "Warmup"})  # made by hand before: used, not doubled
    keys = [add_done(library, n, playlists=("Warmup", "Peak")) for n in (50, 51)]
    resource = notion(fake, tracks_db, playlists_db_id=playlists.id, artists_db_id=artists.id)
    for key in keys:
        mirrors.sync_notion(library, resource.mirror(), key)
    names = {p["id"]: FakeNotion.plain(p)["Name"] for p in fake.pages_in(playlists.data_source_id)}
    assert sorted(names.values()) == ["Peak", "Warmup"]
    artist_names = {p["id"]: FakeNotion.plain(p)["Artist name"] for p in fake.pages_in(artists.data_source_id)}
    for n, key in zip((50, 51), keys, strict=True):
        page = by_key(fake, tracks_db)[key]
        assert sorted(names[i] for i in page["Playlists"]) == ["Peak", "Warmup"]
        assert [artist_names[i] for i in page["Artist"]] == [f"Artist {n}"]
    writes = len(fake.writes())
    restart()
    for key in keys:
        assert mirrors.sync_notion(library, notion(fake, tracks_db, playlists_db_id=playlists.id,
                                                   artists_db_id=artists.id).mirror(), key).action == "unchanged"
    assert len(fake.writes()) == writes
    # without PLAYLISTS_DB_ID the relation cannot be filled: said, and left out
    restart()
    problems = notion(fake, tracks_db).mirror().schema.problems
    assert any("PLAYLISTS_DB_ID" in p for p in problems) and any("ARTISTS_DB_ID" in p for p in problems)


def test_a_page_both_tracks_point_at_is_never_trashed_as_the_copys(fake, db, library: Library) -> None:
    keeper, copy = add_done(library, 60), add_done(library, 61)
    resource = notion(fake, db)
    mirrors.sync_notion(library, resource.mirror(), keeper)
    page_id = library.catalog.mirrors.get(keeper, "notion").remote_id
    library.catalog.mirrors.set(copy, "notion", page_id, status="Done")  # e.g. left by an older version
    library.catalog.tracks.mark_duplicate(copy, keeper, "g-shared")
    mirrors.follow_notion(library, resource.mirror())
    assert not fake.page(page_id)["in_trash"] and library.catalog.mirrors.get(copy, "notion") is None


# -- Notion as documented (issue 20): the query cap, 25 references, masked and long URLs, re-trash --


def test_pages_beyond_the_query_cap_are_found_and_never_doubled(fake, db, library: Library) -> None:
    fake.query_cap = 3  # Notion's is 10,000: past it, has_more false and request_status incomplete
    keys = [add_done(library, n) for n in range(70, 75)]
    for n, key in zip(range(70, 75), keys, strict=True):  # pages the catalog does not know (an older library)
        fake.seed_page(db.data_source_id, {"Name": f"Song {n}", "Track ID": key})
    for key in keys:
        assert mirrors.sync_notion(library, notion(fake, db).mirror(), key).action == "updated"
    assert set(by_key(fake, db)) == set(keys) and len(pages(fake, db)) == 5  # by_key: no two pages for one key


def relation_db(fake: FakeNotion) -> tuple:
    playlists = fake.create_database("Playlists", {"Name": "title"})
    artists = fake.create_database("Artists", {"Artist name": "title"})
    tracks_db = fake.create_database("Tracks", {
        "Name": "title", "Track ID": "rich_text", "BPM": "number",
        "Playlists": {"relation": {"data_source_id": playlists.data_source_id}},
        "Artist": {"relation": {"data_source_id": artists.data_source_id}}})
    return tracks_db, playlists, artists


def test_a_page_in_more_than_25_playlists_keeps_them_all(fake, library: Library) -> None:
    tracks_db, playlists, artists = relation_db(fake)
    names = tuple(f"Set {n:02d}" for n in range(26))
    key = add_done(library, 80, playlists=names)
    resource = notion(fake, tracks_db, playlists_db_id=playlists.id, artists_db_id=artists.id)
    mirrors.sync_notion(library, resource.mirror(), key)
    page_id = library.catalog.mirrors.get(key, "notion").remote_id
    assert len(FakeNotion.plain(fake.page(page_id))["Playlists"]) == 26
    library.catalog.playlists.save("yt-Set 26", "youtube", "Set 26")  # a 27th
    library.catalog.playlists.add_membership("yt-Set 26", key, 0)
    mirrors.sync_notion(library, resource.mirror(), key)
    assert len(FakeNotion.plain(fake.page(page_id))["Playlists"]) == 27
    restart()  # a fresh process: the page read whole again, nothing to write
    writes = len(fake.writes())
    assert mirrors.sync_notion(library, notion(fake, tracks_db, playlists_db_id=playlists.id,
                                               artists_db_id=artists.id).mirror(), key).action == "unchanged"
    assert len(fake.writes()) == writes
    # a person unlinks one playlist by hand: it stays unlinked (their edit), the 26 others stay
    gone = FakeNotion.plain(fake.page(page_id))["Playlists"][0]
    fake.edit_by_hand(page_id, {"Playlists": FakeNotion.plain(fake.page(page_id))["Playlists"][1:]})
    library.catalog.tracks.update(key, bpm=125.0)
    mirrors.sync_notion(library, resource.mirror(), key)
    held = FakeNotion.plain(fake.page(page_id))
    assert len(held["Playlists"]) == 26 and gone not in held["Playlists"] and held["BPM"] == 125.0


def test_120_artists_are_read_whole_and_never_cut_by_a_write(fake, library: Library) -> None:
    tracks_db, playlists, artists = relation_db(fake)
    key = add_done(library, 81)
    many = [f"Artist {n:03d}" for n in range(120)]
    library.catalog.tracks.update(key, artists=many)
    resource = notion(fake, tracks_db, playlists_db_id=playlists.id, artists_db_id=artists.id)
    outcome = mirrors.sync_notion(library, resource.mirror(), key)  # a request names at most 100 related pages
    page_id = outcome.page_id
    assert outcome.action == "created" and len(FakeNotion.plain(fake.page(page_id))["Artist"]) == 100
    assert any("100" in note for note in outcome.notes)
    ids = {FakeNotion.plain(p)["Artist name"]: p["id"] for p in fake.pages_in(artists.data_source_id)}
    fake.edit_by_hand(page_id, {"Artist": [ids[name] for name in many]})  # the app links the other 20
    restart()
    writes = len(fake.writes())
    assert mirrors.sync_notion(library, notion(fake, tracks_db, playlists_db_id=playlists.id,
                                               artists_db_id=artists.id).mirror(), key).action == "unchanged"
    assert len(fake.writes()) == writes
    library.catalog.tracks.update(key, artists=[*many, "Artist 120"], bpm=99.0)  # 121: too many for one request
    outcome = mirrors.sync_notion(library, resource.mirror(), key)
    held = FakeNotion.plain(fake.page(page_id))
    assert len(held["Artist"]) == 120 and held["BPM"] == 99.0  # the rest written, the 120 links kept
    assert any("100" in note for note in outcome.notes)


def test_no_secret_of_a_url_reaches_notion(fake, db, library: Library) -> None:
    signed = "https://files.example.com/mix.wav?token=SIGNEDsecret0042&x=1"
    private = "https://soundcloud.com/artist/song/s-PrIvAtE0042"
    key = add_done(library, 82)
    library.catalog.tracks.update(key, source_url=signed, source_urls=[private, youtube(82)])
    library.catalog.tracks.mark_failed(key, "run", f"could not read {signed}", Reason.CRASHED)
    resource = notion(fake, db)
    mirrors.sync_notion(library, resource.mirror(), key)
    mirrors.follow_notion(library, resource.mirror())
    library.catalog.tracks.mark_done(key)
    mirrors.sync_notion(library, resource.mirror(), key)
    page = by_key(fake, db)[key]
    assert page["URL"] == "https://files.example.com/mix.wav?token=***&x=1"
    assert page["SoundCloud"] == "https://soundcloud.com/artist/song/s-***"
    sent = "".join(str(r.body) for r in fake.requests) + "".join(str(r.query) for r in fake.requests)
    assert "SIGNEDsecret0042" not in sent and "PrIvAtE0042" not in sent


def test_a_url_longer_than_notion_takes_never_fails_the_create(fake, library: Library) -> None:
    tracks_db = fake.create_database("Tracks", {"Name": "title", "Track ID": "rich_text", "URL": "url",
                                                "Full URL": "rich_text"})
    long_query = "https://files.example.com/set.wav?id=" + "a" * 2100
    long_token = "https://files.example.com/set.wav?sig=" + "b" * 2100
    keys = [add_done(library, n) for n in (83, 84)]
    for key, url in zip(keys, (long_query, long_token), strict=True):
        library.catalog.tracks.update(key, source_url=url)
        assert mirrors.sync_notion(library, notion(fake, tracks_db).mirror(), key).action == "created"
    held = by_key(fake, tracks_db)
    assert held[keys[0]]["URL"] == "https://files.example.com/set.wav"  # no query: the full one beside it
    assert held[keys[0]]["Full URL"] == long_query[:2000]
    assert held[keys[1]]["URL"] == "https://files.example.com/set.wav?sig=***"  # masked, it fits
    assert held[keys[1]]["Full URL"] == ""
    writes = len(fake.writes())
    for key in keys:
        assert mirrors.sync_notion(library, notion(fake, tracks_db).mirror(), key).action == "unchanged"
    assert len(fake.writes()) == writes


def test_a_duplicate_page_a_person_already_trashed_is_not_trashed_again(fake, db, library: Library) -> None:
    key = add_done(library, 85)
    mirror = notion(fake, db).mirror()
    mirrors.sync_notion(library, mirror, key)
    by_hand = fake.seed_page(db.data_source_id, {"Name": "song 85", "YouTube": youtube(85), "Tags": ["x"]})
    restart()
    mirror = notion(fake, db).mirror()
    mirror.snapshot.refresh(mirror.api)  # this process has read the page made by hand...
    fake.edit_by_hand(by_hand["id"], in_trash=True)  # ...which a person then put in the trash
    library.catalog.tracks.update(key, bpm=126.0)
    outcome = mirrors.sync_notion(library, mirror, key)
    assert outcome.action == "updated" and outcome.merged == []
    assert fake.page(by_hand["id"])["in_trash"] and by_key(fake, db)[key]["BPM"] == 126.0
    assert [r.status for r in fake.requests if r.path == f"/v1/pages/{by_hand['id']}" and r.method == "PATCH"] == []
