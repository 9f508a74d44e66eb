"""The inbox folder: what was dropped there since the last look.

Audio files are imported; a ``.txt`` file is read as one http(s) URL per line (blank lines
and ``#`` comments ignored; any other line, such as a file path, is refused with its line
number). A file is taken only once it has settled (unchanged for a few seconds), so a copy
still in progress is never imported half-written.

Only what is physically inside the inbox is read: a link leading outside it is refused
unread, and linked folders are never entered.

One look takes at most ``max_items`` entries (audio files and list lines), in turns: one
entry from each waiting file, then again, so a long list never holds up the files dropped
after it. The state between looks is a small JSON cursor::

    {"files": {"<inbox-relative path>": "<size>:<mtime_ns>", ...},
     "lists": {"<path of a list read part-way>": {"signature": "<size>:<mtime_ns>", "line": <next line index>}}}

``files`` holds every inbox file already handled (so nothing is registered twice and an
edited list is read again); ``lists`` says where the next look resumes a list, for that
version of it only: an edited list starts again from its first line, and the catalog
recognises the tracks already registered.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..domain.identity import redact_url, soundcloud_id, spotify_id

AUDIO_EXTENSIONS = {
    ".mp3", ".m4a", ".aac", ".alac", ".flac", ".wav", ".wave", ".aif", ".aiff", ".aifc", ".ogg", ".oga",
    ".opus", ".wma", ".ape", ".wv", ".mka", ".mp4", ".webm", ".caf", ".dsf", ".dff", ".tta", ".ac3",
}
URL_LIST_EXTENSIONS = {".txt"}
IMPORTED_DIR = "imported"
PARTIAL_SUFFIXES = {".part", ".crdownload", ".download", ".tmp", ".partial"}
SETTLE_SECONDS = 5.0
EXCERPT_CHARS = 6  # of a refused line shown in messages: enough to find it, too few to leak it

_DRIVE_PATH = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True)
class InboxItem:
    """One thing to register: a dropped audio file, or a URL from a dropped list."""

    target: str  # a file path or a URL
    origin: str  # inbox-relative path of the file it came from
    signature: str  # identifies this version of the origin file, for run keys
    line: int = 0  # 1-based line of a URL in its list; 0 for an audio file


@dataclass
class Scan:
    items: list[InboxItem]
    skipped: list[str]  # human-readable notes: ignored files, unsettled files, lists read part-way
    cursor: str
    pending: bool  # True when more remains than one look may take
    rejected: list[str] = field(default_factory=list)  # what was refused and why, for the user to fix


@dataclass
class _Waiting:
    """A settled file's entries not taken yet: ``(line index, item or refusal message)``."""

    rel: str
    signature: str
    entries: deque[tuple[int, InboxItem | str]]
    lines: int = 0  # a list's line count, for the progress note; 0 for an audio file


def _signature(path: Path, *, follow: bool = True) -> str:
    stat = path.stat() if follow else path.lstat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def excerpt(line: str) -> str:
    """A refused line as messages may show it: its first few characters and an ellipsis
    (at most half the line), never all of it, since it may be a private path or carry a
    token; a URL is redacted first."""
    text = redact_url(line) if "://" in line else line
    return text[:min(EXCERPT_CHARS, len(text) // 2)] + "…"


def url_problem(line: str) -> str | None:
    """Why a URL list's line is not read, or None when it may be: an http(s) URL, or a
    ``spotify:track:``/``soundcloud:tracks:`` URI (track ids, never files). Anything else
    is refused, above all a path: a list must not import files from elsewhere on the
    machine (the catalog, /etc/passwd)."""
    if line.startswith(("/", "\\", "~", "./", "../")) or _DRIVE_PATH.match(line):
        return "a file path, not a URL (drop the audio file itself into the inbox)"
    try:
        parts = urlsplit(line)
    except ValueError:
        return "not a valid URL"
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return None if parts.netloc else "a URL without a host"
    if scheme == "file":
        return "a file:// link, not an http(s) URL (drop the audio file itself into the inbox)"
    if spotify_id(line) or soundcloud_id(line):
        return None
    return "not an http(s) URL"


def parse_url_list(text: str, origin: str = "", signature: str = "") -> list[tuple[int, InboxItem | str]]:
    """A list's entries, ``(line index, item)`` for each URL and ``(line index, message)``
    for each refused line; blank lines and ``#`` comments give none."""
    entries: list[tuple[int, InboxItem | str]] = []
    for index, raw in enumerate(text.splitlines()):
        line = raw.strip().lstrip("\ufeff").strip()
        if not line or line.startswith("#"):
            continue
        problem = url_problem(line)
        if problem:
            entries.append((index, f"{origin}, line {index + 1}: {problem} ({excerpt(line)}); ignored"))
        else:
            entries.append((index, InboxItem(line, origin, signature, index + 1)))
    return entries


def _walk(inbox: Path) -> Iterator[Path]:
    """Every file under ``inbox`` and every link to a folder, except hidden ones and
    ``imported/``, without entering a linked folder. Path.rglob in Python 3.11 does not
    enter one either but yields it (3.13 made that a parameter, ``recurse_symlinks``);
    ``os.walk(followlinks=False)`` states it, and each folder link is yielded so the scan
    can say it was not followed."""
    for top, dirs, files in os.walk(inbox, followlinks=False):
        base = Path(top)
        kept = []
        for name in dirs:
            if name.startswith(".") or (base == inbox and name == IMPORTED_DIR):
                continue
            if (base / name).is_symlink():
                yield base / name
            else:
                kept.append(name)
        dirs[:] = kept
        yield from (base / name for name in files if not name.startswith("."))


def _refusal(path: Path, root: Path) -> str | None:
    """Why a link in the inbox is not read, or None for a link to a file in the inbox."""
    if path.is_dir():
        return "a link to a folder; not followed (move or copy the files themselves into the inbox)"
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a link loop
        return "a link leading outside the inbox; refused and not read (copy the file itself in)"
    return None


def _dump(files: dict[str, str], lists: dict[str, dict]) -> str:
    return json.dumps({"files": files, "lists": lists}, sort_keys=True)


def scan(inbox: Path, cursor: str | None, *, max_items: int = 200, settle_seconds: float = SETTLE_SECONDS,
         now: float | None = None) -> Scan:
    """What is new in ``inbox`` since ``cursor``, at most ``max_items`` entries (audio files,
    URLs and refused lines) taken in turns across files; returns them and the next cursor."""
    state = json.loads(cursor) if cursor else {}
    seen: dict[str, str] = state.get("files", {})
    reading: dict[str, dict] = state.get("lists", {})
    now = time.time() if now is None else now
    skipped: list[str] = []
    rejected: list[str] = []
    present: dict[str, str] = {}
    if not inbox.is_dir():
        return Scan([], [f"{inbox} does not exist yet"], _dump({}, {}), False)
    root = inbox.resolve()
    waiting: list[_Waiting] = []
    for path in sorted(_walk(inbox)):
        rel = path.relative_to(inbox).as_posix()
        suffix = path.suffix.lower()
        if suffix in PARTIAL_SUFFIXES:
            continue
        if path.is_symlink() and (refusal := _refusal(path, root)):
            signature = _signature(path, follow=False)  # the link itself: a changed link is judged again
            if seen.get(rel) != signature:
                rejected.append(f"{rel}: {refusal}")
            present[rel] = signature
            continue
        if not path.is_file():
            continue
        signature = _signature(path)
        if seen.get(rel) == signature:
            present[rel] = signature
            continue
        if suffix not in AUDIO_EXTENSIONS | URL_LIST_EXTENSIONS:
            skipped.append(f"{rel}: not an audio file or .txt URL list, left alone")
            present[rel] = signature
            continue
        if now - path.stat().st_mtime < settle_seconds:
            skipped.append(f"{rel}: still being written, will look again")
            continue
        if suffix in URL_LIST_EXTENSIONS:
            mark = reading.get(rel, {})
            start = mark.get("line", 0) if mark.get("signature") == signature else 0
            text = path.read_text(encoding="utf-8", errors="replace")
            entries = [e for e in parse_url_list(text, rel, signature) if e[0] >= start]
            waiting.append(_Waiting(rel, signature, deque(entries), lines=len(text.splitlines())))
        else:
            waiting.append(_Waiting(rel, signature, deque([(0, InboxItem(str(path), rel, signature))])))

    items: list[InboxItem] = []
    turns = deque(w for w in waiting if w.entries)
    taken = 0
    while turns and taken < max_items:  # one entry per file per turn
        current = turns.popleft()
        _, entry = current.entries.popleft()
        taken += 1
        if isinstance(entry, InboxItem):
            items.append(entry)
        else:
            rejected.append(entry)
        if current.entries:
            turns.append(current)

    lists: dict[str, dict] = {}
    left = 0
    for current in waiting:
        if not current.entries:
            present[current.rel] = current.signature
        elif current.lines:
            index = current.entries[0][0]
            lists[current.rel] = {"signature": current.signature, "line": index}
            skipped.append(f"{current.rel}: read to line {index} of {current.lines}; "
                           f"the rest follows at the next looks")
        else:
            left += 1
    if left:
        skipped.append(f"{left} more file(s) wait for the next look")
    return Scan(items, skipped, _dump(present, lists), any(w.entries for w in waiting), rejected)


def imported_path(inbox: Path, source: Path) -> Path | None:
    """Where an inbox file goes once imported (``inbox/imported/<same relative path>``);
    None for files outside the inbox, which are never moved."""
    try:
        relative = Path(source).resolve().relative_to(Path(inbox).resolve())
    except ValueError:
        return None
    if relative.parts and relative.parts[0] == IMPORTED_DIR:
        return None
    return Path(inbox) / IMPORTED_DIR / relative


def forget(cursor: str, items: Iterable[InboxItem]) -> str:
    """The cursor rewound so the next look takes ``items`` again (registering them failed
    for a reason that may pass, like the network): an audio file is forgotten, and a list
    resumes at the earliest such line rather than at its start."""
    state = json.loads(cursor)
    files: dict[str, str] = state["files"]
    lists: dict[str, dict] = state.get("lists", {})
    for item in items:
        files.pop(item.origin, None)
        if item.line:
            index = item.line - 1
            mark = lists.get(item.origin)
            if mark and mark["signature"] == item.signature:
                index = min(index, mark["line"])
            lists[item.origin] = {"signature": item.signature, "line": index}
    return _dump(files, lists)
