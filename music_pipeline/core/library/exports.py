"""The volume index: every file of the library as one table other tools can read.

Written as ``library_index.csv`` and ``library_index.parquet`` in the library root, one
row per file (the three outputs of each track and its original), with the track's
features beside it, so a spreadsheet or a DJ tool can search the library without
opening the catalog.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..domain.identity import redact_url
from .catalog import Catalog
from .store import atomic_target, clean_dead_writers, disk_errors, process_owner

INDEX_STEM = "library_index"
TRACK_COLUMNS = ["title", "artist", "album", "isrc", "bpm", "key_name", "camelot", "open_key", "lufs",
                 "true_peak_db", "status", "source_url", "webpage_url"]
COLUMNS = ["track_key", "format", "path", "size", "duration_s", "sha256", "codec", "sample_rate", "bits",
           *TRACK_COLUMNS]


#: Columns holding URLs: exported masked (a signed link's token, a password), since the
#: index is read by other tools and shared; downloading uses the catalog, not the index.
URL_COLUMNS = ("source_url", "webpage_url")


def build(catalog: Catalog) -> pd.DataFrame:
    tracks = {row.key: replace(row, **{c: redact_url(getattr(row, c)) for c in URL_COLUMNS if getattr(row, c)})
              for row in catalog.tracks.all()}
    rows = []
    for record in catalog.files.all():
        track = tracks.get(record.track_key)
        rows.append({**{name: getattr(record, name) for name in COLUMNS[:9]},
                     **{name: getattr(track, name) if track else None for name in TRACK_COLUMNS}})
    for key, track in tracks.items():
        raw = Path(track.raw_path) if track.raw_path else None
        if raw and raw.exists():
            rows.append({"track_key": key, "format": "SOURCE", "path": str(raw), "size": raw.stat().st_size,
                         "duration_s": track.duration_s, "sha256": track.raw_sha256,
                         "codec": track.raw_codec, "sample_rate": track.raw_sample_rate,
                         "bits": track.raw_bits, **{name: getattr(track, name) for name in TRACK_COLUMNS}})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("size", "sample_rate", "bits"):
        frame[column] = frame[column].astype("Int64")
    return frame.sort_values(["track_key", "format"], ignore_index=True)


def write(frame: pd.DataFrame, root: Path) -> tuple[Path, Path]:
    csv_path, parquet_path = Path(root) / f"{INDEX_STEM}.csv", Path(root) / f"{INDEX_STEM}.parquet"
    clean_dead_writers(Path(root), INDEX_STEM)  # an index write that was killed midway
    with atomic_target(csv_path, process_owner()) as tmp, disk_errors(csv_path):
        frame.to_csv(tmp, index=False)
    with atomic_target(parquet_path, process_owner()) as tmp, disk_errors(parquet_path):
        frame.to_parquet(tmp, index=False)
    return csv_path, parquet_path


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Files, size and hours per format: the table shown in the asset's metadata."""
    if frame.empty:
        return pd.DataFrame(columns=["format", "files", "size_gb", "hours"])
    grouped = frame.groupby("format").agg(files=("path", "count"), size=("size", "sum"),
                                          seconds=("duration_s", "sum"))
    grouped["size_gb"] = (grouped["size"] / 1e9).round(3)
    grouped["hours"] = (grouped["seconds"] / 3600).round(2)
    return grouped.reset_index()[["format", "files", "size_gb", "hours"]]
