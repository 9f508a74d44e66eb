"""The DJ exports as sinks: the library as rekordbox XML and as a Traktor collection.

Both are built from one :class:`~music_pipeline.core.dj.model.DjLibrary`, made here from the
catalog: every finished keeper in the format the DJ chose (a track set aside as a duplicate
never appears; a playlist that named it names its keeper), its grid and cues, and the
playlists in a folder per source, in their order. A file is rewritten only when its bytes
would change, and a small manifest beside it says what changed since the last export.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..audio import beatgrid
from ..dj import rekordbox, traktor
from ..dj.locations import RootMap
from ..dj.model import DjFolder, DjLibrary, DjPlaylist, DjTrack
from ..domain.errors import TrackError
from ..domain.identity import looks_like_url, redact_url
from ..domain.lifecycle import Status
from ..domain.paths import FORMATS
from ..library.mirrors import NOTION_QUEUE
from ..library.store import atomic_target, disk_errors
from .base import FilePath, Registration, Report, register

#: A folder per source, in this order; the catalog's playlist sources are lower case.
SOURCE_FOLDERS = {"spotify": "Spotify", "soundcloud": "SoundCloud", "youtube": "YouTube", "notion": "Notion",
                  "inbox": "Inbox"}
DEFAULT_FORMAT = "AIFF"
EXPORT_DIR = "DJ"  # under the library, unless DJ_EXPORT_DIR says otherwise


@dataclass(frozen=True)
class DjSettings:
    """How the DJ exports are made (DJ_EXPORT_FORMAT, DJ_LIBRARY_ROOT, DJ_EXPORT_DIR)."""

    format: str = DEFAULT_FORMAT
    library_root: str | None = None  # the library as the DJ's machine names it; None: as here
    export_dir: str | None = None  # None: <library>/DJ

    def problem(self) -> str | None:
        if self.format not in FORMATS:
            return f"DJ_EXPORT_FORMAT {self.format!r} is not one of {', '.join(FORMATS)}"
        try:
            RootMap(Path("/"), self.library_root or None)
        except ValueError as err:
            return f"DJ_LIBRARY_ROOT: {err}"
        return None

    def folder(self, root: Path) -> Path:
        return Path(self.export_dir).expanduser() if self.export_dir else root / EXPORT_DIR


def dj_library(lib, fmt: str = DEFAULT_FORMAT, progress: Callable[[int, int], None] | None = None) -> DjLibrary:
    """Every finished keeper with a ``fmt`` file, and the playlists grouped by source;
    ``progress(done, total)`` as tracks are read."""
    rows = {row.key: row for row in lib.catalog.tracks.all()}
    records = lib.catalog.files.all()
    files = {f.track_key: f for f in records if f.format == fmt}
    tracks, missing = [], []
    ordered = sorted(rows.values(), key=lambda r: (r.seq or 0, r.key))
    for done, row in enumerate(ordered, 1):
        record = files.get(row.key)
        if progress is not None and (done % 200 == 0 or done == len(ordered)):
            progress(done, len(ordered))
        if row.status != Status.DONE or record is None:
            continue
        if not Path(record.path).exists():
            missing.append(row.key)
            continue
        tracks.append(_track(row, record))
    present = {t.key for t in tracks}
    sources = {p.id: p.source for p in lib.catalog.playlists.all()}
    grouped: dict[str, list[DjPlaylist]] = {}
    for playlist in lib.playlists(rows, records):  # keepers only, in the playlist's order
        keys = tuple(dict.fromkeys(t.key for t in playlist.tracks if t.key in present))
        folder = SOURCE_FOLDERS.get(sources.get(playlist.id, ""), (sources.get(playlist.id) or "Other").title())
        grouped.setdefault(folder, []).append(DjPlaylist(playlist.name, keys))
    queued = tuple(t.key for t in tracks if rows[t.key].discovered_from == NOTION_QUEUE)
    if queued:
        grouped.setdefault("Notion", []).append(DjPlaylist("Queue", queued))
    inbox = tuple(t.key for t in tracks if rows[t.key].source_kind == "file")
    if inbox:
        grouped.setdefault("Inbox", []).append(DjPlaylist("Inbox", inbox))
    order = list(SOURCE_FOLDERS.values())
    folders = sorted(grouped, key=lambda name: (order.index(name) if name in order else len(order), name))
    return DjLibrary(tuple(tracks), tuple(DjFolder(name, tuple(grouped[name])) for name in folders), tuple(missing))


def _track(row, record) -> DjTrack:
    duration = record.duration_s or row.duration_s or 0.0
    if record.sample_rate and record.bits and record.codec and record.codec.startswith("pcm"):
        bitrate = round(record.sample_rate * record.bits * (row.raw_channels or 2) / 1000)
    else:
        bitrate = round(record.size * 8 / duration / 1000) if duration else None
    page = next((u for u in (row.webpage_url, row.spotify_url, row.source_url) if u and looks_like_url(u)), None)
    grid, cues = beatgrid.from_catalog(row.grid, row.cues)
    if grid is not None and grid.needs_look:  # exported as a BPM only: the DJ software grids it itself
        grid, cues = None, ()
    return DjTrack(
        key=row.key, path=Path(record.path), title=row.title or row.key, artist=row.artist or "",
        duration_s=duration, album=row.album, genre=(row.genres or [None])[0], bpm=row.bpm,
        key_name=row.key_name, key_short=row.key_short, size_bytes=record.size, bitrate_kbps=bitrate,
        sample_rate=record.sample_rate, date_added=(row.created_at or "")[:10] or None,
        comment=redact_url(page) if page else None, grid=grid, cues=cues)


# -- the export files ---------------------------------------------------------------------------


def _digest(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def export(library: DjLibrary, render: Callable[[DjLibrary, RootMap], bytes], roots: RootMap,
           dest: Path) -> Report:
    """Write ``dest`` when its bytes change; the report says what changed since the last one
    (from the manifest beside it: each track's and playlist's digest)."""
    data = render(library, roots)
    manifest_path = dest.with_name(f".{dest.name}.music-pipeline.json")
    tracks = {t.key: _digest(t) for t in library.tracks}
    playlists: dict[str, str] = {}
    for folder in library.folders:
        for playlist in folder.playlists:  # two playlists may share a name: numbered apart
            name = f"{folder.name}/{playlist.name}"
            key = next(k for n in range(1, len(playlists) + 2) if (k := name if n == 1 else f"{name} ({n})")
                       not in playlists)
            playlists[key] = _digest(playlist.keys)
    try:
        before = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except (OSError, ValueError):
        before = {}
    old_tracks, old_playlists = before.get("tracks", {}), before.get("playlists", {})
    added = sorted(set(tracks) - set(old_tracks))
    removed = sorted(set(old_tracks) - set(tracks))
    updated = sorted(k for k in set(tracks) & set(old_tracks) if tracks[k] != old_tracks[k])
    lists_changed = sorted(k for k in set(playlists) | set(old_playlists) if playlists.get(k) != old_playlists.get(k))
    try:
        same = dest.exists() and dest.read_bytes() == data
    except OSError:
        same = False
    if not same:
        with atomic_target(dest) as tmp, disk_errors(dest):
            tmp.write_bytes(data)
    if not same or before.get("tracks") != tracks or before.get("playlists") != playlists:
        with atomic_target(manifest_path) as tmp, disk_errors(manifest_path):
            tmp.write_text(json.dumps({"tracks": tracks, "playlists": playlists}, sort_keys=True))
    changed = tuple([f"+{k}" for k in added] + [f"-{k}" for k in removed] + [f"~{k}" for k in updated])
    counts = {"tracks": len(library.tracks), "playlists": sum(len(f.playlists) for f in library.folders),
              "grids": sum(1 for t in library.tracks if t.grid), "cues": sum(len(t.cues) for t in library.tracks),
              "tracks_added": len(added), "tracks_removed": len(removed), "tracks_updated": len(updated),
              "playlists_changed": len(lists_changed), "bytes": len(data)}
    return Report("unchanged" if same else "written", changed=changed,
                  metadata={**counts, "path": FilePath(str(dest)), "rewritten": not same,
                            "changed_playlists": ", ".join(lists_changed)[:2000]},
                  notes=(f"{dest}: {'unchanged' if same else 'written'}: {len(library.tracks)} tracks, "
                         f"{counts['playlists']} playlists; {len(added)} added, {len(removed)} removed, "
                         f"{len(updated)} updated",))


class _DjExport:
    """A library sink writing one file a DJ program imports."""

    file_name = ""
    render: Callable[[DjLibrary, RootMap], bytes]

    def __init__(self, settings: DjSettings, dest: Path | None = None) -> None:
        self.settings, self.dest = settings, dest

    def why_off(self) -> str | None:
        return self.settings.problem()

    def target(self, root: Path) -> Path:
        return self.dest or self.settings.folder(root) / self.file_name

    def write_library(self, lib, progress: Callable[[int, int], None] | None = None) -> Report:
        if (problem := self.why_off()) is not None:
            return Report.skip(problem, error=True)
        if not lib.root.is_dir():
            raise TrackError(f"The library folder {lib.root} is not there (an unmounted drive?): "
                             f"{self.target(lib.root)} is left as it was.", hint="Mount the drive, or set MUSIC_LIBRARY.")
        roots = RootMap(lib.root, self.settings.library_root or None)
        library = dj_library(lib, self.settings.format, progress)
        if library.missing and not library.tracks:
            raise TrackError(f"None of the {len(library.missing)} finished tracks' {self.settings.format} files is in "
                             f"{lib.root} (an unmounted drive?): {self.target(lib.root)} is left as it was.",
                             hint="Mount the drive, or run `music-pipeline process reprocess` to write the files again.")
        warnings = [f"{len(library.missing)} finished track(s) left out: their {self.settings.format} file is "
                    f"missing (e.g. {library.missing[0]}); `music-pipeline process reprocess` writes it again"
                    ] if library.missing else []
        if self.settings.library_root:  # DJ_LIBRARY_ROOT names the library folder: files elsewhere have no name
            outside = [t.key for t in library.tracks if not t.path.is_relative_to(lib.root)]
            if outside:
                library = dataclasses.replace(library, tracks=tuple(t for t in library.tracks
                                                                   if t.path.is_relative_to(lib.root)))
                warnings.append(f"{len(outside)} track(s) left out: their files are outside the library folder "
                                f"{lib.root}, which DJ_LIBRARY_ROOT maps (e.g. {outside[0]})")
        report = export(library, type(self).render, roots, self.target(lib.root))
        return dataclasses.replace(report, warnings=tuple(warnings),
                                   metadata={**report.metadata, "missing_files": len(library.missing)})


class RekordboxExport(_DjExport):
    file_name = "rekordbox.xml"
    render = staticmethod(rekordbox.render)


class TraktorExport(_DjExport):
    file_name = "collection.nml"
    render = staticmethod(traktor.render)


SETTINGS = ("DJ_EXPORT_FORMAT", "DJ_LIBRARY_ROOT", "DJ_EXPORT_DIR")
register(Registration(
    name="rekordbox", scope="library", asset="rekordbox_export", kind="xml",
    description="The library as rekordbox XML (File > Import > rekordbox xml): every finished track in the "
                "chosen format with its exact BPM, key, beat grid and cues, and the playlists in a folder per source.",
    settings=SETTINGS, resources=("dj",), build=lambda dj: RekordboxExport(dj.settings())))
register(Registration(
    name="traktor", scope="library", asset="traktor_export", kind="nml",
    description="The library as a Traktor collection (collection.nml, for File > Import Another Collection): "
                "the tracks locked with their grid, key and cues, and the same playlists.",
    settings=SETTINGS, resources=("dj",), build=lambda dj: TraktorExport(dj.settings())))
