"""Mirroring tracks into Eagle (eagle.cool) through its local HTTP API (V1, https://api.eagle.cool).

Eagle runs an API server while the app is open, by default on ``http://localhost:41595``; an
optional token (``EAGLE_TOKEN``) travels as the ``token`` query parameter (GET) or body field
(POST). Every answer is ``{"status": "success", "data": ...}`` or ``{"status": "error", ...}``.

Facts of the V1 API this module is built around:

* ``POST /api/item/addFromPath`` answers ``{"status": "success"}`` and **no item id**. The client
  finds the new item afterwards by listing (``keyword`` = its name, ``ext``) and taking the one
  that was not there before the import; Eagle imports asynchronously, so it polls briefly.
* ``GET /api/item/list`` answers a plain array (default ``limit`` 200, no total). Whether
  ``offset`` counts items or pages is not clearly documented (reports call it unreliable), so
  paging also stops when a page brings no new ids.
* ``POST /api/item/update`` can change ``tags``, ``annotation``, ``url`` and ``star`` only: an
  item's name and folders cannot be changed through V1, and ``addFromPath`` takes one
  ``folderId``. What differs there is reported in :attr:`EagleSync.stale`, never "fixed" by
  importing again.
* Nothing is ever deleted: duplicates go to Eagle's trash (``moveToTrash``), where a person can
  restore them.

How an item is recognised as ours: the annotation's last line is ``music-pipeline: <track key>``
(:data:`MARKER`). Not a tag: tags are Eagle's shared vocabulary (one unique tag per track would
flood the tag panel with thousands of entries) and users curate them; the annotation is per item,
is searched by Eagle's keyword filter, and is text we own (it is rewritten from the catalog on
every sync, while tags are merged so a user's own tags survive). The source URL is not enough on
its own: it may be missing, and a user may paste the same URL on an unrelated item.

Plain Python, no Dagster: the asset layer wraps it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..domain.errors import Reason, TrackError
from ..domain.identity import redact_url

DEFAULT_BASE = "http://localhost:41595"
#: the annotation line that marks an Eagle item as one of our tracks
MARKER = "music-pipeline: "
_MARKER_RE = re.compile(r"^music-pipeline: (\S+)\s*$", re.M)
_IDEMPOTENT_POSTS = frozenset({"/api/item/update", "/api/item/moveToTrash"})
# Eagle's API is local (or on the LAN): never route it through an HTTP(S)_PROXY from the environment
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EagleNotReachable(TrackError):
    """Nothing answers at the Eagle API address: the app is not running, or the address is wrong."""

    reason = Reason.SOURCE_UNAVAILABLE

    def __init__(self, base: str, reason: str) -> None:
        self.base = base
        super().__init__(f"Eagle not reachable at {base} ({reason}): start the Eagle app, or set EAGLE_API_BASE")


class EagleError(TrackError):
    """Eagle answered, with an error (or with something that is not its API)."""

    def __init__(self, message: str, *, http_status: int | None = None, hint: str | None = None) -> None:
        self.http_status = http_status
        super().__init__(message, hint=hint)


class EagleTokenRejected(EagleError):
    """Eagle wants an API token and the one sent (if any) is not it."""


# --------------------------------------------------------------------------- client


class EagleClient:
    """A small client for Eagle's V1 API. Idempotent requests (reads, ``update``,
    ``moveToTrash``) are retried on server errors and dropped connections; imports and folder
    creation are not (a retry could import twice: the sync finds the item next time instead)."""

    def __init__(self, base_url: str = DEFAULT_BASE, token: str | None = None, timeout_s: float = 10, *,
                 retries: int = 2, find_timeout_s: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token or None
        self.timeout_s = timeout_s
        self.retries = retries
        self.find_timeout_s = find_timeout_s

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> EagleClient:
        """``EAGLE_API_BASE`` (default ``http://localhost:41595``) and ``EAGLE_TOKEN``."""
        env = os.environ if environ is None else environ
        return cls(env.get("EAGLE_API_BASE") or DEFAULT_BASE, env.get("EAGLE_TOKEN") or None, **options)

    def __repr__(self) -> str:
        return f"EagleClient({self._base_for_humans()!r}, token={'***' if self._token else None})"

    # ---- endpoints

    def info(self) -> dict:
        """``/api/application/info``: version, build, platform."""
        return self._get("/api/application/info") or {}

    def library_path(self) -> Path | None:
        """The open library's folder (``<name>.library``), when Eagle says."""
        data = self._get("/api/library/info") or {}
        library = data.get("library") if isinstance(data, dict) else None
        path = library.get("path") if isinstance(library, dict) else None
        return Path(path) if isinstance(path, str) and path else None

    def folders(self) -> list[dict]:
        """Top-level folders, each with its nested ``children``, as Eagle returns them."""
        data = self._get("/api/folder/list")
        return data if isinstance(data, list) else []

    def folder_ids(self, names: Iterable[str], *, create: bool = True) -> list[str | None]:
        """The ids of top-level folders by name, in order; missing ones are created (one
        ``folder/list`` for all), or are None with ``create=False``."""
        by_name: dict[str, str] = {}
        for folder in self.folders():
            by_name.setdefault(folder.get("name"), folder.get("id"))
        out: list[str | None] = []
        for name in names:
            if name not in by_name and create:
                created = self._post("/api/folder/create", {"folderName": name}) or {}
                if not created.get("id"):
                    raise EagleError(f"Eagle did not return an id for the new folder {name!r}")
                by_name[name] = created["id"]
            out.append(by_name.get(name))
        return out

    def ensure_folder(self, name: str) -> str:
        """The id of the top-level folder ``name``, created when missing."""
        folder_id = self.folder_ids([name])[0]
        assert folder_id is not None
        return folder_id

    def item(self, item_id: str) -> dict | None:
        """The item (trashed ones too: see ``isDeleted``), or None when Eagle does not know it."""
        try:
            data = self._get("/api/item/info", {"id": item_id})
        except EagleTokenRejected:
            raise
        except EagleError as e:
            if e.http_status is not None and e.http_status >= 500:
                raise
            return None
        return data if isinstance(data, dict) and data.get("id") else None

    def items(self, keyword: str | None = None, ext: str | None = None, *, tags: Iterable[str] = (),
              folders: Iterable[str] = (), page_size: int = 200) -> Iterator[dict]:
        """Items that are not in the trash, page by page."""
        query: dict[str, Any] = {"limit": page_size}
        if keyword:
            query["keyword"] = keyword
        if ext:
            query["ext"] = ext.lstrip(".").lower()
        if tags := ",".join(tags):
            query["tags"] = tags
        if folders := ",".join(folders):
            query["folders"] = folders
        seen: set[str] = set()
        offset = 0
        while True:
            page = self._get("/api/item/list", {**query, "offset": offset})
            page = page if isinstance(page, list) else []
            fresh = [i for i in page if isinstance(i, dict) and i.get("id") not in seen]
            for item in fresh:
                seen.add(item["id"])
                yield item
            if len(page) < page_size or not fresh:
                return
            offset += page_size

    def add_from_path(self, path: Path | str, name: str, *, website: str | None = None, annotation: str = "",
                      tags: Iterable[str] = (), folder_id: str | None = None) -> str:
        """Import a file (Eagle copies it into its library) and return the new item's id, found
        by listing since the API does not return it."""
        path = Path(path)
        if not path.is_file():
            raise TrackError(f"Cannot import into Eagle: {path} does not exist.",
                             hint="Re-run the transcode step for this track.")
        ext = path.suffix.lstrip(".").lower()
        before = {i["id"] for i in self.items(keyword=name, ext=ext)}
        body: dict[str, Any] = {"path": str(path.resolve()), "name": name, "annotation": annotation,
                                "tags": list(tags)}
        if website:
            body["website"] = website
        if folder_id:
            body["folderId"] = folder_id
        self._post("/api/item/addFromPath", body)
        size = path.stat().st_size
        deadline = time.monotonic() + self.find_timeout_s
        while True:
            new = [i for i in self.items(keyword=name, ext=ext)
                   if i["id"] not in before and i.get("name") == name]
            best = ([i for i in new if i.get("size") == size and (i.get("annotation") or "") == annotation]
                    or [i for i in new if i.get("size") == size] or new)
            if best:
                return best[0]["id"]
            if time.monotonic() >= deadline:
                raise EagleError(f"Eagle accepted {name!r} but the new item did not show up within "
                                 f"{self.find_timeout_s:g} s.", hint="The next sync adopts it instead of importing again.")
            time.sleep(0.05)

    def update(self, item_id: str, *, tags: Iterable[str] | None = None, annotation: str | None = None,
               url: str | None = None, star: int | None = None) -> dict:
        """Change what V1 can change; fields left None are not sent."""
        body: dict[str, Any] = {"id": item_id}
        if tags is not None:
            body["tags"] = list(tags)
        if annotation is not None:
            body["annotation"] = annotation
        if url is not None:
            body["url"] = url
        if star is not None:
            body["star"] = star
        data = self._post("/api/item/update", body)
        return data if isinstance(data, dict) else {}

    def move_to_trash(self, item_ids: Iterable[str]) -> None:
        ids = list(item_ids)
        if ids:
            self._post("/api/item/moveToTrash", {"itemIds": ids})

    def stored_file(self, item: Mapping[str, Any], library: Path | None) -> Path | None:
        """The item's file inside the library (``images/<id>.info/<name>.<ext>``) when this
        machine can read it, else None."""
        if library is None:
            return None
        info_dir = library / "images" / f"{item.get('id')}.info"
        ext = str(item.get("ext") or "")
        exact = info_dir / f"{item.get('name')}.{ext}"
        try:
            if exact.is_file():
                return exact
            if info_dir.is_dir():  # renamed on disk by an older Eagle, or an odd name: the one original
                found = [p for p in info_dir.glob(f"*.{ext}") if not p.stem.endswith("_thumbnail")]
                return found[0] if len(found) == 1 else None
        except OSError:
            return None
        return None

    # ---- plumbing

    def _base_for_humans(self) -> str:
        return self._scrub(redact_url(self.base_url))

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return self._call("GET", path, dict(query or {}), None)

    def _post(self, path: str, body: dict) -> Any:
        return self._call("POST", path, {}, body)

    def _call(self, method: str, path: str, query: dict, body: dict | None) -> Any:
        idempotent = method == "GET" or path in _IDEMPOTENT_POSTS
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            try:
                return self._once(method, path, query, body)
            except _Transient as e:
                if attempt + 1 >= attempts:
                    raise e.error from None
                time.sleep(0.1 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _once(self, method: str, path: str, query: dict, body: dict | None) -> Any:
        if self._token:
            if method == "GET":
                query = {**query, "token": self._token}
            else:
                body = {**(body or {}), "token": self._token}
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        status: int
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status = e.code
            try:
                raw = e.read()
            except (OSError, HTTPException):
                raw = b""
            finally:
                e.close()
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, ConnectionRefusedError):
                raise EagleNotReachable(self._base_for_humans(), "connection refused") from None
            if isinstance(reason, TimeoutError):
                raise _Transient(EagleNotReachable(self._base_for_humans(), f"no answer within {self.timeout_s:g} s")) from None
            if isinstance(reason, socket.gaierror):
                raise EagleNotReachable(self._base_for_humans(), "unknown host") from None
            raise _Transient(EagleNotReachable(self._base_for_humans(), self._scrub(str(reason)))) from None
        except TimeoutError:
            raise _Transient(EagleNotReachable(self._base_for_humans(), f"no answer within {self.timeout_s:g} s")) from None
        except (ConnectionError, HTTPException, OSError) as e:
            raise _Transient(EagleNotReachable(self._base_for_humans(), self._scrub(type(e).__name__))) from None
        try:
            envelope = json.loads(raw) if raw else {}
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            error = EagleError(f"Eagle answered {path} with HTTP {status} and no JSON: is {self._base_for_humans()} "
                               "really Eagle's API?", http_status=status)
            if status >= 500:
                raise _Transient(error)
            raise error
        message = self._scrub(str(envelope.get("message") or envelope.get("data") or "no message"))
        if status in (401, 403):
            raise EagleTokenRejected(f"Eagle rejected the API token for {path} (HTTP {status}: {message}).",
                                     http_status=status,
                                     hint="Set EAGLE_TOKEN to the token in Eagle's Preferences → Developer.")
        if status >= 500:
            raise _Transient(EagleError(f"Eagle failed on {path} (HTTP {status}: {message}).", http_status=status))
        if envelope.get("status") != "success":
            raise EagleError(f"Eagle refused {path}: {message}", http_status=status)
        return envelope.get("data")


class _Transient(Exception):
    """A failure another try may fix; carries the error to raise when no try is left."""

    def __init__(self, error: TrackError) -> None:
        super().__init__(str(error))
        self.error = error


# --------------------------------------------------------------------------- sync


@dataclass(frozen=True)
class EagleRecord:
    """What one track should look like in Eagle (built from the catalog)."""

    key: str  # our track key (e.g. youtube-abc123)
    path: Path  # the file to import (the preferred format, default ALAC)
    name: str  # "Artist - Title"
    website: str | None  # source URL
    annotation: str  # "BPM 128 · Key F#m (11A) · -9.1 LUFS" style
    tags: tuple[str, ...]  # genre, key, camelot, BPM range like "120-129 BPM", playlists, source
    folders: tuple[str, ...]  # one folder per playlist (created when missing)
    sha256: str  # of the file at path (the catalog has it)


@dataclass
class EagleSync:
    item_id: str
    action: str  # "created" | "updated" | "unchanged" | "adopted"
    #: what differs but V1 cannot change on an existing item ("name", "folders"); a new item
    #: lands in the first folder only, so more than one folder is stale from the start
    stale: tuple[str, ...] = field(default=())


def annotation_for(record: EagleRecord) -> str:
    """The annotation we write: the record's text, then the marker line with the track key."""
    text = record.annotation.strip()
    return f"{text}\n{MARKER}{record.key}" if text else f"{MARKER}{record.key}"


def key_of(item: Mapping[str, Any]) -> str | None:
    """The track key an Eagle item carries in its annotation, if it is one of ours."""
    found = _MARKER_RE.findall(str(item.get("annotation") or ""))
    return found[-1] if found else None


def sync(client: EagleClient, record: EagleRecord, known_id: str | None) -> EagleSync:
    """Make Eagle hold ``record``, writing only what differs; never imports a track twice.

    With ``known_id`` (the item id the catalog stored) and that item alive in Eagle, its
    annotation, tags (merged: a user's own tags stay) and URL are brought up to date ("updated")
    or left alone with no write at all ("unchanged"). Otherwise an existing item is looked for
    before importing, by the marker of this key, else by the checksum of the file stored in the
    library (when this machine can read the library), else by name + extension + size: found →
    "adopted" (and brought up to date). Only then is the file imported ("created").
    """
    if not record.path.is_file():
        raise TrackError(f"Cannot sync {record.key} to Eagle: {record.path} does not exist.",
                         hint="Re-run the transcode step for this track.")
    if known_id:
        item = client.item(known_id)
        if item is not None and not item.get("isDeleted"):
            return _reconcile(client, item, record, adopted=False)
    item = _find_existing(client, record)
    if item is not None:
        return _reconcile(client, item, record, adopted=True)
    folder_ids = [f for f in client.folder_ids(record.folders) if f]
    item_id = client.add_from_path(record.path, record.name, website=record.website,
                                   annotation=annotation_for(record), tags=record.tags,
                                   folder_id=folder_ids[0] if folder_ids else None)
    return EagleSync(item_id, "created", ("folders",) if len(folder_ids) > 1 else ())


def trash(client: EagleClient, item_ids: list[str]) -> list[str]:
    """Move the non-keepers of a dedup group to Eagle's trash (never deleted: a person can restore
    them). Unknown and already-trashed ids are skipped; returns the ids trashed now."""
    live = []
    for item_id in dict.fromkeys(item_ids):
        item = client.item(item_id)
        if item is not None and not item.get("isDeleted"):
            live.append(item_id)
    client.move_to_trash(live)
    return live


def _reconcile(client: EagleClient, item: dict, record: EagleRecord, *, adopted: bool) -> EagleSync:
    changes: dict[str, Any] = {}
    have_tags = [str(t) for t in item.get("tags") or []]
    want_tags = list(dict.fromkeys([*have_tags, *record.tags]))
    if want_tags != have_tags:
        changes["tags"] = want_tags
    annotation = annotation_for(record) + _after_marker(item.get("annotation") or "")
    if (item.get("annotation") or "") != annotation:
        changes["annotation"] = annotation
    if record.website and (item.get("url") or "") != record.website:
        changes["url"] = record.website
    stale = []
    if item.get("name") != record.name:
        stale.append("name")
    if record.folders:
        wanted = client.folder_ids(record.folders, create=False)
        if None in wanted or not set(wanted) <= set(item.get("folders") or []):
            stale.append("folders")
    if changes:
        client.update(item["id"], **changes)
    action = "adopted" if adopted else ("updated" if changes else "unchanged")
    return EagleSync(item["id"], action, tuple(stale))


def _after_marker(annotation: str) -> str:
    """What a person wrote below our marker line: kept when the pipeline rewrites its part."""
    lines = annotation.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if _MARKER_RE.match(lines[index]):
            rest = "\n".join(lines[index + 1:])
            return f"\n{rest}" if rest.strip() else ""
    return ""


def _find_existing(client: EagleClient, record: EagleRecord) -> dict | None:
    ext = record.path.suffix.lstrip(".").lower()
    candidates: dict[str, dict] = {}
    for keyword in (record.name, record.key):  # the key finds an item a user renamed in Eagle
        for item in client.items(keyword=keyword, ext=ext):
            if not item.get("isDeleted"):
                candidates.setdefault(item["id"], item)
    if not candidates:
        return None
    for item in candidates.values():
        if key_of(item) == record.key:
            return item
    library = client.library_path()
    size = record.path.stat().st_size
    for item in candidates.values():
        if key_of(item) is not None:  # another track of ours
            continue
        stored = client.stored_file(item, library)
        if stored is not None:
            try:
                if _sha256(stored) == record.sha256.lower():
                    return item
                continue
            except OSError:
                pass
        if item.get("name") == record.name and item.get("ext") == ext and item.get("size") == size:
            return item
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
