#!/usr/bin/env python3
"""Many partitions: where the product bends with N known tracks, on SQLite and on PostgreSQL
Dagster storage.

    python benchmarks/scale.py [--sizes 1000,10000,50000] [--storages sqlite,postgres]
                               [--materialized 0.95] [--work DIR] [--no-profile]

For each storage and N, on a fresh instance (PostgreSQL: a throw-away server from
music_pipeline_tests/services.py, a fresh database per N) and a fresh library:

- seeding, timed apart: N catalog rows, N partitions of "tracks" (5,000 a call), and one
  raw_audio materialisation per track for ``--materialized`` of them, written one event per
  call as a run writes them (``report_runless_asset_event``);
- the inbox sensor's tick with one new file (median of 3; each tick sees one new file, with
  the previous tick's cursor, as under the daemon);
- raw_audio's partition health as the asset page loads it: the UI's own
  ``PartitionHealthQuery`` (copied from dagster-webserver's bundle) POSTed to a
  ``dagster-webserver`` started on the instance; the first request (cold: the asset status
  cache is built from the event log) and the median of 3 after it (warm), with the
  webserver's CPU seconds and the response size;
- at the largest N, where the request's time goes: the dynamic partition keys' fetch, the
  status cache alone, and the query in-process under cProfile.

The PostgreSQL server, the webserver and the temporary folders are removed on exit,
Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PYTHON = sys.executable

from benchmarks._common import add_partitions, inbox_tick, seed_catalog, track_keys  # noqa: E402
from benchmarks.orchestration import generate  # noqa: E402
from music_pipeline_tests.daemon import drop  # noqa: E402

# The asset page's partition health query, as dagster-webserver 1.13's UI sends it
# (webapp/build/_next/static/chunks/2093.*.js).
PARTITION_HEALTH_QUERY = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
        ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
            secondaryDim {
              ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
              ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
            }
          }
        }
      }
    }
  }
}
"""
# The query's two halves alone, to tell their costs apart.
KEYS_ONLY_QUERY = """
query KeysOnly($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) { ... on AssetNode { id partitionKeysByDimension { name partitionKeys } } }
}
"""
STATUSES_ONLY_QUERY = """
query StatusesOnly($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      assetPartitionStatuses {
        ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
      }
    }
  }
}
"""
LOADED_QUERY = '{ assetNodeOrError(assetKey: {path: ["raw_audio"]}) { __typename } }'
RAW_AUDIO = ["raw_audio"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- instances -----------------------------------------------------------------------------------


def write_home(home: Path, pg: dict | None) -> None:
    """DAGSTER_HOME with the dagster.yaml `up` writes, plus PostgreSQL storage when ``pg``."""
    from music_pipeline.instance import dagster_yaml

    home.mkdir(parents=True, exist_ok=True)
    storage = None
    if pg:
        storage = ("storage:\n  postgres:\n    postgres_db:\n"
                   + "".join(f"      {k}: {json.dumps(v)}\n" for k, v in pg.items()))
    (home / "dagster.yaml").write_text(dagster_yaml(home, storage))


@contextlib.contextmanager
def postgres_server(work: Path) -> Iterator[object]:
    from music_pipeline_tests.services import postgres

    with postgres(work / "postgres") as server:
        yield server


def create_database(server, name: str) -> dict:
    """A fresh database owned by the server's password user; its postgres_db settings."""
    from music_pipeline_tests.services import _pg_bin

    subprocess.run([str(_pg_bin() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(server.socket_dir),
                    "-p", str(server.port), "-U", "postgres", "-d", "postgres",
                    "-c", f'CREATE DATABASE "{name}" OWNER "{server.user}"'],
                   check=True, capture_output=True, cwd="/", stdin=subprocess.DEVNULL)
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg (3); the project installs psycopg2
    return {"username": server.user, "password": server.password, "hostname": server.host,
            "db_name": name, "port": server.port, "scheme": "postgresql+psycopg2"}


# -- seeding -------------------------------------------------------------------------------------


def seed(instance, root: Path, size: int, share: float) -> dict:
    from dagster import AssetKey, AssetMaterialization

    keys = track_keys(size)
    timings = {}
    started = time.perf_counter()
    seed_catalog(root, keys)
    timings["catalog_s"] = time.perf_counter() - started
    started = time.perf_counter()
    add_partitions(instance, keys)
    timings["partitions_s"] = time.perf_counter() - started
    materialized = keys[:round(size * share)]
    started = time.perf_counter()
    report = started
    for n, key in enumerate(materialized, 1):
        instance.report_runless_asset_event(AssetMaterialization(AssetKey(RAW_AUDIO), partition=key))
        if time.perf_counter() - report > 60:
            report = time.perf_counter()
            log(f"  {n:,}/{len(materialized):,} materialisations ({n / (report - started):.0f}/s)")
    timings["events_s"] = time.perf_counter() - started
    timings["events"] = len(materialized)
    timings["seed_s"] = timings["catalog_s"] + timings["partitions_s"] + timings["events_s"]
    return timings


# -- the inbox tick ------------------------------------------------------------------------------


def tick_median(instance, root: Path, samples: list[Path]) -> float:
    """Median of one tick per sample file, each dropped before its tick, the cursor carried on."""
    cursor, seconds = None, []
    for sample in samples:
        drop(root / "inbox", sample)
        took, result = inbox_tick(instance, root, cursor)
        assert result.run_requests, "the tick requested nothing"
        cursor = result.cursor
        seconds.append(took)
    return statistics.median(seconds)


# -- the webserver -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Webserver:
    """dagster-webserver on the instance in ``home``, the code location loaded."""

    def __init__(self, home: Path, root: Path, logfile: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        env = {**os.environ, "DAGSTER_HOME": str(home), "MUSIC_LIBRARY": str(root), "PYTHONPATH": str(REPO)}
        self.log = open(logfile, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(Path(PYTHON).with_name("dagster-webserver")), "-m", "music_pipeline.definitions",
                                      "-h", "127.0.0.1", "-p", str(self.port)],
                                     cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited: see {logfile}")
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                body, _ = self.post(LOADED_QUERY)
                if json.loads(body)["data"]["assetNodeOrError"]["__typename"] == "AssetNode":
                    return
            time.sleep(0.5)
        raise RuntimeError(f"dagster-webserver did not load the code location: see {logfile}")

    def post(self, query: str, variables: dict | None = None) -> tuple[bytes, float]:
        request = urllib.request.Request(self.url, data=json.dumps({"query": query, "variables": variables or {}})
                                         .encode(), headers={"Content-Type": "application/json"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as response:
            body = response.read()
        return body, time.perf_counter() - started

    def partition_health(self) -> dict:
        """One PartitionHealthQuery: seconds, the webserver's CPU seconds, bytes, counts."""
        cpu = _cpu_seconds(self.proc.pid)
        body, seconds = self.post(PARTITION_HEALTH_QUERY, {"assetKey": {"path": RAW_AUDIO}})
        cpu = _cpu_seconds(self.proc.pid) - cpu
        data = json.loads(body)
        if data.get("errors"):
            raise RuntimeError(f"PartitionHealthQuery failed: {data['errors'][:1]}")
        node = data["data"]["assetNodeOrError"]
        statuses = node["assetPartitionStatuses"]
        return {"s": seconds, "cpu_s": cpu, "bytes": len(body),
                "keys": len(node["partitionKeysByDimension"][0]["partitionKeys"]),
                "materialized": len(statuses["materializedPartitions"])}

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()


def partition_health(home: Path, root: Path, work: Path) -> dict:
    """The query cold, then warm (median of 3); then each half of it alone, warm (median of 3):
    the partition keys only, the statuses only."""
    server = Webserver(home, root, work / "webserver.log")
    try:
        cold = server.partition_health()
        warm = [server.partition_health() for _ in range(3)]
        halves = {}
        for half, query in (("keys_only", KEYS_ONLY_QUERY), ("statuses_only", STATUSES_ONLY_QUERY)):
            sizes, seconds = [], []
            for _ in range(3):
                body, took = server.post(query, {"assetKey": {"path": RAW_AUDIO}})
                sizes.append(len(body))
                seconds.append(took)
            halves[f"{half}_s"], halves[f"{half}_bytes"] = statistics.median(seconds), sizes[-1]
    finally:
        server.stop()
    return {"cold": cold, "warm_s": statistics.median(w["s"] for w in warm),
            "warm_cpu_s": statistics.median(w["cpu_s"] for w in warm), "bytes": warm[-1]["bytes"],
            "keys": cold["keys"], "materialized": cold["materialized"], **halves}


# -- where the time goes -------------------------------------------------------------------------


def breakdown(instance, work: Path) -> dict:
    """The request's parts in-process, cold (status cache wiped) and warm: the partition keys'
    fetch, the status cache, the whole query; and a cProfile of the cold and the warm query."""
    from dagster import AssetKey
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    from music_pipeline.assets import tracks

    key = AssetKey(RAW_AUDIO)
    out: dict = {}
    get_and_update_asset_status_cache_value(instance, key, tracks)  # lazy imports out of the timings
    out["partition_keys_s"] = _median(lambda: instance.get_dynamic_partitions(tracks.name))
    partition_keys = instance.get_dynamic_partitions(tracks.name)
    out["keys_json_s"] = _median(lambda: json.dumps(partition_keys))
    out["status_cache_cold_s"] = _median(lambda: get_and_update_asset_status_cache_value(instance, key, tracks),
                                         before=lambda: instance.event_log_storage.wipe_asset_cached_status(key))
    out["status_cache_warm_s"] = _median(lambda: get_and_update_asset_status_cache_value(instance, key, tracks))
    workspace = work / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_module:\n      module_name: music_pipeline.definitions\n"
                         f"      working_directory: {REPO}\n")
    with define_out_of_process_context(str(workspace), None, instance) as context:
        for state in ("cold", "warm"):
            if state == "cold":
                instance.event_log_storage.wipe_asset_cached_status(key)
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            execute_dagster_graphql(context, PARTITION_HEALTH_QUERY, {"assetKey": {"path": RAW_AUDIO}})
            profile.disable()
            out[f"query_{state}_s"] = time.perf_counter() - started
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(25)
            pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(12)
            out[f"profile_{state}"] = text.getvalue()
    return out


def _median(fn, before=None, times: int = 3) -> float:
    seconds = []
    for _ in range(times):
        if before:
            before()
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


# -- one storage, one size -----------------------------------------------------------------------


def measure(storage: str, size: int, work: Path, samples: list[Path], share: float, pg_server,
            profile: bool) -> dict:
    from dagster import DagsterInstance

    from benchmarks._common import instance_ref

    folder = work / f"{storage}-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    home, root = folder / "home", folder / "library"
    pg = create_database(pg_server, f"scale_{size}") if storage == "postgres" else None
    write_home(home, pg)
    row: dict = {"storage": storage, "N": size}
    with DagsterInstance.from_ref(instance_ref(home)) as instance:
        log(f"{storage} N={size:,}: seeding ...")
        row.update(seed(instance, root, size, share))
        log(f"{storage} N={size:,}: seeded in {row['seed_s']:.1f} s (catalog {row['catalog_s']:.1f}, partitions "
            f"{row['partitions_s']:.1f}, {row['events']:,} materialisations {row['events_s']:.1f})")
        row["tick_s"] = tick_median(instance, root, samples)
        log(f"{storage} N={size:,}: inbox tick {row['tick_s']:.3f} s")
        row["health"] = partition_health(home, root, folder)
        health = row["health"]
        log(f"{storage} N={size:,}: partition health cold {health['cold']['s']:.2f} s "
            f"({health['cold']['cpu_s']:.2f} CPU-s), warm {health['warm_s']:.2f} s ({health['warm_cpu_s']:.2f} CPU-s), "
            f"{health['bytes']:,} bytes, {health['keys']:,} keys, {health['materialized']:,} materialised; alone, warm: "
            f"the keys {health['keys_only_s']:.2f} s ({health['keys_only_bytes']:,} bytes), the statuses "
            f"{health['statuses_only_s']:.2f} s ({health['statuses_only_bytes']:,} bytes)")
        assert health["keys"] == size and health["materialized"] == row["events"], health
        if profile:
            row["breakdown"] = breakdown(instance, folder)
            parts = row["breakdown"]
            log(f"{storage} N={size:,}: in-process: partition keys fetch {parts['partition_keys_s']:.3f} s, "
                f"their JSON {parts['keys_json_s']:.3f} s, status cache cold {parts['status_cache_cold_s']:.3f} s / "
                f"warm {parts['status_cache_warm_s']:.3f} s, whole query cold {parts['query_cold_s']:.2f} s / "
                f"warm {parts['query_warm_s']:.2f} s")
            for state in ("cold", "warm"):
                print(f"--- cProfile, {storage} N={size:,}, {state} query (top 25 cumulative, top 12 own time) ---\n"
                      f"{parts[f'profile_{state}']}", flush=True)
    return row


# -- report --------------------------------------------------------------------------------------


def table(rows: list[dict]) -> str:
    lines = ["| storage | partitions | seed s (catalog / partitions / events) | tick s | partition health s cold / warm "
             "| webserver CPU s cold / warm | response |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        h = r["health"]
        lines.append(f"| {r['storage']} | {r['N']:,} | {r['seed_s']:.1f} ({r['catalog_s']:.1f} / {r['partitions_s']:.1f} / "
                     f"{r['events_s']:.1f}) | {r['tick_s']:.3f} | {h['cold']['s']:.2f} / {h['warm_s']:.2f} "
                     f"| {h['cold']['cpu_s']:.2f} / {h['warm_cpu_s']:.2f} | {h['bytes'] / 1e6:.2f} MB |")
    return "\n".join(lines)


def _terminate(signum, frame) -> None:  # noqa: ARG001 - a signal handler's signature
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--storages", default="sqlite,postgres")
    parser.add_argument("--materialized", type=float, default=0.95,
                        help="share of the tracks with a raw_audio materialisation (%(default)s)")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one, removed at the end)")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process breakdown at the largest N")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    storages = [s for s in args.storages.split(",") if s]
    # SIGINT too: a shell starts background jobs with it ignored, and Python then leaves it so
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _terminate)
    work = Path(tempfile.mkdtemp(prefix="music_pipeline_scale-", dir=args.work))
    rows: list[dict] = []
    try:
        samples = generate(work / "samples", 3, seconds=5.0)
        with contextlib.ExitStack() as stack:
            pg_server = stack.enter_context(postgres_server(work)) if "postgres" in storages else None
            for storage in storages:
                for size in sizes:
                    rows.append(measure(storage, size, work, samples, args.materialized, pg_server,
                                        profile=not args.no_profile and size == max(sizes)))
                    print(json.dumps({k: v for k, v in rows[-1].items() if k != "breakdown"}), flush=True)
    finally:
        if rows:
            print(f"\n{args.materialized:.0%} of the tracks materialised (raw_audio); medians of 3 "
                  "(partition health: the first request, then the median of 3)\n")
            print(table(rows), flush=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
