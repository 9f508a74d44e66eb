"""The catalog's rows as typed, frozen values, and the one place their stored form is read
and written: JSON columns (a track's URL list, artists, genres and match; a mirror's
``written``; a merge's ``added``; a dedup group's members, evidence, previous values and
moves) are decoded here and encoded here, and paths stored relative to the library folder
are made absolute here (so a library on a drive mounted elsewhere keeps working).

A row is a snapshot of what the catalog held when it was read; change the catalog through
the repositories, and make a changed copy of a row with ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .database import Row

#: Track columns holding paths, stored relative to the library folder.
TRACK_PATH_COLUMNS = ("raw_path", "cover_path", "source_path")
#: Track columns stored as JSON text.
TRACK_JSON_COLUMNS = frozenset({"source_urls", "artists", "genres", "match", "grid", "cues"})
GROUP_JSON_COLUMNS = ("members", "evidence", "previous", "moves")


def now() -> str:
    """A timestamp as the catalog stores it (ISO, UTC, seconds: it sorts)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def encode(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def decode(text: str | None) -> Any:
    return json.loads(text) if text else None


class Paths:
    """Paths stored relative to the library folder ``root`` and resolved at use."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def rel(self, path: Path | str | None) -> str | None:
        if path is None:
            return None
        path = Path(path)
        try:
            return path.relative_to(self.root).as_posix() if path.is_absolute() else path.as_posix()
        except ValueError:
            return str(path)  # outside the library (a file imported from elsewhere): as it is

    def abs(self, text: str) -> Path:
        return Path(text) if os.path.isabs(text) else self.root / text


_SHAPES: dict[type, tuple[frozenset[str], dict[str, Any], dict[str, Any]]] = {}


def _shape(cls) -> tuple[frozenset[str], dict[str, Any], dict[str, Any]]:
    """A row class's field names, defaults and default factories, looked up once."""
    shape = _SHAPES.get(cls)
    if shape is None:
        fields = dataclasses.fields(cls)
        shape = _SHAPES[cls] = (frozenset(f.name for f in fields),
                                {f.name: f.default for f in fields if f.default is not dataclasses.MISSING},
                                {f.name: f.default_factory for f in fields
                                 if f.default_factory is not dataclasses.MISSING})
    return shape


def _from(cls, row: Row, **decoded: Any):
    """``cls`` from a database row: its own columns (a joined query may carry more), then the
    decoded values given. Built without the generated ``__init__`` (a frozen dataclass sets
    each of a track's 62 fields through ``object.__setattr__``, which made reading the track
    list several times slower than the dicts it replaced); the result is the same value."""
    names, defaults, factories = _shape(cls)
    data = dict(zip(row.keys(), row, strict=True))  # a database row iterates its values
    if not data.keys() <= names:
        data = {k: v for k, v in data.items() if k in names}
    data.update(decoded)
    for name in names - data.keys():
        if name in defaults:
            data[name] = defaults[name]
        elif name in factories:
            data[name] = factories[name]()
        else:
            raise TypeError(f"{cls.__name__} needs {name}, which the row lacks")
    value = object.__new__(cls)
    value.__dict__.update(data)
    return value


@dataclass(frozen=True, kw_only=True)
class Track:
    """A track: its sources, metadata, features, fingerprint, status and last error. Paths are
    absolute (under the library folder); the JSON columns are lists and dicts."""

    key: str
    status: str  # a Status value
    source_kind: str  # "url" | "file"
    source_url: str | None = None
    source_path: str | None = None
    source_urls: list[str] = field(default_factory=list)
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    isrc: str | None = None
    webpage_url: str | None = None
    thumbnail_url: str | None = None
    extractor: str | None = None
    source_duration_s: float | None = None
    raw_path: str | None = None
    raw_codec: str | None = None
    raw_sample_rate: int | None = None
    raw_bits: int | None = None
    raw_channels: int | None = None
    raw_lossless: int | None = None
    raw_sha256: str | None = None
    cover_path: str | None = None
    duration_s: float | None = None
    bpm: float | None = None
    key_name: str | None = None
    key_short: str | None = None
    camelot: str | None = None
    open_key: str | None = None
    key_confidence: float | None = None
    lufs: float | None = None
    loudness_range_lu: float | None = None
    true_peak_db: float | None = None
    fingerprint: str | None = None
    fingerprint_duration_s: float | None = None
    error: str | None = None
    error_step: str | None = None
    error_reason: str | None = None  # a Reason value: Reason.of(row.error_reason).retryable
    created_at: str = ""
    updated_at: str = ""
    processed_at: str | None = None
    bpm_confidence: float | None = None
    replaygain_track_gain_db: float | None = None
    replaygain_track_peak: float | None = None
    raw_bitrate_kbps: float | None = None
    duplicate_of: str | None = None
    dedup_group: str | None = None
    fingerprint_indexed: int = 0
    name_key: str | None = None
    artists: list[str] | None = None
    release_date: str | None = None
    track_number: int | None = None
    artwork_url: str | None = None
    spotify_url: str | None = None
    genres: list[str] | None = None
    match_url: str | None = None
    match_score: float | None = None
    match: dict | None = None
    match_pinned: int = 0
    discovered_from: str | None = None
    cutoff_hz: float | None = None
    lossy_origin: int | None = None
    leading_silence_s: float | None = None
    trailing_silence_s: float | None = None
    seq: int | None = None
    grid: dict | None = None  # beatgrid.Grid.as_dict()
    cues: list | None = None  # [[start_s, name, number, [r, g, b]], ...]
    first_beat_s: float | None = None
    downbeat_s: float | None = None
    beats_per_bar: int | None = None
    grid_confidence: float | None = None
    grid_needs_look: int | None = None

    @classmethod
    def from_row(cls, row: Row, paths: Paths) -> Track:
        decoded = {name: decode(row[name]) for name in TRACK_JSON_COLUMNS}
        decoded["source_urls"] = decoded["source_urls"] or []
        decoded |= {name: str(paths.abs(row[name])) for name in TRACK_PATH_COLUMNS if row[name]}
        return _from(cls, row, **decoded)


#: Every column of a track, in the order of the table (for a caller's own field list).
TRACK_COLUMNS = tuple(f.name for f in dataclasses.fields(Track))


def encode_track_fields(fields: Mapping[str, object], paths: Paths) -> dict[str, object]:
    """Track fields as stored: JSON columns as text, paths relative to the library folder."""
    unknown = set(fields) - set(TRACK_COLUMNS)
    if unknown:
        raise ValueError(f"a track has no field {', '.join(sorted(unknown))}")
    return {name: encode(value) if name in TRACK_JSON_COLUMNS else paths.rel(value) if name in TRACK_PATH_COLUMNS
            else value for name, value in fields.items()}


@dataclass(frozen=True, kw_only=True)
class TrackFile:
    """One output file of a track (``format`` is ALAC, AIFF, WAV, ...), its path absolute."""

    track_key: str
    format: str
    path: str
    size: int
    sha256: str
    duration_s: float | None = None
    codec: str | None = None
    sample_rate: int | None = None
    bits: int | None = None
    updated_at: str = ""

    @classmethod
    def from_row(cls, row: Row, paths: Paths) -> TrackFile:
        return _from(cls, row, path=str(paths.abs(row["path"])))


@dataclass(frozen=True, kw_only=True)
class Playlist:
    id: str
    source: str
    name: str
    url: str | None = None
    snapshot: str | None = None
    removed_at: str | None = None
    updated_at: str = ""

    @classmethod
    def from_row(cls, row: Row) -> Playlist:
        return _from(cls, row)


@dataclass(frozen=True, kw_only=True)
class Membership:
    """A track's place in one playlist."""

    playlist_id: str
    position: int
    added_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class Mirror:
    """A track's record in a sink (a Notion page, an Eagle item): what the pipeline last wrote
    there and which status it last showed. Listed with :meth:`MirrorRepository.all`, it also
    carries its track's current status and error."""

    track_key: str
    sink: str
    remote_id: str
    written: dict = field(default_factory=dict)
    status: str | None = None
    synced_at: str = ""
    track_status: str | None = None
    track_error: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> Mirror:
        return _from(cls, row, written=decode(row["written"]) or {})


@dataclass(frozen=True, kw_only=True)
class Merge:
    """A duplicate's remote record merged into its keeper's (``added``: what the merge added
    to the keeper's record, taken off again by `dedup --undo`)."""

    sink: str
    remote_id: str
    track_key: str
    keeper_remote_id: str
    added: dict = field(default_factory=dict)
    merged_at: str = ""

    @classmethod
    def from_row(cls, row: Row) -> Merge:
        return _from(cls, row, added=decode(row["added"]) or {})


@dataclass(frozen=True, kw_only=True)
class DedupGroup:
    """A group of recordings of one song: its keeper, why, and (once applied) the files'
    ``moves`` as absolute [from, to] pairs and the fields ``previous`` to the merge."""

    id: str
    keeper: str
    members: list[str]
    state: str  # proposed | applied | undone
    rule: str
    reason: str
    evidence: Any
    previous: dict = field(default_factory=dict)
    moves: list[list[str]] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""

    @property
    def others(self) -> list[str]:
        """The members that are not the keeper."""
        return [m for m in self.members if m != self.keeper]

    @classmethod
    def from_row(cls, row: Row, paths: Paths) -> DedupGroup:
        decoded = {name: decode(row[name]) for name in GROUP_JSON_COLUMNS}
        decoded["previous"] = decoded["previous"] or {}
        decoded["moves"] = [[str(paths.abs(a)), str(paths.abs(b))] for a, b in decoded["moves"] or []]
        return _from(cls, row, **decoded)

    def stored(self, paths: Paths) -> dict[str, object]:
        """The group's columns as stored (JSON text, moves relative to the library folder)."""
        return {"id": self.id, "keeper": self.keeper, "members": encode(self.members), "state": self.state,
                "rule": self.rule, "reason": self.reason, "evidence": encode(self.evidence),
                "previous": encode(self.previous or {}),
                "moves": encode([[paths.rel(a), paths.rel(b)] for a, b in self.moves])}
