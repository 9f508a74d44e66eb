#!/usr/bin/env python3
"""Notion sync benchmark: N finished tracks mirrored into a local server that behaves like
Notion's API, the first time and again with nothing changed, against the 3 requests/s floor.

    python benchmarks/notion_sync.py [--tracks 1000] [--changed 10]

The tracks are catalog rows (metadata, three files each, playlists), no audio. Each sync
goes through the code the ``notion_records`` asset runs (``mirrors.sync_notion`` with the
``NotionResource``'s API: the shared rate limiter at 3 requests/s, retries, the snapshot).

1. First sync, one "process": every track gets a page. A create is one request, so the
   floor is about N requests, N/3 seconds.
2. No-change re-sync in a fresh "process" (no cache): the schema (2 requests) and the
   database read 100 pages a request; no write. Target: at most 15 requests for 1,000.
3. ``--changed`` tracks changed in the catalog (a new BPM), re-synced in a fresh process:
   the reads of 2., plus per changed track a read of its page and one write.

The limiter's state file is a temporary one, so other work on the machine does not count.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=10)
    args = parser.parse_args()

    from music_pipeline.core.domain.identity import source_for
    from music_pipeline.core.library import mirrors
    from music_pipeline.core.sources.notion import mirror as mirror_module
    from music_pipeline.resources import LibraryResource, NotionResource
    from music_pipeline.resources import mirrors as resources_module
    from music_pipeline_tests.fakes.notion import FakeNotion
    from music_pipeline_tests.test_notion_mirror import SCHEMA

    work = Path(tempfile.mkdtemp(prefix="notion-bench-"))
    os.environ["TMPDIR"] = str(work)  # the limiter's file: this run's own
    tempfile.tempdir = None
    lib = LibraryResource(root=str(work / "library")).get()
    print(f"catalog: {args.tracks} finished tracks ...", flush=True)
    keys = []
    for n in range(args.tracks):
        source = source_for(f"https://www.youtube.com/watch?v=b{n:09d}")
        lib.register(source)
        lib.catalog.tracks.update(source.key, title=f"Song {n}", artist=f"Artist {n % 97}", artists=[f"Artist {n % 97}"],
                           album=f"Album {n % 31}", bpm=90 + n % 60, key_short="F#m", camelot="11A", lufs=-9.0,
                           duration_s=180.0 + n % 60, genres=["House"], raw_lossless=1)
        for fmt, ext in (("ALAC", "m4a"), ("AIFF", "aiff"), ("WAV", "wav")):
            lib.catalog.files.record_file(source.key, fmt, lib.root / fmt / f"Artist {n} - Song {n}.{ext}", size=n,
                                    sha256=f"{n:064x}", duration_s=180.0, codec="pcm", sample_rate=44100, bits=16)
        lib.catalog.tracks.mark_done(source.key)
        keys.append(source.key)

    def fresh_process() -> None:
        resources_module._mirrors.clear()
        mirror_module._snapshots.clear()

    with FakeNotion(token=f"ntn_bench_{uuid.uuid4().hex}") as fake:
        db = fake.create_database("Tracks", SCHEMA)
        resource = NotionResource(token=fake.token, tracks_db_id=db.id, api_base_url=fake.url)
        rows = []

        def measure(label: str, subset: list[str]) -> None:
            fresh_process()
            before, writes_before, started = len(fake.requests), len(fake.writes()), time.monotonic()
            mirror = resource.mirror()
            actions: dict[str, int] = {}
            for number, key in enumerate(subset, 1):
                action = mirrors.sync_notion(lib, mirror, key).action
                actions[action] = actions.get(action, 0) + 1
                if number % 100 == 0:
                    print(f"  {label}: {number}/{len(subset)} ({time.monotonic() - started:.0f} s)", flush=True)
            wall = time.monotonic() - started
            requests = len(fake.requests) - before
            times = sorted(r.at for r in fake.requests[before:])
            # the busiest 10 seconds, as requests per second
            busiest = max((sum(1 for u in times[i:] if u - t < 10.0) for i, t in enumerate(times)), default=0) / 10.0
            floor = max(0.0, (requests - 3) / 3.0)
            rows.append((label, len(subset), requests, len(fake.writes()) - writes_before, wall, floor, busiest,
                         actions))

        measure("first sync", keys)
        measure("re-sync, nothing changed", keys)
        for key in keys[:args.changed]:
            lib.catalog.tracks.update(key, bpm=150.0)
        measure(f"re-sync, {args.changed} changed", keys)
        live = fake.pages_in(db.data_source_id)
        assert len(live) == args.tracks, f"{len(live)} pages for {args.tracks} tracks"

    print()
    print("| sync | tracks | requests | writes | wall s | 3 req/s floor s | busiest 10 s, req/s | outcome |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, count, requests, writes, wall, floor, busiest, actions in rows:
        outcome = ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
        print(f"| {label} | {count} | {requests} | {writes} | {wall:.1f} | {floor:.1f} | {busiest:.1f} | {outcome} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
