"""Helpers the benchmarks share: known tracks seeded the way the product stores them (catalog
rows and dynamic partitions of "tracks"), and one evaluation of the inbox sensor's tick."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from pathlib import Path

#: Set by ``--keep``: leave the libraries and homes a benchmark made (each is gigabytes at
#: N=100 three-minute tracks: three formats and the original per track).
KEEP = {"outputs": False}


def discard(*folders: Path) -> None:
    """Remove what a measurement wrote, once it is measured (unless ``--keep``)."""
    if KEEP["outputs"]:
        return
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def track_keys(count: int) -> list[str]:
    """``count`` distinct URL track keys, as the catalog names URL sources."""
    return [f"url-{n:016x}" for n in range(count)]


def seed_catalog(root: Path, keys: list[str]) -> None:
    """One finished catalog row per key (a URL source), in one transaction."""
    from music_pipeline.core.library.catalog import Catalog
    from music_pipeline.core.library.rows import now

    catalog = Catalog(root / "catalog.sqlite")
    stamp = now()
    with contextlib.closing(sqlite3.connect(catalog.path)) as conn, conn:
        conn.executemany("INSERT INTO tracks (key, status, source_kind, source_url, source_urls, created_at,"
                         " updated_at) VALUES (?, 'done', 'url', ?, ?, ?, ?)",
                         [(k, f"https://example.org/{k}.mp3", json.dumps([f"https://example.org/{k}.mp3"]),
                           stamp, stamp) for k in keys])


def add_partitions(instance, keys: list[str], chunk: int = 5000) -> None:
    """The keys as partitions of "tracks", ``chunk`` at a time."""
    from music_pipeline.assets import tracks

    for start in range(0, len(keys), chunk):
        instance.add_dynamic_partitions(tracks.name, keys[start:start + chunk])


def instance_ref(home: Path):
    from dagster._core.instance.ref import InstanceRef

    return InstanceRef.from_dir(str(home))


def inbox_tick(instance, root: Path, cursor: str | None = None):
    """Evaluate the inbox sensor once over the library at ``root``, as the daemon would;
    (seconds, SensorResult)."""
    from dagster import build_sensor_context

    from music_pipeline.automation.sensors import inbox_sensor
    from music_pipeline.resources import DownloaderResource, LibraryResource

    resources = {"library": LibraryResource(root=str(root)), "downloader": DownloaderResource()}
    with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        started = time.perf_counter()
        result = inbox_sensor(context)
        return time.perf_counter() - started, result
