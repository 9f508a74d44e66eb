"""The Eagle client and sync rule against FakeEagle (HTTP on 127.0.0.1; nothing mocked)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from music_pipeline.core.domain.errors import Reason, TrackError
from music_pipeline.core.sources.eagle import (
    MARKER,
    EagleClient,
    EagleError,
    EagleNotReachable,
    EagleRecord,
    EagleTokenRejected,
    Known,
    key_of,
    restore,
    sync,
    sync_many,
    trash,
)
from music_pipeline_tests.fakes.eagle import FakeEagle

TOKEN = "eagle-secret-token-1234"


@pytest.fixture(autouse=True)
def fresh_traits() -> Iterator[None]:
    """What an Eagle was found to do is remembered per address and process: a later fake may
    reuse a port."""
    EagleClient.forget_traits()
    yield
    EagleClient.forget_traits()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeEagle]:
    with FakeEagle(tmp_path / "Music.library") as f:
        yield f


@pytest.fixture
def client(fake: FakeEagle) -> EagleClient:
    return EagleClient(fake.url, timeout_s=5, find_timeout_s=3)


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / "library" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def record(tmp_path: Path) -> EagleRecord:
    path = _file(tmp_path, "strobe.m4a", b"ALAC bytes of Strobe \x00\x01\x02")
    return EagleRecord(
        key="youtube-abc123",
        path=path,
        name="deadmau5 - Strobe",
        website="https://www.youtube.com/watch?v=abc123",
        annotation="BPM 128 · Key F#m (11A) · -9.1 LUFS",
        tags=("Progressive House", "F#m", "11A", "120-129 BPM", "Warmup", "youtube"),
        folders=("Warmup",),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def test_first_sync_creates_with_folder_tags_annotation_and_website(fake, client, record):
    result = sync(client, record, None)

    assert result.action == "created" and result.stale == ()
    [item] = fake.items()
    assert item["id"] == result.item_id
    assert item["name"] == "deadmau5 - Strobe" and item["ext"] == "m4a"
    assert item["url"] == record.website
    assert item["annotation"] == f"{record.annotation}\n{MARKER}youtube-abc123"
    assert key_of(item) == "youtube-abc123"
    assert item["tags"] == list(record.tags)
    assert fake.folder_names() == ["Warmup"]
    assert item["folders"] == [fake.folder_id("Warmup")]
    # Eagle copied the file into its library: the stored copy has the catalog's checksum
    stored = fake.stored_file(result.item_id)
    assert stored.parent.name == f"{result.item_id}.info"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == record.sha256
    # exactly one import and one folder creation were written
    assert [r.path for r in fake.writes()] == ["/api/folder/create", "/api/item/addFromPath"]


def test_second_sync_is_unchanged_and_writes_nothing(fake, client, record):
    first = sync(client, record, None)
    mark = len(fake.requests)

    again = sync(client, record, first.item_id)

    assert (again.item_id, again.action, again.stale) == (first.item_id, "unchanged", ())
    assert fake.writes(mark) == []
    assert len(fake.items()) == 1


def test_changed_bpm_updates_annotation_and_tags_without_reimport(fake, client, record):
    first = sync(client, record, None)
    fake.edit_item(first.item_id, tags=[*fake.item(first.item_id)["tags"], "peak-time"])  # a user's own tag
    mark = len(fake.requests)
    changed = replace(record, annotation="BPM 132 · Key F#m (11A) · -9.1 LUFS",
                      tags=tuple("130-139 BPM" if t == "120-129 BPM" else t for t in record.tags))

    result = sync(client, changed, first.item_id)

    assert (result.item_id, result.action) == (first.item_id, "updated")
    assert [r.path for r in fake.writes(mark)] == ["/api/item/update"]
    [item] = fake.items()
    assert item["annotation"].startswith("BPM 132 ")
    assert "130-139 BPM" in item["tags"] and "peak-time" in item["tags"]  # merged, the user's tag kept
    assert "120-129 BPM" in item["tags"]  # tags we set before are not removed (not required)


def test_lost_id_is_adopted_by_checksum_not_imported_twice(fake, client, record):
    first = sync(client, record, None)
    # the catalog lost the id, and someone wiped our marker from the annotation in Eagle
    fake.edit_item(first.item_id, annotation="")

    result = sync(client, record, None)

    assert (result.item_id, result.action) == (first.item_id, "adopted")
    assert len(fake.items()) == 1
    assert key_of(fake.item(first.item_id)) == record.key  # adopted items are made ours
    assert [r.path for r in fake.writes()].count("/api/item/addFromPath") == 1
    # a stale id (the item was trashed in Eagle) behaves the same way: no second import
    assert sync(client, record, "LNOSUCHITEM00").action == "adopted"


def test_adoption_checks_the_checksum_and_skips_other_tracks(fake, client, record, tmp_path):
    # same name and size but other bytes, imported by hand: not our file
    other = _file(tmp_path, "elsewhere/strobe.m4a", b"X" * record.path.stat().st_size)
    impostor = fake.add_item(other, record.name)
    # our exact file, imported by hand with no marker: adopted by checksum
    by_hand = fake.add_item(record.path, record.name, tags=["mine"])

    result = sync(client, record, None)

    assert (result.item_id, result.action) == (by_hand, "adopted")
    assert fake.item(by_hand)["tags"][0] == "mine" and "Warmup" in fake.item(by_hand)["tags"]
    assert fake.item(impostor)["annotation"] == ""
    assert len(fake.items()) == 2


def test_without_a_readable_library_adoption_falls_back_to_name_ext_size(fake, client, record):
    by_hand = fake.add_item(record.path, record.name)
    fake.reported_library_path = "/Volumes/elsewhere/Music.library"  # Eagle's library is not on this machine

    result = sync(client, record, None)

    assert (result.item_id, result.action) == (by_hand, "adopted")
    assert len(fake.items()) == 1


def test_renamed_item_is_found_by_its_key(fake, client, record):
    first = sync(client, record, None)
    fake.edit_item(first.item_id, name="Strobe (my edit)")

    result = sync(client, record, None)

    assert (result.item_id, result.action, result.stale) == (first.item_id, "adopted", ("name",))
    assert len(fake.items()) == 1


def test_playlists_beyond_the_first_folder_are_reported_stale(fake, client, record):
    two = replace(record, folders=("Warmup", "Peak"))

    created = sync(client, two, None)

    assert created.stale == ("folders",)  # addFromPath takes one folderId; V1 cannot add more
    assert fake.folder_names() == ["Warmup", "Peak"]
    assert fake.item(created.item_id)["folders"] == [fake.folder_id("Warmup")]
    mark = len(fake.requests)
    again = sync(client, two, created.item_id)
    assert (again.action, again.stale) == ("unchanged", ("folders",))
    assert fake.writes(mark) == []


def test_import_is_found_even_when_eagle_lists_it_late(fake, client, record):
    fake.import_delay_s = 0.3

    result = sync(client, record, None)

    assert result.action == "created" and result.item_id == fake.items()[0]["id"]


def test_eagle_not_running_is_a_clear_retryable_error(fake, client, record):
    fake.stop()

    with pytest.raises(EagleNotReachable) as err:
        sync(client, record, None)

    assert str(err.value) == (f"Eagle not reachable at {fake.url} (connection refused): "
                              "start the Eagle app, or set EAGLE_API_BASE")
    assert err.value.reason is Reason.SOURCE_UNAVAILABLE and err.value.reason.retryable


def test_token_is_sent_and_never_shown(tmp_path, record):
    with FakeEagle(tmp_path / "Secret.library", token=TOKEN) as fake:
        client = EagleClient(fake.url, token=TOKEN, timeout_s=5, find_timeout_s=3)
        assert sync(client, record, None).action == "created"
        # in the URL of every request, GET and POST alike, never in a body (Eagle does not read it there)
        assert fake.requests and all(r.token_given and not r.token_in_body for r in fake.requests)
        assert {r.method for r in fake.requests} == {"GET", "POST"}
        assert all(r.status == 200 for r in fake.writes()) and len(fake.items()) == 1
        assert TOKEN not in repr(client)

        wrong = EagleClient(fake.url, token="not-the-token", timeout_s=5)
        with pytest.raises(EagleTokenRejected) as err:
            wrong.info()
        assert "not-the-token" not in str(err.value) and "EAGLE_TOKEN" in str(err.value)
        with pytest.raises(EagleTokenRejected):
            EagleClient(fake.url, timeout_s=5).info()

        fake.fail_next(5, status=500)  # an error after every retry: the message holds no token
        with pytest.raises(EagleError) as err:
            client.info()
        assert TOKEN not in str(err.value) and "HTTP 500" in str(err.value)
        fake.fail_next(1, status=500, path="/api/item/update")  # a write's error: the URL had the token
        with pytest.raises(EagleError) as err:
            client._post("/api/item/addFromPath", {"path": "/nope", "name": "x"})
        assert TOKEN not in str(err.value) and TOKEN not in repr(err.value)

        fake.stop()
        with pytest.raises(EagleNotReachable) as err:
            client.info()
        assert TOKEN not in str(err.value) and TOKEN not in repr(err.value)


def test_reads_are_retried_after_a_server_error_imports_are_not(fake, client, record):
    fake.fail_next(2, status=500)
    assert client.info()["version"]

    fake.fail_next(1, path="/api/item/addFromPath")  # not retried: a retry could import twice
    with pytest.raises(EagleError, match="HTTP 500"):
        client.add_from_path(record.path, record.name)
    assert fake.items() == []
    assert [r.path for r in fake.writes()] == ["/api/item/addFromPath"]


def test_trash_moves_to_trash_and_never_deletes(fake, client, record, tmp_path):
    keeper = sync(client, record, None).item_id
    dupes = [fake.add_item(_file(tmp_path, f"dupe{i}.m4a", record.path.read_bytes()), f"dupe {i}") for i in range(2)]

    assert trash(client, [*dupes, "LNOSUCHITEM00"]) == dupes
    assert trash(client, dupes) == []  # already in the trash: nothing to do

    items = {i["id"]: i for i in fake.items()}
    assert len(items) == 3 and not items[keeper]["isDeleted"]
    assert all(items[d]["isDeleted"] for d in dupes)
    assert all(fake.stored_file(d).is_file() for d in dupes)  # the files are still there
    assert {i["id"] for i in client.items()} == {keeper}  # the list leaves trashed items out


def test_missing_file_is_a_clear_track_error(fake, client, record):
    gone = replace(record, path=record.path.with_name("gone.m4a"))

    with pytest.raises(TrackError) as err:
        sync(client, gone, None)

    assert "gone.m4a does not exist" in str(err.value) and "transcode" in str(err.value)
    assert fake.writes() == []


def test_fake_refuses_a_path_that_does_not_exist_like_eagle(fake, client, tmp_path):
    with pytest.raises(EagleError) as err:
        client._post("/api/item/addFromPath", {"path": str(tmp_path / "nope.m4a"), "name": "nope"})
    assert "does not exist" in str(err.value)
    assert fake.items() == []


def test_folders_nest_and_items_page(fake, client, tmp_path):
    parent = client.ensure_folder("Sets")
    assert client.ensure_folder("Sets") == parent  # found, not created again
    fake.create_folder("2025", parent=parent)
    [top] = client.folders()
    assert top["name"] == "Sets" and [c["name"] for c in top["children"]] == ["2025"]
    for i in range(5):
        fake.add_item(_file(tmp_path, f"t{i}.aiff", bytes([i]) * 10), f"Track {i}")
    fake.add_item(_file(tmp_path, "x.wav", b"w"), "Track wav")

    assert [i["name"] for i in client.items(ext="aiff", page_size=2)] == [f"Track {i}" for i in range(5)]
    assert [i["name"] for i in client.items(keyword="track 3")] == ["Track 3"]
    assert client.library_path() == fake.library
    assert client.item("LNOSUCHITEM00") is None


def test_request_log_has_timestamps(fake, client):
    before = time.time()
    client.info()
    [request] = fake.requests
    assert request.method == "GET" and request.path == "/api/application/info"
    assert before <= request.at <= time.time()


def test_a_token_in_the_body_alone_is_refused_like_eagle(tmp_path):
    with FakeEagle(tmp_path / "Secret.library", token=TOKEN) as fake:
        with pytest.raises(EagleTokenRejected):
            EagleClient(fake.url, timeout_s=5)._post("/api/folder/create", {"folderName": "x", "token": TOKEN})
        assert fake.folder_names() == [] and fake.requests[-1].token_in_body


# ---- polling and batches: the fake counts the calls


def test_a_late_import_is_polled_with_backoff_not_every_50_ms(fake, client, record):
    fake.import_delay_s = 0.6

    result = sync(client, record, None)

    assert result.action == "created"
    imported = next(i for i, r in enumerate(fake.requests) if r.path == "/api/item/addFromPath")
    # polled at 0, 50, 150, 350 and 750 ms: not 13 times, every 50 ms
    assert fake.calls("/api/item/list", imported) <= 5, fake.calls("/api/item/list", imported)


def _records(tmp_path: Path, record: EagleRecord, n: int, folders=("Warmup",)) -> list[EagleRecord]:
    out = []
    for i in range(n):
        path = _file(tmp_path, f"batch/track{i}.m4a", f"ALAC bytes {i}".encode() * 20)
        out.append(replace(record, key=f"youtube-batch{i}", path=path, name=f"Artist {i} - Track {i}",
                           folders=folders if i % 2 == 0 else folders[:1],
                           sha256=hashlib.sha256(path.read_bytes()).hexdigest()))
    return out


def test_several_new_tracks_are_one_addfrompaths(fake, client, record, tmp_path):
    records = _records(tmp_path, record, 5)

    results = sync_many(client, [(r, None) for r in records])

    assert [r.action for r in results] == ["created"] * 5
    assert fake.calls("/api/item/addFromPaths") == 1 and fake.calls("/api/item/addFromPath") == 0
    assert {key_of(fake.item(r.item_id)) for r in results} == {r.key for r in records}
    assert all(fake.item(r.item_id)["folders"] == [fake.folder_id("Warmup")] for r in results)
    # per track a search by name and one by key (or one scan) before importing, and one poll
    imported = next(i for i, r in enumerate(fake.requests) if r.path == "/api/item/addFromPaths")
    assert fake.calls("/api/item/list", imported) == 5
    assert fake.calls("/api/item/list") <= 5 * 2 + 2 + 5, fake.calls("/api/item/list")
    mark = len(fake.requests)
    assert [r.action for r in sync_many(client, [(r, x.item_id) for r, x in zip(records, results, strict=True)])] == \
        ["unchanged"] * 5
    assert fake.writes(mark) == []


def test_a_batch_with_two_first_folders_is_one_addfrompaths_per_folder(fake, client, record, tmp_path):
    records = [*_records(tmp_path, record, 2), replace(_records(tmp_path / "b", record, 1)[0], key="youtube-b",
                                                       name="B - b", folders=("Peak",))]

    results = sync_many(client, [(r, None) for r in records])

    assert fake.calls("/api/item/addFromPaths") == 2
    assert fake.item(results[2].item_id)["folders"] == [fake.folder_id("Peak")]


# ---- V2 (Eagle 4.0 Build 21+): the new id, several folders, rename, move, restore


@pytest.fixture
def v2(tmp_path: Path) -> Iterator[FakeEagle]:
    with FakeEagle(tmp_path / "V2.library", token=TOKEN, v2=True) as f:
        yield f


def test_v2_imports_with_the_id_it_answers_and_every_folder(v2, record):
    client = EagleClient(v2.url, token=TOKEN, timeout_s=5)
    two = replace(record, folders=("Warmup", "Peak"))

    result = sync(client, two, None)

    assert (result.action, result.stale) == ("created", ())
    assert v2.item(result.item_id)["folders"] == [v2.folder_id("Warmup"), v2.folder_id("Peak")]
    assert v2.calls("/api/v2/item/add") == 1 and v2.calls("/api/item/addFromPath") == 0
    imported = next(i for i, r in enumerate(v2.requests) if r.path == "/api/v2/item/add")
    assert v2.calls("/api/item/list", imported) == 0  # no polling: the id came back
    assert all(r.token_given and not r.token_in_body for r in v2.requests)


def test_v2_is_asked_once_per_process(v2, record):
    for _ in range(3):
        EagleClient(v2.url, token=TOKEN).has_v2()
    assert v2.calls("/api/v2/app/info") == 1


def test_v2_batch_is_one_request_with_the_ids_in_order(v2, record, tmp_path):
    client = EagleClient(v2.url, token=TOKEN)
    records = _records(tmp_path, record, 4, folders=("Warmup", "Peak"))

    results = sync_many(client, [(r, None) for r in records])

    assert v2.calls("/api/v2/item/add") == 1
    assert [key_of(v2.item(r.item_id)) for r in results] == [r.key for r in records]
    assert all(r.stale == () for r in results)


def test_a_renamed_track_renames_its_item_and_a_new_playlist_files_it(v2, record):
    client = EagleClient(v2.url, token=TOKEN)
    first = sync(client, record, None)
    mine = v2.create_folder("My picks")
    v2.edit_item(first.item_id, folders=[*v2.item(first.item_id)["folders"], mine])  # a person's folder
    renamed = replace(record, name="deadmau5 - Strobe (Club Edit)", folders=("Warmup", "Peak"))

    result = sync(client, renamed, Known(first.item_id, first.written_name))

    assert (result.action, result.stale, result.written_name) == ("updated", (), renamed.name)
    item = v2.item(first.item_id)
    assert item["name"] == renamed.name
    assert set(item["folders"]) == {v2.folder_id("Warmup"), v2.folder_id("Peak"), mine}
    assert v2.calls("/api/v2/item/update") == 1 and len(v2.items()) == 1


def test_a_name_a_person_gave_the_item_stays(v2, record):
    client = EagleClient(v2.url, token=TOKEN)
    first = sync(client, record, None)
    v2.edit_item(first.item_id, name="Strobe — my favourite")

    result = sync(client, replace(record, name="deadmau5 - Strobe (Remastered)"), Known(first.item_id, record.name))

    assert v2.item(first.item_id)["name"] == "Strobe — my favourite"
    assert (result.stale, result.written_name) == ((), record.name)


def test_v1_cannot_rename_or_move_and_says_so(fake, client, record):
    first = sync(client, record, None)
    mark = len(fake.requests)

    result = sync(client, replace(record, name="deadmau5 - Strobe (Club Edit)", folders=("Warmup", "Peak")),
                  Known(first.item_id, first.written_name))

    assert set(result.stale) == {"name", "folders"}
    assert fake.item(first.item_id)["name"] == record.name
    assert [r.path for r in fake.writes(mark)] == []  # nothing of V1 can change them


def test_an_item_we_trashed_is_restored_with_v2_and_imported_again_with_v1(v2, fake, record):
    for app in (v2, fake):
        client = EagleClient(app.url, token=app.token)
        first = sync(client, record, None)
        assert trash(client, [first.item_id]) == [first.item_id]

        result = sync(client, record, Known(first.item_id, first.written_name, trashed_by_us=True))

        if app.v2:
            assert (result.action, result.item_id) == ("restored", first.item_id)
            assert not app.item(first.item_id)["isDeleted"] and len(app.items()) == 1
        else:  # V1 cannot take an item out of the trash: a new import
            assert result.action == "created" and len(app.items()) == 2


def test_restore_needs_v2(v2, fake, record):
    for app in (v2, fake):
        client = EagleClient(app.url, token=app.token)
        item_id = sync(client, record, None).item_id
        trash(client, [item_id])
        assert restore(client, [item_id, "LNOSUCHITEM00"]) == ([item_id] if app.v2 else None)
        assert app.item(item_id)["isDeleted"] is (not app.v2)


# ---- what V1's documentation leaves open: both readings


@pytest.mark.parametrize("offset_counts", ["items", "pages"])
def test_paging_lists_every_item_once_whatever_offset_counts(tmp_path, offset_counts):
    with FakeEagle(tmp_path / "P.library", offset_counts=offset_counts) as app:
        for i in range(7):
            app.add_item(_file(tmp_path, f"p{i}.aiff", bytes([i]) * 10), f"Track {i}")
        client = EagleClient(app.url)

        for _ in range(2):  # the second time with the reading learnt
            assert [i["name"] for i in client.items(ext="aiff", page_size=2)] == [f"Track {i}" for i in range(7)]


@pytest.mark.parametrize("keyword_searches", ["all", "names"])
def test_an_item_a_person_renamed_is_found_whatever_keyword_searches(tmp_path, record, keyword_searches):
    with FakeEagle(tmp_path / "K.library", keyword_searches=keyword_searches) as app:
        client = EagleClient(app.url, find_timeout_s=3)
        first = sync(client, record, None)
        app.add_item(_file(tmp_path, "other.m4a", b"other"), "Someone - Else", annotation="liked on tour")
        app.edit_item(first.item_id, name="Strobe (my edit)")

        result = sync(EagleClient(app.url), record, None)  # the catalog lost the id

        assert (result.item_id, result.action) == (first.item_id, "adopted")
        assert len(app.items()) == 2
        assert client.keyword_searches_annotations() is (keyword_searches == "all")
