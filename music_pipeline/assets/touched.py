"""Other tracks' files changed inside a run, recorded as that run's materialisations.

A dedup merge renames and retags files of tracks other than the one a step is for (the
keeper's files get tags and plain names, the copies move to ``duplicates/``), and so do
`dedup --move`, `dedup --undo` and the library-wide pass. Each does it inside a run, and
that run records, for every partition it touched, the per-track assets whose metadata names
files (the original, the three formats, the catalog row and its file table) as they are
now: the UI's latest metadata of a partition always matches the files on disk.

Only what changed is recorded (a path, a checksum, a status or the file table differs from
the partition's latest materialisation), and only assets that have a state to show: a file
the catalog records, or for the catalog asset a row it has materialised before or a
finished track.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetKey, AssetMaterialization, AssetRecordsFilter, DagsterInstance

from ..core.domain.lifecycle import Status
from ..core.library.steps import Library
from . import steps

#: The per-track assets whose metadata names files, and what tells that it is stale.
FILE_ASSETS = ("raw_audio", "m4a_alac", "aiff", "wav", "catalog")
COMPARED = ("path", "sha256", "size_mb", "status", "files", "cover_art")


def current(lib: Library, key: str) -> dict[str, dict]:
    """Asset name -> the metadata its materialisation would show now (assets with nothing
    to show, a format never written, are left out)."""
    row = lib.catalog.tracks.get(key)
    if row is None:  # a loose file, not a track
        return {}
    found: dict[str, dict] = {}
    if row.raw_path:
        found["raw_audio"] = steps.raw_metadata(row)
    for record in lib.catalog.files.all([key]):
        found[steps.ASSET_NAMES[record.format]] = steps.record_metadata(record)
    found["catalog"] = steps.catalog_metadata(lib, key)
    return found


def latest(instance: DagsterInstance, asset: str, key: str) -> dict | None:
    """The metadata of the partition's latest materialisation, as plain values; None if never."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[key]), limit=1).records
    if not records or records[0].asset_materialization is None:
        return None
    return _plain(records[0].asset_materialization.metadata)


def _plain(metadata: dict) -> dict:
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def stale(instance: DagsterInstance, lib: Library, keys: Iterable[str],
          assets: Iterable[str] = FILE_ASSETS) -> list[AssetMaterialization]:
    """The materialisations that bring the touched partitions' metadata in line with the disk."""
    wanted = set(assets)
    events = []
    for key in dict.fromkeys(keys):
        for asset, metadata in current(lib, key).items():
            if asset not in wanted:
                continue
            before = latest(instance, asset, key)
            if before is None and asset == "catalog" and metadata.get("status") != Status.DONE:
                continue  # never catalogued (a copy stopped at its fingerprint): nothing to bring in line
            now = _plain(metadata)
            if before is not None and all(before.get(name) == now.get(name) for name in COMPARED):
                continue
            events.append(AssetMaterialization(asset_key=asset, partition=key, metadata=metadata,
                                               description="files renamed or retagged by a dedup merge or undo"))
    return events


def record(context, lib: Library, keys: Iterable[str], assets: Iterable[str] = FILE_ASSETS) -> int:
    """Log, in ``context``'s run, a materialisation for every stale asset of the ``keys``
    partitions (tracks only; loose files have none); returns how many."""
    keys = [k for k in dict.fromkeys(keys) if lib.catalog.tracks.get(k) is not None]
    if not keys:
        return 0
    from .tracks import tracks

    instance = context.instance
    known = set(instance.get_dynamic_partitions(tracks.name))
    if missing := [k for k in keys if k not in known]:  # tracks catalogued before this instance
        instance.add_dynamic_partitions(tracks.name, missing)
    events = stale(instance, lib, keys, assets)
    for event in events:
        context.log_event(event)
    return len(events)
