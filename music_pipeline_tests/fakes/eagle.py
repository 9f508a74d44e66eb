"""A stateful fake of Eagle's local HTTP API (V1, https://api.eagle.cool, and the V2 API of
Eagle 4, developer.eagle.cool/web-api) on 127.0.0.1.

The real client (``music_pipeline.core.sources.eagle.EagleClient(fake.url, token=...)``) talks to
it over HTTP exactly as to ``http://localhost:41595``. Responses have Eagle's envelope,
``{"status": "success", "data": ...}`` or ``{"status": "error", "message": ...}``::

    with FakeEagle(tmp_path / "Music.library", token="secret", v2=True) as fake:
        fake.create_folder("Warmup")
        fake.fail_next(1, status=500)
        fake.stop()                                  # Eagle quit: connections are refused

What it models, following the documentation:

* ``POST /api/item/addFromPath {path, name, website, annotation, tags, folderId}`` answers
  ``{"status": "success"}`` **without the new item's id** (as the real API does), and COPIES the
  file into ``<library>/images/<id>.info/<name>.<ext>`` (plus a ``metadata.json``), so a checksum
  of the stored file is possible. A path that does not exist is an error. ``import_delay_s``
  makes a new item appear in ``item/list`` only after a while (Eagle imports asynchronously).
* ``POST /api/item/addFromPaths {items: [{path, name, website, annotation, tags}], folderId}``:
  the same for several files, one ``folderId`` for all, no ids in the answer.
* ``GET /api/item/info?id=``, ``GET /api/item/list?limit&offset&orderBy&keyword&ext&tags&folders``
  (a plain array; trashed items excluded; ``tags``: all given tags; ``folders``: any). Two
  things the documentation leaves open are switches, so the client is tested under both
  readings: ``offset_counts`` ("items": ``offset`` skips items; "pages": ``offset`` is a page
  number of ``limit`` items) and ``keyword_searches`` ("all": name, annotation, tags and url;
  "names": the name only), both case-insensitive.
* ``POST /api/item/update {id, tags, annotation, url, star}`` (name and folders cannot be
  changed through V1 and are ignored), ``POST /api/item/moveToTrash {itemIds}`` (sets
  ``isDeleted``; nothing is ever deleted).
* ``GET /api/folder/list`` (top-level folders with nested ``children``),
  ``POST /api/folder/create {folderName, parent}``, ``GET /api/library/info``
  (``data.library.path``), ``GET /api/application/info``.
* The V2 API, only while ``v2`` is on (off: 404, as an Eagle before 4.0 Build 21):
  ``GET /api/v2/app/info``; ``POST /api/v2/item/add`` with ``{path, name, tags, folders,
  annotation, website}`` answering ``{"id"}``, or ``{items: [...]}`` (at most 1000) answering
  ``{"ids"}`` in order; ``POST /api/v2/item/update {id, name, tags, folders, annotation, url,
  star, isDeleted}`` (only the fields sent change; ``isDeleted`` moves to or out of the trash)
  answering the updated item.
* A token, when configured: every request must carry it as the ``?token=`` query parameter
  (GET and POST alike, as the documentation says); missing or wrong, or sent only in a POST's
  body → HTTP 401 ``{"status": "error", "message": "..."}``. The exact status and wording of
  the real app were not verifiable; the client must not depend on them.

Not modelled: addFromURL(s), addBookmark, thumbnails, palettes, folder rename/update,
listRecent, library history/switch, smart folders, V2's item/get and query, tags and folders
endpoints, ``orderBy`` (creation order is always used).
"""

from __future__ import annotations

import json
import secrets
import shutil
import string
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import FakeServer, JsonHandler

_ID_ALPHABET = string.ascii_uppercase + string.digits


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Request:
    """One request the fake received. The token is never recorded, only whether one came."""

    at: float  # time.time() when it arrived
    method: str
    path: str
    query: dict[str, str]  # without the token
    body: Any  # parsed JSON body without the token, or None
    token_given: bool  # a ``?token=`` in the URL
    token_in_body: bool = False  # a ``token`` field in the JSON body (which Eagle does not read)
    status: int = 0  # the HTTP status the fake answered with

    @property
    def is_write(self) -> bool:
        return self.method == "POST"


@dataclass
class _Folder:
    id: str
    name: str
    parent: str | None
    modificationTime: int
    children: list[str] = field(default_factory=list)


class FakeEagle(FakeServer):
    """Eagle's local API on 127.0.0.1, with one library folder on disk."""

    def __init__(self, library: Path | str | None = None, *, token: str | None = None, v2: bool = False,
                 offset_counts: str = "items", keyword_searches: str = "all") -> None:
        super().__init__(_Handler)
        if offset_counts not in ("items", "pages") or keyword_searches not in ("all", "names"):
            raise ValueError("offset_counts: items|pages; keyword_searches: all|names")
        self.library = Path(library) if library else Path(tempfile.mkdtemp(prefix="fake-eagle-")) / "Fake.library"
        (self.library / "images").mkdir(parents=True, exist_ok=True)
        self.token = token
        #: what ``/api/library/info`` says the library path is (tests may point it elsewhere to
        #: play an Eagle whose library this machine cannot read)
        self.reported_library_path: str = str(self.library)
        self.import_delay_s: float = 0.0
        #: the V2 API (Eagle 4.0 Build 21 and later) answers; off, /api/v2/... is 404
        self.v2 = v2
        self.offset_counts = offset_counts
        self.keyword_searches = keyword_searches
        # --- state
        self._items: dict[str, dict] = {}  # id -> item in Eagle's shape (insertion = creation order)
        self._visible_at: dict[str, float] = {}  # id -> monotonic time from which item/list shows it
        self._folders: dict[str, _Folder] = {}
        self._top: list[str] = []  # top-level folder ids in creation order
        # --- observations: ``requests``, every Request received
        # --- internals
        self._failures: list[tuple[int, str | None]] = []
        self._clock_ms = 1_700_000_000_000

    def stop(self) -> None:
        """Eagle is not running any more: from now on connections are refused."""
        self.close()

    # ---- behaviour switches

    def fail_next(self, n: int, status: int = 500, *, path: str | None = None) -> None:
        """The next ``n`` requests (to ``path`` only, when given) fail with HTTP ``status`` and an
        error envelope; nothing is changed by a failed request."""
        with self._lock:
            self._failures.extend([(status, path)] * n)

    # ---- state helpers (no request recorded)

    def create_folder(self, name: str, parent: str | None = None) -> str:
        with self._lock:
            return self._create_folder(name, parent)["id"]

    def add_item(self, path: Path | str, name: str, **fields: Any) -> str:
        """Import a file directly, as a user dragging it into Eagle would (visible at once)."""
        with self._lock:
            item_id = self._import(Path(path), name, fields.get("website") or "", fields.get("annotation") or "",
                                   list(fields.get("tags") or []), list(fields.get("folders") or []))
            self._visible_at[item_id] = 0.0
            return item_id

    def edit_item(self, item_id: str, **changes: Any) -> None:
        """Change an item the way a user would in Eagle (any field, name and folders included)."""
        with self._lock:
            self._items[item_id].update(changes)
            self._items[item_id]["modificationTime"] = self._tick()

    def items(self, *, include_deleted: bool = True) -> list[dict]:
        """Copies of every item, trashed ones included unless asked otherwise."""
        with self._lock:
            return [json.loads(json.dumps(i)) for i in self._items.values()
                    if include_deleted or not i["isDeleted"]]

    def item(self, item_id: str) -> dict:
        with self._lock:
            return json.loads(json.dumps(self._items[item_id]))

    def stored_file(self, item_id: str) -> Path:
        item = self.item(item_id)
        return self.library / "images" / f"{item_id}.info" / f"{item['name']}.{item['ext']}"

    def folder_names(self) -> list[str]:
        """Every folder's name, nested ones included, in creation order."""
        with self._lock:
            return [f.name for f in self._folders.values()]

    def folder_id(self, name: str) -> str | None:
        with self._lock:
            return next((f.id for f in self._folders.values() if f.name == name), None)

    def writes(self, since: int = 0) -> list[Request]:
        """The write requests (POSTs) received from index ``since`` of ``requests`` on."""
        with self._lock:
            return [r for r in self.requests[since:] if r.is_write]

    def calls(self, path: str, since: int = 0) -> int:
        """How many requests to ``path`` arrived from index ``since`` of ``requests`` on."""
        with self._lock:
            return sum(1 for r in self.requests[since:] if r.path == path)

    # ---- internals (called with the lock held)

    def _tick(self) -> int:
        self._clock_ms += 1000
        return self._clock_ms

    def _new_id(self) -> str:
        while True:
            candidate = "L" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
            if candidate not in self._items and candidate not in self._folders:
                return candidate

    def _create_folder(self, name: str, parent: str | None) -> dict:
        if parent is not None and parent not in self._folders:
            raise _ApiError(200, "Parent folder does not exist.")
        folder = _Folder(self._new_id(), name, parent, self._tick())
        self._folders[folder.id] = folder
        if parent is None:
            self._top.append(folder.id)
        else:
            self._folders[parent].children.append(folder.id)
        return {"id": folder.id, "name": name, "images": [], "folders": [], "modificationTime": folder.modificationTime,
                "imagesMappings": {}, "tags": [], "children": [], "isExpand": True}

    def _folder_view(self, folder_id: str) -> dict:
        f = self._folders[folder_id]
        own = sum(1 for i in self._items.values() if folder_id in i["folders"] and not i["isDeleted"])
        children = [self._folder_view(c) for c in f.children]
        return {"id": f.id, "name": f.name, "description": "", "children": children,
                "modificationTime": f.modificationTime, "tags": [], "imageCount": own,
                "descendantImageCount": own + sum(c["descendantImageCount"] for c in children),
                "pinyin": f.name, "extendTags": []}

    def _import(self, src: Path, name: str, website: str, annotation: str, tags: list[str],
                folders: list[str]) -> str:
        if not src.is_file():
            raise _ApiError(200, f"File does not exist: {src}")
        for folder_id in folders:
            if folder_id not in self._folders:
                raise _ApiError(200, "Folder does not exist.")
        item_id = self._new_id()
        ext = src.suffix.lstrip(".").lower()
        info_dir = self.library / "images" / f"{item_id}.info"
        info_dir.mkdir(parents=True)
        shutil.copyfile(src, info_dir / f"{name}.{ext}")
        now = self._tick()
        item = {"id": item_id, "name": name, "size": src.stat().st_size, "btime": now, "mtime": now, "ext": ext,
                "tags": list(dict.fromkeys(tags)), "folders": folders, "isDeleted": False, "url": website,
                "annotation": annotation, "modificationTime": now, "lastModified": now, "width": 0, "height": 0,
                "palettes": []}
        (info_dir / "metadata.json").write_text(json.dumps(item))
        self._items[item_id] = item
        self._visible_at[item_id] = time.monotonic() + self.import_delay_s
        return item_id

    # ---- routes

    def _route(self, method: str, path: str, query: dict[str, str], body: dict) -> tuple[bool, Any]:
        """``(has_data, data)`` of a success envelope."""
        route = (method, path)
        if route == ("GET", "/api/application/info"):
            return True, {"version": "4.0.0", "prereleaseVersion": None, "buildVersion": "20250101",
                          "execPath": "/Applications/Eagle.app", "platform": "darwin"}
        if route == ("GET", "/api/library/info"):
            name = Path(self.reported_library_path).stem
            return True, {"folders": [self._folder_view(f) for f in self._top], "smartFolders": [],
                          "quickAccess": [], "tagsGroups": [], "modificationTime": self._clock_ms,
                          "applicationVersion": "4.0.0", "library": {"path": self.reported_library_path, "name": name}}
        if route == ("GET", "/api/folder/list"):
            return True, [self._folder_view(f) for f in self._top]
        if route == ("POST", "/api/folder/create"):
            name = body.get("folderName")
            if not isinstance(name, str) or not name:
                raise _ApiError(200, "folderName is required.")
            return True, self._create_folder(name, body.get("parent") or None)
        if route == ("GET", "/api/item/info"):
            item = self._items.get(query.get("id", ""))
            if item is None:
                raise _ApiError(200, "Item does not exist.")
            return True, item
        if route == ("GET", "/api/item/list"):
            return True, self._list(query)
        if route == ("POST", "/api/item/addFromPath"):
            path, name = body.get("path"), body.get("name")
            if not isinstance(path, str) or not path or not isinstance(name, str) or not name:
                raise _ApiError(200, "path and name are required.")
            folder_id = body.get("folderId")
            self._import(Path(path), name, body.get("website") or "", body.get("annotation") or "",
                         [str(t) for t in body.get("tags") or []], [folder_id] if folder_id else [])
            return False, None  # the real API returns no id
        if route == ("POST", "/api/item/addFromPaths"):
            entries = body.get("items")
            if not isinstance(entries, list) or not entries:
                raise _ApiError(200, "items is required.")
            folder_id = body.get("folderId")
            for entry in entries:
                self._import_entry(entry if isinstance(entry, dict) else {}, [folder_id] if folder_id else [])
            return False, None  # no ids, as addFromPath
        if path.startswith("/api/v2/"):
            if not self.v2:
                raise _ApiError(404, "Not Found")
            return self._route_v2(route, query, body)
        if route == ("POST", "/api/item/update"):
            item = self._items.get(body.get("id") or "")
            if item is None:
                raise _ApiError(200, "Item does not exist.")
            if "tags" in body:
                item["tags"] = list(dict.fromkeys(str(t) for t in body["tags"] or []))
            if "annotation" in body:
                item["annotation"] = body["annotation"] or ""
            if "url" in body:
                item["url"] = body["url"] or ""
            if "star" in body:
                item["star"] = body["star"]
            item["modificationTime"] = self._tick()
            return True, item
        if route == ("POST", "/api/item/moveToTrash"):
            ids = body.get("itemIds")
            if not isinstance(ids, list) or not ids:
                raise _ApiError(200, "itemIds is required.")
            missing = [i for i in ids if i not in self._items]
            if missing:
                raise _ApiError(200, "Item does not exist.")
            for item_id in ids:
                self._items[item_id]["isDeleted"] = True
                self._items[item_id]["modificationTime"] = self._tick()
            return False, None
        raise _ApiError(404, "Not Found")

    def _import_entry(self, entry: dict, folders: list[str]) -> str:
        """One file of an import request (``path`` and ``name`` required)."""
        path, name = entry.get("path"), entry.get("name")
        if not isinstance(path, str) or not path or not isinstance(name, str) or not name:
            raise _ApiError(200, "path and name are required.")
        return self._import(Path(path), name, entry.get("website") or "", entry.get("annotation") or "",
                            [str(t) for t in entry.get("tags") or []], folders)

    def _route_v2(self, route: tuple[str, str], query: dict[str, str], body: dict) -> tuple[bool, Any]:
        if route == ("GET", "/api/v2/app/info"):
            return True, {"version": "4.0.0", "buildVersion": "21", "platform": "darwin"}
        if route == ("POST", "/api/v2/item/add"):
            def folders_of(entry: dict) -> list[str]:
                return [str(f) for f in entry.get("folders") or []]
            if "items" in body:
                entries = body["items"]
                if not isinstance(entries, list) or not entries or len(entries) > 1000:
                    raise _ApiError(200, "items must hold 1 to 1000 items.")
                entries = [e if isinstance(e, dict) else {} for e in entries]
                ids = [self._import_entry(e, folders_of(e)) for e in entries]
                self._visible_now(ids)
                return True, {"ids": ids}
            item_id = self._import_entry(body, folders_of(body))
            self._visible_now([item_id])
            return True, {"id": item_id}
        if route == ("POST", "/api/v2/item/update"):
            item = self._items.get(body.get("id") or "")
            if item is None:
                raise _ApiError(200, "Item does not exist.")
            for name in ("name", "annotation", "url"):
                if name in body:
                    item[name] = str(body[name] or "")
            if "tags" in body:
                item["tags"] = list(dict.fromkeys(str(t) for t in body["tags"] or []))
            if "folders" in body:
                folders = [str(f) for f in body["folders"] or []]
                if any(f not in self._folders for f in folders):
                    raise _ApiError(200, "Folder does not exist.")
                item["folders"] = list(dict.fromkeys(folders))
            if "star" in body:
                item["star"] = body["star"]
            if "isDeleted" in body:
                item["isDeleted"] = bool(body["isDeleted"])
            item["modificationTime"] = self._tick()
            return True, item
        raise _ApiError(404, "Not Found")

    def _visible_now(self, ids: list[str]) -> None:
        """V2's add answers once the items exist: they are listed at once."""
        for item_id in ids:
            self._visible_at[item_id] = 0.0

    def _list(self, query: dict[str, str]) -> list[dict]:
        try:
            limit = int(query.get("limit") or 200)
            offset = int(query.get("offset") or 0)
        except ValueError as e:
            raise _ApiError(200, "limit and offset must be numbers.") from e
        keyword = (query.get("keyword") or "").lower()
        ext = (query.get("ext") or "").lower()
        tags = [t for t in (query.get("tags") or "").split(",") if t]
        folders = {f for f in (query.get("folders") or "").split(",") if f}
        now = time.monotonic()
        out = []
        for item in self._items.values():
            if item["isDeleted"] or self._visible_at.get(item["id"], 0.0) > now:
                continue
            if ext and item["ext"] != ext:
                continue
            if tags and not all(t in item["tags"] for t in tags):
                continue
            if folders and not folders & set(item["folders"]):
                continue
            searched = (item["name"],) if self.keyword_searches == "names" else \
                (item["name"], item["annotation"], item["url"], *item["tags"])
            if keyword and not any(keyword in s.lower() for s in searched):
                continue
            out.append(item)
        start = offset * limit if self.offset_counts == "pages" else offset
        return out[start:start + limit]


class _Handler(JsonHandler):
    owner: FakeEagle

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        fake = self.owner
        path, query = self._split()
        raw = self._body()
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        given = query.pop("token", None)  # Eagle reads the token from the URL only
        in_body = isinstance(body, dict) and "token" in body
        if in_body:
            body.pop("token")  # never recorded; not read either
        record = fake.record(Request(time.time(), method, path, query, body, given is not None, in_body))
        try:
            with fake._lock:
                at = next((i for i, (_, p) in enumerate(fake._failures) if p in (None, path)), None)
                failure = fake._failures.pop(at)[0] if at is not None else None
            if failure is not None:
                raise _ApiError(failure, "Internal Server Error")
            if fake.token is not None and not (isinstance(given, str) and secrets.compare_digest(given, fake.token)):
                raise _ApiError(401, "Unauthorized: the API token is missing or invalid.")
            if bad_json:
                raise _ApiError(400, "Invalid JSON body.")
            with fake._lock:
                has_data, data = fake._route(method, path, query, body if isinstance(body, dict) else {})
            status = 200
            payload: dict = {"status": "success", "data": json.loads(json.dumps(data))} if has_data else {"status": "success"}
        except _ApiError as e:
            status, payload = e.status, {"status": "error", "message": e.message}
        except Exception as e:  # a bug in the fake, or a name the file system refuses: 500 like a crashed route
            status, payload = 500, {"status": "error", "message": f"{type(e).__name__}: {e}"}
        record.status = status
        self._json(status, payload)
