"""Playlists on disk: one folder of links and one ``.m3u8`` per playlist and format.

A track lives once in the library (``<library>/<format>/<Artist>/<Artist> - <Title>.<ext>``)
but can be in many playlists (Spotify playlists, SoundCloud sets, YouTube playlists,
"Liked"). DJ software and hardware differ in what they read, so each playlist is offered
two ways:

* a folder ``<library>/<format>/Playlists/<name>/`` holding a relative symlink, hardlink
  or copy per track (for CDJ/USB workflows that browse folders);
* an extended M3U8 ``<library>/Playlists/<name> (<format>).m3u8`` whose paths are
  relative to itself, so the library can be moved or mounted elsewhere as a whole.

Ownership: the folder may also hold the user's own files. This module only ever removes
what it created, and it knows what it created from a small JSON manifest
(``.music-pipeline.json``) in the folder. A name taken by a user's file makes ours take a
" (2)" suffix; a library file is never written, renamed or removed here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..domain.errors import TrackError
from ..domain.paths import (
    FILE_NAME_ROOM,
    MAX_COMPONENT_BYTES,
    MAX_RELATIVE_CHARS,
    MIN_FIELD_CHARS,
    TemplateError,
    path_chars,
    render_name,
    sanitize_component,
    shorten,
)
from .store import atomic_target, copy_atomic, disk_errors, exclusive

__all__ = [
    "DEFAULT_TEMPLATE",
    "MANIFEST_NAME",
    "MODES",
    "M3U_DIR",
    "Playlist",
    "PlaylistTrack",
    "SyncReport",
    "export_all",
    "m3u8_path",
    "playlist_folder",
    "remove_playlist",
    "sync_folder",
    "write_m3u8",
]

#: Relative to ``<library>/<format>/``. The folder part must be fixed folders then exactly
#: ``$playlist``, so every track of a playlist lands in one folder (where the manifest
#: is); the file part may use $artist, $title, $key, $position (1-based, zero-padded,
#: to keep the playlist's order in a file browser) and $playlist.
DEFAULT_TEMPLATE = "Playlists/$playlist/$artist - $title"
MANIFEST_NAME = ".music-pipeline.json"
MODES = ("symlink", "hardlink", "copy")
#: Where export_all writes the m3u8 files, relative to the library root.
M3U_DIR = "Playlists"
_MANIFEST_VERSION = 1
_FILE_FIELDS = {"artist", "title", "key", "position", "playlist"}


@dataclass(frozen=True)
class PlaylistTrack:
    key: str
    artist: str
    title: str
    duration_s: float | None
    files: dict[str, Path]  # format ("ALAC", "AIFF", "WAV") -> file in the library


@dataclass(frozen=True)
class Playlist:
    id: str  # stable upstream id: survives renames, tells apart two playlists of one name
    name: str
    tracks: tuple[PlaylistTrack, ...]


@dataclass
class SyncReport:
    added: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    folder: Path | None = None
    m3u8: Path | None = None


# -- m3u8 --------------------------------------------------------------------------------


def _extinf_text(text: str) -> str:
    return " ".join(str(text).split())  # no newline may end the line early


def write_m3u8(playlist: Playlist, fmt: str, dest: Path, relative_to: Path | None = None) -> Path:
    """Write ``playlist`` as extended M3U8 for ``fmt`` at ``dest``, atomically.

    Paths are written relative to ``relative_to`` (default: the m3u8's own folder, which
    is what players resolve against) with "/" separators, UTF-8 without BOM, "\\n" line
    ends. Tracks without an existing file in ``fmt`` are left out rather than listed as
    dead entries that DJ software flags as missing.
    """
    dest = Path(dest)
    base = Path(relative_to) if relative_to is not None else dest.parent
    lines = ["#EXTM3U", f"#PLAYLIST:{_extinf_text(playlist.name)}"]
    for track in playlist.tracks:
        path = track.files.get(fmt)
        if path is None or not Path(path).is_file():
            continue
        seconds = round(track.duration_s) if track.duration_s is not None else -1
        lines.append(f"#EXTINF:{seconds},{_extinf_text(track.artist)} - {_extinf_text(track.title)}")
        lines.append(PurePosixPath(*Path(os.path.relpath(Path(path).absolute(), base.absolute())).parts).as_posix())
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with atomic_target(dest) as tmp, disk_errors(dest):
        tmp.write_bytes(data)
    return dest


def m3u8_path(root: Path, folder_name: str, fmt: str) -> Path:
    """``<library>/Playlists/<name> (<fmt>).m3u8``: one per format, beside the format
    folders, so the same playlist can be loaded as ALAC on one player and WAV on another."""
    return Path(root) / M3U_DIR / f"{folder_name} ({fmt}).m3u8"


# -- templates ---------------------------------------------------------------------------


def _split_template(template: str) -> tuple[tuple[str, ...], str]:
    """(fixed folders before $playlist, file-name template); TemplateError if unusable."""
    parts = [part for part in PurePosixPath(template).parts if part not in ("/", "")]
    if template.startswith(("/", "\\")) or len(parts) < 2 or parts[-2] not in ("$playlist", "${playlist}"):
        raise TemplateError(f"playlist template {template!r} must be <folders>/$playlist/<file name>")
    fixed = tuple(parts[:-2])
    for part in fixed:
        if "$" in part or part in (".", ".."):
            raise TemplateError(f"playlist template {template!r}: folders before $playlist must be fixed names")
    names = {name or braced for _, name, braced, _ in string.Template.pattern.findall(parts[-1])
             if name or braced}
    if names - _FILE_FIELDS:
        raise TemplateError(f"unknown field(s) in playlist template {template!r}: "
                            f"{', '.join(sorted(names - _FILE_FIELDS))}")
    if not names & {"title", "key", "position"}:
        raise TemplateError(f"playlist template {template!r} needs $title, $key or $position")
    return fixed, parts[-1]


def _base_folder(root: Path, fmt: str, template: str) -> Path:
    fixed, _ = _split_template(template)
    return Path(root) / fmt / Path(*fixed) if fixed else Path(root) / fmt


def _stem(file_template: str, playlist: Playlist, track: PlaylistTrack, index: int, chars: int,
          nbytes: int) -> str:
    """The link's name before any " (n)" and its extension, within ``chars``/``nbytes``."""
    width = max(2, len(str(len(playlist.tracks))))
    values = {
        "artist": sanitize_component(track.artist),
        "title": sanitize_component(track.title),
        "key": sanitize_component(track.key),
        "playlist": sanitize_component(playlist.name),
        "position": f"{index + 1:0{width}d}",
    }
    return render_name(file_template, values, chars, nbytes)


def _fold(name: str) -> str:
    """Names as a case-insensitive, normalising filesystem (macOS, exFAT) compares them."""
    return unicodedata.normalize("NFC", name).casefold()


def _name(stem: str, n: int, suffix: str, chars: int = MAX_COMPONENT_BYTES) -> str:
    """``stem``, its " (n)" and ``suffix`` in at most ``chars``: the stem gives way, never
    the number that tells two entries apart."""
    ending = (f" ({n})" if n > 1 else "") + suffix
    return shorten(stem, chars - path_chars(ending), MAX_COMPONENT_BYTES - len(ending.encode())) + ending


def _folder_chars(root: Path, fmt: str, template: str) -> int:
    """The most characters a playlist folder's name may have: what the library's path limit
    leaves after ``<fmt>/<fixed folders>/`` and the room kept for the links' names (which
    is more than the m3u8 beside the format folders needs)."""
    base = _base_folder(root, fmt, template).relative_to(root)
    chars = MAX_RELATIVE_CHARS - FILE_NAME_ROOM - 1 - path_chars(base.as_posix()) - 1
    if chars < MIN_FIELD_CHARS:
        raise TemplateError(f"playlist template {template!r}: the folders before $playlist are too long")
    return chars


def _folder_name(root: Path, name: str, fmt: str, template: str, n: int = 1) -> str:
    return _name(sanitize_component(name), n, "", _folder_chars(root, fmt, template))


# -- manifest ----------------------------------------------------------------------------


def _load_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("entries"), dict) else None


def _save_manifest(folder: Path, manifest: dict) -> None:
    target = folder / MANIFEST_NAME
    with atomic_target(target) as tmp, disk_errors(target):
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                       encoding="utf-8")


def _owned_folders(base: Path) -> Iterable[tuple[Path, dict]]:
    if not base.is_dir():
        return
    for folder in sorted(base.iterdir()):
        if folder.is_dir() and not folder.is_symlink():
            manifest = _load_manifest(folder)
            if manifest is not None:
                yield folder, manifest


def playlist_folder(root: Path, playlist: Playlist, fmt: str, template: str = DEFAULT_TEMPLATE) -> Path:
    """The folder of ``playlist`` in ``fmt``: the one whose manifest has its id if its name
    still fits, else ``<name>`` or, when another playlist of the same name owns that,
    ``<name> (2)``..."""
    base = _base_folder(root, fmt, template)
    owned = list(_owned_folders(base))
    variants = {_fold(_folder_name(root, playlist.name, fmt, template, n)) for n in range(1, 100)}
    for folder, manifest in owned:  # keep a "(2)" once given, even if "<name>" frees up
        if manifest.get("playlist_id") == playlist.id and _fold(folder.name) in variants:
            return folder
    owners = {_fold(folder.name): manifest.get("playlist_id") for folder, manifest in owned}
    for n in range(1, 1000):
        name = _folder_name(root, playlist.name, fmt, template, n)
        owner = owners.get(_fold(name), playlist.id)
        if owner == playlist.id:
            return base / name
    raise TrackError(f"Too many playlists named {playlist.name!r} in {base}.")


# -- links -------------------------------------------------------------------------------


def _stat_sig(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _is_ours(path: Path, record: dict) -> bool:
    """Whether ``path`` is still the link/copy we made (not a user's replacement)."""
    try:
        if record.get("mode") == "symlink":
            return path.is_symlink() and os.readlink(path) == record.get("link")
        if path.is_symlink() or not path.is_file():
            return False
        target = Path(record.get("target", ""))
        if record.get("mode") == "hardlink":
            # Our link keeps its own inode when the library file is rewritten (atomically, as
            # a new inode): judge by the inode recorded at creation, staleness apart.
            if record.get("inode") is not None:
                return path.stat().st_ino == record["inode"]
            return target.exists() and path.samefile(target)
        return _stat_sig(path) == record.get("sig")
    except OSError:
        return False


def _up_to_date(path: Path, record: dict, target: Path, mode: str) -> bool:
    if record.get("mode") != mode or record.get("target") != str(target) or not _is_ours(path, record):
        return False
    if mode == "copy":  # a re-tagged or re-encoded library file makes the copy stale
        return record.get("source_sig") == _stat_sig(target)
    if mode == "hardlink":  # the library file was rewritten: the link holds the old audio
        return target.exists() and path.samefile(target)
    return True


def _make(target: Path, dest: Path, mode: str) -> dict:
    """Create ``dest`` for ``target`` atomically (temporary name, then rename over)."""
    record: dict = {"target": str(target), "mode": mode}
    if mode == "copy":
        copy_atomic(target, dest)
        record.update(sig=_stat_sig(dest), source_sig=_stat_sig(target))
        return record
    try:
        with atomic_target(dest) as tmp, disk_errors(dest):
            if mode == "symlink":
                link = os.path.relpath(target.absolute(), dest.parent.absolute())
                os.symlink(link, tmp)
                record["link"] = link
            else:
                os.link(target, tmp)
                record["inode"] = os.stat(tmp).st_ino
    except OSError as err:
        if err.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise TrackError(
                f"Cannot create a {mode} in {dest.parent}: {err.strerror}.",
                hint="The volume does not support it (exFAT/FAT have no links; hardlinks need one "
                     "volume); set the playlist mode to 'copy'.",
            ) from err
        raise
    return record


def _remove(path: Path, record: dict, folder: Path) -> bool:
    """Unlink ``path`` if it is still ours and in ``folder``; True if it is gone."""
    if path.parent != folder:
        return False
    if not os.path.lexists(path):
        return True
    if not _is_ours(path, record):
        return False  # the user replaced it: theirs now, left alone
    with disk_errors(path):
        path.unlink()
    return True


def _files_in(folder: Path) -> dict[str, str]:
    return {_fold(p.name): p.name for p in folder.iterdir()} if folder.is_dir() else {}


# -- sync --------------------------------------------------------------------------------


def sync_folder(root: Path, playlist: Playlist, fmt: str, mode: str = "symlink",
                template: str = DEFAULT_TEMPLATE) -> SyncReport:
    """Make ``<root>/<fmt>/Playlists/<name>/`` hold exactly the playlist's tracks that have
    a ``fmt`` file, creating missing entries and removing those this function made for
    tracks that left. A track already linked keeps its name, so a "(2)" given because of
    a clash does not move when the other track leaves."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    root = Path(root)
    _, file_template = _split_template(template)
    folder = playlist_folder(root, playlist, fmt, template)
    report = SyncReport(folder=folder)
    base = folder.parent
    # A renamed playlist: its old folder (same id, other name) is emptied of our entries.
    for old, manifest in list(_owned_folders(base)):
        if old != folder and manifest.get("playlist_id") == playlist.id:
            _remove_owned(old, manifest, report)

    manifest = _load_manifest(folder) or {}
    entries: dict[str, dict] = dict(manifest.get("entries") or {}) \
        if manifest.get("playlist_id") in (None, playlist.id) else {}

    # Each link's name: what the library's path limit leaves after the folder.
    room = MAX_RELATIVE_CHARS - path_chars(folder.relative_to(root).as_posix()) - 1
    wanted: dict[str, tuple[Path, str]] = {}  # key -> (library file, desired stem)
    for index, track in enumerate(playlist.tracks):
        path = track.files.get(fmt)
        if track.key in wanted or path is None or not Path(path).is_file():
            continue
        suffix = Path(path).suffix.lower()
        stem = _stem(file_template, playlist, track, index, room - path_chars(suffix),
                     MAX_COMPONENT_BYTES - len(suffix.encode()))
        wanted[track.key] = (Path(path), stem)

    # 1. Entries of tracks that left (or were renamed, or whose file moved) go first, so
    #    their names are free for the tracks that stay.
    for key, record in list(entries.items()):
        path = folder / record.get("name", "")
        keep = key in wanted and record.get("stem") == wanted[key][1] and _is_ours(path, record)
        if not keep:
            existed = os.path.lexists(path)
            if _remove(path, record, folder) and existed:
                report.removed.append(path)
            del entries[key]

    # 2. Names for new entries, avoiding kept entries and every other file in the folder.
    with disk_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    taken = _files_in(folder)
    plan: list[tuple[str, Path, Path, str]] = []
    for key, (target, stem) in wanted.items():
        if key in entries:
            continue
        suffix = target.suffix.lower()
        n = 1
        while _fold(_name(stem, n, suffix, room)) in taken:
            n += 1
        name = _name(stem, n, suffix, room)
        taken[_fold(name)] = name
        plan.append((key, target, folder / name, stem))
        # Recorded before creating: a crash leaves an entry the next run re-creates,
        # never a file the next run would take for the user's.
        entries[key] = {"name": name, "stem": stem, "target": str(target), "mode": mode}
    _save_manifest(folder, _manifest(playlist, fmt, mode, entries, manifest.get("m3u8")))

    # 3. Create or refresh.
    new_keys = {planned[0] for planned in plan}
    for key, (target, _) in wanted.items():
        record = entries[key]
        path = folder / record["name"]
        if key in new_keys or not _up_to_date(path, record, target, mode):
            new = _make(target, path, mode)
            entries[key] = {**new, "name": record["name"], "stem": record["stem"]}
            report.added.append(path)
        else:
            report.kept.append(path)
    _save_manifest(folder, _manifest(playlist, fmt, mode, entries, manifest.get("m3u8")))
    return report


def _manifest(playlist: Playlist, fmt: str, mode: str, entries: dict, m3u8: str | None) -> dict:
    return {"version": _MANIFEST_VERSION, "playlist_id": playlist.id, "name": playlist.name,
            "format": fmt, "mode": mode, "entries": entries, "m3u8": m3u8}


def _remove_owned(folder: Path, manifest: dict, report: SyncReport) -> None:
    """Remove what ``manifest`` lists (if still ours), its m3u8, the manifest, and the
    folder if nothing else is left in it."""
    for record in (manifest.get("entries") or {}).values():
        path = folder / record.get("name", "")
        if record.get("name") and _remove(path, record, folder):
            report.removed.append(path)
    if manifest.get("m3u8"):
        m3u8 = Path(os.path.normpath(folder / manifest["m3u8"]))
        with contextlib.suppress(FileNotFoundError):
            m3u8.unlink()
            report.removed.append(m3u8)
    with contextlib.suppress(FileNotFoundError):
        (folder / MANIFEST_NAME).unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()  # only succeeds when empty: user files keep their folder


def remove_playlist(root: Path, playlist: Playlist | str, fmt: str,
                    template: str = DEFAULT_TEMPLATE) -> SyncReport:
    """A playlist deleted upstream: remove only what its manifest lists, its m3u8, then the
    folder if empty. ``playlist`` is a Playlist, an id, or a folder name."""
    base = _base_folder(root, fmt, template)
    report = SyncReport()
    ident = playlist.id if isinstance(playlist, Playlist) else str(playlist)
    name = _folder_name(root, playlist.name if isinstance(playlist, Playlist) else str(playlist), fmt, template)
    owned = list(_owned_folders(base))
    matches = [(f, m) for f, m in owned if m.get("playlist_id") == ident] or \
        [(f, m) for f, m in owned if _fold(f.name) == _fold(name)]
    for folder, manifest in matches:
        report.folder = folder
        _remove_owned(folder, manifest, report)
    return report


def export_all(root: Path, playlists: Iterable[Playlist], formats: Iterable[str], mode: str = "symlink",
               template: str = DEFAULT_TEMPLATE, *, prune: bool = False) -> list[SyncReport]:
    """Sync every playlist's folder and m3u8 in every format.

    The m3u8 goes to ``<root>/Playlists/<folder name> (<fmt>).m3u8`` and lists the library
    files themselves (not the folder's links), so it works whichever mode is used. With
    ``prune``, playlists that have a folder but are not in ``playlists`` are removed as
    deleted upstream: pass it only with the complete list.
    """
    root = Path(root)
    playlists = list(playlists)
    with exclusive(root):  # two exports at once would choose the same new names and lose manifest updates
        return _export_all(root, playlists, formats, mode, template, prune)


def _export_all(root: Path, playlists: list[Playlist], formats: Iterable[str], mode: str, template: str,
                prune: bool) -> list[SyncReport]:
    reports = []
    for fmt in formats:
        for playlist in playlists:
            report = sync_folder(root, playlist, fmt, mode, template)
            assert report.folder is not None
            report.m3u8 = write_m3u8(playlist, fmt, m3u8_path(root, report.folder.name, fmt))
            manifest = _load_manifest(report.folder) or _manifest(playlist, fmt, mode, {}, None)
            # Relative to the folder, so a moved library keeps its bookkeeping.
            relative = os.path.relpath(report.m3u8, report.folder)
            if manifest.get("m3u8") != relative:
                if manifest.get("m3u8"):  # renamed: the old m3u8 is ours to remove
                    with contextlib.suppress(FileNotFoundError):
                        Path(os.path.normpath(report.folder / manifest["m3u8"])).unlink()
                manifest["m3u8"] = relative
                _save_manifest(report.folder, manifest)
            reports.append(report)
        if prune:
            ids = {playlist.id for playlist in playlists}
            for folder, manifest in list(_owned_folders(_base_folder(root, fmt, template))):
                if manifest.get("playlist_id") not in ids:
                    report = SyncReport(folder=folder)
                    _remove_owned(folder, manifest, report)
                    reports.append(report)
    return reports

