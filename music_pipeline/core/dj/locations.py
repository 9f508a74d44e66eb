"""How a library file is named on the DJ's machine, in each export format's own spelling.

The pipeline writes the library on this machine (``local_root``); the DJ may play it from
somewhere else: an external disk on a Mac (``/Volumes/VIBES``), a Windows drive (``E:\\`` or
``E:/Music``), or the same folder (``DJ_LIBRARY_ROOT`` unset: files named as on this machine).
Every export names files from the same split, (drive or none, path parts), so rekordbox's
``Location`` URL and Traktor's ``VOLUME``/``DIR``/``FILE`` can never disagree.

Names are only strings here: nothing touches the disk, so Windows device names (``CON``,
``NUL.aiff``) and very long paths pass through as they are. Every part is put in Unicode NFC:
macOS hands out decomposed names (NFD) but its file systems match either form, and DJ
software compares paths as strings, so one form everywhere keeps one track one track.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

#: The environment variable (a setting) naming the library's root on the DJ's machine.
SETTING = "DJ_LIBRARY_ROOT"

#: What Traktor on macOS calls the start-up disk, where every path outside ``/Volumes`` lives.
#: It is the disk's name in Finder, "Macintosh HD" unless the DJ renamed it.
MAC_SYSTEM_VOLUME = "Macintosh HD"

_DRIVE = re.compile(r"^([A-Za-z]):(?:[\\/]|$)")
_URL_PREFIX = "file://localhost/"


@dataclass(frozen=True)
class TraktorLocation:
    """Traktor's ``LOCATION`` of a file: ``DIR="/:Music/:Sub/:"`` ``FILE="a.aiff"`` ``VOLUME="E:"``."""

    volume: str  # "E:" on Windows, the disk's name on macOS ("VIBES", "Macintosh HD")
    dir: str  # every folder from the volume's root, each followed by "/:", after a leading "/:"
    file: str
    volume_id: str  # Traktor's own id of the disk (a serial on Windows); we only know its name

    @property
    def primary_key(self) -> str:
        """How a Traktor playlist names the track: ``VOLUME + DIR + FILE``, as Traktor writes it
        (``Macintosh HD/:Users/:x/:Music/:a.mp3``, ``E:/:Music/:a.aiff``)."""
        return self.volume + self.dir + self.file


@dataclass(frozen=True)
class _Split:
    drive: str | None  # "E:" for a Windows path, None for a POSIX one
    parts: tuple[str, ...]  # every name after the root, the file's last


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _split_root(text: str) -> _Split:
    """Read an absolute path in either family: ``E:\\Music``, ``E:/Music``, ``E:`` or ``/Volumes/X``."""
    text = text.strip()
    if match := _DRIVE.match(text):
        names = re.split(r"[\\/]+", text[2:])
        return _Split(match.group(1).upper() + ":", tuple(_nfc(n) for n in names if n))
    if text.startswith(("\\\\", "//")):
        raise ValueError(f"{text!r}: network paths are not supported; map the share to a drive letter")
    if not text.startswith("/"):
        raise ValueError(f"{text!r} is not absolute: give /Volumes/NAME, E:\\ or E:/Music")
    return _Split(None, tuple(_nfc(n) for n in text.split("/") if n))


class RootMap:
    """Names a file of the local library as the DJ's machine sees it.

    ``dj_root`` is the ``DJ_LIBRARY_ROOT`` setting: where ``local_root`` is mounted on the DJ's
    machine, or None when the DJ plays the library where it lies (this machine's names).
    ``system_volume`` is what Traktor calls a Mac's start-up disk (paths outside ``/Volumes``).
    """

    def __init__(self, local_root: Path, dj_root: str | None = None,
                 system_volume: str = MAC_SYSTEM_VOLUME) -> None:
        self.local_root = Path(local_root)
        self.dj_root = dj_root.strip() if dj_root and dj_root.strip() else None
        self.system_volume = system_volume
        self._root = _split_root(self.dj_root) if self.dj_root else None  # fails early on a bad setting

    @classmethod
    def from_env(cls, local_root: Path, environ: Mapping[str, str] | None = None) -> RootMap:
        """The map the ``DJ_LIBRARY_ROOT`` setting asks for (unset or empty: this machine's names)."""
        return cls(local_root, (os.environ if environ is None else environ).get(SETTING))

    def __repr__(self) -> str:
        return f"RootMap({str(self.local_root)!r}, {self.dj_root!r})"

    def _split(self, path: Path) -> _Split:
        if self._root is None:
            return _split_root(str(path))
        try:
            relative = Path(path).relative_to(self.local_root)
        except ValueError:
            raise ValueError(f"{path} is not under the library root {self.local_root}") from None
        return _Split(self._root.drive, self._root.parts + tuple(_nfc(p) for p in relative.parts))

    def dj_path(self, path: Path) -> str:
        """The file's absolute path on the DJ's machine, in that system's spelling
        (``E:\\Music\\a.aiff``, ``/Volumes/VIBES/a.aiff``), NFC."""
        split = self._split(path)
        if split.drive:
            return split.drive + "\\" + "\\".join(split.parts)
        return "/" + "/".join(split.parts)

    def location_url(self, path: Path) -> str:
        """rekordbox's ``Location``: ``file://localhost/`` then the absolute path, one slash after
        ``localhost`` (``file://localhost/Users/x/a%20b.aiff``, ``file://localhost/E:/Music/a.aiff``).

        Each name is UTF-8 (NFC) with every byte but RFC 3986's unreserved characters
        percent-encoded, so ``#``, ``?``, ``%``, ``&``, quotes, spaces, emoji and every script
        survive any URL reader. rekordbox's own exports leave a few more characters bare (``(``,
        ``)``, ``&``); its reader decodes every ``%XX``, as it must for the UTF-8 it writes, so the
        stricter spelling names the same file. ``surrogateescape`` keeps a name that is not UTF-8
        on disk as its own bytes.
        """
        split = self._split(path)
        names = "/".join(quote(p.encode("utf-8", "surrogateescape"), safe="") for p in split.parts)
        return _URL_PREFIX + (f"{split.drive}/{names}" if split.drive else names)

    def traktor_location(self, path: Path) -> TraktorLocation:
        """Traktor's ``VOLUME``/``DIR``/``FILE`` of the file.

        Windows: the drive is the volume (``E:``), every folder goes in DIR. macOS: a path under
        ``/Volumes/NAME`` is on the volume NAME; any other path (``/Users/...``, and what Linux
        would show) is on the start-up disk, ``system_volume``, with DIR from ``/``, as Traktor
        writes ``Macintosh HD`` + ``/:Users/:x/:Music/:``. Traktor's VOLUMEID is a serial number on
        Windows that only the DJ's machine knows; we give the volume's name, as Traktor on macOS
        does for its start-up disk, and Traktor finds the file by VOLUME, DIR and FILE.
        """
        split = self._split(path)
        if not split.parts:
            raise ValueError(f"{path} names a root, not a file")
        parts = split.parts
        if split.drive:
            volume = split.drive
        elif len(parts) > 2 and parts[0] == "Volumes":
            volume, parts = parts[1], parts[2:]
        else:
            volume = self.system_volume
        folders = "".join(f"{name}/:" for name in parts[:-1])
        return TraktorLocation(volume=volume, dir="/:" + folders, file=parts[-1], volume_id=volume)

