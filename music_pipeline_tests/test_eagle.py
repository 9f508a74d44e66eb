"""The Eagle mirror against a local server that behaves like Eagle's API: imported once,
kept up to date, never twice, duplicates to Eagle's trash, and a closed Eagle is no failure."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from music_pipeline.assets import eagle_records, tracks
from music_pipeline.core.domain.identity import source_for
from music_pipeline.core.library import mirrors
from music_pipeline.core.library.steps import Library
from music_pipeline.core.sources import eagle
from music_pipeline.resources import EagleResource, LibraryResource

from .fakes.eagle import FakeEagle


@pytest.fixture
def app(tmp_path: Path):
    with FakeEagle(tmp_path / "Eagle.library", token="eagle-secret-token") as fake:
        yield fake


def add_done(lib: Library, n: int, *, playlists: tuple = ("Warmup",), bpm: float = 124.0) -> str:
    source = source_for(f"https://soundcloud.com/artist-{n}/song-{n}", resolve=lambda url: ("soundcloud", str(1000 + n)))
    lib.register(source)
    key = source.key
    lib.catalog.tracks.update(key, title=f"Song {n}", artist=f"Artist {n}", artists=[f"Artist {n}"], bpm=bpm,
                       key_short="F#m", camelot="11A", lufs=-9.1, genres=["House"])
    path = lib.root / "ALAC" / f"Artist {n} - Song {n}.m4a"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"not really alac {n}".encode() * 50)
    lib.catalog.files.record_file(key, "ALAC", path, size=path.stat().st_size,
                            sha256=hashlib.sha256(path.read_bytes()).hexdigest(), duration_s=200.0, codec="alac",
                            sample_rate=44100, bits=16)
    for name in playlists:
        lib.catalog.playlists.save(f"sc-{name}", "soundcloud", name)
        lib.catalog.playlists.add_membership(f"sc-{name}", key, 0)
    lib.catalog.tracks.mark_done(key)
    return key


def client(app: FakeEagle) -> eagle.EagleClient:
    return eagle.EagleClient(app.url, token=app.token)


def test_imported_once_with_its_fields_and_a_resync_writes_nothing(app: FakeEagle, library: Library) -> None:
    key = add_done(library, 1, playlists=("Warmup", "Peak"))
    result = mirrors.sync_eagle(library, client(app), key)
    assert result.action == "created"
    (item,) = app.items(include_deleted=False)
    assert item["name"] == "Artist 1 - Song 1" and item["ext"] == "m4a"
    assert item["url"] == "https://soundcloud.com/artist-1/song-1"
    assert "BPM 124.0" in item["annotation"] and "F#m (11A)" in item["annotation"] and "-9.1 LUFS" in item["annotation"]
    assert {"House", "F#m", "11A", "120-129 BPM", "Warmup", "Peak", "soundcloud"} <= set(item["tags"])
    assert set(app.folder_names()) == {"Warmup", "Peak"} and len(item["folders"]) == 1
    assert library.catalog.mirrors.get(key, "eagle").remote_id == item["id"]
    writes = len(app.writes())
    assert mirrors.sync_eagle(library, client(app), key).action == "unchanged"
    assert len(app.writes()) == writes


def test_a_change_updates_the_item_and_keeps_tags_added_in_eagle(app: FakeEagle, library: Library) -> None:
    key = add_done(library, 2)
    mirrors.sync_eagle(library, client(app), key)
    (item,) = app.items(include_deleted=False)
    # a person tags it in Eagle and writes a note below the pipeline's lines
    app.edit_item(item["id"], tags=[*item["tags"], "my favourite"], annotation=item["annotation"] + "\nplay it late")
    library.catalog.tracks.update(key, bpm=131.0)
    assert mirrors.sync_eagle(library, client(app), key).action == "updated"
    (item,) = app.items(include_deleted=False)
    assert "BPM 131.0" in item["annotation"] and "130-139 BPM" in item["tags"] and "my favourite" in item["tags"]
    assert item["annotation"].endswith("\nplay it late")
    assert mirrors.sync_eagle(library, client(app), key).action == "unchanged"
    assert len(app.items()) == 1  # not imported again


def test_a_lost_item_id_is_found_again_not_imported_twice(app: FakeEagle, library: Library) -> None:
    key = add_done(library, 3)
    mirrors.sync_eagle(library, client(app), key)
    library.catalog.mirrors.forget(key, "eagle")  # e.g. a catalog restored from an old backup
    result = mirrors.sync_eagle(library, client(app), key)
    assert result.action == "adopted" and len(app.items()) == 1


def test_duplicates_items_go_to_the_trash_never_deleted(app: FakeEagle, library: Library) -> None:
    keeper, copy = add_done(library, 4), add_done(library, 5)
    for key in (keeper, copy):
        mirrors.sync_eagle(library, client(app), key)
    library.catalog.tracks.mark_duplicate(copy, keeper, "g-eagle")
    result = mirrors.sync_eagle(library, client(app), keeper)
    assert result.trashed == [copy]
    copy_item = app.item(library.catalog.mirrors.get(copy, "eagle").remote_id)
    assert copy_item["isDeleted"] and len(app.items()) == 2 and len(app.items(include_deleted=False)) == 1
    assert mirrors.trash_eagle_duplicates(library, client(app)) == []  # once


def test_a_closed_eagle_is_no_failure_and_the_token_never_shows(app: FakeEagle, library: Library,
                                                                library_root: Path) -> None:
    key = add_done(library, 6)
    wrong = eagle.EagleClient(app.url, token="wrong-token-value")
    with pytest.raises(eagle.EagleTokenRejected) as refused:
        mirrors.sync_eagle(library, wrong, key)
    assert "EAGLE_TOKEN" in str(refused.value)
    assert "wrong-token-value" not in str(refused.value) and "wrong-token-value" not in repr(wrong)
    app.stop()
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(tracks.name, [key])
        result = materialize([eagle_records], partition_key=key, instance=instance,
                             resources={"library": LibraryResource(root=str(library_root)),
                                        "eagle": EagleResource(api_base=app.url, token=app.token)})
        assert result.success and not result.get_asset_materialization_events()
        (observed,) = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
        why = observed.event_specific_data.asset_observation.metadata["skipped"].value
        assert why.startswith(f"Eagle not reachable at {app.url}") and app.token not in why
    assert library.catalog.tracks.get(key).status == "done"


def test_a_missing_file_says_so(app: FakeEagle, library: Library) -> None:
    key = add_done(library, 7)
    Path(library.catalog.files.get(key, "ALAC").path).unlink()
    with pytest.raises(Exception, match="does not exist"):
        mirrors.sync_eagle(library, client(app), key)
    assert not app.items()


# ---- dedup --undo: an item the pipeline trashed comes back (V2), or is imported again (V1)


@pytest.fixture(autouse=True)
def fresh_traits():
    eagle.EagleClient.forget_traits()  # what each Eagle does is learnt per address; ports are reused
    yield
    eagle.EagleClient.forget_traits()


@pytest.mark.parametrize("v2", [True, False])
def test_undo_restores_the_item_we_trashed_with_v2(tmp_path: Path, library: Library, capsys, v2: bool) -> None:
    from music_pipeline.cli.library import _undo_eagle

    with FakeEagle(tmp_path / f"Undo{v2}.library", token="tok-undo-123", v2=v2) as fake:
        resource = EagleResource(api_base=fake.url, token=fake.token)
        keeper, copy = add_done(library, 8), add_done(library, 9)
        for key in (keeper, copy):
            mirrors.sync_eagle(library, resource.client(), key)
        library.catalog.tracks.mark_duplicate(copy, keeper, "g-undo")
        assert mirrors.sync_eagle(library, resource.client(), keeper).trashed == [copy]
        item_id = library.catalog.mirrors.get(copy, "eagle").remote_id
        library.catalog.tracks.restore_status(copy, "done")  # what `dedup --undo` does to the track

        assert _undo_eagle(library, resource, [copy]) == 0
        out = capsys.readouterr().out
        if v2:
            assert "1 Eagle item(s) restored" in out and not fake.item(item_id)["isDeleted"]
            assert library.catalog.mirrors.get(copy, "eagle").status == "done"
            assert mirrors.sync_eagle(library, resource.client(), copy).action == "unchanged"
            assert len(fake.items()) == 2
        else:
            assert "V1 API cannot take items out of its trash" in out and fake.item(item_id)["isDeleted"]
            assert mirrors.sync_eagle(library, resource.client(), copy).action == "created"
            assert len(fake.items()) == 3


def test_an_undo_while_eagle_was_closed_is_restored_by_the_next_sync(tmp_path: Path, library: Library) -> None:
    with FakeEagle(tmp_path / "Later.library", v2=True) as fake:
        client = eagle.EagleClient(fake.url)
        keeper, copy = add_done(library, 10), add_done(library, 11)
        for key in (keeper, copy):
            mirrors.sync_eagle(library, client, key)
        library.catalog.tracks.mark_duplicate(copy, keeper, "g-later")
        mirrors.sync_eagle(library, client, keeper)
        item_id = library.catalog.mirrors.get(copy, "eagle").remote_id
        library.catalog.tracks.restore_status(copy, "done")

        result = mirrors.sync_eagle(library, client, copy)

        assert (result.action, result.item_id) == ("restored", item_id) and not fake.item(item_id)["isDeleted"]
        assert len(fake.items()) == 2


def test_the_token_is_in_no_event_metadata_or_tag_of_a_run(app: FakeEagle, library: Library,
                                                          library_root: Path) -> None:
    key = add_done(library, 12)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(tracks.name, [key])
        result = materialize([eagle_records], partition_key=key, instance=instance,
                             resources={"library": LibraryResource(root=str(library_root)),
                                        "eagle": EagleResource(api_base=app.url, token=app.token)})
        assert result.success and result.get_asset_materialization_events()
        app.fail_next(1, status=403, path="/api/item/update")  # refused: its message is logged
        library.catalog.tracks.update(key, bpm=140.0)
        again = materialize([eagle_records], partition_key=key, instance=instance,
                            resources={"library": LibraryResource(root=str(library_root)),
                                       "eagle": EagleResource(api_base=app.url, token=app.token)})
        logs = [e.user_message + str(e.dagster_event) for e in instance.all_logs(again.run_id)]
        assert any("rejected the API token" in line for line in logs)
        everything = "\n".join([*logs, *(str(e) for e in result.all_events),
                                str(instance.get_run_by_id(again.run_id).tags)])
        assert app.token not in everything
    assert all(r.token_given and not r.token_in_body for r in app.requests)
