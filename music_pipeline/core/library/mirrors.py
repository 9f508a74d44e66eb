"""The catalog's side of the mirrors: what each track looks like to Notion and Eagle, and the
record of which page or item is whose (the ``mirrors`` table), so every sync is idempotent.

The sinks decide how to write a track (``core.sources.notion``, ``core.sources.eagle``);
this module decides which tracks, in which state, and keeps the catalog's notes on them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..domain.errors import TrackError
from ..domain.identity import looks_like_url, redact_url, source_for
from ..domain.lifecycle import Status
from ..domain.records import OutputFile, TrackRecord
from ..sources import eagle
from ..sources.notion import mapping
from ..sources.notion.mirror import NotionMirror, Outcome
from .rows import Track
from .steps import Library

NOTION = "notion"
EAGLE = "eagle"
NOTION_QUEUE = "notion queue"  # tracks.discovered_from of a track queued from a Notion page


def track_record(lib: Library, key: str, playlist_names: dict[str, str] | None = None) -> TrackRecord:
    """The catalog's row for ``key`` as the mirrors show it."""
    row = lib.track(key)
    if playlist_names is None:
        playlist_names = {p.id: p.name for p in lib.catalog.playlists.all()}
    files = {f.format: OutputFile(Path(f.path), f.sha256, f.size) for f in lib.catalog.files.all([key])}
    artists = tuple(row.artists or ([row.artist] if row.artist else []))
    urls = tuple(dict.fromkeys(u for u in (row.webpage_url, row.spotify_url, row.match_url,
                                           *(row.source_urls or [])) if u and looks_like_url(u)))
    return TrackRecord(
        key=key, status=str(row.status), title=row.title or "", artists=artists,
        album=row.album or "", bpm=row.bpm, key_name=row.key_short or row.key_name or "",
        camelot=row.camelot or "", lufs=row.lufs, duration_s=row.duration_s,
        source_url=row.source_url, urls=urls, isrc=row.isrc or "", files=files,
        playlists=tuple(sorted({playlist_names[m.playlist_id] for m in lib.catalog.playlists.memberships(key)
                              if m.playlist_id in playlist_names})),
        genres=tuple(row.genres or ()), error=_error(row), processed_at=row.processed_at,
        lossless=bool(row.raw_lossless) if row.raw_lossless is not None else None)


def _error(row: Track) -> str:
    """The track's error; for a match that needs review, with the candidates to choose from."""
    text = row.error or ""
    match = row.match if isinstance(row.match, dict) else {}
    if row.status == Status.NEEDS_REVIEW and match:
        candidates = [c for c in [match.get("best"), *(match.get("runners_up") or [])] if c]
        lines = [f"{c.get('score', 0):.2f} {c.get('title', '')} {redact_url(c.get('url', ''))}" for c in candidates[:5]]
        if lines:
            text += "\nCandidates (`music-pipeline pin TRACK URL` picks one):\n" + "\n".join(lines)
    return text


def aliases(lib: Library, key: str) -> list[str]:
    """Tracks set aside as duplicates of ``key`` (their pages are ``key``'s to merge)."""
    return lib.catalog.tracks.duplicates_of(key)


# -- Notion ------------------------------------------------------------------------------------


def sync_notion(lib: Library, mirror: NotionMirror, key: str) -> Outcome:
    """Create or update ``key``'s page and note it in the catalog (pages of the same track
    made by hand are merged into it and put in the trash)."""
    record = track_record(lib, key)
    outcome = mirror.sync(record, lib.catalog.mirrors.get(key, NOTION), aliases=aliases(lib, key))
    lib.catalog.mirrors.set(key, NOTION, outcome.page_id, written=outcome.written,
                           status=mapping.STATUS_LABELS.get(record.status, record.status))
    for page_id, added in outcome.merged:
        owner = lib.catalog.mirrors.owner(NOTION, page_id) or key
        lib.catalog.mirrors.record_merge(NOTION, page_id, owner, outcome.page_id, added)
        if owner != key:
            lib.catalog.mirrors.set(owner, NOTION, page_id, status=mapping.STATUS_LABELS["duplicate"])
    return outcome


@dataclass
class FollowUp:
    statuses: int = 0  # pages whose status was brought up to date
    restored: list[str] = field(default_factory=list)  # pages taken out of the trash (an undone merge)
    merged: list[str] = field(default_factory=list)  # duplicates' pages merged into their keeper's
    errors: list[str] = field(default_factory=list)
    left: int = 0  # changes left for the next pass (the pass is bounded)


def follow_notion(lib: Library, mirror: NotionMirror, *, limit: int = 40, budget_s: float | None = None) -> FollowUp:
    """Pages follow their track: the status (and the error of a failed track) shown, and a
    page of a track set aside as a duplicate merged into its keeper's page and put in the
    trash. At most ``limit`` pages per pass (each is a request or three), and none begun after
    ``budget_s`` seconds (a sensor tick has a time limit); the rest is left for the next pass."""
    result = FollowUp()
    started = time.monotonic()
    try:  # pages merged away for tracks no longer duplicates (`dedup --undo` while Notion was away)
        result.restored = _restore_undone(lib, mirror)
    except TrackError as err:
        result.errors.append(f"pages to restore: {err}")
    labels = mapping.STATUS_LABELS
    pending = []
    for state in lib.catalog.mirrors.all(NOTION):
        status = str(state.track_status)
        if state.status != labels.get(status, status) or (
                status == Status.FAILED and state.written.get("__error") != (state.track_error or "")):
            pending.append(state)
    result.left = max(0, len(pending) - limit)
    for number, state in enumerate(pending[:limit]):
        if budget_s is not None and time.monotonic() - started > budget_s:
            result.left += min(limit, len(pending)) - number
            break
        key = state.track_key
        row = lib.track(key)
        try:
            if row.status == Status.DUPLICATE:
                keeper = lib.catalog.tracks.keeper_of(key)
                keeper_state = lib.catalog.mirrors.get(keeper, NOTION)
                if keeper_state is None:  # the keeper gets a page of its own, this one merged into it
                    sync_notion(lib, mirror, keeper)
                elif keeper_state.remote_id == state.remote_id:  # already the keeper's page: never trashed
                    lib.catalog.mirrors.forget(key, NOTION)
                else:
                    added = mirror.merge(keeper_state.remote_id, state.remote_id)
                    lib.catalog.mirrors.record_merge(NOTION, state.remote_id, key, keeper_state.remote_id, added)
                    lib.catalog.mirrors.set(key, NOTION, state.remote_id, status=labels["duplicate"])
                result.merged.append(key)
                continue
            record = track_record(lib, key)
            mirror.show_status(state.remote_id, record)
            written = {**state.written, "__error": row.error or ""}
            lib.catalog.mirrors.set(key, NOTION, state.remote_id, written=written,
                                   status=labels.get(str(row.status), str(row.status)))
            result.statuses += 1
        except TrackError as err:
            result.errors.append(f"{key}: {err}")
            if getattr(err, "misconfigured", False):
                break  # every other page would fail the same way
    return result


@dataclass
class Taken:
    keys: list[str] = field(default_factory=list)  # tracks registered from queued pages
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def take_queue(lib: Library, mirror: NotionMirror, resolve: Callable[[str], str] | None = None, *,
               limit: int = 50, budget_s: float | None = None, page_ids: list[str] | None = None) -> Taken:
    """Pages queued in Notion (a source URL, no status of ours) become tracks: each is
    registered, the page marked with its key and "Queued", and noted as the track's page. A
    page for a track the library already has is merged into that track's page. ``page_ids``:
    only these pages (a webhook's), where they are queued."""
    with _queue_lock(lib.root):  # the sensor and the webhook never take the same page at once
        return _take(lib, mirror, resolve, limit, budget_s, page_ids)


@contextlib.contextmanager
def _queue_lock(root: Path) -> Iterator[None]:
    """One taker of the Notion queue at a time on this library: the notion_queue sensor (the
    daemon) and Notion's webhook (the share endpoint's server) run on the machine of `up`."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".notion-queue.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):  # no flock on this volume: as before, unlocked
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _take(lib: Library, mirror: NotionMirror, resolve: Callable[[str], str] | None, limit: int,
          budget_s: float | None, page_ids: list[str] | None) -> Taken:
    taken = Taken()
    started = time.monotonic()
    queued = mirror.queued() if page_ids is None else mirror.queued_pages(page_ids)
    for item in queued[:limit]:
        if budget_s is not None and time.monotonic() - started > budget_s:
            break  # the rest next pass: they are still queued
        where = f"Notion page {item.title or item.page_id}"
        try:
            source = source_for(item.url, resolve)
            if source.kind != "url":
                raise TrackError(f"{item.url!r} is not a URL.", hint="Put a SoundCloud, YouTube or Spotify link in it.")
        except TrackError as err:
            message = f"{where}: {redact_url(item.url) if looks_like_url(item.url) else 'not a URL'}: {err}"
            taken.errors.append(message)
            _refuse(mirror, item.page_id, str(err))
            continue
        owner = lib.known_as(source) or (source.key if lib.catalog.tracks.get(source.key) else None)
        if owner is not None and (state := lib.catalog.mirrors.get(owner, NOTION)) is not None \
                and state.remote_id != item.page_id:
            added = mirror.merge(state.remote_id, item.page_id)
            lib.catalog.mirrors.record_merge(NOTION, item.page_id, owner, state.remote_id, added)
            taken.notes.append(f"{where}: {owner} is already in the library; merged into its page")
            continue
        key = owner or source.key
        if owner is None:
            lib.register(source, original=item.url)
            lib.catalog.tracks.update(key, discovered_from=NOTION_QUEUE)
        lib.catalog.mirrors.set(key, NOTION, item.page_id)
        row = lib.track(key)
        if Status(row.status).finished:
            sync_notion(lib, mirror, key)  # already processed: the page gets its data now
            taken.notes.append(f"{where}: {key} is already in the library; page filled in")
            continue
        mirror.show_status(item.page_id, track_record(lib, key))
        lib.catalog.mirrors.set(key, NOTION, item.page_id, status=mapping.STATUS_LABELS[str(row.status)])
        taken.keys.append(key)
        taken.notes.append(f"{where}: queued as {key}")
    return taken


def _refuse(mirror: NotionMirror, page_id: str, message: str) -> None:
    """A queued page the pipeline cannot take says so on the page (status Failed, the reason)."""
    props = {}
    for name, value in (("status", mapping.STATUS_LABELS["failed"]), ("error", message)):
        if (p := mirror.schema.prop(name)) is not None:
            props[p.name] = mapping.request(p.type, mapping.canonical(p.type, value))
    if props:
        mirror.snapshot.put(mirror.api.update(page_id, properties=props))


def _restore_undone(lib: Library, mirror: NotionMirror) -> list[str]:
    """Restore the pages of tracks whose own page was merged away as a duplicate's and that
    are duplicates no more (pages made by hand and merged stay merged)."""
    keys = []
    for merge in lib.catalog.mirrors.merges(NOTION):
        row, own = lib.catalog.tracks.get(merge.track_key), lib.catalog.mirrors.get(merge.track_key, NOTION)
        if row is not None and row.status != Status.DUPLICATE and own is not None \
                and own.remote_id == merge.remote_id:
            keys.append(merge.track_key)
    return undo_notion(lib, mirror, keys) if keys else []


def undo_notion(lib: Library, mirror: NotionMirror, keys: list[str]) -> list[str]:
    """`dedup --undo`: the pages merged away for ``keys`` back out of the trash, and what
    their merge added taken off the keeper's page. Returns the restored page ids."""
    restored = []
    for merge in lib.catalog.mirrors.merges(NOTION, keys):
        mirror.restore(merge.remote_id, merge.keeper_remote_id, merge.added)
        lib.catalog.mirrors.forget_merge(NOTION, merge.remote_id)
        lib.catalog.mirrors.set(merge.track_key, NOTION, merge.remote_id, status="")  # shown again next pass
        restored.append(merge.remote_id)
    return restored


# -- Eagle ---------------------------------------------------------------------------------


@dataclass
class EagleOutcome:
    item_id: str
    action: str
    trashed: list[str] = field(default_factory=list)  # items of duplicates moved to Eagle's trash
    stale: tuple[str, ...] = ()  # what Eagle's API cannot change on an existing item (name, folders)


def bpm_range(bpm: float | None) -> str:
    """A tag that groups tempos by tens (a DJ browses 120-129, not 123.4)."""
    if not bpm:
        return ""
    low = int(bpm // 10 * 10)
    return f"{low}-{low + 9} BPM"


def eagle_record(record: TrackRecord, fmt: str) -> eagle.EagleRecord:
    """What the track's Eagle item shows: the ``fmt`` file, named "Artist - Title"."""
    chosen = record.files.get(fmt)
    if chosen is None:
        raise TrackError(f"{record.key} has no {fmt} file to import into Eagle.",
                         hint="Set EAGLE_FORMAT to ALAC, AIFF or WAV (a format the library writes).")
    parts = [f"BPM {record.bpm:.1f}" if record.bpm else "",
             f"Key {record.key_name} ({record.camelot})" if record.key_name else "",
             f"{record.lufs:.1f} LUFS" if record.lufs is not None else ""]
    site = next((s for s in ("soundcloud", "youtube", "spotify") if record.site_url(s)), "file")
    tags = [*record.genres, record.key_name, record.camelot, bpm_range(record.bpm), *record.playlists, site]
    return eagle.EagleRecord(
        key=record.key, path=chosen.path, name=record.display_name, website=record.source_url,
        annotation=" · ".join(p for p in parts if p), tags=tuple(dict.fromkeys(t for t in tags if t)),
        folders=record.playlists, sha256=chosen.sha256)


def sync_eagle(lib: Library, client: eagle.EagleClient, key: str, fmt: str = "ALAC") -> EagleOutcome:
    """Import or update ``key``'s item (never twice), and move its duplicates' items to the trash."""
    outcome = sync_eagle_many(lib, client, [key], fmt, raise_errors=True)[key]
    assert isinstance(outcome, EagleOutcome)
    return outcome


def sync_eagle_many(lib: Library, client: eagle.EagleClient, keys: list[str], fmt: str = "ALAC", *,
                    raise_errors: bool = False) -> dict[str, EagleOutcome | TrackError]:
    """:func:`sync_eagle` for several tracks at once: the new ones imported together (one
    request where the app allows). Each track's outcome, or the error it met; an Eagle that is
    closed or refuses the token is raised (it would refuse every track)."""
    names = {p.id: p.name for p in lib.catalog.playlists.all()}
    jobs, records, out = [], [], {}
    for key in keys:
        try:
            record = track_record(lib, key, names)
            state = lib.catalog.mirrors.get(key, EAGLE)
            known = eagle.Known(state.remote_id, (state.written or {}).get("name"),
                                state.status == "trashed" and record.status != Status.DUPLICATE) \
                if state else eagle.Known()
            jobs.append((eagle_record(record, fmt), known))
            records.append(record)
        except TrackError as err:
            if raise_errors:
                raise
            out[key] = err
    results = eagle.sync_many(client, jobs, raise_errors=raise_errors)
    swept = False  # the library's duplicates go to the trash once a batch (the first outcome says so)
    for record, result in zip(records, results, strict=True):
        if isinstance(result, TrackError):
            out[record.key] = result
            continue
        lib.catalog.mirrors.set(record.key, EAGLE, result.item_id, status=record.status,
                                written={"name": result.written_name} if result.written_name else None)
        trashed = [] if swept else trash_eagle_duplicates(lib, client)
        swept = True
        out[record.key] = EagleOutcome(result.item_id, result.action, trashed, result.stale)
    return out


def restore_eagle(lib: Library, client: eagle.EagleClient, keys: list[str]) -> list[str] | None:
    """`dedup --undo`: the items the pipeline put in Eagle's trash for ``keys`` come back out
    (V2); None when the app cannot (V1: their next sync imports them again). Returns the keys
    whose items were restored."""
    states = {k: s for k in keys if (s := lib.catalog.mirrors.get(k, EAGLE)) is not None and s.status == "trashed"}
    if not states:
        return []
    restored = eagle.restore(client, [s.remote_id for s in states.values()])
    if restored is None:
        return None
    for key, state in states.items():
        if state.remote_id in restored:
            lib.catalog.mirrors.set(key, EAGLE, state.remote_id, status=str(lib.track(key).status))
    return [k for k, s in states.items() if s.remote_id in restored]


def trash_eagle_duplicates(lib: Library, client: eagle.EagleClient) -> list[str]:
    """Items of tracks set aside as duplicates go to Eagle's trash (never deleted); returns their keys."""
    pending = {s.track_key: s.remote_id for s in lib.catalog.mirrors.all(EAGLE)
               if s.track_status == Status.DUPLICATE and s.status != "trashed"}
    if not pending:
        return []
    trashed = set(eagle.trash(client, list(pending.values())))
    for key, item_id in pending.items():
        if item_id in trashed:
            lib.catalog.mirrors.set(key, EAGLE, item_id, status="trashed")
    return [k for k, i in pending.items() if i in trashed]
