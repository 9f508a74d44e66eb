#!/usr/bin/env python3
"""Arrival benchmark: how soon a track asked for from outside starts, by each way in, on the
product as `music-pipeline up` starts it (a temporary home, the local Notion server of the
tests, a local web server holding the audio).

    python benchmarks/arrival.py [--each 5] [--sensor 2]

Ways in, in the same run: a link shared to ``POST /tracks``; a page added in Notion and its
signed ``page.created`` event to ``POST /notion/webhook``; and the baselines, `music-pipeline add`
of a link (a command started for it) and a page added in Notion with no event (the
``notion_queue`` sensor's tick, every 60 s). For each: seconds from the request to the bulk run
existing (requested), to it STARTED, and to the track's own ``process_track`` run STARTED.
Medians (and the worst) over the samples; polled every 0.1 s through the UI's GraphQL API.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import hmac
import http.server
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from music_pipeline.core.domain.identity import source_for  # noqa: E402
from music_pipeline_tests.audio import make_track  # noqa: E402
from music_pipeline_tests.daemon import Dagster, dagster_up  # noqa: E402
from music_pipeline_tests.fakes.notion import FakeNotion  # noqa: E402

TOKEN = "arrival-benchmark-share-token-0123456789"
VERIFY = "secret_arrival-benchmark"
RUNS = """query { runsOrError(limit: 200) { ... on Runs { results { runId status jobName runConfigYaml
    tags { key value } } } } }"""
STARTED = {"STARTED", "SUCCESS", "FAILURE"}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _runs(dagster: Dagster) -> list[dict]:
    return dagster.graphql(RUNS)["runsOrError"]["results"]


def _partition(run: dict) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == "dagster/partition"), None)


def _follow(dagster: Dagster, key_of, started: float, timeout: float = 120.0) -> dict[str, float]:
    """Seconds from ``started`` to: the bulk run for the track existing, STARTED, and the
    track's process_track run STARTED. ``key_of()`` gives the track key once known."""
    seen: dict[str, float] = {}
    deadline = started + timeout
    while time.time() < deadline and len(seen) < 3:
        key = key_of()
        if key:
            runs = _runs(dagster)
            bulk = [r for r in runs if r["jobName"] == "process_tracks" and key in r["runConfigYaml"]]
            track = [r for r in runs if r["jobName"] == "process_track" and _partition(r) == key]
            now = time.time() - started
            if bulk:
                seen.setdefault("requested", now)
                if any(r["status"] in STARTED for r in bulk):
                    seen.setdefault("bulk started", now)
            if any(r["status"] in STARTED for r in track):
                seen.setdefault("track run started", now)
        time.sleep(0.1)
    return seen


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--each", type=int, default=5, help="samples of each fast way in")
    parser.add_argument("--sensor", type=int, default=2, help="samples of the sensor baseline (up to 60 s each)")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeNotion() as fake:
        root = Path(tmp) / "www"
        root.mkdir()
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        host = f"http://127.0.0.1:{httpd.server_address[1]}"
        db = fake.create_database("Tracks", {"Name": "title", "Track ID": "rich_text", "URL": "url",
                                             "Status": "select", "Error": "rich_text"})
        env = {"NOTION_TOKEN": fake.token, "TRACKS_DB_ID": db.id, "NOTION_API_BASE_URL": fake.url,
               "MUSIC_SHARE_TOKEN": TOKEN, "MUSIC_SHARE_ALLOW_HOSTS": "127.0.0.1"}
        (Path(tmp) / "product").mkdir()
        with dagster_up(Path(tmp) / "product", extra_env=env) as dagster:
            hook = f"{dagster.share_url}/notion/webhook"
            requests.post(hook, json={"verification_token": VERIFY}, timeout=30).raise_for_status()
            (dagster.home / "notion-webhook-token").write_text(VERIFY)  # the operator's step after Notion's Verify
            time.sleep(5)  # the first runs' code location load is not what is measured
            n = 0

            def track() -> str:
                nonlocal n
                n += 1
                name = f"Arrival {n}.flac"
                make_track(root / name, seconds=2, seed=100 + n, codec_args=["-c:a", "flac"])
                return f"{host}/{name.replace(' ', '%20')}"

            for _ in range(args.each):
                link = track()
                started = time.time()
                answer = requests.post(f"{dagster.share_url}/tracks", json={"url": link},
                                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
                assert answer.status_code == 202, answer.text
                key = answer.json()["key"]
                results.setdefault("share endpoint", []).append(_follow(dagster, lambda k=key: k, started))
            for _ in range(args.each):
                link = track()
                started = time.time()
                subprocess.run([sys.executable, "-m", "music_pipeline", "add", link, "--webserver", dagster.url],
                               env=dagster.env, cwd=REPO, capture_output=True, check=True)
                key = source_for(link).key
                results.setdefault("`add` (baseline)", []).append(_follow(dagster, lambda k=key: k, started))
            for _ in range(args.each):
                link = track()
                page = fake.seed_page(db.data_source_id, {"Name": "arrival", "URL": link})
                body = json.dumps({"id": f"evt-{page['id']}", "type": "page.created",
                                   "entity": {"id": page["id"], "type": "page"},
                                   "data": {"parent": {"id": db.id, "type": "database",
                                                       "data_source_id": db.data_source_id}}}).encode()
                signature = "sha256=" + hmac.new(VERIFY.encode(), body, hashlib.sha256).hexdigest()
                started = time.time()
                requests.post(hook, data=body, headers={"X-Notion-Signature": signature}, timeout=30).raise_for_status()
                results.setdefault("Notion webhook", []).append(_follow(
                    dagster, lambda p=page["id"]: FakeNotion.plain(fake.page(p)).get("Track ID"), started))
            for _ in range(args.sensor):
                link = track()
                page = fake.seed_page(db.data_source_id, {"Name": "arrival", "URL": link})
                started = time.time()
                results.setdefault("Notion, sensor tick (baseline)", []).append(_follow(
                    dagster, lambda p=page["id"]: FakeNotion.plain(fake.page(p)).get("Track ID"), started, 150))
        httpd.shutdown()
    print("\n| way in | samples | requested (s) | bulk run STARTED (s) | track run STARTED (s) |")
    print("| --- | --- | --- | --- | --- |")
    for way, samples in results.items():
        cells = []
        for what in ("requested", "bulk started", "track run started"):
            values = [s[what] for s in samples if what in s]
            cells.append(f"{statistics.median(values):.2f} (worst {max(values):.2f})" if values else "n/a")
        print(f"| {way} | {len(samples)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
