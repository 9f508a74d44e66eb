"""The catalog on SQLite and on PostgreSQL: one code path, the same schema, the same answers,
and writers in several processes that never duplicate a row or lose an update.

PostgreSQL is Debian's, started by the tests on 127.0.0.1 (services.py); each test gets a
database of its own."""

import dataclasses
import multiprocessing
import sqlite3
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

from music_pipeline.core.domain.identity import TrackSource
from music_pipeline.core.library import schema
from music_pipeline.core.library.catalog import Catalog
from music_pipeline.core.library.damage import CatalogError
from music_pipeline.core.library.database import redact
from music_pipeline.core.library.migrations import MIGRATIONS, SCHEMA_VERSION, statements
from music_pipeline.core.library.rows import DedupGroup

from .services import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path) -> str | None:
    """None: catalog.sqlite in the library folder; else a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    return fresh_database(request.getfixturevalue("postgres_server")).url


def _catalog(tmp_path: Path, url: str | None) -> Catalog:
    return Catalog(tmp_path / "library" / "catalog.sqlite", url=url)


def _source(key: str, url: str | None = None) -> TrackSource:
    return TrackSource(key=key, kind="url", url=url or f"https://youtu.be/{key[-11:]}")


def test_the_catalog_answers_the_same_on_both(tmp_path, catalog_url) -> None:
    catalog = _catalog(tmp_path, catalog_url)
    assert catalog.shared == (catalog_url is not None)
    assert catalog.check() == [] and catalog.schema_version == SCHEMA_VERSION

    # tracks, in the order they came, their URLs indexed, a known URL found again
    keys = [f"youtube-{i:011d}" for i in range(3)]
    assert [catalog.tracks.register(_source(k)) for k in keys] == [True, True, True]
    assert catalog.tracks.register(_source(keys[0]), original="https://www.youtube.com/watch?v=" + keys[0][-11:]) is False
    assert [r.key for r in catalog.tracks.all()] == keys
    assert catalog.tracks.find_source(urls=["https://www.youtube.com/watch?v=" + keys[0][-11:]]) == keys[0]
    catalog.tracks.add_source_urls(keys[1], ["https://example.org/a", "https://example.org/b"])
    assert catalog.tracks.find_source(urls=["https://example.org/b"]) == keys[1]
    assert set(catalog.tracks.get(keys[1]).source_urls) >= {"https://example.org/a", "https://example.org/b"}

    # fields, JSON columns, booleans and statuses
    catalog.tracks.update(keys[0], title="Ébène", artists=["A", "B"], raw_lossless=True, bpm=128.004, isrc="USAT20000001")
    row = catalog.tracks.get(keys[0])
    assert (row.title, row.artists, row.raw_lossless, row.bpm) == ("Ébène", ["A", "B"], 1, 128.004)
    assert catalog.tracks.keys_by("isrc", "USAT20000001") == [keys[0]]
    catalog.tracks.mark_running(keys[0])
    catalog.tracks.mark_failed(keys[1], "raw_audio", "HTTP Error 404", "removed")
    catalog.tracks.mark_done(keys[0])
    assert [r.key for r in catalog.tracks.all("done")] == [keys[0]]
    assert catalog.tracks.get(keys[1]).error_reason == "removed"
    with pytest.raises(CatalogError, match="not in the catalog"):
        catalog.tracks.update("youtube-nope", title="x")

    # files, names reserved case-insensitively, sizes past 2 GiB
    root = catalog.root
    catalog.tracks.mark_running(keys[0])  # a name counts as taken while its track is being worked on
    first = catalog.files.reserve_path(keys[0], "WAV", [root / "WAV" / "Song.wav"], free=lambda p: True)
    assert first == root / "WAV" / "Song.wav"
    catalog.tracks.mark_running(keys[2])
    other = catalog.files.reserve_path(keys[2], "WAV", [root / "WAV" / "SONG.wav", root / "WAV" / "SONG (2).wav"],
                                 free=lambda p: True)
    assert other == root / "WAV" / "SONG (2).wav"
    catalog.files.record_file(keys[0], "WAV", first, size=3 * 2**30, sha256="0" * 64, duration_s=3.5, codec="pcm_s16le",
                        sample_rate=44100, bits=16)
    assert catalog.files.get(keys[0], "WAV").size == 3 * 2**30
    assert catalog.files.path_owner(root / "wav" / "song.WAV") == keys[0]
    assert [f.track_key for f in catalog.files.all([keys[0], keys[1]])] == [keys[0]]

    # duplicates: keeper chains, the fingerprint index (terms are unsigned 32-bit)
    catalog.tracks.mark_duplicate(keys[2], keys[1], "g1")
    catalog.tracks.mark_duplicate(keys[1], keys[0], "g2")
    assert catalog.tracks.keeper_of(keys[2]) == keys[0]
    assert sorted(catalog.tracks.duplicates_of(keys[0])) == sorted(keys[1:])
    catalog.tracks.mark_done(keys[2])  # a run of a duplicate does not flip it back
    assert catalog.tracks.get(keys[2]).status == "duplicate"
    big = [2**32 - 1, 2**31 + 5, 7]
    catalog.fingerprints.index(keys[0], big)
    catalog.fingerprints.index(keys[1], big[:2])
    assert catalog.fingerprints.candidates(big, min_shared=2, stop_df=10, exclude=keys[0]) == [(keys[1], 2)]
    group = DedupGroup(id="g", keeper=keys[0], members=keys[:2], state="applied", rule="r", reason="why",
                       evidence={"x": 1}, moves=[[str(root / "a"), str(root / "b")]])
    assert catalog.groups.save(group) is True
    assert catalog.groups.save(dataclasses.replace(group, state="proposed")) is False  # applied groups are history
    assert catalog.groups.get("g").moves == [[str(root / "a"), str(root / "b")]]

    # playlists and mirrors
    catalog.playlists.save("p", "spotify", "Liked")
    assert catalog.playlists.set_tracks("p", keys[:2]) == (keys[:2], [])
    assert catalog.playlists.add_membership("p", keys[2], 5) is True and catalog.playlists.add_membership("p", keys[2], 6) is False
    assert catalog.playlists.members() == {"p": [keys[0], keys[1], keys[2]]}
    catalog.mirrors.set(keys[0], "notion", "page-1", written={"BPM": 128})
    catalog.mirrors.set(keys[0], "notion", "page-1", status="Done")
    (mirror,) = catalog.mirrors.all("notion")
    assert (mirror.written, mirror.status, mirror.track_status) == ({"BPM": 128}, "Done", "running")
    catalog.mirrors.record_merge("notion", "page-2", keys[1], "page-1", {"Tags": ["x"]})
    catalog.mirrors.record_merge("notion", "page-2", keys[1], "page-1", {"Tags": ["y"]})
    assert [m.added for m in catalog.mirrors.merges("notion")] == [{"Tags": ["y"]}]
    assert catalog.tracks.count() == 3


def test_a_new_catalog_has_the_schema_an_old_sqlite_catalog_migrates_to(tmp_path, postgres_server) -> None:
    """schema.py (new catalogs, both databases) and the migrations (old SQLite catalogs) give
    the same tables, columns and indexes."""
    old = tmp_path / "old" / "catalog.sqlite"
    old.parent.mkdir()
    with sqlite3.connect(old) as conn:  # a catalog made by the first version
        for statement in statements(MIGRATIONS[0]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
    migrated = Catalog(old)
    fresh = Catalog(tmp_path / "new" / "catalog.sqlite")
    on_postgres = Catalog(tmp_path / "pg" / "catalog.sqlite", url=fresh_database(postgres_server).url)
    shapes = [_shape(c.engine) for c in (migrated, fresh, on_postgres)]
    assert shapes[0] == shapes[1] == shapes[2]
    assert set(shapes[0]) >= {table.name for table in schema.metadata.sorted_tables}


def _shape(engine: sa.Engine) -> dict[str, tuple]:
    """Per table: its columns, its unique column sets and its named indexes (expression
    indexes included, which SQLAlchemy does not reflect on SQLite)."""
    inspector = sa.inspect(engine)
    with engine.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.exc.SAWarning)  # "expression-based index not reflected": read below
        if engine.dialect.name == "sqlite":
            rows = conn.execute(sa.text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'"
                                        " AND name NOT LIKE 'sqlite_autoindex%'"))
        else:
            rows = conn.execute(sa.text("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public'"
                                        " AND indexname NOT IN (SELECT conname FROM pg_constraint)"))
        indexes = [tuple(r) for r in rows]
    return {table: (sorted(c["name"] for c in inspector.get_columns(table)),
                    sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
                    sorted(name for t, name in indexes if t == table))
            for table in inspector.get_table_names() if table != "catalog_schema"}


def test_a_catalog_server_that_is_down_is_a_sentence_without_the_password(tmp_path) -> None:
    url = "postgresql://music:s3cret-pw@127.0.0.1:9/music"  # nothing listens on port 9
    with pytest.raises(CatalogError) as caught:
        Catalog(tmp_path / "catalog.sqlite", url=url)
    message = f"{caught.value} {caught.value.hint}"
    assert "cannot be reached" in message and "MUSIC_CATALOG_URL" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in redact(url)


# -- several writers at once --------------------------------------------------------------------

SHARED = [f"youtube-shared{i:05d}" for i in range(40)]


def _writer(root: str, url: str | None, name: str, barrier) -> None:
    """One process: registers the shared tracks and 40 of its own, adds its own URL to each
    shared track, reserves names, and finishes every track."""
    catalog = Catalog(Path(root) / "catalog.sqlite", url=url)
    barrier.wait(timeout=120)
    own = [f"youtube-{name}{i:05d}" for i in range(40)]
    for key in [k for pair in zip(SHARED, own, strict=True) for k in pair]:
        catalog.tracks.register(_source(key))
        if key in SHARED:
            catalog.tracks.add_source_urls(key, [f"https://{name}.example/{key}"])
        catalog.tracks.mark_running(key)  # a running track's reservation holds its name
        catalog.files.reserve_path(key, "WAV", [Path(root) / "WAV" / f"Same Song ({n}).wav" for n in range(200)],
                             free=lambda p: True)
    barrier.wait(timeout=120)  # every name reserved while every track is running
    for key in SHARED + own:
        catalog.tracks.mark_done(key)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_processes_registering_and_finishing_at_once_lose_nothing(tmp_path, backend, request) -> None:
    url = None if backend == "sqlite" else fresh_database(request.getfixturevalue("postgres_server")).url
    root = tmp_path / "library"
    Catalog(root / "catalog.sqlite", url=url)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    writers = [context.Process(target=_writer, args=(str(root), url, name, barrier), daemon=True)
               for name in ("alpha", "bravo")]
    try:
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(240)
        assert [w.exitcode for w in writers] == [0, 0]
    finally:
        for writer in writers:
            if writer.is_alive():
                writer.kill()

    catalog = Catalog(root / "catalog.sqlite", url=url)
    rows = catalog.tracks.all()
    assert len(rows) == len({r.key for r in rows}) == 120  # no track twice, none lost
    assert {r.status for r in rows} == {"done"}
    for row in rows:
        if row.key in SHARED:  # both processes' URLs kept: no lost update
            assert {f"https://alpha.example/{row.key}", f"https://bravo.example/{row.key}"} <= set(
                row.source_urls)
    with catalog.read() as conn:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM tracks")]
        reserved = [r[0] for r in conn.execute("SELECT fold FROM path_reservations")]
    assert len(set(seqs)) == 120  # every track numbered once, in the order they came
    assert len(reserved) == len(set(reserved)) == 120  # each track its own name, none given twice
