"""Tags in every output, written and read back with mutagen.

Where each field goes follows what DJ software reads: BPM in ID3 ``TBPM`` / MP4 ``tmpo``;
key in ID3 ``TKEY`` / MP4 ``----:com.apple.iTunes:initialkey``; ISRC in ID3 ``TSRC`` /
MP4 ``----:com.apple.iTunes:ISRC``; the source page in ID3 ``WOAS`` / an MP4 freeform
``SOURCE_URL``; cover art as ID3 ``APIC`` (front cover) / MP4 ``covr``. AIFF and WAV carry
ID3v2.4 chunks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mutagen import aiff, id3, mp4, wave

from ..domain.errors import TrackError
from ..domain.identity import normalise_isrc

FREEFORM = "----:com.apple.iTunes:"


@dataclass(frozen=True)
class Tags:
    title: str
    artist: str
    album: str | None = None
    bpm: float | None = None
    key: str | None = None  # already in the notation the user chose ("F#m", "11A", ...)
    isrc: str | None = None
    source_url: str | None = None
    cover: bytes | None = None  # JPEG or PNG bytes
    comment: str | None = None
    replaygain_gain_db: float | None = None  # ReplayGain 2.0 track gain
    replaygain_peak: float | None = None  # linear true peak


def _cover_mime(data: bytes) -> str:
    return "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"


def write_tags(path: Path, fmt: str, tags: Tags) -> None:
    """Replace the tags of ``path`` (ALAC/AIFF/WAV) with ``tags``."""
    try:
        if fmt == "ALAC":
            _write_mp4(path, tags)
        elif fmt in ("AIFF", "WAV"):
            _write_id3(path, fmt, tags)
        else:
            raise ValueError(f"unknown format {fmt}")
    except (mp4.MP4StreamInfoError, id3.error, OSError) as err:
        if isinstance(err, OSError):
            raise
        raise TrackError(f"Could not write tags into {Path(path).name}: {err}") from err


#: Tags of DJ software kept when the pipeline rewrites a file's tags: Serato's grid and the
#: cues a DJ set in it (ID3 GEOB frames described "Serato ...", MP4 atoms of com.serato.dj).
SERATO_MP4 = "----:com.serato.dj:"
SERATO_GEOB = "Serato "


def _write_mp4(path: Path, tags: Tags) -> None:
    audio = mp4.MP4(path)
    kept = {k: v for k, v in (audio.tags or {}).items() if k.startswith(SERATO_MP4)}
    audio.delete()
    audio = mp4.MP4(path)
    if audio.tags is None:
        audio.add_tags()
    t = audio.tags
    t["\xa9nam"] = [tags.title]
    t["\xa9ART"] = [tags.artist]
    if tags.album:
        t["\xa9alb"] = [tags.album]
    if tags.bpm:
        t["tmpo"] = [int(round(tags.bpm))]
    if tags.key:
        t[FREEFORM + "initialkey"] = [mp4.MP4FreeForm(tags.key.encode())]
    if tags.isrc:
        t[FREEFORM + "ISRC"] = [mp4.MP4FreeForm(tags.isrc.encode())]
    if tags.source_url:
        t[FREEFORM + "SOURCE_URL"] = [mp4.MP4FreeForm(tags.source_url.encode())]
    if tags.comment:
        t["\xa9cmt"] = [tags.comment]
    for name, value in _replaygain(tags).items():  # lower case, as foobar2000 and Picard write them
        t[FREEFORM + name.lower()] = [mp4.MP4FreeForm(value.encode())]
    if tags.cover:
        kind = mp4.MP4Cover.FORMAT_PNG if _cover_mime(tags.cover) == "image/png" else mp4.MP4Cover.FORMAT_JPEG
        t["covr"] = [mp4.MP4Cover(tags.cover, imageformat=kind)]
    t.update(kept)
    audio.save()


def _write_id3(path: Path, fmt: str, tags: Tags) -> None:
    audio = (aiff.AIFF if fmt == "AIFF" else wave.WAVE)(path)
    kept = [f for f in audio.tags.getall("GEOB") if f.desc.startswith(SERATO_GEOB)] if audio.tags is not None else []
    if audio.tags is not None:
        audio.delete()
        audio = (aiff.AIFF if fmt == "AIFF" else wave.WAVE)(path)
    audio.add_tags()
    t = audio.tags
    t.add(id3.TIT2(encoding=3, text=tags.title))
    t.add(id3.TPE1(encoding=3, text=tags.artist))
    if tags.album:
        t.add(id3.TALB(encoding=3, text=tags.album))
    if tags.bpm:
        t.add(id3.TBPM(encoding=3, text=str(int(round(tags.bpm)))))
    if tags.key:
        t.add(id3.TKEY(encoding=3, text=tags.key))
    if tags.isrc:
        t.add(id3.TSRC(encoding=3, text=tags.isrc))
    if tags.source_url:
        t.add(id3.WOAS(url=tags.source_url))
    if tags.comment:
        t.add(id3.COMM(encoding=3, lang="eng", desc="", text=tags.comment))
    for name, value in _replaygain(tags).items():
        t.add(id3.TXXX(encoding=3, desc=name, text=value))
    if tags.cover:
        t.add(id3.APIC(encoding=3, mime=_cover_mime(tags.cover), type=3, desc="Cover", data=tags.cover))
    for frame in kept:
        t.add(frame)
    audio.save(v2_version=4)


def _replaygain(tags: Tags) -> dict[str, str]:
    values = {}
    if tags.replaygain_gain_db is not None:
        values["REPLAYGAIN_TRACK_GAIN"] = f"{tags.replaygain_gain_db:+.2f} dB"
    if tags.replaygain_peak is not None:
        values["REPLAYGAIN_TRACK_PEAK"] = f"{tags.replaygain_peak:.6f}"
    return values


def read_tags(path: Path, fmt: str) -> dict[str, object]:
    """The fields of ``Tags`` as found in the file (cover as its byte count), for checks."""
    if fmt == "ALAC":
        t = mp4.MP4(path).tags or {}

        def free(name: str) -> str | None:
            values = t.get(FREEFORM + name)
            return bytes(values[0]).decode("utf-8", "replace") if values else None

        def first(name: str) -> object:
            values = t.get(name)
            return values[0] if values else None

        covers = t.get("covr") or []
        return {
            "title": first("\xa9nam"), "artist": first("\xa9ART"), "album": first("\xa9alb"),
            "bpm": first("tmpo"), "key": free("initialkey"), "isrc": free("ISRC"),
            "source_url": free("SOURCE_URL"), "cover_bytes": len(bytes(covers[0])) if covers else 0,
            "replaygain_track_gain": free("replaygain_track_gain"),
            "replaygain_track_peak": free("replaygain_track_peak"),
        }
    audio = (aiff.AIFF if fmt == "AIFF" else wave.WAVE)(path)
    t = audio.tags
    if t is None:
        return {}

    def text(frame: str) -> str | None:
        value = t.get(frame)
        return str(value.text[0]) if value is not None and value.text else None

    woas = t.getall("WOAS")
    apic = t.getall("APIC")
    bpm = text("TBPM")
    return {
        "title": text("TIT2"), "artist": text("TPE1"), "album": text("TALB"),
        "bpm": int(float(bpm)) if bpm else None, "key": text("TKEY"), "isrc": text("TSRC"),
        "source_url": woas[0].url if woas else None, "cover_bytes": len(apic[0].data) if apic else 0,
        "replaygain_track_gain": text("TXXX:REPLAYGAIN_TRACK_GAIN"),
        "replaygain_track_peak": text("TXXX:REPLAYGAIN_TRACK_PEAK"),
    }


#: CC-XXX-YY-NNNNN once hyphens are dropped.
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")


def read_source_tags(path: Path, probed: Mapping[str, str] | None = None) -> dict:
    """Title/artist/album/ISRC embedded in a source file, when it has tags.

    mutagen first; each field it does not find comes from ``probed``, the tags ffprobe
    reported (``AudioInfo.tags``): mutagen does not read the RIFF INFO chunk that ffmpeg
    and many tools write into a WAV, nor a few containers ffmpeg does.
    """
    found = _mutagen_tags(path)
    probed = probed or {}
    isrc = normalise_isrc(_first(probed, "isrc", "tsrc") or "")
    fallback = {"title": _first(probed, "title"), "artist": _first(probed, "artist", "album_artist"),
                "album": _first(probed, "album"),
                # RIFF INFO's "ISRC" chunk names the source medium ("Vinyl rip"): only a real code counts
                "isrc": isrc if _ISRC.match(isrc) else None}
    merged = {name: found.get(name) or value for name, value in fallback.items()}
    return {name: value for name, value in merged.items() if value}


def _first(tags: Mapping[str, str], *names: str) -> str | None:
    return next((tags[name].strip() for name in names if (tags.get(name) or "").strip()), None)


def _mutagen_tags(path: Path) -> dict:
    try:
        import mutagen

        audio = mutagen.File(path, easy=True)
    except Exception:  # mutagen raises many types for files it cannot parse
        return {}
    if audio is None or not audio.tags:
        return {}

    def first(*names: str) -> str | None:
        for name in names:
            try:
                values = audio.tags.get(name)
            except (KeyError, ValueError):
                values = None
            if values:
                return str(values[0]).strip() or None
        return None

    isrc = first("isrc") or _txxx(path, "ISRC")
    return {"title": first("title"), "artist": first("artist", "albumartist"), "album": first("album"),
            "isrc": normalise_isrc(isrc) if isrc else None}


def _txxx(path: Path, name: str) -> str | None:
    """A user-defined ID3 text frame (ffmpeg writes an MP3's ISRC as TXXX:ISRC, not TSRC)."""
    import mutagen

    try:
        tags = mutagen.File(path).tags
        frame = tags.get(f"TXXX:{name}") if tags is not None and hasattr(tags, "getall") else None
    except Exception:  # unreadable tags are no tags
        return None
    return str(frame.text[0]).strip() or None if frame and frame.text else None
