"""The inbox folder: what was dropped there since the last look.

Audio files are imported; a ``.txt`` file is read as one URL per line (blank lines and
``#`` comments ignored). A file is taken only once it has settled (unchanged for a few
seconds), so a copy still in progress is never imported half-written. The state between
looks is a small JSON cursor: the signature (size, mtime) of every inbox file already
handled, so nothing is registered twice and an edited ``.txt`` is read again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

AUDIO_EXTENSIONS = {
    ".mp3", ".m4a", ".aac", ".alac", ".flac", ".wav", ".wave", ".aif", ".aiff", ".aifc", ".ogg", ".oga",
    ".opus", ".wma", ".ape", ".wv", ".mka", ".mp4", ".webm", ".caf", ".dsf", ".dff", ".tta", ".ac3",
}
URL_LIST_EXTENSIONS = {".txt"}
IMPORTED_DIR = "imported"
PARTIAL_SUFFIXES = {".part", ".crdownload", ".download", ".tmp", ".partial"}
SETTLE_SECONDS = 5.0


@dataclass(frozen=True)
class InboxItem:
    """One thing to register: a dropped audio file, or a URL from a dropped list."""

    target: str  # a file path or a URL
    origin: str  # inbox-relative path of the file it came from
    signature: str  # identifies this version of the origin file, for run keys


@dataclass
class Scan:
    items: list[InboxItem]
    skipped: list[str]  # human-readable notes: ignored files, unsettled files
    cursor: str
    pending: bool  # True when more remains than one look may take


def _signature(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def parse_url_list(text: str) -> list[str]:
    urls = []
    for line in text.splitlines():
        line = line.strip().lstrip("\ufeff")
        if line and not line.startswith("#"):
            urls.append(line)
    return urls


def scan(inbox: Path, cursor: str | None, *, max_items: int = 200, settle_seconds: float = SETTLE_SECONDS,
         now: float | None = None) -> Scan:
    """Everything new in ``inbox`` since ``cursor``; returns the items and the next cursor."""
    seen: dict[str, str] = json.loads(cursor)["files"] if cursor else {}
    now = time.time() if now is None else now
    items: list[InboxItem] = []
    skipped: list[str] = []
    present: dict[str, str] = {}
    pending = False
    if not inbox.is_dir():
        return Scan([], [f"{inbox} does not exist yet"], json.dumps({"files": {}}), False)
    for path in sorted(inbox.rglob("*")):
        relative = path.relative_to(inbox)
        if not path.is_file() or relative.parts[0] == IMPORTED_DIR or any(p.startswith(".") for p in relative.parts):
            continue
        rel = relative.as_posix()
        suffix = path.suffix.lower()
        if suffix in PARTIAL_SUFFIXES:
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
        if len(items) >= max_items:
            pending = True
            continue
        if suffix in URL_LIST_EXTENSIONS:
            text = path.read_text(encoding="utf-8", errors="replace")
            items.extend(InboxItem(url, rel, signature) for url in parse_url_list(text))
        else:
            items.append(InboxItem(str(path), rel, signature))
        present[rel] = signature
    return Scan(items, skipped, json.dumps({"files": present}, sort_keys=True), pending)


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


def forget(cursor: str, origins: set[str]) -> str:
    """The cursor without ``origins``, so the next look reads those files again (used when
    registering one of their entries failed for a reason that may pass, like the network)."""
    files = {name: sig for name, sig in json.loads(cursor)["files"].items() if name not in origins}
    return json.dumps({"files": files}, sort_keys=True)
