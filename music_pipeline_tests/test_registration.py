"""One registration rule for every way a track comes in: a URL the library already has under
another key (a merged duplicate's upload, a page URL) is that track, never a second one."""

from __future__ import annotations

import pytest

from music_pipeline.core.domain.errors import NotRegistered
from music_pipeline.core.domain.identity import source_for
from music_pipeline.core.library.steps import Library, register_target
from music_pipeline.core.sources import discovery

KEEPER_URL = "https://www.youtube.com/watch?v=aaaaaaaaaaa"
MERGED_URL = "https://www.youtube.com/watch?v=bbbbbbbbbbb"  # another upload, merged into the keeper


@pytest.fixture
def keeper(library: Library) -> str:
    source, _ = register_target(library, KEEPER_URL)
    library.catalog.tracks.add_source_urls(source.key, [MERGED_URL])
    return source.key


def test_a_target_known_under_another_key_is_that_track(library: Library, keeper: str) -> None:
    source, row = register_target(library, MERGED_URL)
    assert source.key != keeper
    assert row.key == keeper
    assert [r.key for r in library.catalog.tracks.all()] == [keeper]  # no second track


def test_sensors_and_queues_apply_the_same_rule(library: Library, keeper: str) -> None:
    found = discovery.register(library, [discovery.Found(url=MERGED_URL)], origin="test")
    assert found.keys == [keeper] and not found.new
    assert library.known_as(source_for(MERGED_URL)) == keeper
    assert library.known_as(source_for(KEEPER_URL)) is None  # a track is itself


def test_a_run_carrying_a_known_url_under_a_new_key_says_whose_it_is(library: Library, keeper: str) -> None:
    new_key = source_for(MERGED_URL).key
    with pytest.raises(NotRegistered, match=f"already in the library as {keeper}"):
        library.ensure_registered(new_key, MERGED_URL)
    assert library.catalog.tracks.get(new_key) is None
