"""The library as a Traktor NML file (``NML VERSION="19"``), the format Traktor imports through
File > Import Another Collection (or a playlist's Import).

Shapes follow Traktor's own collection.nml files (Traktor Pro 3 and 4): ``LOCATION`` split into
``VOLUME``/``DIR``/``FILE``, ``INFO`` with the bitrate in bits/s, the file size in KiB, the
length in whole seconds rounded up beside the exact ``PLAYTIME_FLOAT``, dates as ``YYYY/M/D``,
floats with six decimals, ``MUSICAL_KEY`` 0-11 for C..B major and 12-23 for C..B minor, grid
markers as ``CUE_V2 TYPE="4"`` (each with its tempo in ``GRID BPM``, as Traktor 4 writes them),
cues as ``TYPE="0"`` with ``HOTCUE`` -1 (memory) or 0-7, all times in milliseconds, and playlists
naming tracks by ``PRIMARYKEY`` (``VOLUME + DIR + FILE``). Each entry is locked (``LOCK="1"``)
so Traktor keeps our grid instead of analysing over it. :func:`render` is pure: the same
library gives the same bytes (no clock, no random UUID).
"""

from __future__ import annotations

import math
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date

from ..audio.beatgrid import Cue, Grid
from ..domain.keys import Key
from . import _xml
from .locations import RootMap
from .model import DjLibrary, DjTrack
from .rekordbox import unique_keys

DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>'  # Traktor's, to the space
_PLAYLIST_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "music_pipeline/dj/traktor/playlist")
_NO_DATE = "2000-01-01"  # the stamp of a library whose tracks have no date at all


def musical_key(track: DjTrack) -> int | None:
    """Traktor's ``MUSICAL_KEY VALUE``: the tonic's pitch class, plus 12 for minor
    (C major 0, Bb major 10, F# minor 18, A minor 21); any spelling, enharmonics included."""
    text = track.key_name or track.key_short
    if not text:
        return None
    try:
        key = Key.parse(text)
    except ValueError:  # a key no notation reads is no key, not a failed export
        return None
    return key.tonic + (12 if key.minor else 0)


def _f6(value: float) -> str:
    return f"{value:.6f}"


def _slash_date(iso: str) -> str:
    """``2024-06-09`` as Traktor writes dates, ``2024/6/9``."""
    day = date.fromisoformat(iso[:10])
    return f"{day.year}/{day.month}/{day.day}"


def _grid_markers(parent: ET.Element, grid: Grid) -> None:
    """A grid marker per segment, on the segment's first downbeat: Traktor takes every marker
    for beat 1 of a bar, so a segment starting on beat 3 gets its marker two beats later (the
    grid still runs back from it). A segment too short to reach a downbeat keeps its marker on
    its first beat: its tempo matters more than its bar count until the next marker."""
    for index, segment in enumerate(grid.segments):
        start = grid.marker_s(index)
        marker = ET.SubElement(parent, "CUE_V2", {
            "NAME": "AutoGrid", "DISPL_ORDER": "0", "TYPE": "4", "START": _f6(start * 1000), "LEN": _f6(0),
            "REPEATS": "-1", "HOTCUE": "-1"})
        ET.SubElement(marker, "GRID", {"BPM": _f6(segment.bpm)})


def _cue(parent: ET.Element, cue: Cue) -> None:
    if not -1 <= cue.number <= 7:  # Traktor has eight hot cues, 0-7
        raise ValueError(f"cue {cue.name!r}: number {cue.number} is neither -1 (memory) nor a hot cue 0-7")
    ET.SubElement(parent, "CUE_V2", {
        "NAME": _xml.text(cue.name), "DISPL_ORDER": "0", "TYPE": "0", "START": _f6(cue.start_s * 1000),
        "LEN": _f6(0), "REPEATS": "-1", "HOTCUE": str(cue.number)})


def _entry(parent: ET.Element, track: DjTrack, roots: RootMap, stamp: str) -> None:
    date = _slash_date(stamp)
    # locked only over a grid of ours: a track without one is Traktor's to analyse
    lock = {"LOCK": "1", "LOCK_MODIFICATION_TIME": f"{stamp}T00:00:00"} if track.grid else {"LOCK": "0"}
    entry = ET.SubElement(parent, "ENTRY", {
        "MODIFIED_DATE": date, "MODIFIED_TIME": "0", **lock,
        "TITLE": _xml.text(track.title), "ARTIST": _xml.text(track.artist)})
    where = roots.traktor_location(track.path)
    ET.SubElement(entry, "LOCATION", {"DIR": _xml.text(where.dir), "FILE": _xml.text(where.file),
                                      "VOLUME": _xml.text(where.volume), "VOLUMEID": _xml.text(where.volume_id)})
    if track.album:
        ET.SubElement(entry, "ALBUM", {"TITLE": _xml.text(track.album)})
    ET.SubElement(entry, "MODIFICATION_INFO", {"AUTHOR_TYPE": "user"})

    info: dict[str, str] = {}
    if track.bitrate_kbps is not None:
        info["BITRATE"] = str(track.bitrate_kbps * 1000)
    if track.genre:
        info["GENRE"] = _xml.text(track.genre)
    if track.comment:
        info["COMMENT"] = _xml.text(track.comment)
    info |= {"PLAYTIME": str(max(1, math.ceil(track.duration_s))), "PLAYTIME_FLOAT": _f6(track.duration_s)}
    if track.date_added:
        info["IMPORT_DATE"] = _slash_date(track.date_added)
    info["FILESIZE"] = str((track.size_bytes + 512) // 1024)
    ET.SubElement(entry, "INFO", info)

    bpm = track.bpm if track.bpm is not None else (track.grid.bpm if track.grid else None)
    if bpm is not None:
        ET.SubElement(entry, "TEMPO", {"BPM": _f6(bpm), "BPM_QUALITY": _f6(100)})
    if (value := musical_key(track)) is not None:
        ET.SubElement(entry, "MUSICAL_KEY", {"VALUE": str(value)})
    if track.grid:
        _grid_markers(entry, track.grid)
    for cue in track.cues:
        _cue(entry, cue)


def render(library: DjLibrary, roots: RootMap) -> bytes:
    """The whole library, its tracks and its playlists (a folder per source), as Traktor NML."""
    keys = set(unique_keys(library))
    primary = {t.key: _xml.text(roots.traktor_location(t.path).primary_key) for t in library.tracks}
    # Traktor wants when the lock was set; the newest track's date stands for it, so the stamp
    # moves on as the library grows and never depends on when the export ran.
    stamp = max((t.date_added for t in library.tracks if t.date_added), default=_NO_DATE)

    root = ET.Element("NML", {"VERSION": "19"})
    ET.SubElement(root, "HEAD", {"COMPANY": "www.native-instruments.com", "PROGRAM": "Traktor"})
    ET.SubElement(root, "MUSICFOLDERS")
    collection = ET.SubElement(root, "COLLECTION", {"ENTRIES": str(len(library.tracks))})
    for track in library.tracks:
        _entry(collection, track, roots, stamp)
    ET.SubElement(root, "SETS", {"ENTRIES": "0"})

    playlists = ET.SubElement(root, "PLAYLISTS")
    top = ET.SubElement(playlists, "NODE", {"TYPE": "FOLDER", "NAME": "$ROOT"})
    folders = ET.SubElement(top, "SUBNODES", {"COUNT": str(len(library.folders))})
    seen: Counter[tuple[str, str]] = Counter()
    for folder in library.folders:
        folder_node = ET.SubElement(folders, "NODE", {"TYPE": "FOLDER", "NAME": _xml.text(folder.name)})
        lists = ET.SubElement(folder_node, "SUBNODES", {"COUNT": str(len(folder.playlists))})
        for playlist in folder.playlists:
            # The UUID names the playlist for good: from its folder, name and (for a second
            # playlist of the same name) its rank among them, never from random.
            rank = seen[folder.name, playlist.name]
            seen[folder.name, playlist.name] += 1
            playlist_id = uuid.uuid5(_PLAYLIST_IDS, f"{folder.name}\x00{playlist.name}\x00{rank}").hex
            members = [primary[key] for key in playlist.keys if key in keys]  # unknown keys: left out
            node = ET.SubElement(lists, "NODE", {"TYPE": "PLAYLIST", "NAME": _xml.text(playlist.name)})
            body = ET.SubElement(node, "PLAYLIST", {"ENTRIES": str(len(members)), "TYPE": "LIST",
                                                    "UUID": playlist_id})
            for key in members:
                ET.SubElement(ET.SubElement(body, "ENTRY"), "PRIMARYKEY", {"TYPE": "TRACK", "KEY": key})
    ET.SubElement(root, "INDEXING")
    return _xml.to_bytes(root, DECLARATION, short_empty=False)
