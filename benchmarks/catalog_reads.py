#!/usr/bin/env python3
"""Catalog reads while a writer writes: N reader processes read the catalog (a track, the track
list, a track's files, a URL lookup, in turn) while one writer process keeps writing (a track
marked running, its URL list read-modified-written, a file recorded, its features updated,
marked done; at most ``--write-rate`` transactions a second, so that before and after are
measured against the same writes), for a fixed time, on SQLite and on PostgreSQL. Prints reads
per second and the read latency (p50, p95, p99, max) per backend, and the writer's transactions
per second.

    python benchmarks/catalog_reads.py [--readers 4] [--seconds 10] [--tracks 500] [--write-rate 50]
                                       [--backends sqlite,postgresql] [--code /path/to/checkout]

``--code`` puts another checkout of music_pipeline first on the readers' and writer's path (a
small adapter calls its catalog as it is: ``catalog.get(...)`` where ``catalog.tracks.get(...)``
is absent), so the same benchmark measures before and after a change. PostgreSQL is a
throw-away server on 127.0.0.1 (music_pipeline_tests.services), a fresh database per run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OPS = ("get", "tracks", "files", "find_source")


class Api:
    """The catalog of whichever checkout is on the path: the repositories (``catalog.tracks``)
    when it has them, the one class's methods (``catalog.get``) when it is older."""

    def __init__(self, root: Path, url: str | None) -> None:
        from music_pipeline.core.library.catalog import Catalog

        self.catalog = Catalog(root / "catalog.sqlite", url=url)
        self.repositories = not isinstance(self.catalog.tracks, types.MethodType)

    def _tracks(self):
        return self.catalog.tracks if self.repositories else self.catalog

    def _files(self):
        return self.catalog.files if self.repositories else self.catalog

    # reads
    def get(self, key: str):
        return self._tracks().get(key)

    def tracks(self) -> list:
        return self.catalog.tracks.all() if self.repositories else self.catalog.tracks()

    def files(self, keys: list[str]) -> list:
        return self.catalog.files.all(keys) if self.repositories else self.catalog.files(keys)

    def find_source(self, url: str) -> str | None:
        return self._tracks().find_source(urls=[url])

    # writes
    def register(self, source) -> None:
        self._tracks().register(source)

    def update(self, key: str, **fields) -> None:
        self._tracks().update(key, **fields)

    def mark_running(self, key: str) -> None:
        self._tracks().mark_running(key)

    def mark_done(self, key: str) -> None:
        self._tracks().mark_done(key)

    def add_source_urls(self, key: str, urls: list[str]) -> None:
        self._tracks().add_source_urls(key, urls)

    def record_file(self, key: str, fmt: str, path: Path) -> None:
        self._files().record_file(key, fmt, path, size=1_000_000, sha256="0" * 64, duration_s=180.0, codec="alac",
                                  sample_rate=44100, bits=16)


def _use(code: str | None) -> None:
    """In a child process, before anything of music_pipeline is imported: the checkout to measure."""
    if code:
        sys.path.insert(0, code)


def _key(n: int) -> str:
    return f"youtube-bench{n:06d}"


def _url(n: int) -> str:
    return f"https://www.youtube.com/watch?v=bench{n:06d}"


def seed(code: str | None, root: str, url: str | None, tracks: int) -> None:
    _use(code)
    from music_pipeline.core.domain.identity import TrackSource

    api = Api(Path(root), url)
    for n in range(tracks):
        api.register(TrackSource(key=_key(n), kind="url", url=_url(n)))
        api.update(_key(n), title=f"Song {n}", artist=f"Artist {n % 50}", bpm=120.0 + n % 20, duration_s=180.0)
        api.record_file(_key(n), "ALAC", Path(root) / "ALAC" / f"Artist {n % 50} - Song {n}.m4a")
        api.mark_done(_key(n))


def write(code: str | None, root: str, url: str | None, tracks: int, rate: float, start, stop, result) -> None:
    """The writer: a track's run, condensed, over and over (each call one short write
    transaction), ``rate`` transactions a second at most (0: as fast as it can)."""
    _use(code)
    api = Api(Path(root), url)
    rng, count = random.Random(1), 0
    start.wait()
    began = time.monotonic()
    while not stop.is_set():
        if rate and (ahead := began + count / rate - time.monotonic()) > 0:
            time.sleep(ahead)
            continue
        n = rng.randrange(tracks)
        key = _key(n)
        api.mark_running(key)
        api.add_source_urls(key, [f"https://example.org/{n}/{count}"])
        api.record_file(key, "WAV", Path(root) / "WAV" / f"Artist {n % 50} - Song {n}.wav")
        api.update(key, bpm=120.0 + count % 20)
        api.mark_done(key)
        count += 5
    result.put(count)


def read(code: str | None, root: str, url: str | None, tracks: int, seed_: int, start, stop, result) -> None:
    """A reader: the four reads in turn; each read's latency, per read."""
    _use(code)
    api = Api(Path(root), url)
    rng = random.Random(seed_)
    latencies: dict[str, list[float]] = {op: [] for op in OPS}
    start.wait()
    turn = 0
    while not stop.is_set():
        op, n = OPS[turn % len(OPS)], rng.randrange(tracks)
        began = time.perf_counter()
        if op == "get":
            api.get(_key(n))
        elif op == "tracks":
            api.tracks()
        elif op == "files":
            api.files([_key(n)])
        else:
            api.find_source(_url(n))
        latencies[op].append(time.perf_counter() - began)
        turn += 1
    result.put(latencies)


def measure(backend: str, url: str | None, args, work: Path) -> dict:
    context = multiprocessing.get_context("spawn")
    root = work / backend / "library"
    code = str(args.code.resolve()) if args.code else None
    seeder = context.Process(target=seed, args=(code, str(root), url, args.tracks))
    seeder.start()
    seeder.join()
    assert seeder.exitcode == 0, "seeding failed"
    start, stop, result = context.Event(), context.Event(), context.Queue()
    procs = [context.Process(target=write, args=(code, str(root), url, args.tracks, args.write_rate, start, stop,
                                                      result))]
    procs += [context.Process(target=read, args=(code, str(root), url, args.tracks, i, start, stop, result))
              for i in range(args.readers)]
    for proc in procs:
        proc.start()
    time.sleep(3.0)  # every process has imported and opened the catalog
    start.set()
    began = time.monotonic()
    time.sleep(args.seconds)
    stop.set()
    answers = [result.get(timeout=120) for _ in procs]
    elapsed = time.monotonic() - began
    for proc in procs:
        proc.join(60)
    writes = next(a for a in answers if isinstance(a, int))
    latencies = {op: [s for a in answers if isinstance(a, dict) for s in a[op]] for op in OPS}
    every = sorted(s for values in latencies.values() for s in values)
    return {"backend": backend, "reads": len(every), "reads_per_s": len(every) / elapsed,
            "writes_per_s": writes / elapsed, "p50_ms": 1000 * _pct(every, 50), "p95_ms": 1000 * _pct(every, 95),
            "p99_ms": 1000 * _pct(every, 99), "max_ms": 1000 * every[-1] if every else 0.0,
            "p95_by_read_ms": {op: round(1000 * _pct(sorted(v), 95), 1) for op, v in latencies.items()}}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tracks", type=int, default=500)
    parser.add_argument("--write-rate", type=float, default=50.0,
                        help="the writer's write transactions a second at most, 0 for as fast as it can (%(default)s)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--code", type=Path, help="another checkout of music_pipeline to measure (e.g. the base)")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    print(f"code: {args.code or REPO}; {args.readers} readers, 1 writer (at most {args.write_rate:g} tx/s), "
          f"{args.seconds:g} s, {args.tracks} tracks",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="catalog-reads-") as tmp:
        work = Path(tmp)
        rows = []
        if "sqlite" in backends:
            rows.append(measure("sqlite", None, args, work))
        if "postgresql" in backends:
            # the server from this checkout's test services; the catalog code from --code, in the children
            from music_pipeline_tests import services

            with services.postgres(work / "pg") as server:
                rows.append(measure("postgresql", services.fresh_database(server, "bench").url, args, work))
    for row in rows:
        print(f"{row['backend']:<10} reads/s {row['reads_per_s']:8.0f}   p50 {row['p50_ms']:7.2f} ms   "
              f"p95 {row['p95_ms']:7.2f} ms   p99 {row['p99_ms']:7.2f} ms   max {row['max_ms']:7.1f} ms   "
              f"writer {row['writes_per_s']:5.0f} tx/s   p95 by read (ms): {row['p95_by_read_ms']}", flush=True)


if __name__ == "__main__":
    main()
