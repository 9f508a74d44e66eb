#!/usr/bin/env python3
"""Orchestration benchmark: what the one path through the graph costs against a plain loop,
in the same run.

    python benchmarks/orchestration.py [--sizes 20,100] [--seconds 180] [--work DIR] [--ticks 1000,10000,50000]

For N distinct generated tracks (3-minute 16-bit/44.1 kHz stereo FLACs, each with its own
tempo, key and seed):

a. **plain loop**: the step functions the assets call (import with its full decode,
   fingerprint and duplicate check, analysis, three transcodes each verified as its check
   does, catalog), one process per core, no Dagster runs;
b. **through the daemon** as a user gets them (`music-pipeline up` on a fresh home and
   library): (1) the files dropped in the inbox, (2) the same number sent with
   `music-pipeline add` (one bulk run the daemon launches). Each track is a run of the
   per-track job inside the bulk run's warm process, two at a time on this machine.

CPU is the whole process tree's (ffmpeg, fork servers, webserver and daemon included),
read from a cpuacct cgroup when this runs as root (else from the children's rusage, which
misses processes that outlive their parents). The daemon's wall time counts from the moment
the sensor registered the tracks (or `add` returned) to the last track done; its CPU from
the drop to the last track done, its idle CPU (webserver and daemon polling, measured for
20 s before the drop) shown apart. Also: the cost of starting a run's process (importing
the code location), a single track's seconds from drop to done, and the inbox sensor's tick
time with 1,000, 10,000 and 50,000 known tracks, and the playlist exports' catalog read with
50,000 tracks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PYTHON = sys.executable

from benchmarks._common import (  # noqa: E402
    KEEP,
    add_partitions,
    discard,
    inbox_tick,
    instance_ref,
    seed_catalog,
    track_keys,
)
from music_pipeline_tests.daemon import drop  # noqa: E402 - after the path is set

# -- CPU of a process tree -------------------------------------------------------------------


class Cpu:
    """CPU seconds of everything started through ``popen`` (and its descendants)."""

    def __init__(self, name: str) -> None:
        self.path = Path(f"/sys/fs/cgroup/cpuacct/music_pipeline_bench_{name}_{os.getpid()}")
        try:
            self.path.mkdir(exist_ok=True)
            self.cgroup = (self.path / "cpuacct.usage").exists()
        except OSError:
            self.cgroup = False

    def popen(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        procs = self.path / "cgroup.procs"
        pre = (lambda: procs.write_text(str(os.getpid()))) if self.cgroup else None
        return subprocess.Popen(cmd, preexec_fn=pre, **kwargs)

    def seconds(self) -> float:
        if self.cgroup:
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def close(self) -> None:
        if self.cgroup:
            with contextlib.suppress(OSError):
                self.path.rmdir()


# -- material --------------------------------------------------------------------------------


def generate(folder: Path, count: int, seconds: float, offset: int = 0) -> list[Path]:
    from music_pipeline_tests.audio import make_track

    folder.mkdir(parents=True, exist_ok=True)
    tonics = ["A", "C", "D", "E", "F", "G", "B"]
    paths = []
    for n in range(offset, offset + count):
        path = folder / f"Bench Artist {n % 13} - Track {n:04d}.flac"
        if not path.exists():
            make_track(path, seconds=seconds, bpm=84 + (n * 7) % 90, tonic=tonics[n % 7], minor=bool(n % 2),
                       seed=1000 + n, codec_args=["-c:a", "flac"])
        paths.append(path)
    return paths


# -- a. the plain loop -------------------------------------------------------------------------


def _plain_one(args: tuple[str, str]) -> str:
    from music_pipeline.assets import steps
    from music_pipeline.core.domain.paths import FORMATS
    from music_pipeline.core.library.steps import register_target
    from music_pipeline.core.sources.ytdlp import DownloadOptions
    from music_pipeline.resources import AnalysisResource, LibraryResource

    root, path = args
    quiet = lambda *_: None  # noqa: E731
    lib = LibraryResource(root=root).get()
    key = register_target(lib, path)[0].key
    steps.raw_audio(lib, key, DownloadOptions(), log=quiet)  # imports and fully decodes it (the check trusts that)
    steps.fingerprint(lib, key, log=quiet, warn=quiet)
    steps.audio_features(lib, key, AnalysisResource().settings())
    for fmt in FORMATS:
        steps.render(lib, key, fmt)
        assert not steps.verify(lib, key, fmt)
    steps.catalog(lib, key, warn=quiet)
    return lib.catalog.tracks.get(key).status


def plain_main(root: str, jobs: int, files: list[str]) -> None:
    import multiprocessing

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        statuses = list(pool.map(_plain_one, [(root, f) for f in files]))
    # BENCH_PLAIN_ACCEPT: the statuses a caller accepts besides done (short generated tracks can
    # fingerprint as duplicates of one another, which both paths then set aside alike)
    accepted = {"done", *filter(None, os.environ.get("BENCH_PLAIN_ACCEPT", "").split(","))}
    assert set(statuses) <= accepted, statuses
    print(json.dumps({s: statuses.count(s) for s in sorted(set(statuses))}), flush=True)


def run_plain(files: list[Path], work: Path, jobs: int) -> dict:
    root = work / "plain-library"
    shutil.rmtree(root, ignore_errors=True)
    cpu = Cpu("plain")
    before, started = cpu.seconds(), time.monotonic()
    proc = cpu.popen([PYTHON, __file__, "_plain", str(root), str(jobs), *map(str, files)])
    assert proc.wait() == 0, "the plain loop failed"
    result = {"wall_s": time.monotonic() - started, "cpu_s": cpu.seconds() - before}
    cpu.close()
    discard(root)
    return result


# -- b. through the daemon ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daemon:
    def __init__(self, work: Path, name: str) -> None:
        self.home, self.library = work / f"{name}-home", work / f"{name}-library"
        for folder in (self.home, self.library):
            shutil.rmtree(folder, ignore_errors=True)
        self.port = _free_port()
        self.env = {**os.environ, "DAGSTER_HOME": str(self.home), "MUSIC_LIBRARY": str(self.library)}
        self.cpu = Cpu(name)
        self.log = open(work / f"{name}-up.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = self.cpu.popen([PYTHON, "-m", "music_pipeline", "up", "--no-install", "--port", str(self.port)],
                                   cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        deadline = time.time() + 180
        while time.time() < deadline:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=2).status == 200:
                    break
            time.sleep(1)
        else:
            raise RuntimeError(f"dagster did not start: see {self.log.name}")

    def statuses(self) -> list[str]:
        path = self.library / "catalog.sqlite"
        if not path.exists():
            return []
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            return [row[0] for row in conn.execute("SELECT status FROM tracks")]

    def idle_rate(self, seconds: float = 20.0) -> float:
        time.sleep(5)  # the first sensor ticks and the automation sensor's start
        before = self.cpu.seconds()
        time.sleep(seconds)
        return (self.cpu.seconds() - before) / seconds

    def wait_done(self, count: int, timeout: float) -> tuple[float, float]:
        """(monotonic time the tracks were all registered, when they were all done)."""
        registered = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statuses = self.statuses()
            if registered is None and len(statuses) >= count:
                registered = time.monotonic()
            if len(statuses) >= count and all(s in ("done", "failed", "duplicate") for s in statuses):
                bad = [s for s in statuses if s != "done"]
                assert not bad, f"{len(bad)} track(s) did not finish: {bad[:5]}"
                return registered, time.monotonic()
            time.sleep(0.25)
        raise RuntimeError(f"timed out; statuses {statuses[:10]}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        self.cpu.close()
        discard(self.home, self.library)


def run_inbox(files: list[Path], work: Path, single: Path | None) -> dict:
    daemon = Daemon(work, "inbox")
    try:
        idle = daemon.idle_rate()
        before, dropped = daemon.cpu.seconds(), time.monotonic()
        drop(daemon.library / "inbox", *files)
        registered, done = daemon.wait_done(len(files), timeout=60 * len(files))
        result = {"wall_s": done - registered, "drop_to_done_s": done - dropped,
                  "cpu_s": daemon.cpu.seconds() - before, "idle_cpu_per_s": idle}
        if single is not None:
            started = time.monotonic()
            drop(daemon.library / "inbox", single)
            daemon.wait_done(len(files) + 1, timeout=300)
            result["single_drop_to_done_s"] = time.monotonic() - started
        return result
    finally:
        daemon.stop()


def run_add(files: list[Path], work: Path) -> dict:
    daemon = Daemon(work, "add")
    try:
        idle = daemon.idle_rate()
        before = daemon.cpu.seconds()
        add = daemon.cpu.popen([PYTHON, "-m", "music_pipeline", "add", *map(str, files), "--webserver",
                                f"http://127.0.0.1:{daemon.port}"], cwd=REPO, env=daemon.env,
                               stdout=subprocess.DEVNULL)
        assert add.wait() == 0, "music-pipeline add failed"
        asked = time.monotonic()
        _, done = daemon.wait_done(len(files), timeout=60 * len(files))
        return {"wall_s": done - asked, "cpu_s": daemon.cpu.seconds() - before, "idle_cpu_per_s": idle}
    finally:
        daemon.stop()


# -- start-up and ticks ------------------------------------------------------------------------


def startup_cpu() -> float:
    """CPU seconds a fresh interpreter spends importing the code location (what a run launched
    cold pays before any work), the median of three."""
    samples = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([PYTHON, "-c", "import music_pipeline.definitions"], check=True, cwd=REPO,
                       stderr=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return sorted(samples)[1]


def tick_times(sizes: list[int], work: Path, sample: Path) -> dict[int, float]:
    """The inbox sensor's tick with one new file, over K known tracks (partitions and catalog rows)."""
    from dagster import DagsterInstance

    results = {}
    for size in sizes:
        home, root = work / f"tick-{size}-home", work / f"tick-{size}-library"
        for folder in (home, root):
            shutil.rmtree(folder, ignore_errors=True)
        home.mkdir(parents=True)
        keys = track_keys(size)
        seed_catalog(root, keys)
        with DagsterInstance.from_ref(instance_ref(home)) as instance:
            add_partitions(instance, keys)
            drop(root / "inbox", sample)
            results[size], result = inbox_tick(instance, root)
            assert result.run_requests, "the tick requested nothing"
        discard(home, root)
    return results


def playlist_read_time(size: int, work: Path) -> float:
    """``Library.playlists()`` (what playlist_exports reads after every burst of finished
    tracks) over ``size`` finished tracks in 20 playlists."""
    from music_pipeline.core.library.catalog import Catalog
    from music_pipeline.core.library.rows import now
    from music_pipeline.resources import LibraryResource

    root = work / f"playlists-{size}"
    shutil.rmtree(root, ignore_errors=True)
    catalog, stamp = Catalog(root / "catalog.sqlite"), now()
    keys = [f"url-{n:016x}" for n in range(size)]
    with contextlib.closing(sqlite3.connect(catalog.path)) as conn, conn:
        conn.executemany("INSERT INTO tracks (key, status, source_kind, source_url, source_urls, created_at,"
                         " updated_at, artist, title) VALUES (?, 'done', 'url', ?, '[]', ?, ?, 'Artist', ?)",
                         [(k, f"https://example.org/{k}", stamp, stamp, k) for k in keys])
    per = max(1, size // 20)
    for n in range(20):
        catalog.playlists.save(f"playlist-{n}", "spotify", f"Playlist {n}")
        catalog.playlists.set_tracks(f"playlist-{n}", keys[n * per:(n + 1) * per])
    library = LibraryResource(root=str(root)).get()
    started = time.perf_counter()
    library.playlists()
    elapsed = time.perf_counter() - started
    discard(root)
    return elapsed


# -- report ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,100")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "music_pipeline_orchestration")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ticks", default="1000,10000,50000")
    parser.add_argument("--keep", action="store_true", help="keep the libraries and homes (the generated "
                                                            "tracks in WORK/tracks are always kept, for the next run)")
    args = parser.parse_args()
    KEEP["outputs"] = args.keep
    args.work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    largest = max(sizes)
    print(f"generating {2 * largest + 1} tracks of {args.seconds:.0f} s in {args.work / 'tracks'} ...", flush=True)
    pool = generate(args.work / "tracks", 2 * largest + 1, args.seconds)
    inbox_set, add_set, single = pool[:largest], pool[largest:2 * largest], pool[-1]
    rows = []
    for size in sizes:
        print(f"N={size}: plain loop ...", flush=True)
        plain = run_plain(inbox_set[:size], args.work, args.jobs)
        print(f"N={size}: inbox ...", flush=True)
        inbox = run_inbox(inbox_set[:size], args.work, single if size == sizes[0] else None)
        print(f"N={size}: add (one bulk run launched by the daemon) ...", flush=True)
        added = run_add(add_set[:size], args.work)
        rows.append((size, plain, inbox, added))
        print(json.dumps({"N": size, "plain": plain, "inbox": inbox, "add": added}), flush=True)
    start = startup_cpu()
    ticks = tick_times([int(t) for t in args.ticks.split(",") if t], args.work, single)
    playlists_s = playlist_read_time(50_000, args.work)

    print(f"\n{args.seconds:.0f}-second tracks, {args.jobs} at a time, CPU of the whole process tree\n")
    print("| N | path | wall s | wall ratio | CPU s | CPU ratio | CPU s per track | idle daemon CPU s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size, plain, inbox, added in rows:
        print(f"| {size} | plain loop (step functions) | {plain['wall_s']:.1f} | 1.00 | {plain['cpu_s']:.1f} | 1.00 "
              f"| {plain['cpu_s'] / size:.2f} | - |")
        for name, got in (("inbox drop (daemon)", inbox), ("`add`: one bulk run (daemon)", added)):
            idle = got["idle_cpu_per_s"] * got["wall_s"]
            print(f"| {size} | {name} | {got['wall_s']:.1f} | {got['wall_s'] / plain['wall_s']:.2f} "
                  f"| {got['cpu_s']:.1f} | {got['cpu_s'] / plain['cpu_s']:.2f} | {got['cpu_s'] / size:.2f} "
                  f"| {idle:.1f} |")
    first = rows[0][2]
    print(f"\nA run's process start (a fresh interpreter importing the code location): {start:.2f} CPU-s")
    if "single_drop_to_done_s" in first:
        print(f"One track dropped in the inbox, drop to done: {first['single_drop_to_done_s']:.1f} s "
              "(the sensor looks every 15 s)")
    print("Inbox sensor tick with one new file: " + ", ".join(f"{k:,} known tracks {v:.2f} s"
                                                              for k, v in ticks.items()))
    print(f"Library.playlists() (playlist_exports' read) with 50,000 tracks in 20 playlists: {playlists_s:.2f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_plain":
        plain_main(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    else:
        main()
