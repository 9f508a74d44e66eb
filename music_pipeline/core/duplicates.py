"""Dedup applied to a library: the check after ``fingerprint``, the library-wide pass,
keeper merge, moves to ``<library>/duplicates/`` and undo.

Nothing is deleted. A duplicate's files move to ``duplicates/<group>/`` under their path
relative to the library (loose files under their name), the catalog marks the track
``duplicate`` with its keeper, and the group row records every move and every keeper
field the merge filled, so ``undo`` puts everything back as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import dedup, fpindex, media, normalize
from .catalog import normalise_isrc
from .errors import TrackError
from .fingerprint import fingerprint_file
from .identity import canonical_url, looks_like_url
from .library import Library, read_source_tags

DUPLICATES_DIR = "duplicates"
MERGED_FIELDS = ("title", "artist", "album", "isrc", "cover_path", "webpage_url", "thumbnail_url")


class DedupError(TrackError):
    reason = "dedup"


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


def track_item(row: dict) -> dedup.Item:
    """A catalogued track as a dedup candidate."""
    bitrate = row.get("raw_bitrate_kbps")
    if bitrate is None and row.get("raw_path") and row.get("duration_s") and Path(row["raw_path"]).exists():
        bitrate = Path(row["raw_path"]).stat().st_size * 8 / 1000 / row["duration_s"]
    return dedup.Item(
        id=row["key"],
        name=normalize.parse(row.get("artist"), row.get("title")) if row.get("title") else None,
        urls=_canonical([row.get("source_url"), row.get("webpage_url"), *row.get("source_urls", [])]),
        isrc=normalise_isrc(row["isrc"]) if row.get("isrc") else None,
        fingerprint=fpindex.decode(row["fingerprint"]) if row.get("fingerprint") else None,
        lossless=bool(row.get("raw_lossless")), bits=row.get("raw_bits"), bitrate_kbps=bitrate,
        sample_rate=row.get("raw_sample_rate"), duration_s=row.get("duration_s"), codec=row.get("raw_codec"),
        metadata={"title": row.get("title"), "artist": row.get("artist"), "album": row.get("album"),
                  "isrc": row.get("isrc"), "cover": row.get("cover_path")},
        added=row.get("created_at") or "",
    )


def file_item(path: Path) -> dedup.Item:
    """A loose audio file as a dedup candidate: probed, its tags read, fingerprinted."""
    info = media.probe(path)
    tags = read_source_tags(path)
    source = _source_url_tag(path)
    result = fingerprint_file(path)
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
        metadata={**tags, "cover": info.has_cover}, added=f"{stamp:020.6f}", paths=(str(path),),
    )


def _source_url_tag(path: Path) -> str | None:
    """The source URL our tagging writes (and many downloaders do: WOAS / purl / comment)."""
    from . import tagging

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


def index_track(library: Library, key: str) -> None:
    row = library.track(key)
    if row.get("fingerprint"):
        library.catalog.index_fingerprint(key, fpindex.terms(fpindex.decode(row["fingerprint"])).tolist())


def index_backlog(library: Library) -> int:
    """Index fingerprints recorded before the index existed; returns how many."""
    backlog = library.catalog.unindexed_fingerprints()
    for key, fingerprint in backlog:
        library.catalog.index_fingerprint(key, fpindex.terms(fpindex.decode(fingerprint)).tolist())
    return len(backlog)


def check_track(library: Library, key: str) -> Verdict | None:
    """Is this freshly fingerprinted track a copy of one the library has? Runs before any
    analysis or transcode. Candidates come from the persistent index; the track joins the
    matches' group and the keeper rule decides: when an existing copy wins, this track is
    marked duplicate now (its raw audio moves to duplicates/); when this one wins (say a
    lossless copy of an MP3 already there), it goes on and the old copies are moved once
    it is done (``settle``), so the library is never without the song."""
    catalog = library.catalog
    index_backlog(library)
    index_track(library, key)
    row = library.track(key)
    mine = track_item(row)
    if mine.fingerprint is None:
        return None
    matched: dict[str, dedup.Item] = {}
    for other, _shared in catalog.fingerprint_candidates(fpindex.terms(mine.fingerprint).tolist(),
                                                         fpindex.MIN_SHARED, fpindex.STOP_DF, exclude=key):
        other_row = catalog.get(other)
        if other_row is None or other_row["status"] == "failed" or not other_row.get("fingerprint"):
            continue
        keeper_key = other_row.get("duplicate_of") or other
        if keeper_key in matched or keeper_key == key:
            continue
        item = track_item(other_row)
        if fpindex.score(mine.fingerprint, item.fingerprint) < fpindex.MATCH_THRESHOLD:
            continue
        keeper_row = catalog.get(keeper_key) if keeper_key != other else other_row
        matched[keeper_key] = track_item(keeper_row) if keeper_row else item
    if not matched:
        return None
    groups = dedup.find_groups([mine, *matched.values()])
    group = next((g for g in groups if key in g.members), None)
    if group is None:
        return None
    if group.keeper == key:
        save(library, group, state="pending")
        return Verdict(group, None)
    apply(library, group)
    return Verdict(group, group.keeper)


def settle(library: Library, key: str) -> list[dict]:
    """Apply the groups waiting for ``key`` (their keeper) to be done."""
    return [apply_saved(library, saved) for saved in library.catalog.groups(state="pending", keeper=key)]


# -- library-wide pass -----------------------------------------------------------------------------


def library_groups(library: Library) -> list[dedup.Group]:
    """Groups among the finished tracks (running ones are left alone until they finish)."""
    index_backlog(library)
    items = [track_item(row) for row in library.catalog.tracks("done")]
    return dedup.find_groups(items)


# -- applying and undoing ---------------------------------------------------------------------


def save(library: Library, group: dedup.Group, state: str, previous: dict | None = None,
         moves: list | None = None) -> dict:
    record = {"id": group.id, "keeper": group.keeper, "members": group.members, "state": state,
              "rule": dedup.KEEPER_RULE, "reason": group.reason,
              "evidence": [e.as_dict() for e in group.evidence], "previous": previous or {}, "moves": moves or []}
    library.catalog.save_group(record)
    return record


def apply(library: Library, group: dedup.Group) -> dict:
    """Merge the others into the keeper and move their files to duplicates/<group>/."""
    record = save(library, group, state="pending")
    return apply_saved(library, record)


def apply_saved(library: Library, record: dict) -> dict:
    catalog = library.catalog
    keeper = record["keeper"]
    keeper_row = catalog.get(keeper)
    previous: dict = {"status": {}, "keeper": {}, "keeper_urls": None}
    moves: list[list[str]] = []
    target = library.root / DUPLICATES_DIR / record["id"]
    try:
        for member in record["members"]:
            if member == keeper:
                continue
            row = catalog.get(member)
            if row is None:  # a loose file
                moves.append(_move(library, Path(member), target / Path(member).name))
                continue
            # A track caught mid-run goes back to the queue on undo, not to "running".
            previous["status"][member] = "queued" if row["status"] == "running" else row["status"]
            if keeper_row is not None:
                _merge(catalog, keeper_row, row, previous)
                keeper_row = catalog.get(keeper)
            moves.extend(_move_track(library, row, target))
            catalog.update(member, status="duplicate", duplicate_of=keeper if keeper_row else None,
                           dedup_group=record["id"])
    finally:  # record what did move even when a later move failed, so undo can find it
        record = {**record, "state": "applied", "previous": previous, "moves": moves}
        library.catalog.save_group(record)
    return record


def _merge(catalog, keeper_row: dict, row: dict, previous: dict) -> None:
    """Keeper's values win; its empty fields are filled; URLs and playlists are kept."""
    filled = {name: row[name] for name in MERGED_FIELDS if not keeper_row.get(name) and row.get(name)}
    for name in filled:
        previous["keeper"].setdefault(name, keeper_row.get(name))
    playlists = sorted(set(keeper_row.get("playlists", [])) | set(row.get("playlists", [])))
    if playlists != sorted(keeper_row.get("playlists", [])):
        previous["keeper"].setdefault("playlists", keeper_row.get("playlists", []))
        filled["playlists"] = json.dumps(playlists)
    if filled:
        catalog.update(keeper_row["key"], **filled)
    if previous["keeper_urls"] is None:
        previous["keeper_urls"] = keeper_row.get("source_urls", [])
    catalog.add_source_urls(keeper_row["key"], [row.get("source_url"), row.get("webpage_url"),
                                                *row.get("source_urls", [])])


def _move_track(library: Library, row: dict, target: Path) -> list[list[str]]:
    moves = []
    for record in library.catalog.files([row["key"]]):
        path = Path(record["path"])
        if path.exists():
            moves.append(_move(library, path, target / _relative(library, path)))
            library.catalog.move_file(path, Path(moves[-1][1]))
    for column in ("raw_path", "cover_path"):
        if row.get(column) and Path(row[column]).exists():
            path = Path(row[column])
            moves.append(_move(library, path, target / _relative(library, path)))
            library.catalog.update(row["key"], **{column: moves[-1][1]})
    return moves


def _relative(library: Library, path: Path) -> Path:
    try:
        return path.resolve().relative_to(library.root)
    except ValueError:
        return Path(path.name)


def _move(library: Library, source: Path, dest: Path) -> list[str]:
    if dest.exists():
        raise DedupError(f"{dest} already exists; not overwriting it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(dest))
    return [str(source), str(dest)]


def undo(library: Library, group_id: str) -> dict:
    """Put a group's files back where they were and restore the catalog as it was."""
    catalog = library.catalog
    record = catalog.group(group_id)
    if record is None:
        known = ", ".join(g["id"] for g in catalog.groups(state="applied")[-5:]) or "none"
        raise DedupError(f"There is no duplicate group {group_id}.", hint=f"Applied groups: {known}.")
    if record["state"] != "applied":
        raise DedupError(f"Group {group_id} is {record['state']}, not applied: nothing to undo.")
    blocked = [dest for source, dest in record["moves"] if Path(source).exists() or not Path(dest).exists()]
    if blocked:
        raise DedupError(f"Cannot undo {group_id}: {len(blocked)} file(s) were changed since "
                         f"(first: {blocked[0]}).", hint="Move the files back by hand; nothing was deleted.")
    for source, dest in reversed(record["moves"]):
        Path(source).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(dest, source)
        catalog.move_file(Path(dest), Path(source))
    for member, status in record["previous"].get("status", {}).items():
        row = catalog.get(member)
        if row is None:
            continue
        fields = {"status": status, "duplicate_of": None, "dedup_group": None}
        for column in ("raw_path", "cover_path"):
            for source, dest in record["moves"]:
                if row.get(column) == dest:
                    fields[column] = source
        catalog.update(member, **fields)
    keeper_fields = dict(record["previous"].get("keeper", {}))
    if "playlists" in keeper_fields:
        keeper_fields["playlists"] = json.dumps(keeper_fields["playlists"])
    if catalog.get(record["keeper"]) is not None:
        if keeper_fields:
            catalog.update(record["keeper"], **keeper_fields)
        if record["previous"].get("keeper_urls") is not None:
            catalog.set_source_urls(record["keeper"], record["previous"]["keeper_urls"])
    record = {**record, "state": "undone"}
    catalog.save_group(record)
    _prune_empty(library.root / DUPLICATES_DIR / group_id)
    return record


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
    if library is None or not (library.root / "catalog.sqlite").exists():
        return list(items)
    def norm(path: str) -> str:
        return os.path.normcase(str(Path(path).resolve()))

    owners = {norm(record["path"]): record["track_key"] for record in library.catalog.files()}
    for row in library.catalog.tracks():  # its original, and the inbox file it was imported from
        owners.update({norm(row[column]): row["key"] for column in ("raw_path", "source_path") if row.get(column)})
    merged: dict[str, dedup.Item] = {}
    result: list[dedup.Item] = []
    for item in items:
        owner = owners.get(norm(item.id))
        if owner is None:
            result.append(item)
        elif owner in merged:
            merged[owner].paths += item.paths
        else:
            row = library.catalog.get(owner)
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

