"""Reads never wait for writers: while another process holds the catalog's write lock (an open
write transaction: SQLite's one writer lock, PostgreSQL's catalog-wide advisory lock and the
track's own), a track, the track list, the files, a URL lookup and the CLI's read-only
`music-pipeline dedup --json` all answer at once. And a write waits only for writes of the same
thing: on PostgreSQL, a track's URL list being changed by one process holds up another process's
change of that track, not of another one.

Both backends: SQLite in the library folder, and a fresh PostgreSQL database (services.py)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from music_pipeline.core.domain.identity import TrackSource
from music_pipeline.core.library import database
from music_pipeline.core.library.catalog import Catalog
from music_pipeline.core.library.repositories.tracks import track_lock

from .services import fresh_database

HOLD_MAX = 60.0  # seconds the other process holds the lock at most (it is released as soon as the test is done)
PROMPT = 5.0  # a read answering later than this is waiting for something

KEYS = [f"youtube-reads{i:06d}" for i in range(3)]


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request) -> str | None:
    """None: catalog.sqlite in the library folder; else a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    return fresh_database(request.getfixturevalue("postgres_server")).url


def _source(key: str) -> TrackSource:
    return TrackSource(key=key, kind="url", url=f"https://youtu.be/{key[-11:]}")


def _seeded(root: Path, url: str | None) -> Catalog:
    """Three finished tracks, each with one file."""
    catalog = Catalog(root / "catalog.sqlite", url=url)
    for n, key in enumerate(KEYS):
        catalog.tracks.register(_source(key))
        catalog.tracks.update(key, title=f"Song {n}", artist="Reader", duration_s=180.0 + n)
        catalog.files.record_file(key, "ALAC", root / "ALAC" / f"Reader - Song {n}.m4a", size=1000, sha256="0" * 64,
                                  duration_s=180.0 + n, codec="alac", sample_rate=44100, bits=16)
        catalog.tracks.mark_done(key)
    return catalog


def _hold(root: str, url: str | None, locks: list, key: str, held, release, released) -> None:
    """Another process: a write transaction on the catalog holding ``locks`` (and, having
    changed ``key``'s row, that row's lock) until ``release`` is set or HOLD_MAX passes."""
    catalog = Catalog(Path(root) / "catalog.sqlite", url=url)
    with database.transaction(catalog.engine, write=True, locks=locks) as conn:
        conn.execute("UPDATE tracks SET title = ? WHERE key = ?", ("Being Written", key))
        held.set()
        release.wait(HOLD_MAX)
    released.set()


class Holder:
    """The other process, started and waited for: ``with Holder(...) as holder: ...``."""

    def __init__(self, root: Path, url: str | None, locks: list, key: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.held, self.release, self.released = context.Event(), context.Event(), context.Event()
        self.process = context.Process(target=_hold, args=(str(root), url, locks, key, self.held, self.release,
                                                           self.released), daemon=True)

    def __enter__(self) -> Holder:
        self.process.start()
        assert self.held.wait(60), "the other process never got the write lock"
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.process.join(60)
        if self.process.is_alive():
            self.process.kill()
        assert self.process.exitcode == 0

    @property
    def holding(self) -> bool:
        return not self.released.is_set()


def _timed(read):
    started = time.monotonic()
    value = read()
    return value, time.monotonic() - started


def test_reads_answer_while_another_process_holds_the_write_lock(tmp_path, catalog_url) -> None:
    root = tmp_path / "library"
    catalog = _seeded(root, catalog_url)
    url = _source(KEYS[1]).url
    reads = {
        "get": lambda: catalog.tracks.get(KEYS[0]),
        "tracks": lambda: catalog.tracks.all(),
        "files": lambda: catalog.files.all([KEYS[0], KEYS[2]]),
        "every file": lambda: catalog.files.all(),
        "find_source": lambda: catalog.tracks.find_source(urls=[url]),
    }
    env = {**os.environ, "MUSIC_LIBRARY": str(root), "DAGSTER_HOME": str(tmp_path / "home")}
    env.pop("MUSIC_CATALOG_URL", None)
    if catalog_url:
        env["MUSIC_CATALOG_URL"] = catalog_url
    with Holder(root, catalog_url, [database.MIGRATION_LOCK, track_lock(KEYS[0])], KEYS[0]) as holder:
        answers = {name: _timed(read) for name, read in reads.items()}
        assert holder.holding
        cli = subprocess.run([sys.executable, "-m", "music_pipeline", "dedup", "--json"], env=env,
                             capture_output=True, text=True, timeout=HOLD_MAX + 30)
        assert holder.holding, "the CLI's read-only dedup waited for the writer"
    slow = {name: round(seconds, 2) for name, (_, seconds) in answers.items() if seconds > PROMPT}
    assert not slow, f"reads waited for the writer: {slow}"
    row = answers["get"][0]
    assert row.title == "Song 0"  # the last committed state, not the uncommitted write
    assert [r.key for r in answers["tracks"][0]] == KEYS
    assert [f.track_key for f in answers["files"][0]] == [KEYS[0], KEYS[2]]
    assert len(answers["every file"][0]) == 3
    assert answers["find_source"][0] == KEYS[1]
    assert cli.returncode == 0, cli.stderr
    assert "0 duplicate group(s) among 3 track(s)" in cli.stderr or cli.stdout == ""
    assert catalog.tracks.get(KEYS[0]).title == "Being Written"  # and the writer's change is there once committed


def test_a_tracks_read_modify_write_waits_for_that_track_only(tmp_path, postgres_server) -> None:
    """PostgreSQL: a change of one track's URL list holds that track's lock, not the catalog's;
    SQLite has one writer at a time whatever it writes (its rule), so this is PostgreSQL's."""
    url = fresh_database(postgres_server).url
    root = tmp_path / "library"
    catalog = _seeded(root, url)
    same, other = KEYS[0], KEYS[1]
    with Holder(root, url, [track_lock(same)], same) as holder:
        _, seconds = _timed(lambda: catalog.tracks.add_source_urls(other, ["https://example.org/other"]))
        assert seconds < PROMPT and holder.holding  # another track: no waiting
        done = threading.Event()
        waiting = threading.Thread(target=lambda: (catalog.tracks.add_source_urls(same, ["https://example.org/same"]),
                                                   done.set()), daemon=True)
        waiting.start()
        assert not done.wait(2.0)  # the same track: it waits for the other process's transaction
        holder.release.set()
        assert done.wait(30)
        waiting.join(30)
    assert "https://example.org/other" in catalog.tracks.get(other).source_urls
    row = catalog.tracks.get(same)
    assert "https://example.org/same" in row.source_urls and row.title == "Being Written"  # nothing lost
