#!/usr/bin/env python3
"""Distributed load benchmark: N generated tracks through the daemon on PostgreSQL with Celery
workers, against a plain loop, in the same run.

    python benchmarks/distributed.py [--tracks 200] [--seconds 30] [--workers 2] [--concurrency 1] [--work DIR]

Starts a throw-away PostgreSQL and Redis on 127.0.0.1 (music_pipeline_tests.services), a
DAGSTER_HOME with the production dagster.yaml, the catalog on a fresh PostgreSQL database, and:

a. **plain loop**: the step functions over the same files, workers x concurrency processes
   (benchmarks.orchestration.run_plain; its catalog is a SQLite file);
b. **several machines, played on one**: the N tracks registered (catalog rows and partitions),
   ``--workers`` ``music-pipeline worker`` processes and ``dagster-daemon run``; one bulk run
   (``process_tracks``) submitted with ``dagster job launch`` for every key; measured from the
   submit to the last track run's end.

CPU of the workers' and the daemon's process trees (the bulk run, the code server and ffmpeg
included) from a cpuacct cgroup when this runs as root (else the children's rusage); PostgreSQL's
and Redis' server processes from /proc, shown apart. Peak memory is the sum over those trees,
sampled every second (RSS, which counts shared pages once per process, and PSS, which does not).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PYTHON = sys.executable

from benchmarks.orchestration import Cpu, generate, run_plain  # noqa: E402 - after the path is set
from music_pipeline_tests import services  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


# -- /proc: process trees ----------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the state on (index 0 = field 3)


def descendants(roots: list[int]) -> set[int]:
    """The roots and every live process below them."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [r for r in roots if r]
    while todo:
        pid = todo.pop()
        if pid not in found and Path(f"/proc/{pid}").exists():
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds of a tree: each live process's own time and its reaped children's."""
    total = 0
    for pid in descendants(roots):
        fields = _stat(pid)
        if fields:
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICK


def tree_memory(roots: list[int]) -> tuple[float, float]:
    """(RSS, PSS) in MiB summed over a tree."""
    rss = pss = 0
    for pid in descendants(roots):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss / 1024, pss / 1024


class MemorySampler(threading.Thread):
    """Peak (RSS, PSS) of each named group of trees, sampled every second."""

    def __init__(self, groups: dict[str, callable]) -> None:
        super().__init__(daemon=True)
        self.groups, self.peak = groups, {name: (0.0, 0.0) for name in groups}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0):
            for name, roots in self.groups.items():
                rss, pss = tree_memory(roots())
                old = self.peak[name]
                self.peak[name] = (max(old[0], rss), max(old[1], pss))


# -- b. the cluster ----------------------------------------------------------------------------


class Cluster:
    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env = work, env
        self.procs: dict[str, subprocess.Popen] = {}
        self.cpus: dict[str, Cpu] = {}
        self.logs: list = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        cpu = self.cpus[name] = Cpu(f"dist_{name}")
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.logs.append(log)
        proc = cpu.popen(argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        return proc

    def cpu(self, *names: str) -> float:
        return sum(self.cpus[n].seconds() for n in names)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.work / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited ({proc.returncode}):\n{tail}")

    def wait_workers(self, names: list[str], timeout: float = 120) -> None:
        from music_pipeline.workers import build_app

        app = build_app()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.check_alive()
                answered = {n.split("@")[0] for n in (app.control.inspect(timeout=1.0).ping() or {})}
                if set(names) <= answered:
                    return
                time.sleep(0.5)
        finally:
            app.close()
        raise RuntimeError(f"workers {names} did not answer within {timeout} s")

    def stop(self) -> None:
        services.stop_groups(self.procs.values(), grace=30)
        for log in self.logs:
            log.close()
        for cpu in self.cpus.values():
            cpu.close()


def postmaster(server) -> int:
    return int((server.data_dir / "postmaster.pid").read_text().splitlines()[0])


def run_cluster(files: list[Path], args, work: Path, env: dict[str, str], pg, redis, dagster_db) -> dict:
    from dagster import DagsterEventType, DagsterInstance, RunsFilter

    from music_pipeline.automation.bulk import run_config
    from music_pipeline.core.library.steps import register_target
    from music_pipeline.instance import CELERY_WORKER_TAG
    from music_pipeline.resources import LibraryResource

    os.environ.update(env)
    library = LibraryResource(root=env["MUSIC_LIBRARY"], catalog_url=env["MUSIC_CATALOG_URL"]).get()
    started = time.monotonic()
    keys = [register_target(library, str(path))[0].key for path in files]
    instance = DagsterInstance.get()
    instance.add_dynamic_partitions("tracks", keys)
    register_s = time.monotonic() - started

    cluster = Cluster(work, env)
    names = [f"w{n + 1}" for n in range(args.workers)]
    pg_pid = postmaster(pg)
    try:
        for name in names:
            cluster.start(name, [PYTHON, "-m", "music_pipeline", "worker", "--name", name, "--concurrency",
                                 str(args.concurrency)])
        cluster.start("daemon", [str(Path(PYTHON).with_name("dagster-daemon")), "run", "-w",
                                 str(REPO / "workspace.yaml")])
        cluster.wait_workers(names)
        time.sleep(10)  # the daemon's first ticks
        groups = {"workers": lambda: [cluster.procs[n].pid for n in names],
                  "daemon": lambda: [cluster.procs["daemon"].pid],
                  "postgres": lambda: [pg_pid], "redis": lambda: [redis.pid]}
        # idle: what the daemon and workers burn polling with nothing to do
        idle0 = {"workers": cluster.cpu(*names), "daemon": cluster.cpu("daemon"),
                 "postgres": tree_cpu([pg_pid]), "redis": tree_cpu([redis.pid])}
        time.sleep(args.idle)
        idle = {"workers": cluster.cpu(*names), "daemon": cluster.cpu("daemon"),
                "postgres": tree_cpu([pg_pid]), "redis": tree_cpu([redis.pid])}
        idle_rate = {k: (idle[k] - idle0[k]) / args.idle for k in idle}
        events_before = int(services.psql(dagster_db, "SELECT count(*) FROM event_logs"))

        sampler = MemorySampler(groups)
        sampler.start()
        before = {"workers": cluster.cpu(*names), "daemon": cluster.cpu("daemon"),
                  "postgres": tree_cpu([pg_pid]), "redis": tree_cpu([redis.pid])}
        submitted_wall = time.time()
        submitted = time.monotonic()
        proc = subprocess.run([str(Path(PYTHON).with_name("dagster")), "job", "launch", "-j", "process_tracks", "-w",
                               str(REPO / "workspace.yaml"), "--config-json", json.dumps(run_config(keys)),
                               "--tags", json.dumps({"music_pipeline/origin": "benchmark"})],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        launch_s = time.monotonic() - submitted

        deadline = time.monotonic() + args.timeout
        last_print = 0.0
        while True:
            cluster.check_alive()
            runs = list(instance.get_runs(filters=RunsFilter(job_name="process_track")))
            finished = [r for r in runs if r.is_finished]
            bulk = list(instance.get_runs(filters=RunsFilter(job_name="process_tracks")))
            if len(runs) >= len(keys) and len(finished) == len(runs) and bulk and all(b.is_finished for b in bulk):
                break
            if time.monotonic() - last_print > 30:
                last_print = time.monotonic()
                print(f"  {time.monotonic() - submitted:6.0f} s: {len(runs)} track runs, {len(finished)} finished",
                      flush=True)
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out: {len(runs)} track runs, {len(finished)} finished")
            time.sleep(1)
        seen_done = time.monotonic()
        after = {"workers": cluster.cpu(*names), "daemon": cluster.cpu("daemon"),
                 "postgres": tree_cpu([pg_pid]), "redis": tree_cpu([redis.pid])}
        sampler.halt.set()
        sampler.join()
        events_after = int(services.psql(dagster_db, "SELECT count(*) FROM event_logs"))

        records = instance.get_run_records(filters=RunsFilter(job_name="process_track"))
        track_records = [r for r in records if r.dagster_run.tags.get("dagster/partition") in set(keys)]
        statuses = {}
        for r in track_records:
            statuses[r.dagster_run.status.value] = statuses.get(r.dagster_run.status.value, 0) + 1
        last_end = max(r.end_time for r in track_records if r.end_time)
        per_worker: dict[str, list] = {}
        for r in track_records:
            name = r.dagster_run.tags.get(CELERY_WORKER_TAG, "?").split("@")[0]
            per_worker.setdefault(name, []).append(r)
        gaps, durations, queued_to_start, launched_to_start = [], [], [], []
        for rs in per_worker.values():
            rs.sort(key=lambda r: r.start_time or 0)
            # one slot per worker process at concurrency 1: the gap between a run's end and the next start
            if args.concurrency == 1:
                gaps += [b.start_time - a.end_time for a, b in zip(rs, rs[1:], strict=False) if a.end_time and b.start_time]
        for r in track_records:
            if r.start_time and r.end_time:
                durations.append(r.end_time - r.start_time)
                queued_to_start.append(r.start_time - r.create_timestamp.timestamp())
        # when the daemon handed runs to Celery (RUN_STARTING), for a sample of runs
        for r in track_records[:: max(1, len(track_records) // 40)]:
            starting = instance.get_records_for_run(r.dagster_run.run_id,
                                                    of_type=DagsterEventType.RUN_STARTING).records
            if starting and r.start_time:
                launched_to_start.append(r.start_time - starting[0].event_log_entry.timestamp)
        launches = sorted(
            e.event_log_entry.timestamp for r in track_records[:: max(1, len(track_records) // 40)]
            for e in instance.get_records_for_run(r.dagster_run.run_id, of_type=DagsterEventType.RUN_STARTING).records)
        creates = sorted(r.create_timestamp.timestamp() for r in track_records)
        catalog = {}
        for row in library.catalog.tracks.all():
            catalog[str(row.status)] = catalog.get(str(row.status), 0) + 1
        instance.dispose()
        return {
            "register_s": register_s, "launch_cli_s": launch_s,
            "wall_s": last_end - submitted_wall, "seen_done_s": seen_done - submitted,
            "cpu": {k: after[k] - before[k] for k in after}, "idle_cpu_per_s": idle_rate,
            "peak_mib": sampler.peak, "statuses": statuses, "catalog": catalog,
            "runs_per_worker": {k: len(v) for k, v in sorted(per_worker.items())},
            "events": events_after - events_before,
            "run_s_median": statistics.median(durations) if durations else None,
            "gap_s_median": statistics.median(gaps) if gaps else None,
            "gap_s_p90": statistics.quantiles(gaps, n=10)[-1] if len(gaps) >= 10 else None,
            "create_to_start_s_median": statistics.median(queued_to_start) if queued_to_start else None,
            "starting_to_start_s_median": statistics.median(launched_to_start) if launched_to_start else None,
            "submit_span_s": (creates[-1] - creates[0]) if creates else None,
            "first_create_after_submit_s": (creates[0] - submitted_wall) if creates else None,
            "launch_sample": len(launches),
        }
    finally:
        cluster.stop()


# -- report ------------------------------------------------------------------------------------


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1, help="runs at once per worker")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measured before the submit")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "music_pipeline_distributed")
    parser.add_argument("--keep", action="store_true", help="keep this run's folder (libraries, home, servers' "
                                                            "data); the generated tracks are always kept")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=args.work))
    # Ctrl-C and SIGTERM both unwind through the finally blocks (servers and workers stopped)
    signal.signal(signal.SIGTERM, _interrupt)

    try:
        measure(args, run_dir)
    finally:
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def measure(args, run_dir: Path) -> None:
    with services.postgres(run_dir / "pg") as pg, services.redis(run_dir) as redis:
        dagster_db = services.fresh_database(pg, "dagster")
        catalog_db = services.fresh_database(pg, "catalog")
        home, library = run_dir / "home", run_dir / "library"
        home.mkdir()
        from music_pipeline.instance import production_yaml

        (home / "dagster.yaml").write_text(production_yaml())
        env = {**os.environ, **dagster_db.env, **redis.env, "MUSIC_CATALOG_URL": catalog_db.url,
               "DAGSTER_HOME": str(home), "MUSIC_LIBRARY": str(library), "EAGLE_API_BASE": "off",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

        print(f"generating {args.tracks} tracks of {args.seconds:.0f} s ...", flush=True)
        files = generate(args.work / f"tracks-{args.seconds:g}s", args.tracks, args.seconds)
        jobs = args.workers * args.concurrency
        print(f"plain loop, {jobs} processes ...", flush=True)
        os.environ["BENCH_PLAIN_ACCEPT"] = "duplicate"  # see orchestration.plain_main
        plain = run_plain(files, run_dir, jobs)
        print(json.dumps({"plain": plain}), flush=True)
        print(f"cluster: {args.workers} workers x {args.concurrency}, daemon, PostgreSQL, Redis ...", flush=True)
        dist = run_cluster(files, args, run_dir, env, pg, redis, dagster_db)
        print(json.dumps({"cluster": dist}, default=str), flush=True)
    report(args, plain, dist)


def report(args, plain: dict, dist: dict) -> None:
    n = args.tracks
    cpu = dist["cpu"]
    tree = cpu["workers"] + cpu["daemon"]
    servers = cpu["postgres"] + cpu["redis"]
    peak = dist["peak_mib"]
    print(f"\n{n} tracks of {args.seconds:.0f} s, {args.workers} workers x {args.concurrency} "
          f"({args.workers * args.concurrency} at a time) on {os.cpu_count()} cores\n")
    print("| path | wall s | tracks/min | CPU s | CPU s per track | CPU ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| plain loop (step functions) | {plain['wall_s']:.1f} | {60 * n / plain['wall_s']:.1f} "
          f"| {plain['cpu_s']:.1f} | {plain['cpu_s'] / n:.2f} | 1.00 |")
    print(f"| daemon + workers (process trees) | {dist['wall_s']:.1f} | {60 * n / dist['wall_s']:.1f} "
          f"| {tree:.1f} | {tree / n:.2f} | {tree / plain['cpu_s']:.2f} |")
    print(f"| ... + PostgreSQL and Redis servers | | | {tree + servers:.1f} | {(tree + servers) / n:.2f} "
          f"| {(tree + servers) / plain['cpu_s']:.2f} |")
    print("\n| part | CPU s in the run | CPU s per track | idle CPU s per s | peak RSS MiB (sum) | peak PSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for part in ("workers", "daemon", "postgres", "redis"):
        print(f"| {part} | {cpu[part]:.1f} | {cpu[part] / n:.3f} | {dist['idle_cpu_per_s'][part]:.3f} "
              f"| {peak[part][0]:.0f} | {peak[part][1]:.0f} |")
    slots = args.workers * args.concurrency
    overhead_wall = dist["wall_s"] / n * slots - plain["wall_s"] / n * slots
    print(f"\nruns per worker: {dist['runs_per_worker']}; run statuses: {dist['statuses']}; "
          f"catalog: {dist['catalog']}")
    print(f"per-track overhead against the plain loop: {(tree + servers - plain['cpu_s']) / n:.2f} CPU-s "
          f"({(tree - plain['cpu_s']) / n:.2f} without the servers), {overhead_wall:.2f} slot-s of wall")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"track run (RUN_START to end) median {fmt(dist['run_s_median'])} s; a worker's gap between one run's "
          f"end and its next start: median {fmt(dist['gap_s_median'])} s, p90 {fmt(dist['gap_s_p90'])} s")
    print(f"run created to started (queue + broker wait) median {fmt(dist['create_to_start_s_median'])} s; "
          f"daemon launch (RUN_STARTING) to the worker's RUN_START median {fmt(dist['starting_to_start_s_median'])} s")
    print(f"`dagster job launch` {dist['launch_cli_s']:.1f} s; the bulk run created its first track run "
          f"{fmt(dist['first_create_after_submit_s'])} s after the submit and all {n} within "
          f"{fmt(dist['submit_span_s'])} s; registering {n} tracks {dist['register_s']:.1f} s")
    print(f"event log rows written: {dist['events']} ({dist['events'] / n:.0f} per track, bulk run's included)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: servers and processes stopped", file=sys.stderr)
        sys.exit(130)
