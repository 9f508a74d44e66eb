"""Dedup applied to a library: the check after ``fingerprint``, the library-wide pass,
keeper merge, moves to ``<library>/duplicates/`` and undo.

Nothing is deleted. A duplicate's files move to ``duplicates/<group>/`` under their path
relative to the library (loose files under their name), the catalog marks the track
``duplicate`` with its keeper, and the group row records every move and every keeper
field the merge filled, so ``undo`` puts everything back as it was.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..audio import analysis, bandlimit, media
from ..audio.fingerprint import fingerprint_float
from ..audio.tagging import read_source_tags
from ..domain import dedup, fpindex, lifecycle, normalize
from ..domain.errors import Reason, TrackError
from ..domain.identity import canonical_url, looks_like_url, normalise_isrc
from ..domain.lifecycle import Status
from .rows import DedupGroup, Track
from .steps import Library
from .store import DUPLICATES_DIR, copy_atomic

MERGED_FIELDS = ("title", "artist", "album", "isrc", "cover_path", "webpage_url", "thumbnail_url")


log = logging.getLogger(__name__)


class DedupError(TrackError):
    reason = Reason.DEDUP


# -- items ----------------------------------------------------------------------------------


def _canonical(urls: Iterable[str | None]) -> frozenset[str]:
    found = set()
    for url in urls:
        if url and looks_like_url(url):
            try:
                found.add(canonical_url(url))
            except TrackError:
                continue
    return frozenset(found)


def track_item(row: Track) -> dedup.Item:
    """A catalogued track as a dedup candidate."""
    bitrate = row.raw_bitrate_kbps
    if bitrate is None and row.raw_path and row.duration_s and Path(row.raw_path).exists():
        bitrate = Path(row.raw_path).stat().st_size * 8 / 1000 / row.duration_s
    return dedup.Item(
        id=row.key,
        name=normalize.parse(row.artist, row.title) if row.title else None,
        urls=_canonical([row.source_url, row.webpage_url, *row.source_urls]),
        isrc=normalise_isrc(row.isrc) if row.isrc else None,
        fingerprint=fpindex.decode(row.fingerprint) if row.fingerprint else None,
        lossless=bool(row.raw_lossless), bits=row.raw_bits, bitrate_kbps=bitrate,
        sample_rate=row.raw_sample_rate, duration_s=row.duration_s, codec=row.raw_codec,
        cutoff_hz=row.cutoff_hz, lossy_origin=bool(row.lossy_origin),
        leading_silence_s=row.leading_silence_s, trailing_silence_s=row.trailing_silence_s,
        metadata={"title": row.title, "artist": row.artist, "album": row.album,
                  "isrc": row.isrc, "cover": row.cover_path},
        added=row.created_at or "",
    )


def file_item(path: Path) -> dedup.Item:
    """A loose audio file as a dedup candidate: probed, its tags read, decoded once as the
    pipeline does (the fingerprint, the band limit and the silence at either end from it)."""
    path = Path(path).absolute()  # an id that means the same file from any working directory
    info = media.probe(path)
    tags = read_source_tags(path, info.tags)
    source = _source_url_tag(path)
    decoded = analysis.decode(path, loudness=False)
    result = fingerprint_float(decoded.signal, analysis.RATE)
    lead, trail = decoded.silence()
    stamp = path.stat().st_mtime
    return dedup.Item(
        id=str(path),
        name=normalize.parse(tags.get("artist"), tags.get("title") or path.stem),
        urls=_canonical([source]),
        isrc=normalise_isrc(tags["isrc"]) if tags.get("isrc") else None,
        fingerprint=fpindex.decode(result.fingerprint),
        lossless=info.lossless, bits=info.bits,
        bitrate_kbps=(info.bitrate / 1000 if info.bitrate else path.stat().st_size * 8 / 1000 / max(info.duration_s, 1e-3)),
        sample_rate=info.sample_rate, duration_s=info.duration_s, codec=info.codec,
        cutoff_hz=decoded.cutoff_hz, lossy_origin=bool(bandlimit.lossy_origin(info.lossless, decoded.cutoff_hz)),
        leading_silence_s=lead, trailing_silence_s=trail,
        metadata={**tags, "cover": info.has_cover}, added=f"{stamp:020.6f}", paths=(str(path),),
    )


def _source_url_tag(path: Path) -> str | None:
    """The source URL our tagging writes (and many downloaders do: WOAS / purl / comment)."""
    from ..audio import tagging

    for fmt in ("ALAC", "AIFF", "WAV", None):
        try:
            found = tagging.read_tags(path, fmt) if fmt else {}
        except Exception:  # a file of another kind than this format: try the next reader
            continue
        if found.get("source_url"):
            return found["source_url"]
    return None


def file_record(path: str) -> dict:
    """One file's item, or its error; runs in worker processes for ``music-pipeline dedup``."""
    try:
        return {"path": path, "item": file_item(Path(path))}
    except TrackError as err:
        return {"path": path, "error": str(err)}
    except Exception as err:  # one unreadable file must not stop the scan
        return {"path": path, "error": f"{type(err).__name__}: {err}"}


# -- the check after the fingerprint step ------------------------------------------------------


@dataclass
class Verdict:
    """What the fingerprint step learnt: ``duplicate_of`` set means stop here."""

    group: dedup.Group
    duplicate_of: str | None  # the keeper, when this track is not it

    @property
    def score(self) -> float | None:
        scores = [e.score for e in self.group.evidence if e.score is not None]
        return max(scores) if scores else None


def index_backlog(library: Library) -> int:
    """Index fingerprints recorded before the index existed; returns how many."""
    backlog = library.catalog.fingerprints.unindexed()
    for key, fingerprint in backlog:
        library.catalog.fingerprints.index(key, fpindex.terms(fpindex.decode(fingerprint)).tolist())
    return len(backlog)


def check_track(library: Library, key: str) -> Verdict | None:
    """Is this freshly fingerprinted track a copy of one the library has finished? Runs
    before any analysis or transcode.

    Candidates: the fingerprint index, and tracks with one of its source URLs, its ISRC or
    its normalised name; each is followed to its final keeper, and only finished keepers
    count (a copy still being processed, or failed, is not the library's song yet: both are
    processed and the library-wide pass groups them later). The keeper rule decides: when
    an existing copy wins, this track is marked duplicate now; when this one wins (a FLAC of
    a song the library has as an MP3) it goes on and the old copy moves aside only once this
    one is done (``settle``), so the library is never without the song."""
    catalog = library.catalog
    mine = track_item(library.track(key))
    found: set[str] = set()
    if mine.fingerprint is not None:
        terms = fpindex.terms(mine.fingerprint).tolist()
        catalog.fingerprints.index(key, terms)
        found |= {k for k, _ in catalog.fingerprints.candidates(terms, fpindex.MIN_SHARED, fpindex.STOP_DF,
                                                                exclude=key)}
    if mine.urls:
        found |= {k for url in mine.urls if (k := catalog.tracks.find_source(urls=[url])) is not None}
    if mine.isrc:
        found |= set(catalog.tracks.keys_by("isrc", mine.isrc))
    if mine.name is not None and mine.name.key and mine.name.artists:
        found |= set(catalog.tracks.keys_by("name_key", mine.name.key))
    keepers: dict[str, dedup.Item] = {}
    for other in found - {key}:
        final = catalog.tracks.keeper_of(other)
        final_row = catalog.tracks.get(final)
        if final == key or final in keepers or final_row is None or final_row.status != Status.DONE:
            continue
        try:
            keepers[final] = track_item(final_row)
        except Exception as err:  # a damaged row of another track must not fail this one
            log.warning("dedup check: skipping %s: %s", final, err)
    if not keepers:
        return None
    groups = find_groups(library, [mine, *keepers.values()])
    group = next((g for g in groups if key in g.members), None)
    if group is None:
        return None
    if group.keeper == key:
        save(library, group, state="pending")
        return Verdict(group, None)
    apply(library, group, running=key)
    return Verdict(group, group.keeper)


def settle(library: Library, key: str) -> tuple[list[DedupGroup], list[str]]:
    """Apply the pending groups ``key`` belongs to, now that it is done; returns the groups
    applied and a warning per group that could not be (left pending, retried later)."""
    applied, problems = [], []
    for record in library.catalog.groups.all(state="pending"):
        if key != record.keeper and key not in record.members:
            continue
        try:
            record = apply_saved(library, record)
        except Exception as err:  # a file in use, a full disk: the group stays pending, retried later
            problems.append(f"{record.id}: {err}")
            continue
        if record.state == "applied":
            applied.append(record)
    return applied, problems


def settle_all(library: Library) -> tuple[list[DedupGroup], list[str]]:
    applied, problems = [], []
    for record in library.catalog.groups.all(state="pending"):
        more, issues = settle(library, record.keeper)
        applied += more
        problems += issues
    return applied, problems


# -- library-wide pass -----------------------------------------------------------------------------


def library_groups(library: Library) -> list[dedup.Group]:
    """Groups among the finished tracks (running ones are left alone until they finish)."""
    return find_groups(library, [track_item(row) for row in library.catalog.tracks.all(Status.DONE)])


def find_groups(library: Library, items: Sequence[dedup.Item],
                threshold: float = fpindex.MATCH_THRESHOLD) -> list[dedup.Group]:
    """Groups among ``items`` that every pass may act on: what a user separated with
    `dedup --undo` is never grouped again (the command's pass, the library-wide one and the
    check after the fingerprint alike)."""
    separated = library.catalog.groups.undone_pairs() if library.has_catalog() else frozenset()
    return dedup.find_groups(items, threshold=threshold, separated=separated)


# -- applying and undoing ---------------------------------------------------------------------
#
# A group row is written before anything moves and again after every move, so whatever
# happens (a crash, a full disk, a file in use) undo knows exactly which files to put back.


def save(library: Library, group: dedup.Group, state: str) -> DedupGroup:
    """The group's row, written unless it exists already: an applied group is history, and an
    undone one is the user's decision, which a later pass finding the same members keeps
    (``apply`` leaves a group that is not pending as it is)."""
    existing = library.catalog.groups.get(group.id)
    if existing is not None and existing.state == "undone":
        return existing
    record = DedupGroup(id=group.id, keeper=group.keeper, members=list(group.members), state=state,
                        rule=dedup.KEEPER_RULE, reason=group.reason,
                        evidence=[e.as_dict() for e in group.evidence], previous={}, moves=[])
    if not library.catalog.groups.save(record):
        existing = library.catalog.groups.get(group.id)
        return existing if existing is not None else record
    return record


def apply(library: Library, group: dedup.Group, running: str | None = None) -> DedupGroup:
    """Merge the others into the keeper and move their files to duplicates/<group>/."""
    return apply_saved(library, save(library, group, state="pending"), running=running)


def apply_saved(library: Library, record: DedupGroup, running: str | None = None) -> DedupGroup:
    """Apply a saved group. Members still queued or running (other than ``running``, the
    track whose own step is asking) are left for later: the group stays pending until they
    have finished, so no file is moved from under a step that is using it."""
    if record.state != "pending":
        return record
    catalog = library.catalog
    keeper = record.keeper
    previous = record.previous  # what undo needs, filled in as the group is applied
    for part, empty in {"status": {}, "filled": {}, "prior": {}, "urls": [], "playlists": [], "repointed": {}}.items():
        previous.setdefault(part, empty)
    keeper_row = catalog.tracks.get(keeper)
    loose = [m for m in record.members if m != keeper and catalog.tracks.get(m) is None]
    waiting = False
    try:
        if loose:
            _move_loose(library, record, loose)
        for member in record.members:
            row = catalog.tracks.get(member) if member != keeper else None
            if row is None:
                continue
            if row.status == Status.DUPLICATE:  # already moved aside in another group: now it belongs here
                if row.duplicate_of != keeper:
                    previous["repointed"][member] = row.duplicate_of
                    catalog.tracks.update(member, duplicate_of=keeper)
                continue
            if row.status in (Status.QUEUED, Status.RUNNING) and member != running:
                waiting = True
                continue
            if keeper_row is not None and (keeper_row.status != Status.DONE and keeper != running):
                waiting = True  # the keeper is not finished: nothing moves before it is
                continue
            previous["status"][member] = lifecycle.before_set_aside(row.status)
            if keeper_row is not None:
                _merge(library, keeper_row, row, previous)
                keeper_row = catalog.tracks.get(keeper)
            library.decoded_cache(member).unlink(missing_ok=True)
            for path in _track_files(library, row):
                _move_logged(library, record, path, _destination(library, record.id, path))
            for dup in catalog.tracks.repoint_duplicates(member, keeper):
                previous["repointed"][dup] = member
            catalog.tracks.mark_duplicate(member, keeper, record.id)
    finally:
        record = dataclasses.replace(record, state="pending" if waiting else "applied")
        catalog.groups.save(record)
    if keeper_row is not None and record.state == "applied":
        library.after_merge(keeper)
    return record


def _track_files(library: Library, row: Track) -> list[Path]:
    paths = [Path(f.path) for f in library.catalog.files.all([row.key])]
    paths += [Path(p) for p in (row.raw_path, row.cover_path) if p]
    duplicates_root = library.root / DUPLICATES_DIR
    return [p for p in paths if p.exists() and not p.resolve().is_relative_to(duplicates_root)]


def _destination(library: Library, group_id: str, path: Path) -> Path:
    try:
        relative = path.resolve().relative_to(library.root)
    except ValueError:
        relative = Path(path.name)
    return library.root / DUPLICATES_DIR / group_id / relative


def _move_loose(library: Library, record: DedupGroup, members: list[str]) -> None:
    """Loose files keep their layout relative to the group's common folder (two songs.mp3
    from two folders do not collide); every destination is checked before anything moves."""
    paths = [Path(m).resolve() for m in members if Path(m).exists()]
    if not paths:
        return
    common = Path(os.path.commonpath([p.parent for p in paths]))
    target = library.root / DUPLICATES_DIR / record.id
    plan = [(p, target / p.relative_to(common)) for p in paths]
    taken = [str(dest) for _, dest in plan if dest.exists()]
    if taken:
        raise DedupError(f"{taken[0]} already exists; nothing of group {record.id} was moved.")
    for source, dest in plan:
        _move_logged(library, record, source, dest)


def _move_logged(library: Library, record: DedupGroup, source: Path, dest: Path) -> None:
    """Move one file and record it in the group at once (crash-safe undo)."""
    _move(source, dest)
    record.moves.append([str(source), str(dest)])
    library.catalog.files.move_file(source, dest)
    for column in ("raw_path", "cover_path"):
        library.catalog.tracks.repath(column, source, dest)
    library.catalog.groups.save(dataclasses.replace(record, state="pending"), replace_applied=False)


def _move(source: Path, dest: Path) -> None:
    """Rename, or across volumes copy to a hidden temporary beside ``dest``, rename, and
    only then remove the source: an interruption never leaves a half file as the copy."""
    if dest.exists():
        raise DedupError(f"{dest} already exists; not overwriting it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, dest)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise DedupError(f"Cannot move {source} to {dest}: {err.strerror}.") from err
        copy_atomic(source, dest)
        source.unlink()


def _merge(library: Library, keeper_row: Track, row: Track, previous: dict) -> None:
    """Keeper's values win; its empty fields are filled; URLs and playlists are kept. What
    the merge adds is recorded so undo takes away exactly that and nothing newer."""
    catalog = library.catalog
    filled = {name: getattr(row, name) for name in MERGED_FIELDS if not getattr(keeper_row, name) and getattr(row, name)}
    if "cover_path" in filled:  # the duplicate's cover moves away: the keeper gets its own copy
        own = library.raw_dir / f"{keeper_row.key}.cover.jpg"
        if not own.exists():
            copy_atomic(Path(row.cover_path), own)
        filled["cover_path"] = str(own)
    for name, value in filled.items():
        previous["prior"].setdefault(name, getattr(keeper_row, name))
        previous["filled"][name] = value
    for m in catalog.playlists.memberships(row.key):
        if catalog.playlists.add_membership(m.playlist_id, keeper_row.key, m.position, m.added_at):
            previous["playlists"].append(m.playlist_id)
    if filled:
        catalog.tracks.update(keeper_row.key, **filled)
    urls = {u for u in (row.source_url, row.webpage_url, *row.source_urls) if u}
    added_urls = sorted(urls - set(keeper_row.source_urls))
    if added_urls:
        previous["urls"] += added_urls
        catalog.tracks.add_source_urls(keeper_row.key, added_urls)


def undo(library: Library, group_id: str) -> DedupGroup:
    """Put a group's files back where they were and restore the catalog: the members'
    status, and on the keeper exactly what this group's merge added."""
    catalog = library.catalog
    record = catalog.groups.get(group_id)
    if record is None:
        known = ", ".join(g.id for g in catalog.groups.all(state="applied")[-5:]) or "none"
        raise DedupError(f"There is no duplicate group {group_id}.", hint=f"Applied groups: {known}.")
    if record.state == "undone":
        raise DedupError(f"Group {group_id} was already undone.")
    for source, _dest in record.moves:  # the keeper took over a plain name: it gets its suffix back
        if Path(source).exists() and catalog.files.path_owner(Path(source)) == record.keeper:
            library.step_aside(record.keeper, Path(source))
    blocked = [dest for source, dest in record.moves if Path(source).exists() or not Path(dest).exists()
               or not _reserve_back(catalog, Path(source), Path(dest))]
    if blocked:
        raise DedupError(f"Cannot undo {group_id}: {len(blocked)} file(s) were changed since "
                         f"(first: {blocked[0]}).", hint="Move the files back by hand; nothing was deleted.")
    for source, dest in reversed(record.moves):
        _move(Path(dest), Path(source))
        catalog.files.move_file(Path(dest), Path(source))
        for column in ("raw_path", "cover_path"):
            catalog.tracks.repath(column, Path(dest), Path(source))
    previous = record.previous
    for member, status in previous.get("status", {}).items():  # only members still set aside
        catalog.tracks.restore_status(member, status)
    for dup, keeper in previous.get("repointed", {}).items():
        if (row := catalog.tracks.get(dup)) is not None and row.duplicate_of == record.keeper:
            catalog.tracks.update(dup, duplicate_of=keeper)
    keeper_row = catalog.tracks.get(record.keeper)
    if keeper_row is not None:
        _unmerge(library, record, keeper_row)
    record = dataclasses.replace(record, state="undone")
    catalog.groups.save(record, replace_applied=True)
    _prune_empty(library.root / DUPLICATES_DIR / group_id)
    return record


def _reserve_back(catalog, source: Path, dest: Path) -> bool:
    """Reserve an output's old name for it before it moves back, so a run writing another
    same-named song meanwhile takes the other name; False when that song holds it already."""
    owner = catalog.files.path_owner(dest)
    record = next((f for f in catalog.files.all([owner]) if Path(f.path) == dest), None) if owner else None
    if record is None:  # an original or a cover: named by its key, nobody else's
        return True
    return catalog.files.reserve_path(owner, record.format, [source], free=lambda p: not p.exists()) is not None


def _unmerge(library: Library, record: DedupGroup, keeper_row: Track) -> None:
    catalog = library.catalog
    previous = record.previous
    others = [g for g in catalog.groups.all(state="applied") if g.keeper == record.keeper and g.id != record.id]
    still_added = {u for g in others for u in g.previous.get("urls", [])}
    fields = {name: previous.get("prior", {}).get(name) for name, value in previous.get("filled", {}).items()
              if getattr(keeper_row, name) == value}  # unchanged since the merge
    for playlist_id in set(previous.get("playlists", [])) - {
            p for g in others for p in g.previous.get("playlists", [])}:
        catalog.playlists.remove_membership(playlist_id, record.keeper)
    if fields:
        catalog.tracks.update(record.keeper, **fields)
    drop = set(previous.get("urls", [])) - still_added
    if drop:
        catalog.tracks.set_source_urls(record.keeper, [u for u in keeper_row.source_urls if u not in drop])
    if fields or drop:
        library.after_merge(record.keeper)


def _prune_empty(folder: Path) -> None:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()


# -- loose files (music-pipeline dedup PATH...) -------------------------------------------------------


def collapse_library_files(library: Library | None, items: Sequence[dedup.Item]) -> list[dedup.Item]:
    """One item per catalogued track: the ALAC, AIFF and WAV of one track (and its original)
    are one song in several formats, not duplicates; loose files stay items of their own."""
    if library is None or not library.has_catalog():
        return list(items)
    def norm(path: str) -> str:
        return os.path.normcase(str(Path(path).resolve()))

    owners = {norm(record.path): record.track_key for record in library.catalog.files.all()}
    for row in library.catalog.tracks.all():  # its original, and the inbox file it was imported from
        owners.update({norm(path): row.key for path in (row.raw_path, row.source_path) if path})
    merged: dict[str, dedup.Item] = {}
    result: list[dedup.Item] = []
    for item in items:
        owner = owners.get(norm(item.id))
        if owner is None:
            result.append(item)
        elif owner in merged:
            merged[owner].paths += item.paths
        else:
            row = library.catalog.tracks.get(owner)
            track = track_item(row) if row else item
            track.paths = item.paths
            if track.fingerprint is None:
                track.fingerprint = item.fingerprint
            merged[owner] = track
            result.append(track)
    return result


def paths_of(items: dict[str, dedup.Item], member: str) -> list[str]:
    item = items.get(member)
    return list(item.paths) if item and item.paths else [member]

