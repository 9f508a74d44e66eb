"""Mirroring tracks into Eagle (eagle.cool) through its local HTTP API: V1 (https://api.eagle.cool)
and, where the app has it, the V2 API of Eagle 4 (developer.eagle.cool/web-api, Eagle 4.0 Build 21+).

Eagle runs an API server while the app is open, by default on ``http://localhost:41595``; an
optional token (``EAGLE_TOKEN``, needed from another machine) travels as the ``?token=`` query
parameter of every request, GET and POST alike (both documentations say so; a token in a POST's
body is not read, so every write would be refused). Every answer is
``{"status": "success", "data": ...}`` or ``{"status": "error", ...}``.

Facts of the APIs this module is built around:

* V1's ``POST /api/item/addFromPath`` and ``addFromPaths`` answer ``{"status": "success"}`` and
  **no item id**. The client finds the new items afterwards by listing (``keyword`` = the name,
  ``ext``) and taking the ones that were not there before; Eagle imports asynchronously, so it
  polls, backing off from 50 ms to 1 s, for at most ``find_timeout_s``.
* V2's ``POST /api/v2/item/add`` answers the new id (``{"id"}``, or ``{"ids"}`` for ``items``,
  at most 1000) and files an item in several ``folders``; V2's ``POST /api/v2/item/update``
  changes ``name``, ``folders`` and ``isDeleted`` (out of the trash) too. V2 is detected once
  per process and API address (``GET /api/v2/app/info``); without it, V1's ``item/update``
  changes ``tags``, ``annotation``, ``url`` and ``star`` only, and ``addFromPath`` takes one
  ``folderId``: what differs there is reported in :attr:`EagleSync.stale`, never "fixed" by
  importing again.
* ``GET /api/item/list`` answers a plain array (default ``limit`` 200, no total). Two things
  its documentation leaves open are read from the app, not assumed: whether ``offset`` counts
  items or pages (told apart once by asking for ``offset=1``), and whether ``keyword`` searches
  annotations (told apart once with an item whose annotation has a word its name lacks; where
  it does not, or cannot be told, our items are found by scanning the items of the extension).
* Nothing is ever deleted: duplicates go to Eagle's trash (``moveToTrash``), where a person can
  restore them.

How an item is recognised as ours: the annotation's last line is ``music-pipeline: <track key>``
(:data:`MARKER`). Not a tag: tags are Eagle's shared vocabulary (one unique tag per track would
flood the tag panel with thousands of entries) and users curate them; the annotation is per item,
and is text we own (it is rewritten from the catalog on every sync, while tags are merged so a
user's own tags survive). The source URL is not enough on its own: it may be missing, and a user
may paste the same URL on an unrelated item.

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
_IDEMPOTENT_POSTS = frozenset({"/api/item/update", "/api/item/moveToTrash", "/api/v2/item/update"})
V2_BATCH = 1000  # items per /api/v2/item/add, as documented
_POLL_FIRST_S, _POLL_MAX_S = 0.05, 1.0  # polling for a V1 import: 50 ms, doubling to 1 s
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


@dataclass
class _Traits:
    """What one Eagle (one API address) was found to do; learnt once per process, because the
    sink builds a client per track and asking again would cost requests on every track."""

    v2: bool | None = None  # /api/v2 answers
    offset_counts: str | None = None  # item/list's offset: "items" or "pages"
    keyword_searches_annotations: bool | None = None  # None: not told apart yet (or could not be)


_TRAITS: dict[str, _Traits] = {}


@dataclass(frozen=True)
class Import:
    """One file to import: where from, and what the new item carries."""

    path: Path
    name: str
    website: str | None = None
    annotation: str = ""
    tags: tuple[str, ...] = ()
    folder_ids: tuple[str, ...] = ()


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
        self._traits = _TRAITS.setdefault(self.base_url, _Traits())

    @staticmethod
    def forget_traits() -> None:
        """Learn what each Eagle does again (tests that change the app under one address)."""
        _TRAITS.clear()

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

    def has_v2(self) -> bool:
        """Whether this Eagle has the V2 API (Eagle 4.0 Build 21+): asked once per process."""
        if self._traits.v2 is None:
            try:
                self._get("/api/v2/app/info")
                self._traits.v2 = True
            except EagleTokenRejected:
                raise
            except EagleError as e:
                if e.http_status is not None and e.http_status >= 500:
                    raise  # Eagle is in trouble: ask again next time
                self._traits.v2 = False  # 404 (an older Eagle), or an error envelope
        return self._traits.v2

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
        """Items that are not in the trash, page by page. Whether ``offset`` counts items or
        pages is asked of the app the first time a page is full (``offset=1`` brings the first
        page's second item, or the second page), then remembered."""
        page_size = max(2, page_size)  # the probe compares the first page's second item
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

        def page(number: int, unit: str | None) -> tuple[list[dict], list[dict]]:
            offset = number * page_size if unit == "items" else number
            got = self._get("/api/item/list", {**query, "offset": offset})
            got = [i for i in got if isinstance(i, dict) and i.get("id")] if isinstance(got, list) else []
            fresh = [i for i in got if i["id"] not in seen]
            seen.update(i["id"] for i in fresh)
            return got, fresh

        got, fresh = page(0, "items")
        yield from fresh
        if len(got) < page_size:
            return
        unit, number = self._traits.offset_counts, 1
        if unit is None:
            probe, fresh = page(1, "pages")  # offset=1
            unit = "items" if probe and probe[0]["id"] == got[1]["id"] else "pages"
            self._traits.offset_counts = unit
            yield from fresh  # as items, offset=1 overlapped the first page: only its last item is new
            if unit == "pages":
                if len(probe) < page_size or not fresh:
                    return
                number = 2
        while True:
            got, fresh = page(number, unit)
            yield from fresh
            if len(got) < page_size or not fresh:
                return
            number += 1

    def keyword_searches_annotations(self) -> bool | None:
        """Whether ``item/list``'s keyword finds a word of an item's annotation (V1's
        documentation does not say): told apart once with an item from the first page whose
        annotation has a word that its name, tags and URL lack. None when no item can tell."""
        traits = self._traits
        if traits.keyword_searches_annotations is None:
            for item in self._get("/api/item/list", {"limit": 200, "offset": 0}) or []:
                word = _probe_word(item) if isinstance(item, dict) else None
                if word:
                    found = self._get("/api/item/list", {"limit": 200, "offset": 0, "keyword": word}) or []
                    traits.keyword_searches_annotations = any(
                        isinstance(i, dict) and i.get("id") == item.get("id") for i in found)
                    break
        return traits.keyword_searches_annotations

    def add_from_path(self, path: Path | str, name: str, *, website: str | None = None, annotation: str = "",
                      tags: Iterable[str] = (), folder_id: str | None = None) -> str:
        """Import a file through V1 (Eagle copies it into its library) and return the new item's
        id, found by listing since V1 does not return it."""
        entry = Import(Path(path), name, website, annotation, tuple(tags), (folder_id,) if folder_id else ())
        outcome = self._add_v1([entry], single=True)[0]
        if isinstance(outcome, TrackError):
            raise outcome
        return outcome

    def add(self, entry: Import) -> str:
        """Import one file, in all its folders where V2 can (else in the first one), and return
        the new item's id."""
        outcome = self.add_many([entry])[0]
        if isinstance(outcome, TrackError):
            raise outcome
        return outcome

    def add_many(self, entries: list[Import], befores: list[set[str]] | None = None) -> list[str | TrackError]:
        """Import several files with as few requests as the app allows: V2's ``item/add`` with
        ``items`` (its ids in order), else V1's ``addFromPaths`` (one per first folder: it takes
        one ``folderId``) and one polling loop for all. Returns each entry's new id, or the error
        that entry met (the others still imported). Never retried: a retry could import twice.
        ``befores``: per entry, the ids a search by its name found before (V1 tells the new item
        from them; searched here when not given)."""
        for entry in entries:
            if not entry.path.is_file():
                raise TrackError(f"Cannot import into Eagle: {entry.path} does not exist.",
                                 hint="Re-run the transcode step for this track.")
        if not entries:
            return []
        if not self.has_v2():
            return self._add_v1(entries, single=len(entries) == 1, befores=befores)
        out: list[str | TrackError] = []
        for start in range(0, len(entries), V2_BATCH):
            chunk = entries[start:start + V2_BATCH]
            bodies = [_v2_item(e) for e in chunk]
            data = self._post("/api/v2/item/add", bodies[0] if len(chunk) == 1 else {"items": bodies}) or {}
            ids = [data.get("id")] if len(chunk) == 1 else list(data.get("ids") or [])
            if len(ids) != len(chunk) or not all(isinstance(i, str) and i for i in ids):
                raise EagleError("Eagle accepted the import but did not return the new items' ids.",
                                 hint="The next sync adopts them instead of importing again.")
            out += ids
        return out

    def _add_v1(self, entries: list[Import], *, single: bool,
                befores: list[set[str]] | None = None) -> list[str | TrackError]:
        """V1: ``addFromPath`` (one file) or ``addFromPaths`` (per first folder), then poll."""
        if befores is None:
            befores = [{i["id"] for i in self.items(keyword=e.name, ext=_ext(e.path))} for e in entries]
        groups: dict[str | None, list[int]] = {}
        for index, entry in enumerate(entries):
            groups.setdefault(entry.folder_ids[0] if entry.folder_ids else None, []).append(index)
        for folder_id, indexes in groups.items():
            bodies = [_v1_item(entries[i]) for i in indexes]
            if single:
                self._post("/api/item/addFromPath", {**bodies[0], **({"folderId": folder_id} if folder_id else {})})
            else:
                self._post("/api/item/addFromPaths", {"items": bodies, **({"folderId": folder_id} if folder_id else {})})
        return self._wait_for(entries, befores)

    def _wait_for(self, entries: list[Import], befores: list[set[str]]) -> list[str | TrackError]:
        """The new items of a V1 import, found by listing each name: polled at 50 ms, doubling to
        1 s, for at most ``find_timeout_s`` (not every 50 ms: Eagle is busy importing)."""
        found: dict[int, str] = {}
        taken: set[str] = set()
        deadline = time.monotonic() + self.find_timeout_s
        pause = _POLL_FIRST_S
        while True:
            for index, entry in enumerate(entries):
                if index in found:
                    continue
                new = [i for i in self.items(keyword=entry.name, ext=_ext(entry.path))
                       if i["id"] not in befores[index] and i["id"] not in taken and i.get("name") == entry.name]
                size = entry.path.stat().st_size
                best = ([i for i in new if i.get("size") == size and (i.get("annotation") or "") == entry.annotation]
                        or [i for i in new if i.get("size") == size] or new)
                if best:
                    found[index] = best[0]["id"]
                    taken.add(best[0]["id"])
            left = time.monotonic() >= deadline
            if len(found) == len(entries) or left:
                break
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, _POLL_MAX_S)
        return [found[i] if i in found else EagleError(
            f"Eagle accepted {e.name!r} but the new item did not show up within {self.find_timeout_s:g} s.",
            hint="The next sync adopts it instead of importing again.") for i, e in enumerate(entries)]

    def update(self, item_id: str, *, tags: Iterable[str] | None = None, annotation: str | None = None,
               url: str | None = None, star: int | None = None, name: str | None = None,
               folders: Iterable[str] | None = None, is_deleted: bool | None = None) -> dict:
        """Change an item; fields left None are not sent. ``name``, ``folders`` and
        ``is_deleted`` need V2 (:meth:`has_v2`); without them V1's ``item/update`` is used."""
        body: dict[str, Any] = {"id": item_id}
        for field_name, value in (("tags", tags), ("folders", folders)):
            if value is not None:
                body[field_name] = list(value)
        for field_name, value in (("annotation", annotation), ("url", url), ("star", star), ("name", name),
                                  ("isDeleted", is_deleted)):
            if value is not None:
                body[field_name] = value
        v2_only = {"name", "folders", "isDeleted"} & body.keys()
        if v2_only and not self.has_v2():
            raise EagleError(f"Eagle's V1 API cannot change an item's {', '.join(sorted(v2_only))}.",
                             hint="Eagle 4.0 Build 21 or later has the V2 API that can.")
        data = self._post("/api/v2/item/update" if v2_only else "/api/item/update", body)
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
        if self._token:  # in the URL of every request, as Eagle documents (never in a body)
            query = {**query, "token": self._token}
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


def _ext(path: Path) -> str:
    return path.suffix.lstrip(".").lower()


def _v1_item(entry: Import) -> dict[str, Any]:
    """An ``addFromPath(s)`` item (V1: the folder is the request's ``folderId``)."""
    body: dict[str, Any] = {"path": str(entry.path.resolve()), "name": entry.name, "annotation": entry.annotation,
                            "tags": list(entry.tags)}
    if entry.website:
        body["website"] = entry.website
    return body


def _v2_item(entry: Import) -> dict[str, Any]:
    """A V2 ``item/add`` item: every folder at once."""
    return {**_v1_item(entry), "folders": list(entry.folder_ids)}


_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{3,}")


def _probe_word(item: Mapping[str, Any]) -> str | None:
    """A word of the item's annotation that its name, tags and URL lack: a keyword search that
    finds the item by it searched the annotation."""
    elsewhere = " ".join([str(item.get("name") or ""), str(item.get("url") or ""),
                          *(str(t) for t in item.get("tags") or [])]).lower()
    for word in _WORD_RE.findall(str(item.get("annotation") or "")):
        if word.lower() not in elsewhere:
            return word
    return None


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
    action: str  # "created" | "updated" | "unchanged" | "adopted" | "restored"
    #: what differs but the app cannot change on an existing item ("name", "folders": V1 only)
    stale: tuple[str, ...] = field(default=())
    #: the name the pipeline last gave the item (a name a person gave it in Eagle is kept)
    written_name: str | None = None


def annotation_for(record: EagleRecord) -> str:
    """The annotation we write: the record's text, then the marker line with the track key."""
    text = record.annotation.strip()
    return f"{text}\n{MARKER}{record.key}" if text else f"{MARKER}{record.key}"


def key_of(item: Mapping[str, Any]) -> str | None:
    """The track key an Eagle item carries in its annotation, if it is one of ours."""
    found = _MARKER_RE.findall(str(item.get("annotation") or ""))
    return found[-1] if found else None


@dataclass(frozen=True)
class Known:
    """What the catalog remembers of a track's item: its id, the name the pipeline last gave
    it, and whether the pipeline put it in the trash (as a duplicate's: to restore on undo)."""

    item_id: str | None = None
    written_name: str | None = None
    trashed_by_us: bool = False


def sync(client: EagleClient, record: EagleRecord, known: Known | str | None) -> EagleSync:
    """Make Eagle hold ``record``, writing only what differs; never imports a track twice.

    With the item id the catalog stored and that item alive in Eagle, its annotation, tags
    (merged: a user's own tags stay), URL and, with V2, name and folders are brought up to date
    ("updated") or left alone with no write at all ("unchanged"). An item the pipeline put in
    the trash comes out of it with V2 ("restored"). Otherwise an existing item is looked for
    before importing, by the marker of this key, else by the checksum of the file stored in the
    library (when this machine can read the library), else by name + extension + size: found →
    "adopted" (and brought up to date). Only then is the file imported ("created").
    """
    return sync_many(client, [(record, known)])[0]


def sync_many(client: EagleClient, jobs: list[tuple[EagleRecord, Known | str | None]],
              *, raise_errors: bool = True) -> list[EagleSync | TrackError]:
    """:func:`sync` for several tracks, their imports in one request where the app allows
    (see :meth:`EagleClient.add_many`). With ``raise_errors=False`` a track that fails is
    answered with its error and the others go on; errors that concern every track (Eagle
    closed, the token refused) are raised anyway."""
    out: list[EagleSync | TrackError | None] = [None] * len(jobs)
    pending: list[tuple[int, EagleRecord, list[str]]] = []
    ours: dict[str, dict[str, dict]] = {}  # ext -> our items by key, when keywords cannot find them
    named: dict[str, set[str]] = {}  # key -> ids a search by the track's name found (told from a new import)
    for index, (record, known) in enumerate(jobs):
        known = Known(known) if not isinstance(known, Known) else known
        try:
            if not record.path.is_file():
                raise TrackError(f"Cannot sync {record.key} to Eagle: {record.path} does not exist.",
                                 hint="Re-run the transcode step for this track.")
            done = _sync_existing(client, record, known, ours, named)
            if done is not None:
                out[index] = done
                continue
            folder_ids = [f for f in client.folder_ids(record.folders) if f]
            pending.append((index, record, folder_ids))
        except (EagleNotReachable, EagleTokenRejected):
            raise
        except TrackError as err:
            if raise_errors:
                raise
            out[index] = err
    if pending:
        v2 = client.has_v2()
        entries = [Import(r.path, r.name, r.website, annotation_for(r), r.tags, tuple(f)) for _, r, f in pending]
        befores = [named.get(r.key, set()) for _, r, _ in pending]
        for (index, record, folder_ids), outcome in zip(pending, client.add_many(entries, befores), strict=True):
            if isinstance(outcome, TrackError):
                if raise_errors:
                    raise outcome
                out[index] = outcome
            else:
                stale = ("folders",) if len(folder_ids) > 1 and not v2 else ()
                out[index] = EagleSync(outcome, "created", stale, record.name)
    return [o for o in out if o is not None]


def _sync_existing(client: EagleClient, record: EagleRecord, known: Known, ours: dict[str, dict[str, dict]],
                   named: dict[str, set[str]]) -> EagleSync | None:
    """The track's item brought up to date, when Eagle has one (by id, marker or file)."""
    if known.item_id:
        item = client.item(known.item_id)
        restored = False
        if item is not None and item.get("isDeleted") and known.trashed_by_us and client.has_v2():
            item = client.update(item["id"], is_deleted=False) or client.item(item["id"])
            restored = True
        if item is not None and not item.get("isDeleted"):
            result = _reconcile(client, item, record, adopted=False, written_name=known.written_name)
            return EagleSync(result.item_id, "restored", result.stale, result.written_name) if restored else result
    item = _find_existing(client, record, ours, named)
    if item is not None:
        return _reconcile(client, item, record, adopted=True, written_name=known.written_name)
    return None


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


def restore(client: EagleClient, item_ids: list[str]) -> list[str] | None:
    """Take items out of Eagle's trash (`dedup --undo`): V2 only; None when the app cannot
    (V1: the next sync imports the track again). Returns the ids restored now."""
    if not client.has_v2():
        return None
    restored = []
    for item_id in dict.fromkeys(item_ids):
        item = client.item(item_id)
        if item is not None and item.get("isDeleted"):
            client.update(item_id, is_deleted=False)
            restored.append(item_id)
    return restored


def _reconcile(client: EagleClient, item: dict, record: EagleRecord, *, adopted: bool,
               written_name: str | None) -> EagleSync:
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
    v2 = client.has_v2() if (item.get("name") != record.name or record.folders) else False
    stale = []
    name = item.get("name")
    # a name a person gave the item in Eagle stays: the pipeline renames only its own name
    if name != record.name and (written_name is None or name == written_name):
        if v2:
            changes["name"] = record.name
            name = record.name
        else:
            stale.append("name")
    if record.folders:
        have = [str(f) for f in item.get("folders") or []]
        wanted = client.folder_ids(record.folders, create=v2)
        if None in wanted or not set(wanted) <= set(have):
            if v2:  # filed in every playlist's folder; folders a person chose stay
                changes["folders"] = list(dict.fromkeys([*have, *(f for f in wanted if f)]))
            else:
                stale.append("folders")
    if changes:
        client.update(item["id"], **changes)
    action = "adopted" if adopted else ("updated" if changes else "unchanged")
    return EagleSync(item["id"], action, tuple(stale), record.name if name == record.name else written_name)


def _after_marker(annotation: str) -> str:
    """What a person wrote below our marker line: kept when the pipeline rewrites its part."""
    lines = annotation.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if _MARKER_RE.match(lines[index]):
            rest = "\n".join(lines[index + 1:])
            return f"\n{rest}" if rest.strip() else ""
    return ""


def _find_existing(client: EagleClient, record: EagleRecord, ours: dict[str, dict[str, dict]],
                   named: dict[str, set[str]]) -> dict | None:
    """An item that is already this track's: marked with its key (even renamed by a person),
    else holding its file (by checksum, else name, extension and size). ``named`` gets the ids
    the search by name found."""
    ext = _ext(record.path)
    candidates: dict[str, dict] = {}
    for item in client.items(keyword=record.name, ext=ext):
        candidates.setdefault(item["id"], item)
    named[record.key] = set(candidates)
    if client.keyword_searches_annotations():  # the key in the annotation finds a renamed item
        for item in client.items(keyword=record.key, ext=ext):
            candidates.setdefault(item["id"], item)
    else:  # keywords match names only (or cannot be told): our items of this extension, once
        if ext not in ours:
            ours[ext] = {k: i for i in client.items(ext=ext) if (k := key_of(i)) is not None}
        if (mine := ours[ext].get(record.key)) is not None:
            candidates.setdefault(mine["id"], mine)
    candidates = {k: i for k, i in candidates.items() if not i.get("isDeleted")}
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
