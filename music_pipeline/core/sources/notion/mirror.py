"""The tracks database as a mirror of the catalog: find a track's page, write only what
changed, keep what a person typed, merge duplicates' pages, and read the queue.

Requests are what Notion's rate limit counts (about 3 a second for an integration), so the
mirror reads the database in pages of 100 into a snapshot kept for the life of the process
(a bulk run, the sensor daemon) and brings it up to date with one query for pages edited
since. A track whose page is unchanged costs no request; a new one costs one; a changed one
two (its page is read again just before the write, so a person's edit of the last seconds is
seen and kept).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ...domain.identity import canonical_url, normalise_isrc
from ...domain.records import TrackRecord
from . import mapping
from .api import NotionPageNotFound, NotionValidationError
from .mapping import FIELDS, SET_TYPES, URL_FIELDS, Schema

if TYPE_CHECKING:
    from ...library.rows import Mirror

_MISSING = object()
#: Fields a merge of duplicates' pages leaves as the keeper's page has them (identity and state).
_NOT_MERGED = ("title", "track_id", "status", "error", "processed")
_WRITABLE = ("title", "rich_text", "number", "select", "multi_select", "url", "checkbox", "date", "files", "relation")


class Api(Protocol):  # what the mirror needs of ``api.NotionApi``
    def query(self, data_source_id: str, *, filter: dict | None = None,
              sorts: list | None = None) -> Iterable[dict]: ...
    def retrieve(self, page_id: str) -> dict: ...
    def complete(self, page: dict) -> dict: ...
    def create(self, data_source_id: str, properties: dict, *, dedupe=None) -> dict: ...
    def update(self, page_id: str, *, properties: dict | None = None, in_trash: bool | None = None) -> dict: ...


@dataclass
class Outcome:
    """What one track's sync did."""

    page_id: str
    action: str  # created | updated | unchanged
    changed: list[str] = field(default_factory=list)  # property names written
    kept: list[str] = field(default_factory=list)  # properties a person edited, left as they are
    merged: list[tuple[str, dict]] = field(default_factory=list)  # (page id put in the trash, what it added)
    written: dict[str, Any] = field(default_factory=dict)  # what the pipeline has written there now
    url: str = ""
    notes: list[str] = field(default_factory=list)  # what could not be written as the library has it, and why


@dataclass
class Queued:
    page_id: str
    url: str
    title: str


class Snapshot:
    """The data source's live pages, read whole once and then refreshed by edit time."""

    #: Notion rounds ``last_edited_time`` down to the minute: refresh from a little before.
    OVERLAP = timedelta(minutes=2)

    def __init__(self, data_source_id: str, max_age_s: float = 30.0) -> None:
        self.data_source_id = data_source_id
        self.max_age_s = max_age_s
        self.pages: dict[str, dict] = {}
        self.loaded_at: float | None = None  # time.time() of the last read
        self._since: datetime | None = None

    def refresh(self, api: Api, *, force: bool = False) -> None:
        now = time.time()
        if not force and self.loaded_at is not None and now - self.loaded_at < self.max_age_s:
            return
        started = datetime.now(UTC)
        if self._since is None:
            self.pages = {p["id"]: p for p in api.query(self.data_source_id)}
        else:
            since = (self._since - self.OVERLAP).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            for page in api.query(self.data_source_id, filter={
                    "timestamp": "last_edited_time", "last_edited_time": {"on_or_after": since}}):
                self.put(page)
        self._since, self.loaded_at = started, now

    def put(self, page: dict) -> None:
        if page.get("in_trash") or page.get("archived"):
            self.pages.pop(page["id"], None)
        else:
            self.pages[page["id"]] = page


_snapshots: dict[str, Snapshot] = {}


def snapshot(data_source_id: str, max_age_s: float = 30.0) -> Snapshot:
    """This process's snapshot of a data source (shared by every sync in the process)."""
    if data_source_id not in _snapshots:
        _snapshots[data_source_id] = Snapshot(data_source_id, max_age_s)
    return _snapshots[data_source_id]


class Related:
    """A related database (artists, playlists): page ids by title, pages made when missing."""

    def __init__(self, api: Api, data_source_id: str, title_property: str) -> None:
        self.api, self.title_property = api, title_property
        self.snapshot = snapshot(data_source_id, max_age_s=300.0)

    def ids(self, names: Iterable[str]) -> tuple[str, ...]:
        self.snapshot.refresh(self.api)
        by_title = {}
        for page in self.snapshot.pages.values():
            by_title.setdefault(mapping.read(page["properties"].get(self.title_property, {})).casefold(), page["id"])
        out = []
        for name in names:
            if not name:
                continue
            if name.casefold() not in by_title:
                title = name[:2000]
                page = self.api.create(self.snapshot.data_source_id,
                                       {self.title_property: mapping.request("title", title)},
                                       dedupe=lambda title=title: self.api.query_one(  # a create that went through
                                           self.snapshot.data_source_id,
                                           filter={"property": self.title_property, "title": {"equals": title}}))
                self.snapshot.put(page)
                by_title[name.casefold()] = page["id"]
            out.append(by_title[name.casefold()])
        return tuple(sorted(set(out)))


class NotionMirror:
    """The tracks database, as ``schema`` says it can be written."""

    def __init__(self, api: Api, schema: Schema, *, related: dict[str, Related] | None = None,
                 max_age_s: float = 30.0) -> None:
        self.api, self.schema = api, schema
        self.related = related or {}
        self.snapshot = snapshot(schema.data_source_id, max_age_s)

    # -- reading pages ---------------------------------------------------------------------

    def _value(self, page: dict, name: str) -> Any:
        p = self.schema.prop(name)
        if p is None:
            return None
        return mapping.read(page["properties"].get(p.name, {"type": p.type}))

    def page_key(self, page: dict) -> str:
        return self._value(page, "track_id") or ""

    def page_urls(self, page: dict, *, any_text: bool = False) -> list[str]:
        """The page's source URLs (with ``any_text``, whatever is written in those properties)."""
        out = []
        for name in URL_FIELDS:
            value = self._value(page, name)
            for item in value if isinstance(value, tuple) else [value]:
                if isinstance(item, str) and item.strip() and (
                        any_text or item.strip().startswith(("http://", "https://"))):
                    out.append(item.strip())
        return out

    def find(self, record: TrackRecord, page_id: str | None = None, *, aliases: Iterable[str] = ()) -> list[dict]:
        """The live pages that are this track's, the one to keep first: the page the catalog
        knows, then one with the track's key, then by a source URL, then by ISRC. Pages that
        carry another track's key are that track's (``aliases``: keys merged into this one)."""
        self.snapshot.refresh(self.api)
        ours = {record.key, *aliases}
        identities = record.identities
        isrc = normalise_isrc(record.isrc) if record.isrc else ""
        ranked: list[tuple[int, str, dict]] = []
        if page_id and page_id not in self.snapshot.pages:
            try:
                page = self.api.retrieve(page_id)
            except NotionPageNotFound:  # deleted, or no longer shared: found again or made anew
                page = None
            if page is not None and not (page.get("in_trash") or page.get("archived")):
                self.snapshot.put(page)
        for page in self.snapshot.pages.values():
            key = self.page_key(page)
            if page["id"] == page_id:
                rank = 0
            elif key == record.key:
                rank = 1
            elif key and key not in ours:
                continue
            elif key:  # a duplicate's page: merged into this track's, never taken over by it
                rank = 5
            elif identities & {canonical_url(u) for u in self.page_urls(page)}:
                rank = 3
            elif isrc and normalise_isrc(self._value(page, "isrc") or "") == isrc:
                rank = 4
            else:
                continue
            ranked.append((rank, page.get("created_time", ""), page))
        return [page for _, _, page in sorted(ranked, key=lambda r: (r[0], r[1]))]

    # -- writing a track ---------------------------------------------------------------------

    def desired(self, record: TrackRecord) -> dict[str, Any]:
        """Property name -> canonical value the track's page should show."""
        out = {}
        for name, value in mapping.values(record).items():
            p = self.schema.prop(name)
            if p is None:
                continue
            if p.type == "relation":
                value = self.related[name].ids(value) if name in self.related else ()
            out[p.name] = mapping.canonical(p.type, value)
        return out

    def sync(self, record: TrackRecord, state: Mirror | None = None, *, aliases: Iterable[str] = (),
             again: bool = True) -> Outcome:
        """Create or update the track's page; ``state`` is the catalog's mirror row (page id
        and what was written there last). A page put in the trash since the snapshot was read
        no longer counts (the track gets a live page: the mirror shows what the library holds)."""
        known_id = state.remote_id if state else None
        pages = self.find(record, known_id, aliases=aliases)
        desired = self.desired(record)
        if not pages or (pages[0]["id"] != known_id and self.page_key(pages[0]) not in ("", record.key)):
            # no page, or only its duplicates' pages: a page of its own, theirs merged into it
            primary, created = self._create(record, desired)
            if not pages:
                return created
            others, written = pages, created.written
        else:
            primary, others = pages[0], pages[1:]
            written = _tuples(state.written) if state and known_id == primary["id"] else {}
            created = None
        primary = self._complete(primary)  # a relation cut at 25 in the page object, read whole
        updates, outcome = self._diff(primary, desired, written)
        if created is None and (updates or others):  # read it again before writing: a person's last edit wins
            primary = self.api.retrieve(primary["id"])
            if primary.get("in_trash") or primary.get("archived"):
                self.snapshot.put(primary)  # gone from the snapshot
                if again:
                    return self.sync(record, state, aliases=aliases, again=False)
            updates, outcome = self._diff(primary, desired, written)
        if created is not None:
            outcome.action, outcome.changed = "created", created.changed
            outcome.notes = list(dict.fromkeys(created.notes + outcome.notes))
        merging = []
        for other in others:  # read again (a merge must lose nothing); merged values are not the pipeline's
            other = self.api.retrieve(other["id"])
            if _trashed(other):  # a person put it in the trash since: theirs to keep there, not merged
                self.snapshot.put(other)
                continue
            merging.append(other)
            outcome.merged.append((other["id"], self._fold(other, primary, updates)))
        if updates:
            page = self.api.update(primary["id"], properties={n: mapping.request(t, v) for n, (t, v) in updates.items()})
            self.snapshot.put(page)
            if created is None:
                outcome.action = "updated"
            outcome.changed = sorted(set(outcome.changed) | set(updates))
        for other in merging:
            self.trash(other, note=f"merged into {primary.get('url') or primary['id']}")
        outcome.url = primary.get("url", "")
        return outcome

    def _complete(self, page: dict) -> dict:
        """``page`` with its relations whole (the snapshot keeps it so, until it changes)."""
        full = self.api.complete(page)
        if full is not page and page["id"] in self.snapshot.pages:
            self.snapshot.put(full)
        return full

    @staticmethod
    def _fit(name: str, kind: str, current: Any, new: Any, outcome: Outcome) -> Any:
        """``new`` as one request can write it (at most 100 names or related pages: more is
        refused), said in ``outcome``'s notes when it is not all; ``_MISSING``: left as it is."""
        if kind not in SET_TYPES or len(new) <= mapping.MAX_ITEMS:
            return new
        fitted = mapping.fit(tuple(current or ()), tuple(new))
        unchanged = fitted is None or fitted == tuple(current or ())
        outcome.notes.append(f"{name}: {len(new)} linked in the library, more than the {mapping.MAX_ITEMS} Notion "
                             f"takes in one request; " + ("left as it is" if unchanged else f"{len(fitted)} written"))
        return _MISSING if unchanged else fitted

    def _create(self, record: TrackRecord, desired: dict[str, Any]) -> tuple[dict, Outcome]:
        types = {p.name: p.type for p in self.schema.props.values()}
        fitted = Outcome("", "created")
        props = {n: self._fit(n, types[n], (), v, fitted) for n, v in desired.items() if not mapping.empty(v)}
        key_prop = self.schema.prop("track_id")

        def already() -> dict | None:  # a create that timed out may have gone through
            if key_prop is None:
                return None
            filt = {"property": key_prop.name, key_prop.type: {"equals": record.key}}
            return next(iter(self.api.query(self.schema.data_source_id, filter=filt)), None)

        page = self.api.create(self.schema.data_source_id,
                               {n: mapping.request(types[n], v) for n, v in props.items()}, dedupe=already)
        self.snapshot.put(page)
        return page, Outcome(page["id"], "created", changed=sorted(props), written=props, url=page.get("url", ""),
                             notes=fitted.notes)

    def _diff(self, page: dict, desired: dict[str, Any], written: dict[str, Any]) -> tuple[dict, Outcome]:
        updates: dict[str, tuple[str, Any]] = {}
        outcome = Outcome(page["id"], "unchanged")
        for p in self.schema.props.values():
            if p.name not in desired:
                continue
            want = desired[p.name]
            current = mapping.read(page["properties"].get(p.name, {"type": p.type, p.type: None}))
            last = written.get(p.name, _MISSING)
            new = mapping.decide(p.type, want, current, last, always=FIELDS[p.field].always, missing=_MISSING)
            if new is not _MISSING and p.type in SET_TYPES and len(new) > mapping.MAX_ITEMS:
                new = self._fit(p.name, p.type, current, new, outcome)
                # ours as far as they are there (what a person linked stays theirs), the rest tried again next sync
                there = set(current) if new is _MISSING else set(new)
                outcome.written[p.name] = tuple(sorted(there & set(want))) if last is _MISSING or new is not _MISSING \
                    else last
                if new is not _MISSING:
                    updates[p.name] = (p.type, new)
                continue
            if new is not _MISSING:
                updates[p.name] = (p.type, new)
                outcome.written[p.name] = want
            elif current == want or p.type in SET_TYPES:
                outcome.written[p.name] = want
            else:
                outcome.kept.append(p.name)
                if last is not _MISSING:
                    outcome.written[p.name] = last
        return updates, outcome

    # -- duplicates ----------------------------------------------------------------------

    def _fold(self, page: dict, into: dict, updates: dict) -> dict:
        """Fold ``page``'s values into the pending ``updates`` of page ``into``: name sets
        unioned (the person's own tags too), empty fields filled, the pipeline's identity and
        state left alone. Returns what was added (for `dedup --undo`)."""
        own = {p.name for p in self.schema.props.values() if p.field in _NOT_MERGED}
        added: dict[str, Any] = {}
        for name, prop in page["properties"].items():
            kind = prop.get("type")
            if name in own or kind not in _WRITABLE or kind == "title":
                continue
            theirs = mapping.read(prop)
            base = updates[name][1] if name in updates else \
                mapping.read(into["properties"].get(name, {"type": kind, kind: None}))
            if mapping.empty(theirs):
                continue
            if kind in SET_TYPES:
                extra = set(theirs) - set(base)
                if extra:
                    updates[name] = (kind, tuple(sorted(set(base) | extra)))
                    added[name] = sorted(extra)
            elif mapping.empty(base):
                updates[name] = (kind, theirs)
                added[name] = list(theirs) if isinstance(theirs, tuple) else theirs
        return added

    def merge(self, keeper_page_id: str, page_id: str) -> dict:
        """A duplicate's page merged into the keeper's and put in the trash (never deleted)."""
        keeper = self.api.retrieve(keeper_page_id)
        page = self.api.retrieve(page_id)
        updates: dict[str, tuple[str, Any]] = {}
        added = self._fold(page, keeper, updates)
        if updates:
            self.snapshot.put(self.api.update(keeper_page_id, properties={
                n: mapping.request(t, v) for n, (t, v) in updates.items()}))
        self.trash(page, note=f"merged into {keeper.get('url') or keeper_page_id}")
        return added

    def trash(self, page: dict, *, note: str = "") -> None:
        """``page`` (as just read) into Notion's trash, marked a duplicate with ``note``; one
        already there is left as it is (Notion answers 400 to trashing it again)."""
        if _trashed(page):
            self.snapshot.put(page)
            return
        page_id = page["id"]
        props = {}
        if (p := self.schema.prop("status")) is not None:
            props[p.name] = mapping.request(p.type, mapping.canonical(p.type, mapping.STATUS_LABELS["duplicate"]))
        if note and (p := self.schema.prop("error")) is not None:
            props[p.name] = mapping.request(p.type, note)
        page = self.api.update(page_id, properties=props or None, in_trash=True)
        self.snapshot.put(page)

    def restore(self, page_id: str, keeper_page_id: str | None, added: dict) -> None:
        """`dedup --undo`: the page out of the trash, and what its merge added taken off the keeper's page."""
        self.snapshot.put(self.api.update(page_id, in_trash=False))
        if not keeper_page_id or not added:
            return
        keeper = self.api.retrieve(keeper_page_id)
        props = {}
        for name, value in added.items():
            kind = keeper["properties"].get(name, {}).get("type")
            if kind is None:
                continue
            current = mapping.read(keeper["properties"][name])
            if kind in SET_TYPES:
                left = tuple(sorted(set(current) - set(value)))
                if left != tuple(current):
                    props[name] = mapping.request(kind, left)
            elif current == _tuple(value):
                props[name] = mapping.request(kind, None if kind != "files" else ())
        if props:
            self.snapshot.put(self.api.update(keeper_page_id, properties=props))

    # -- status ------------------------------------------------------------------------------

    def show_status(self, page_id: str, record: TrackRecord) -> bool:
        """The page's status (and error) follow the track: one write when they changed."""
        values = mapping.values(record)
        props = {}
        page = self.snapshot.pages.get(page_id)
        for name in ("status", "error"):
            p = self.schema.prop(name)
            if p is None:
                continue
            want = mapping.canonical(p.type, values[name])
            if page is None or mapping.read(page["properties"].get(p.name, {"type": p.type})) != want:
                props[p.name] = mapping.request(p.type, want)
        p = self.schema.prop("track_id")
        if p is not None and (page is None or not mapping.read(page["properties"].get(p.name, {"type": p.type}))):
            props[p.name] = mapping.request(p.type, record.key)
        if not props:
            return False
        try:
            self.snapshot.put(self.api.update(page_id, properties=props))
        except NotionValidationError:
            page = self.api.retrieve(page_id)
            if not (page.get("in_trash") or page.get("archived")):
                raise
            self.snapshot.put(page)  # a person put it in the trash: nothing to show there
            return False
        return True

    # -- the queue ---------------------------------------------------------------------------

    def queued(self) -> list[Queued]:
        """Pages a person added with a source URL and no status of the pipeline's yet."""
        conditions = []
        for name in URL_FIELDS:
            if (p := self.schema.prop(name)) is not None:
                conditions.append({"property": p.name, p.type: {"is_not_empty": True}})
        if not conditions:
            return []
        filters: list[dict] = [{"or": conditions}]
        if (p := self.schema.prop("track_id")) is not None:  # not taken yet
            filters.append({"property": p.name, p.type: {"is_empty": True}})
        out = []
        for page in self.api.query(self.schema.data_source_id, filter={"and": filters}):
            self.snapshot.put(page)
            if (item := self._queued(page)) is not None:
                out.append(item)
        return out

    def queued_pages(self, page_ids: list[str]) -> list[Queued]:
        """Those of these pages (fetched now) that are queued in the tracks database: what a
        webhook event names, checked as :meth:`queued` checks a page (an event carries no
        content, and may be late: the page may be taken, trashed or elsewhere by now)."""
        out = []
        for page_id in dict.fromkeys(page_ids):
            try:
                page = self.api.retrieve(page_id)
            except (NotionPageNotFound, NotionValidationError):  # not shared with the integration, or gone
                continue
            parent = page.get("parent") or {}
            if parent.get("data_source_id") != self.schema.data_source_id or page.get("in_trash") \
                    or page.get("archived"):
                continue
            self.snapshot.put(page)
            if (item := self._queued(page)) is not None:
                out.append(item)
        return out

    def _queued(self, page: dict) -> Queued | None:
        if self.page_key(page):
            return None  # already taken
        status = (self._value(page, "status") or "").strip().casefold()
        if status not in mapping.QUEUE_LABELS:
            return None
        given = self.page_urls(page) or self.page_urls(page, any_text=True)  # a path or a word: refused later
        return Queued(page["id"], given[0], self._value(page, "title") or "") if given else None


def _trashed(page: dict) -> bool:
    return bool(page.get("in_trash") or page.get("archived"))


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _tuples(written: dict) -> dict:
    """What the catalog stored (JSON lists) in canonical form (tuples)."""
    return {name: _tuple(value) for name, value in written.items()}
