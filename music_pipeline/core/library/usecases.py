"""What each per-track step decides, as plain functions over the ``Library``: which source
the raw audio comes from (the track's own, a pinned one, a Spotify track's match), when a
track stops as a duplicate or waits for review, when an output check fails the track, and
when it is done. The assets call these and report the outcome (metadata, logs); every
status change here is an event of the track's lifecycle (``domain/lifecycle.py``).

An outcome is either the step's result or a stop: ``SetAside`` (a copy of a track the
library keeps) or ``Review`` (a doubtful match waits for a person). A stop is not a
failure: the track's later steps are skipped on purpose. A ``TrackError`` is a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..audio.fingerprint import Fingerprint
from ..domain import dedup
from ..domain.errors import Reason, TrackError
from ..domain.identity import redact_url
from ..domain.lifecycle import Status
from ..sources import discovery, matching
from ..sources.download import resolve_id
from ..sources.ytdlp import DownloadOptions
from . import duplicates
from .rows import DedupGroup, Track, TrackFile
from .steps import Library

if TYPE_CHECKING:
    from ..sources.spotify.client import SpotifyClient

Log = Callable[[str], None]


# -- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetAside:
    """The track is a copy of ``keeper`` (dedup group ``group``): its run stops here."""

    key: str
    keeper: str
    group: DedupGroup | None

    @property
    def note(self) -> str:
        group_id = self.group.id if self.group else ""
        return (f"{self.key} is a duplicate of {self.keeper} (group {group_id}); analysis and transcodes skipped. "
                f"`music-pipeline dedup --undo {group_id}` separates them for good.")


@dataclass(frozen=True)
class Review:
    """No confident match for a Spotify track: nothing is downloaded until a person pins one."""

    key: str
    message: str
    match: dict | None  # the scored candidates, as the catalog keeps them

    @property
    def note(self) -> str:
        return f"{self.key} needs review: {self.message}"


@dataclass(frozen=True)
class Fetched:
    """The raw audio is in the library; ``row`` is the track's catalog row after it."""

    row: Track


@dataclass(frozen=True)
class Fingerprinted:
    """The fingerprint is in; ``supersedes`` is the group this copy will replace once done."""

    result: Fingerprint
    supersedes: dedup.Group | None = None


@dataclass(frozen=True)
class Finished:
    """The track is done; ``settled`` are the groups whose older copies moved aside now."""

    row: Track
    files: list[TrackFile]
    settled: list[DedupGroup] = field(default_factory=list)

    @property
    def superseded(self) -> list[str]:
        return [m for g in self.settled for m in g.members if m != self.row.key]


# -- which source -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Where the raw audio step gets the track from.

    ``kind``: ``"duplicate"`` (not fetched: set aside), ``"pinned"`` (the URL a person
    pinned), ``"match"`` (a Spotify track: its matched upload, found now or before) or
    ``"own"`` (the track's own URL or file)."""

    kind: str
    url: str | None = None
    force: bool = False  # download again even when a raw file is here


def plan_fetch(key: str, row: Track, *, force: bool = False) -> Plan:
    """The rules, in order: a duplicate is not fetched again; a source pinned by hand on a
    queued track is fetched from there (again, when a raw file is here from the old
    source); a Spotify track's audio is DRM-protected, so its matched upload is fetched
    unless its raw audio is here already (and not forced); anything else fetches itself."""
    if row.status == Status.DUPLICATE:
        return Plan("duplicate")
    if row.match_pinned and row.status == Status.QUEUED:
        return Plan("pinned", row.match_url, force or bool(row.raw_path))
    if key.startswith("spotify-") and not (row.raw_path and not force):
        return Plan("match", None, force)
    return Plan("own", None, force)


def fetch(lib: Library, key: str, options: DownloadOptions, *, target: str | None = None, force: bool = False,
          log: Log = print, spotify: Callable[[], SpotifyClient] | None = None,
          search: Callable[[str], list[matching.Candidate]] | None = None) -> Fetched | SetAside | Review:
    """The raw audio step: register the track if a run brought its target, choose the
    source (``plan_fetch``), match a Spotify track (a doubtful match stops as review), then
    start the track and download or import it."""
    lib.ensure_registered(key, target, resolve=lambda url: resolve_id(url, options))
    row = lib.track(key)
    plan = plan_fetch(key, row, force=force)
    if plan.kind == "duplicate":
        return SetAside(key, lib.catalog.tracks.keeper_of(key), lib.catalog.groups.get(row.dedup_group or ""))
    url = plan.url
    if plan.kind == "match":
        try:
            url = discovery.download_url(lib, key, spotify, search or (lambda q: matching.search(q, options)))
        except discovery.NeedsReview as err:
            lib.catalog.tracks.mark_needs_review(key, "raw_audio", str(err))
            return review(lib, key, str(err))
        log(f"{key}: downloading the match {redact_url(url)} (score {lib.track(key).match_score or 0:.2f})")
    if url and row.match_pinned:
        log(f"{key}: downloading the pinned source {redact_url(url)}")
    lib.catalog.tracks.mark_running(key)
    return Fetched(lib.fetch_raw(key, options, log=log, force=plan.force, url=url))


def review(lib: Library, key: str, message: str) -> Review:
    match = lib.track(key).match
    return Review(key, message, match if isinstance(match, dict) else None)


# -- the duplicate stop -----------------------------------------------------------------------


def fingerprint(lib: Library, key: str, *, log: Log = print, warn: Log = print) -> Fingerprinted | SetAside:
    """Fingerprint the raw audio and check it against the library before any other work: a
    copy of a finished track stops here (set aside now); a better copy of one goes on, and
    the old one moves aside once this one is done. The check only saves work, so it never
    fails a good track."""
    result = lib.fingerprint(key)
    try:
        verdict = duplicates.check_track(lib, key)
    except Exception as err:  # noqa: BLE001 - see the docstring
        warn(f"{key}: the duplicate check failed ({type(err).__name__}: {err}); processing it anyway")
        verdict = None
    if verdict is not None and verdict.duplicate_of:
        return SetAside(key, verdict.duplicate_of, lib.catalog.groups.get(verdict.group.id))
    if verdict is not None:
        log(f"{key} is a better copy of {', '.join(verdict.group.others)}: {verdict.group.reason}")
    return Fingerprinted(result, verdict.group if verdict is not None else None)


# -- checks and the end -----------------------------------------------------------------------


def verify(lib: Library, key: str, fmt: str, *, step: str, record: bool = True) -> list[str]:
    """The output check of ``fmt``: what is wrong with its file. With ``record`` a bad file
    fails the track as ``step`` (the catalog is the source of truth). A duplicate is not
    checked: it was moved aside on purpose, maybe before any output."""
    row = lib.catalog.tracks.get(key)
    if row is not None and row.status == Status.DUPLICATE:
        return []
    problems = lib.verify(key, fmt)
    if problems and record:
        lib.catalog.tracks.mark_failed(key, step, f"{fmt} file failed verification: {'; '.join(problems)}", Reason.ERROR)
    return problems


def finish(lib: Library, key: str, *, warn: Log = print) -> Finished:
    """The catalog step: done once every output, the features and the fingerprint are in;
    older copies this track replaces are set aside now (a failure to is a warning: they stay
    where they are and the next pass retries)."""
    missing = lib.missing_parts(key)
    if missing:
        raise TrackError(f"{key} is incomplete: {', '.join(missing)}.",
                         hint="Materialise the missing assets for this track, then the catalog.")
    lib.catalog.tracks.mark_done(key)
    settled, problems = duplicates.settle(lib, key)
    for problem in problems:
        warn(f"could not set the older copies aside: {problem}")
    return Finished(lib.track(key), lib.catalog.files.all([key]), settled)  # a settled group may have renamed them
