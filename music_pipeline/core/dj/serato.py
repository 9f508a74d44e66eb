"""Serato's beat grid and cues, written into the audio files themselves.

Serato DJ keeps no grid or cue in its library for a file it reads: it reads them from the
file's tags, so that is where an export has to put them. The frames follow the published
reverse engineering (Holzhaus' serato-tags, ``docs/*.md`` and the frames Serato itself wrote
under ``data/``), with Mixxx's writers (``src/track/serato/*.cpp``) and serato-tools where
the documentation is silent:

- ``Serato BeatGrid``: ``01 00``, marker count, a non-terminal marker (position s float32,
  beats to the next marker uint32) per segment but the last, a terminal one (position,
  BPM float32), a footer byte.
- ``Serato Markers2``: ``01 01`` then base64 of ``01 01`` + named entries (COLOR, CUE,
  BPMLOCK) + NUL, in lines of 72 characters, NUL-padded to Serato's 470 bytes.
- ``Serato Markers_``: the old fixed table (5 cues, 9 loops, track colour). Serato prefers
  it over Markers2 when present, so it is rewritten to agree with the cues, as Mixxx does
  (serato-tools deletes it instead; serato-tags documents it, and for MP4 says Serato
  reads the first 5 cues only from it).
- ``Serato Autotags``: ``01 01`` then "bpm", "auto gain", "gain dB" as NUL-terminated ASCII.

AIFF and WAV carry them as ID3 GEOB frames; MP4 (ALAC ``.m4a``) as freeform
``----:com.serato.dj:*`` atoms holding base64 of ``application/octet-stream\\0\\0<name>\\0``
+ the frame.
"""

from __future__ import annotations

import base64
import binascii
import math
import shutil
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from mutagen import MutagenError, aiff, id3, mp4, wave

from ..audio.beatgrid import Cue, Grid
from ..domain.errors import TrackError
from ..library.store import atomic_target, disk_errors

BEATGRID = "Serato BeatGrid"
MARKERS2 = "Serato Markers2"
MARKERS = "Serato Markers_"
AUTOTAGS = "Serato Autotags"

#: Where each frame goes in an MP4 file. The Autotags atom is "autgain" in every source
#: (serato-tags' fileformats.md, triseratops), not "autotags".
MP4_ATOMS = {
    BEATGRID: "----:com.serato.dj:beatgrid",
    MARKERS2: "----:com.serato.dj:markersv2",
    MARKERS: "----:com.serato.dj:markers",
    AUTOTAGS: "----:com.serato.dj:autgain",
}
_MP4_PREFIX = b"application/octet-stream\x00\x00"

HOT_CUES = 8  # Serato DJ Pro's hot cues, index 0..7
_MARKERS_CUES, _MARKERS_LOOPS = 5, 9  # the fixed table of Serato Markers_
NO_COLOUR = (0xFF, 0xFF, 0xFF)  # what Serato writes for a track without a colour
_MARKERS2_MIN = 470  # Serato pre-allocates Markers2 (ID3) to this size
_MARKERS2_MIN_MP4 = 514  # ... and its MP4 body to this one (every MP4 frame in serato-tags' data/)
_LINE = 54  # raw bytes per 72-character base64 line

Colour = tuple[int, int, int]


# -- Encoders ------------------------------------------------------------------------------

def beatgrid_frame(grid: Grid) -> bytes:
    """``Serato BeatGrid``: one marker per segment, each on its segment's first downbeat.

    Serato takes every grid marker for the start of a bar (its first marker is "bar 1",
    bars count on from each), so a segment whose first beat is not a downbeat gets its
    marker on the first downbeat inside it; beats before it follow the same tempo.
    """
    positions = [grid.marker_s(i) for i in range(len(grid.segments))]
    data = struct.pack(">BBI", 1, 0, len(positions))
    for i, (segment, position) in enumerate(zip(grid.segments, positions, strict=True)):
        if i < len(positions) - 1:
            beats = max(1, round((positions[i + 1] - position) * segment.bpm / 60.0))
            data += struct.pack(">fI", position, beats)
        else:
            data += struct.pack(">ff", position, segment.bpm)
    return data + b"\x00"  # the footer: its meaning is unknown, Mixxx writes 0


def autotags_frame(bpm: float, auto_gain: float = 0.0, gain_db: float = 0.0) -> bytes:
    """``Serato Autotags``: BPM with two decimals, the gains with three (as Serato writes)."""
    values = (f"{bpm:.2f}", f"{auto_gain:.3f}", f"{gain_db:.3f}")
    return b"\x01\x01" + b"".join(v.encode("ascii") + b"\x00" for v in values)


def hot_cues(cues: Sequence[Cue]) -> dict[int, Cue]:
    """The cues Serato can hold, by index: hot cues 0-7, the first of each number.
    Serato has no memory cue (``number`` -1), so those stay out."""
    out: dict[int, Cue] = {}
    for cue in cues:
        if 0 <= cue.number < HOT_CUES and cue.number not in out:
            out[cue.number] = cue
    return out


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def markers2_payload(cues: Sequence[Cue], *, bpm_locked: bool, colour: Colour = NO_COLOUR) -> bytes:
    """The decoded content of ``Serato Markers2``: ``01 01``, COLOR, the CUEs, BPMLOCK, NUL."""

    def entry(name: str, data: bytes) -> bytes:
        return name.encode("ascii") + b"\x00" + struct.pack(">I", len(data)) + data

    out = b"\x01\x01" + entry("COLOR", bytes((0, *colour)))
    for index, cue in sorted(hot_cues(cues).items()):
        name = cue.name.replace("\x00", "").encode("utf-8")  # a NUL would end the name early
        out += entry("CUE", struct.pack(">BBIB3BBB", 0, index, _ms(cue.start_s), 0, *cue.colour, 0, 0)
                     + name + b"\x00")
    return out + entry("BPMLOCK", bytes((1 if bpm_locked else 0,))) + b"\x00"


def markers2_frame(cues: Sequence[Cue], *, bpm_locked: bool, colour: Colour = NO_COLOUR,
                   minimum: int = _MARKERS2_MIN) -> bytes:
    """``Serato Markers2`` as the ID3 frame (and the MP4 envelope's body) holds it."""
    body = b"\x01\x01" + _base64(markers2_payload(cues, bpm_locked=bpm_locked, colour=colour), chop=True)
    return body.ljust(max(minimum, len(body) + 1), b"\x00")  # always at least one NUL after the text


def _serato32(value: int) -> bytes:
    """A 24-bit value in Serato's 4-byte form: 7 payload bits a byte (serato-tags,
    serato_markers_.md)."""
    a, b, c = (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF
    return bytes((a >> 5, ((b >> 6) | (a << 2)) & 0x7F, ((c >> 7) | (b << 1)) & 0x7F, c & 0x7F))


def _rgb(colour: Colour) -> int:
    return (colour[0] << 16) | (colour[1] << 8) | colour[2]


def markers_frame(cues: Sequence[Cue], colour: Colour = NO_COLOUR) -> bytes:
    """``Serato Markers_`` (ID3): the first 5 hot cues, 9 unset loops, the track colour.

    Entries of 22 bytes as Serato writes them: a set cue is ``00`` + position ms (serato32),
    ``7f`` + ``7f7f7f7f`` (no end), ``00 7f7f7f7f7f``, colour (serato32), type 1, unlocked;
    an unset one is all ``7f`` with colour 0 and type 0 (a loop keeps type 3).
    """
    table = hot_cues(cues)
    unset = b"\x7f" + b"\x7f" * 4 + b"\x7f" + b"\x7f" * 4 + b"\x00" + b"\x7f" * 5 + b"\x00" * 4
    data = b"\x02\x05" + struct.pack(">I", _MARKERS_CUES + _MARKERS_LOOPS)
    for index in range(_MARKERS_CUES):
        cue = table.get(index)
        if cue is None:
            data += unset + b"\x00\x00"
        else:
            data += (b"\x00" + _serato32(_ms(cue.start_s)) + b"\x7f" + b"\x7f" * 4 + b"\x00" + b"\x7f" * 5
                     + _serato32(_rgb(cue.colour)) + b"\x01\x00")
    data += (unset + b"\x03\x00") * _MARKERS_LOOPS
    return data + _serato32(_rgb(colour))


def markers_frame_mp4(cues: Sequence[Cue], colour: Colour = NO_COLOUR) -> bytes:
    """``Serato Markers_`` as MP4 holds it (inside the envelope): 19-byte entries with plain
    uint32 positions (``ffffffff`` unset), ``00 ffffffff 00``, RGB, type, locked; then ``00``
    + RGB track colour (serato-tags' data/mp4-decoded, Mixxx's ``dumpMP4``)."""
    table = hot_cues(cues)
    none = b"\xff" * 4
    magic = b"\x00" + none + b"\x00"
    data = b"\x02\x05" + struct.pack(">I", _MARKERS_CUES + _MARKERS_LOOPS)
    for index in range(_MARKERS_CUES):
        cue = table.get(index)
        if cue is None:
            data += none + none + magic + b"\x00" * 3 + b"\x00\x00"
        else:
            data += struct.pack(">I", _ms(cue.start_s)) + none + magic + bytes(cue.colour) + b"\x01\x00"
    data += (none + none + magic + b"\x00" * 3 + b"\x03\x00") * _MARKERS_LOOPS
    return data + b"\x00" + bytes(colour)


def _base64(data: bytes, *, chop: bool) -> bytes:
    """Base64 as Serato writes it: no ``=``, a line feed after every 72 characters and,
    where the last group would need padding, its last character dropped (Mixxx's
    ``base64encode``; it reproduces Serato's own frames in serato-tags' data/)."""
    lines = []
    for start in range(0, len(data), _LINE):
        block = data[start:start + _LINE]
        text = base64.b64encode(block).rstrip(b"=")
        lines.append(text[:-1] if chop and len(block) % 3 else text)
    return b"\n".join(lines)


def mp4_value(name: str, frame: bytes) -> bytes:
    """A frame as its MP4 atom holds it: base64 of the envelope and the frame.

    Serato encodes one byte more than the frame and drops the padded group's last
    character, as in its Markers2 text. That byte is NUL in its Markers_ and Markers2
    atoms, which this reproduces byte for byte (serato-tags' data/mp4), and varies in its
    BeatGrid and Autotags ones (left to chance, it seems); ours is always NUL (Mixxx's 'A').
    """
    return _base64(_MP4_PREFIX + name.encode("ascii") + b"\x00" + frame + b"\x00", chop=True)


# -- What is in a file already ---------------------------------------------------------------

def _markers2_state(frame: bytes | None) -> tuple[Colour | None, bool | None]:
    """The track colour and BPM lock of an existing Markers2 (ID3 form), to keep the
    user's: a re-export owns the cues, not the colour Serato's user picked."""
    if not frame or not frame.startswith(b"\x01\x01"):
        return None, None
    text = frame[2:].split(b"\x00", 1)[0].replace(b"\n", b"")
    text += b"A" if len(text) % 4 == 1 else b""  # Serato's chopped last group
    try:
        payload = base64.b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None, None
    colour, locked, at = None, None, 2
    while (end := payload.find(b"\x00", at)) > at and end + 5 <= len(payload):
        name = payload[at:end]
        size = struct.unpack(">I", payload[end + 1:end + 5])[0]
        data = payload[end + 5:end + 5 + size]
        if name == b"COLOR" and len(data) == 4:
            colour = (data[1], data[2], data[3])
        elif name == b"BPMLOCK" and len(data) == 1:
            locked = bool(data[0])
        at = end + 5 + size
    return colour, locked


def _autotags_gains(frame: bytes | None) -> tuple[float, float]:
    """Auto gain and gain dB of an existing Autotags (Serato measured them; keep them)."""
    try:
        values = (frame or b"")[2:].split(b"\x00")
        gains = float(values[1]), float(values[2])
    except (ValueError, IndexError):
        return 0.0, 0.0
    return gains if all(math.isfinite(g) for g in gains) else (0.0, 0.0)


def _mp4_frame(value: bytes | None, name: str) -> bytes | None:
    """The frame inside an MP4 atom's envelope, or None if it is not one."""
    if not value:
        return None
    text = value.replace(b"\n", b"")
    text = text[:-1] if len(text) % 4 == 1 else text
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    head = _MP4_PREFIX + name.encode("ascii") + b"\x00"
    return data[len(head):] if data.startswith(head) else None


def frames(grid: Grid | None, cues: Sequence[Cue], existing: Callable[[str], bytes | None],
           *, mp4_form: bool = False) -> dict[str, bytes]:
    """The frames to store, by name; ``existing(name)`` gives a frame already in the file.

    Without a grid there is no BeatGrid nor Autotags to write, and the BPM lock stays as
    the file has it (the user's grid in Serato is theirs); with one the grid is locked so
    Serato keeps it instead of re-analysing.
    """
    colour, locked = _markers2_state(existing(MARKERS2))
    colour = colour or NO_COLOUR
    out: dict[str, bytes] = {}
    if grid is not None:
        out[BEATGRID] = beatgrid_frame(grid)
        out[AUTOTAGS] = autotags_frame(grid.bpm, *_autotags_gains(existing(AUTOTAGS)))
    bpm_locked = True if grid is not None else bool(locked)
    out[MARKERS2] = markers2_frame(cues, bpm_locked=bpm_locked, colour=colour,
                                   minimum=_MARKERS2_MIN_MP4 if mp4_form else _MARKERS2_MIN)
    out[MARKERS] = markers_frame_mp4(cues, colour) if mp4_form else markers_frame(cues, colour)
    return out


# -- Writing ------------------------------------------------------------------------------

def present(path: Path) -> bool:
    """The file already holds a Serato grid or cues (ours, or the DJ's from Serato)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".m4a", ".mp4"):
            tags = mp4.MP4(path).tags
            return tags is not None and any(MP4_ATOMS[name] in tags for name in (BEATGRID, MARKERS2))
        tags = (wave.WAVE if path.suffix.lower() == ".wav" else aiff.AIFF)(path).tags
        return tags is not None and any(f"GEOB:{name}" in tags for name in (BEATGRID, MARKERS2))
    except MutagenError:
        return False


def write(path: Path, grid: Grid | None, cues: Sequence[Cue], *, atomic: bool = True) -> bool:
    """Store Serato's frames for ``grid`` and ``cues`` in ``path`` (AIFF, WAV with ID3, M4A).

    Atomic: a copy beside the file is changed and renamed over it, so a crash leaves the
    old file whole. Returns False, having written nothing, when the file already holds
    exactly these frames (a re-export with nothing changed leaves it, and its mtime,
    alone) or when it is a WAV without ID3 (adding a chunk is not ours to do). Every
    other tag and the audio stay as they are. ``atomic=False`` changes ``path`` in place, for
    a file that is itself still a temporary one (the pipeline's tagging step).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".m4a", ".mp4", ".aif", ".aiff", ".aifc", ".wav"):
        raise ValueError(f"Serato frames cannot go into a {suffix or 'suffix-less'} file: {path.name}")
    try:
        if suffix in (".m4a", ".mp4"):
            return _write_mp4(path, grid, cues, atomic)
        return _write_id3(path, aiff.AIFF if suffix != ".wav" else wave.WAVE, grid, cues, atomic)
    except MutagenError as err:
        # mutagen wraps the OSError of a full disk or a read-only folder: say that as the store does
        cause = next((a for a in (err.__context__, *err.args) if isinstance(a, OSError)), None)
        if cause is not None:
            with disk_errors(path):
                raise cause from err
        raise TrackError(f"Could not write Serato's cues into {path.name}: {err}") from err


def _write_id3(path: Path, kind: type, grid: Grid | None, cues: Sequence[Cue], atomic: bool = True) -> bool:
    tags = kind(path).tags
    if tags is None and kind is wave.WAVE:
        return False

    def existing(name: str) -> bytes | None:
        frame = tags.get(f"GEOB:{name}") if tags is not None else None
        return bytes(frame.data) if frame is not None else None

    wanted = frames(grid, cues, existing)
    if all(existing(name) == data for name, data in wanted.items()):
        return False

    def change(tmp: Path) -> None:
        audio = kind(tmp)
        if audio.tags is None:
            audio.add_tags()
        for name, data in wanted.items():
            audio.tags.setall(f"GEOB:{name}", [id3.GEOB(encoding=0, mime="application/octet-stream",
                                                         filename="", desc=name, data=data)])
        audio.save(v2_version=4)  # as tagging.py writes them; Serato reads ID3v2.4

    _atomically(path, change) if atomic else change(path)
    return True


def _write_mp4(path: Path, grid: Grid | None, cues: Sequence[Cue], atomic: bool = True) -> bool:
    tags = mp4.MP4(path).tags

    def atom(name: str) -> bytes | None:
        values = tags.get(MP4_ATOMS[name]) if tags is not None else None
        return bytes(values[0]) if values else None

    wanted = {name: mp4_value(name, frame) for name, frame in
              frames(grid, cues, lambda name: _mp4_frame(atom(name), name), mp4_form=True).items()}
    if all(atom(name) == value for name, value in wanted.items()):
        return False

    def change(tmp: Path) -> None:
        audio = mp4.MP4(tmp)
        if audio.tags is None:
            audio.add_tags()
        for name, value in wanted.items():
            audio.tags[MP4_ATOMS[name]] = [mp4.MP4FreeForm(value)]  # UTF-8 text, as Serato and Mixxx write
        audio.save()

    _atomically(path, change) if atomic else change(path)
    return True


def _atomically(path: Path, change: Callable[[Path], None]) -> None:
    """Run ``change`` on a copy of ``path`` beside it, then rename the copy over it."""
    with atomic_target(path) as tmp, disk_errors(path):
        shutil.copyfile(path, tmp)
        shutil.copymode(path, tmp)  # the file keeps its permissions
        change(tmp)
