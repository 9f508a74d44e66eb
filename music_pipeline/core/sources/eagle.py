"""The Eagle app (eagle.cool) through its local API: import a track's file once, keep its
name, website, annotation, tags and folders up to date, and move duplicates to its trash.

Eagle answers ``{"status": "success", "data": ...}`` on http://localhost:41595 while the
app runs; ``addFromPath`` copies the file into Eagle's library and returns no item id, so
the item is found afterwards (and before, so nothing is imported twice) among the items
listed by name and extension: an item whose stored file has the track's checksum, else one
whose annotation carries the track's key (the annotation's last line, ``track: <key>``).
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..domain.errors import Reason, TrackError

DEFAULT_BASE = "http://localhost:41595"
PAGE = 200
KEY_LINE = "track: "


class EagleNotReachable(TrackError):
    """Eagle is not running (or not at this address): not the track's failure."""

    reason = Reason.SOURCE_UNAVAILABLE


class EagleError(TrackError):
    """Eagle answered with an error."""

    reason = Reason.SOURCE_UNAVAILABLE


class EagleAccessError(EagleError):
    """Eagle refused the token: the sink is misconfigured, not the track's failure."""

    reason = Reason.LOGIN
    misconfigured = True


@dataclass(frozen=True)
class EagleRecord:
    """What a track's Eagle item should look like."""

    key: str
    path: Path  # the file to import (the preferred format)
    name: str  # "Artist - Title"
    website: str | None
    annotation: str  # BPM, key, loudness
    tags: tuple[str, ...]
    folders: tuple[str, ...]  # one per playlist
    sha256: str

    @property
    def full_annotation(self) -> str:
        return f"{self.annotation}\n{KEY_LINE}{self.key}" if self.annotation else f"{KEY_LINE}{self.key}"


@dataclass
class EagleSync:
    item_id: str
    action: str  # created | updated | unchanged | adopted


class EagleClient:
    """Eagle's local API at ``base_url`` (with ``token`` when Eagle asks for one)."""

    def __init__(self, base_url: str = DEFAULT_BASE, token: str | None = None, timeout_s: float = 10.0) -> None:
        self.base_url, self._token, self.timeout_s = base_url.rstrip("/"), token, timeout_s
        self.requests = 0

    def __repr__(self) -> str:  # never the token
        return f"EagleClient({self.base_url})"

    def _call(self, method: str, path: str, params: dict | None = None, body: dict | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        if self._token:
            query["token"] = self._token
        url = f"{self.base_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None
        if method == "POST":
            data = json.dumps({**(body or {}), **({"token": self._token} if self._token else {})}).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - a local app
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            raise EagleError(f"Eagle answered {err.code} to {path}.",
                             hint="Check EAGLE_TOKEN if Eagle asks for one.") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise EagleNotReachable(f"Eagle not reachable at {self.base_url} ({reason}).",
                                    hint="Start the Eagle app, or set EAGLE_API_BASE (EAGLE_API_BASE=off stops "
                                         "trying).") from None
        if answer.get("status") != "success":
            message = self._clean(str(answer.get("message") or answer.get("data") or "error"))
            if "token" in message.lower():
                raise EagleAccessError(f"Eagle refused the API token ({message}).",
                                       hint="Set EAGLE_TOKEN to the token shown in Eagle's Preferences → Developer.")
            raise EagleError(f"Eagle refused {path}: {message}")
        return answer.get("data")

    def _clean(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    # -- endpoints ----------------------------------------------------------------------------

    def info(self) -> dict:
        return self._call("GET", "/api/application/info") or {}

    def library_path(self) -> Path | None:
        data = self._call("GET", "/api/library/info") or {}
        path = (data.get("library") or {}).get("path")
        return Path(path) if path else None

    def folders(self) -> list[dict]:
        return self._call("GET", "/api/folder/list") or []

    def ensure_folder(self, name: str) -> str:
        """The id of the top-level folder ``name``, created when missing."""
        for folder in self.folders():
            if folder.get("name") == name:
                return folder["id"]
        return self._call("POST", "/api/folder/create", body={"folderName": name})["id"]

    def item(self, item_id: str) -> dict | None:
        try:
            return self._call("GET", "/api/item/info", {"id": item_id})
        except EagleError:
            return None

    def items(self, *, keyword: str | None = None, ext: str | None = None) -> Iterator[dict]:
        offset = 0
        while True:
            page = self._call("GET", "/api/item/list", {"limit": PAGE, "offset": offset, "keyword": keyword,
                                                        "ext": ext}) or []
            yield from page
            if len(page) < PAGE:
                return
            offset += 1  # Eagle's offset counts pages

    def add_from_path(self, record: EagleRecord, folder_id: str | None) -> None:
        self._call("POST", "/api/item/addFromPath", body={
            "path": str(record.path), "name": record.name, "website": record.website or "",
            "annotation": record.full_annotation, "tags": list(record.tags), "folderId": folder_id})

    def update(self, item_id: str, **fields: Any) -> dict:
        return self._call("POST", "/api/item/update", body={"id": item_id, **fields})

    def move_to_trash(self, item_ids: list[str]) -> None:
        self._call("POST", "/api/item/moveToTrash", body={"itemIds": item_ids})


def _stored_sha256(library: Path | None, item: dict) -> str | None:
    """The checksum of the file Eagle keeps for ``item`` (``images/<id>.info/<name>.<ext>``)."""
    if library is None:
        return None
    path = library / "images" / f"{item['id']}.info" / f"{item.get('name', '')}.{item.get('ext', '')}"
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def find(client: EagleClient, record: EagleRecord) -> dict | None:
    """An item already imported for this track: same stored checksum, or our key in its annotation."""
    ext = record.path.suffix.lstrip(".").lower()
    library = None
    candidates = [i for i in client.items(keyword=record.name, ext=ext) if not i.get("isDeleted")]
    if candidates:
        library = client.library_path()
    for item in candidates:
        if _stored_sha256(library, item) == record.sha256:
            return item
    for item in candidates:
        if f"{KEY_LINE}{record.key}" in (item.get("annotation") or "").splitlines():
            return item
    return None


def sync(client: EagleClient, record: EagleRecord, known_id: str | None) -> EagleSync:
    """Import the track's file once and keep the item's fields up to date (tags a person
    added in Eagle are kept: ours are added to theirs). Every playlist has its folder; the
    item is imported into the first (Eagle's API files an item in one folder at import and
    cannot move it later), and every playlist is also a tag."""
    if not record.path.is_file():
        raise TrackError(f"{record.path} is missing, so it cannot be imported into Eagle.",
                         hint="Run the track again (`music-pipeline process reprocess`) to write it.")
    folder_ids = [client.ensure_folder(name) for name in record.folders]
    item = client.item(known_id) if known_id else None
    if item is not None and item.get("isDeleted"):
        item = None
    action = "updated"
    if item is None:
        item = find(client, record)
        action = "adopted"
    if item is None:
        client.add_from_path(record, folder_ids[0] if folder_ids else None)
        item = find(client, record)
        if item is None:
            raise EagleError(f"Eagle took {record.path.name} but does not list it.",
                             hint="Check Eagle's import settings; the next sync looks again.")
        action = "created"
    changes: dict[str, Any] = {}
    tags = sorted(set(item.get("tags") or []) | set(record.tags))
    if tags != sorted(item.get("tags") or []):
        changes["tags"] = tags
    if (item.get("annotation") or "") != record.full_annotation:
        changes["annotation"] = record.full_annotation
    if (item.get("url") or "") != (record.website or ""):
        changes["url"] = record.website or ""
    if changes:
        client.update(item["id"], **changes)
    elif action == "updated":
        action = "unchanged"
    return EagleSync(item["id"], action)


def trash(client: EagleClient, item_ids: list[str]) -> list[str]:
    """Move items to Eagle's trash (never deleted); the ids that were there to move."""
    present = [i for i in item_ids if (item := client.item(i)) is not None and not item.get("isDeleted")]
    if present:
        client.move_to_trash(present)
    return present
