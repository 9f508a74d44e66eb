"""The library as a rekordbox XML file (``DJ_PLAYLISTS Version="1.0.0"``), the format rekordbox
imports through Preferences > Advanced > rekordbox xml.

Attribute names, units and spellings follow Pioneer's published list (xml_format_list.pdf, as
pyrekordbox documents it) and rekordbox's own exports: ``TotalTime`` in whole seconds,
``AverageBpm`` and ``Bpm`` to two decimals, ``Inizio``/``Start`` in seconds to three,
``BitRate`` in kbps, ``Tonality`` in classic notation ("F#m"), a ``TEMPO`` per grid segment with
the beat's place in its bar (``Battito``), a ``POSITION_MARK`` per cue (``Num`` -1 for the
memory cue, 0-7 for hot cues A-H, with the hot cue's colour), and playlists as ``NODE``\\ s keyed
by ``TrackID``. :func:`render` is pure: the same library gives the same bytes.
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from importlib import metadata

from ..audio.beatgrid import Cue, Grid
from ..domain.keys import Key
from . import _xml
from .locations import RootMap
from .model import DjLibrary, DjTrack

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'  # rekordbox's, double quotes and all

#: rekordbox's ``Kind`` for each file type the library can hold, as its English UI names it.
KINDS = {".aiff": "AIFF File", ".aif": "AIFF File", ".m4a": "M4A File", ".wav": "WAV File",
         ".mp3": "MP3 File", ".flac": "FLAC File"}

_ID_SPACE = 2**31 - 1  # rekordbox's ids are signed 32-bit; 0 is not an id


def _hash31(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big") % _ID_SPACE + 1


def track_ids(keys: Iterable[str], hash_: Callable[[str], int] = _hash31) -> dict[str, int]:
    """A ``TrackID`` for each track key: a hash of the key, so a track keeps its id from one
    export to the next (rekordbox matches a re-imported track by it), positive and unique here.

    Keys are taken in sorted order and a key whose id is taken hashes again with a counter, so
    who wins a collision depends on the keys alone, never on the order tracks came in.
    """
    ids: dict[str, int] = {}
    taken: set[int] = set()
    for key in sorted(set(keys)):
        attempt, track_id = 0, hash_(key)
        while track_id in taken:
            attempt += 1
            track_id = hash_(f"{key}\x00{attempt}")
        ids[key] = track_id
        taken.add(track_id)
    return ids


def unique_keys(library: DjLibrary) -> list[str]:
    """The tracks' keys, refusing a library where two tracks share one (one id, two files)."""
    counts = Counter(t.key for t in library.tracks)
    if shared := sorted(k for k, n in counts.items() if n > 1):
        raise ValueError("tracks share a key: " + ", ".join(shared))
    return list(counts)


def kind(track: DjTrack) -> str:
    suffix = track.path.suffix.lower()
    return KINDS.get(suffix, f"{suffix.lstrip('.').upper()} File")


def tonality(track: DjTrack) -> str:
    """Classic notation ("Am", "F#m", "C"), as rekordbox writes its own keys."""
    if track.key_short:
        return track.key_short
    try:
        return Key.parse(track.key_name).short if track.key_name else ""
    except ValueError:  # a key no notation reads is no key, not a failed export
        return ""


def _bpm(track: DjTrack) -> float | None:
    return track.bpm if track.bpm is not None else (track.grid.bpm if track.grid else None)


def _tempos(parent: ET.Element, grid: Grid) -> None:
    """One ``TEMPO`` per segment: where its first beat falls, its tempo, and that beat's place
    in the bar; rekordbox runs each tempo until the next ``TEMPO``, as in its own exports."""
    metro = f"{grid.beats_per_bar}/4"
    for segment in grid.segments:
        ET.SubElement(parent, "TEMPO", {"Inizio": f"{segment.start_s:.3f}", "Bpm": f"{segment.bpm:.2f}",
                                        "Metro": metro, "Battito": str(segment.beat)})


def _position_mark(parent: ET.Element, cue: Cue) -> None:
    if not -1 <= cue.number <= 7:
        raise ValueError(f"cue {cue.name!r}: number {cue.number} is neither -1 (memory) nor a hot cue 0-7")
    attrib = {"Name": _xml.text(cue.name), "Type": "0", "Start": f"{cue.start_s:.3f}", "Num": str(cue.number)}
    if cue.number >= 0:  # rekordbox gives hot cues their colour; memory cues carry none in its XML
        red, green, blue = cue.colour
        attrib |= {"Red": str(red), "Green": str(green), "Blue": str(blue)}
    ET.SubElement(parent, "POSITION_MARK", attrib)


def _track(parent: ET.Element, track: DjTrack, track_id: int, roots: RootMap) -> None:
    bpm = _bpm(track)
    attrib = {
        "TrackID": str(track_id),
        "Name": _xml.text(track.title),
        "Artist": _xml.text(track.artist),
        "Album": _xml.text(track.album),
        "Genre": _xml.text(track.genre),
        "Kind": kind(track),
        "Size": str(track.size_bytes),
        "TotalTime": str(max(1, math.floor(track.duration_s))),  # whole seconds, never 0
        "AverageBpm": f"{bpm:.2f}" if bpm is not None else "0.00",  # rekordbox's "not analysed"
    }
    if track.date_added:
        attrib["DateAdded"] = track.date_added
    if track.bitrate_kbps is not None:
        attrib["BitRate"] = str(track.bitrate_kbps)
    if track.sample_rate is not None:
        attrib["SampleRate"] = str(track.sample_rate)
    attrib |= {"Comments": _xml.text(track.comment), "Location": roots.location_url(track.path),
               "Tonality": tonality(track)}
    element = ET.SubElement(parent, "TRACK", attrib)
    if track.grid:
        _tempos(element, track.grid)
    for cue in track.cues:
        _position_mark(element, cue)


def _version() -> str:
    try:
        return metadata.version("music_pipeline")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0"


def render(library: DjLibrary, roots: RootMap) -> bytes:
    """The whole library, its tracks and its playlists (a folder per source), as rekordbox XML."""
    ids = track_ids(unique_keys(library))

    root = ET.Element("DJ_PLAYLISTS", {"Version": "1.0.0"})
    ET.SubElement(root, "PRODUCT", {"Name": "music_pipeline", "Version": _version(), "Company": ""})
    collection = ET.SubElement(root, "COLLECTION", {"Entries": str(len(library.tracks))})
    for track in library.tracks:
        _track(collection, track, ids[track.key], roots)

    playlists = ET.SubElement(root, "PLAYLISTS")
    top = ET.SubElement(playlists, "NODE", {"Type": "0", "Name": "ROOT", "Count": str(len(library.folders))})
    for folder in library.folders:
        folder_node = ET.SubElement(top, "NODE", {"Name": _xml.text(folder.name), "Type": "0",
                                                  "Count": str(len(folder.playlists))})
        for playlist in folder.playlists:
            # A key with no track in this export names nothing rekordbox could show: left out.
            members = [ids[key] for key in playlist.keys if key in ids]
            node = ET.SubElement(folder_node, "NODE", {"Name": _xml.text(playlist.name), "Type": "1",
                                                       "KeyType": "0", "Entries": str(len(members))})
            for track_id in members:
                ET.SubElement(node, "TRACK", {"Key": str(track_id)})
    return _xml.to_bytes(root, DECLARATION)
