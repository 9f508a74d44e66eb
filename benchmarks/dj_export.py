#!/usr/bin/env python3
"""DJ export benchmark: a library of N finished tracks (default 10,000) exported as rekordbox
XML and as a Traktor collection, the first time and again with nothing changed, against
pyrekordbox's own XML writer building the same collection in the same run (the baseline).

    python benchmarks/dj_export.py [--tracks 10000] [--playlists 20]

The tracks are catalog rows as the pipeline leaves them (metadata, a grid, a memory cue and
four hot cues, an AIFF each: an empty file, since the export reads only its path and the
catalog), in playlists of 500 tracks. Each export goes through the code the
``rekordbox_export`` and ``traktor_export`` assets run (``core.sinks.dj``): the catalog read,
the library built, the XML rendered, compared with the file there and written atomically.
pyrekordbox (pip install pyrekordbox) is given the same tracks, grids and cues already built
in memory, so its time is the XML alone: the comparison flatters it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def seed(root: Path, count: int, playlists: int) -> None:
    from music_pipeline.core.library.catalog import Catalog
    from music_pipeline.core.library.rows import now

    catalog = Catalog(root / "catalog.sqlite")
    stamp = now()
    tracks, files = [], []
    for n in range(count):
        key = f"url-{n:016x}"
        bpm = round(90 + (n * 7.31) % 80, 2)
        grid = {"segments": [[0.1 + n % 7 / 10, bpm, 1]], "beats_per_bar": 4, "confidence": 0.8,
                "needs_look": False}
        cues = [[0.1, "Start", -1, [230, 40, 40]]] + [[0.1 + 30 * i, f"Drop {i}", i, [230, 40, 40]] for i in range(4)]
        path = root / "AIFF" / f"Artist {n % 500}" / f"Artist {n % 500} - Song {n} #{n % 3} & Co.aiff"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        tracks.append((key, f"https://example.com/t/{n}?token=secret{n}", json.dumps([]), f"Song {n} #{n % 3} & Co",
                       f"Artist {n % 500}", "An Album", bpm, "F# minor", "F#m", 240.0, json.dumps(grid),
                       json.dumps(cues), stamp, stamp, n))
        files.append((key, "AIFF", path.relative_to(root).as_posix(), 42_000_000, f"{n:064x}", 240.0, "pcm_s16be",
                      44100, 16, stamp))
    with contextlib.closing(sqlite3.connect(catalog.path)) as conn, conn:
        conn.executemany("INSERT INTO tracks (key, status, source_kind, source_url, source_urls, title, artist, album,"
                         " bpm, key_name, key_short, duration_s, grid, cues, created_at, updated_at, seq)"
                         " VALUES (?, 'done', 'url', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tracks)
        conn.executemany("INSERT INTO files (track_key, format, path, size, sha256, duration_s, codec, sample_rate,"
                         " bits, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", files)
        for p in range(playlists):
            pid = f"spotify-playlist-{p}"
            conn.execute("INSERT INTO playlists (id, source, name, updated_at) VALUES (?, 'spotify', ?, ?)",
                         (pid, f"Playlist {p}", stamp))
            conn.executemany("INSERT INTO playlist_tracks (playlist_id, track_key, position) VALUES (?, ?, ?)",
                             [(pid, f"url-{(p * 373 + i) % count:016x}", i) for i in range(min(500, count))])


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def pyrekordbox_baseline(library, roots, dest: Path) -> float:
    """pyrekordbox's RekordboxXml given the same tracks, grids, cues and playlists."""
    from pyrekordbox import RekordboxXml

    started = time.perf_counter()
    xml = RekordboxXml(name="bench", version="1", company="")
    ids = {}
    for t in library.tracks:
        track = xml.add_track(str(t.path), Name=t.title, Artist=t.artist, Album=t.album or "",
                              TotalTime=int(t.duration_s), AverageBpm=t.bpm or 0.0, Tonality=t.key_short or "",
                              Size=t.size_bytes, SampleRate=t.sample_rate or 0, Kind="AIFF File")
        ids[t.key] = track["TrackID"]
        for s in t.grid.segments if t.grid else ():
            track.add_tempo(Inizio=s.start_s, Bpm=s.bpm, Metro=f"{t.grid.beats_per_bar}/4", Battito=s.beat)
        for c in t.cues:
            track.add_mark(Name=c.name, Type="cue", Start=c.start_s, Num=c.number)
    for folder in library.folders:
        node = xml.add_playlist_folder(folder.name)
        for playlist in folder.playlists:
            plist = node.add_playlist(playlist.name)
            for key in playlist.keys:
                plist.add_track(ids[key])
    xml.save(str(dest))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--playlists", type=int, default=20)
    args = parser.parse_args()

    from music_pipeline.core.dj.locations import RootMap
    from music_pipeline.core.sinks import dj
    from music_pipeline.resources import LibraryResource

    work = Path(tempfile.mkdtemp(prefix="dj-export-bench-"))
    root = work / "library"
    print(f"catalog: {args.tracks} finished tracks in {args.playlists} playlists ...", flush=True)
    _ = LibraryResource(root=str(root)).get().catalog  # the schema
    seed(root, args.tracks, args.playlists)
    lib = LibraryResource(root=str(root)).get()
    rows = []
    for name, sink in (("rekordbox", dj.RekordboxExport(dj.DjSettings(), work / "rekordbox.xml")),
                       ("traktor", dj.TraktorExport(dj.DjSettings(), work / "collection.nml"))):
        first, report = timed(lambda sink=sink: sink.write_library(lib))
        again, second = timed(lambda sink=sink: sink.write_library(lib))
        assert report.action == "written" and second.action == "unchanged", (report, second)
        rows.append((name, first, again, report.metadata["bytes"]))
    built, library = timed(lambda: dj.dj_library(lib))
    baseline = pyrekordbox_baseline(library, RootMap(root, None), work / "pyrekordbox.xml")
    print(f"\n{args.tracks} tracks, {args.playlists} playlists of {min(500, args.tracks)}; "
          f"building the library from the catalog alone: {built:.2f} s\n")
    print("| export | first (s) | again, nothing changed (s) | file |")
    print("|---|---|---|---|")
    for name, first, again, size in rows:
        print(f"| {name} | {first:.2f} | {again:.2f} (not rewritten) | {size / 1e6:.1f} MB |")
    print(f"| pyrekordbox's writer, the same collection already in memory (baseline) | {baseline:.2f} | | |")
    print(f"\nours / baseline (rekordbox, first export, catalog read included): {rows[0][1] / baseline:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
