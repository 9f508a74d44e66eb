"""A stateful fake of the Eagle app's local API on 127.0.0.1 (api.eagle.cool): items,
folders, a library folder it copies imported files into, a token, a trash, a request log.

It answers as Eagle does: ``{"status": "success", "data": ...}``; ``addFromPath`` copies
the file to ``<library>/images/<id>.info/<name>.<ext>`` and returns no id; ``item/list``
leaves out trashed items and pages with ``offset`` counted in pages; a wrong token gets
``{"status": "error"}``. ``stop()`` makes it unreachable, like the app closed.
"""

from __future__ import annotations

import json
import shutil
import string
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    at: float
    method: str
    path: str
    body: Any


class FakeEagle:
    def __init__(self, library: Path, token: str | None = None) -> None:
        self.library, self.token = library, token
        (library / "images").mkdir(parents=True, exist_ok=True)
        self.items: dict[str, dict] = {}
        self.folders: list[dict] = []
        self.calls: list[Call] = []
        self._seq = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeEagle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests ------------------------------------------------------------------

    def live(self) -> list[dict]:
        return [i for i in self.items.values() if not i["isDeleted"]]

    def folder_names(self) -> list[str]:
        return [f["name"] for f in self.folders]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST"]

    def _id(self) -> str:
        self._seq += 1
        alphabet = string.ascii_uppercase + string.digits
        n, out = self._seq * 7919, ""
        for _ in range(13):
            out += alphabet[n % len(alphabet)]
            n //= len(alphabet)
        return out

    # -- the API --------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body = {}
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            body = json.loads(handler.rfile.read(length) or b"{}")
        with self._lock:
            self.calls.append(Call(time.time(), method, parts.path, body))
            if self.token and (query.get("token") or body.get("token")) != self.token:
                answer = {"status": "error", "data": "Invalid token"}
            else:
                try:
                    answer = {"status": "success", "data": self._route(method, parts.path, query, body)}
                except _Refused as err:
                    answer = {"status": "error", "message": str(err)}
        data = json.dumps(answer).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, method: str, path: str, query: dict, body: dict) -> Any:
        if path == "/api/application/info":
            return {"version": "4.0.0", "platform": "linux"}
        if path == "/api/library/info":
            return {"library": {"path": str(self.library), "name": self.library.name}}
        if path == "/api/folder/list":
            return self.folders
        if path == "/api/folder/create" and method == "POST":
            folder = {"id": self._id(), "name": body["folderName"], "children": []}
            self.folders.append(folder)
            return folder
        if path == "/api/item/addFromPath" and method == "POST":
            source = Path(body.get("path") or "")
            if not source.is_file():
                raise _Refused(f"File not found: {source}")
            item_id = self._id()
            ext = source.suffix.lstrip(".").lower()
            stored = self.library / "images" / f"{item_id}.info" / f"{body['name']}.{ext}"
            stored.parent.mkdir(parents=True)
            shutil.copyfile(source, stored)
            self.items[item_id] = {
                "id": item_id, "name": body["name"], "ext": ext, "size": stored.stat().st_size,
                "tags": list(body.get("tags") or []), "folders": [body["folderId"]] if body.get("folderId") else [],
                "url": body.get("website") or "", "annotation": body.get("annotation") or "", "isDeleted": False,
                "modificationTime": int(time.time() * 1000)}
            return None  # Eagle answers addFromPath without the new item's id
        if path == "/api/item/info":
            item = self.items.get(query.get("id", ""))
            if item is None:
                raise _Refused("Item does not exist")
            return item
        if path == "/api/item/list":
            limit, offset = int(query.get("limit", 200)), int(query.get("offset", 0))
            found = [i for i in self.items.values() if not i["isDeleted"]
                     and (not query.get("keyword") or query["keyword"].lower() in i["name"].lower())
                     and (not query.get("ext") or query["ext"] == i["ext"])]
            return found[offset * limit:(offset + 1) * limit]
        if path == "/api/item/update" and method == "POST":
            item = self.items.get(body.get("id", ""))
            if item is None:
                raise _Refused("Item does not exist")
            for name in ("tags", "annotation", "url", "star"):
                if name in body:
                    item[name] = body[name]
            item["modificationTime"] = int(time.time() * 1000)
            return item
        if path == "/api/item/moveToTrash" and method == "POST":
            for item_id in body.get("itemIds") or []:
                if item_id in self.items:
                    self.items[item_id]["isDeleted"] = True
            return None
        raise _Refused(f"Unknown endpoint {method} {path}")


class _Refused(Exception):
    pass
