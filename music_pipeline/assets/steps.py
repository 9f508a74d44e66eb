"""The per-track steps as the UI reports them: what each per-track asset calls.

Each step calls the ``Library`` and returns a ``Done`` (the metadata of a materialisation)
or a ``Stop`` (the track goes no further: a duplicate, a Spotify track whose match needs a
human); a ``TrackError`` means the step failed for that track alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import MetadataValue

from ..core.audio.analysis import Settings
from ..core.domain.errors import TrackError
from ..core.domain.identity import redact_url
from ..core.domain.status import Status
from ..core.library import duplicates
from ..core.library.rows import DedupGroup
from ..core.library.steps import FileResult, Library
from ..core.sources import discovery, matching
from ..core.sources.download import resolve_id
from ..core.sources.spotify.client import SpotifyClient
from ..core.sources.ytdlp import DownloadOptions

Log = Callable[[str], None]
ASSET_NAMES = {"ALAC": "m4a_alac", "AIFF": "aiff", "WAV": "wav"}  # format -> its asset


@dataclass
class Done:
    metadata: dict


@dataclass
class Stop:
    """Not a failure: the track is set aside on purpose, and the rest of its steps skipped."""

    note: str
    metadata: dict = field(default_factory=dict)


def raw_audio(lib: Library, key: str, options: DownloadOptions, *, target: str | None = None,
              force: bool = False, log: Log = print, spotify: Callable[[], SpotifyClient] | None = None,
              search: Callable[[str], list] | None = None) -> Done | Stop:
    lib.ensure_registered(key, target, resolve=lambda url: resolve_id(url, options))
    existing = lib.track(key)
    if existing.status == Status.DUPLICATE:
        return duplicate_stop(lib, key, lib.catalog.groups.get(existing.dedup_group or ""), lib.catalog.tracks.keeper_of(key))
    url = None
    if existing.match_pinned and existing.status == Status.QUEUED:  # pinned by hand: fetch from there
        url, force = existing.match_url, force or bool(existing.raw_path)
    elif key.startswith("spotify-") and not (existing.raw_path and not force):
        try:  # Spotify audio is DRM-protected: download the matched upload instead
            url = discovery.download_url(lib, key, spotify,
                                       search or (lambda q: matching.search(q, options)))
        except discovery.NeedsReview as err:
            lib.catalog.tracks.mark_needs_review(key, "raw_audio", str(err))
            return review_stop(lib, key, str(err))
        log(f"{key}: downloading the match {redact_url(url)} (score {lib.track(key).match_score or 0:.2f})")
    if url and existing.match_pinned:
        log(f"{key}: downloading the pinned source {redact_url(url)}")
    lib.catalog.tracks.mark_running(key)
    row = lib.fetch_raw(key, options, log=log, force=force, url=url)
    metadata = {}
    if row.match_url:
        metadata["matched_source"] = MetadataValue.url(redact_url(row.match_url))
        metadata["match_score"] = row.match_score or 0.0
        metadata["match_pinned"] = bool(row.match_pinned)
        if isinstance(row.match, dict):
            metadata["match_candidates"] = MetadataValue.md(_candidates_table(row.match))
    return Done({**metadata,
        "path": MetadataValue.path(row.raw_path),
        "source": MetadataValue.url(redact_url(row.source_url)) if row.source_url
        else row.source_path or "",
        "title": row.title or "",
        "artist": row.artist or "",
        "codec": row.raw_codec,
        "sample_rate": row.raw_sample_rate,
        "bit_depth": row.raw_bits or 0,
        "lossless": bool(row.raw_lossless),
        "duration_s": row.duration_s,
        "cover_art": bool(row.cover_path),
    })


def fingerprint(lib: Library, key: str, log: Log = print, warn: Log = print) -> Done | Stop:
    result = lib.fingerprint(key)
    try:
        verdict = duplicates.check_track(lib, key)
    except Exception as err:  # the dedup check must never fail a good track: it only saves work
        warn(f"{key}: the duplicate check failed ({type(err).__name__}: {err}); processing it anyway")
        verdict = None
    if verdict is not None and verdict.duplicate_of:
        return duplicate_stop(lib, key, lib.catalog.groups.get(verdict.group.id), verdict.duplicate_of)
    metadata = {
        "covers_s": result.duration_s,
        "fingerprint_chars": len(result.fingerprint),
        "fingerprint_start": result.fingerprint[:32],
    }
    if verdict is not None:  # this copy beats the ones the library has: they go once it is done
        metadata["supersedes"] = ", ".join(verdict.group.others)
        metadata["dedup_group"] = verdict.group.id
        metadata["keeper_reason"] = verdict.group.reason
        log(f"{key} is a better copy of {', '.join(verdict.group.others)}: {verdict.group.reason}")
    return Done(metadata)


def review_stop(lib: Library, key: str, message: str) -> Stop:
    row = lib.track(key)
    metadata: dict = {"status": Status.NEEDS_REVIEW.value, "note": message}
    if isinstance(row.match, dict):
        metadata["candidates"] = MetadataValue.md(_candidates_table(row.match))
        metadata["review_reason"] = row.match.get("review_reason") or ""
    return Stop(f"{key} needs review: {message}", metadata)


def _candidates_table(match: dict) -> str:
    rows = ["| | score | title | channel | duration | url |", "|---|---|---|---|---|---|"]
    chosen = [match["best"]] if match.get("best") else []
    for index, c in enumerate(chosen + list(match.get("runners_up") or [])):
        mark = "best" if index == 0 and chosen else ""
        rows.append(f"| {mark} | {c['score']:.2f} | {c['title']} | {c.get('channel') or ''} "
                    f"| {c.get('duration_s') or '?'} s | {c['url']} |")
    return "\n".join(rows)


def duplicate_stop(lib: Library, key: str, group: DedupGroup | None, keeper: str) -> Stop:
    """A duplicate is not a failure: its rule and evidence, for the log and an observation."""
    group_id = group.id if group else ""
    note = (f"{key} is a duplicate of {keeper} (group {group_id}); analysis and transcodes skipped. "
            f"`music-pipeline dedup --undo {group_id}` separates them for good.")
    metadata: dict = {"duplicate_of": keeper, "dedup_group": group_id, "note": note}
    if group:
        scores = [e["score"] for e in group.evidence if e.get("score") is not None]
        if scores:
            metadata["fingerprint_score"] = max(scores)
        metadata["matched_by"] = ", ".join(sorted({e["by"] for e in group.evidence}))
        metadata["reason"] = group.reason
        metadata["keeper_rule"] = group.rule
    return Stop(note, metadata)


def audio_features(lib: Library, key: str, settings: Settings) -> Done:
    result = lib.analyse(key, settings)
    nan = float("nan")
    return Done({
        "bpm": result.bpm,
        "bpm_confidence": result.bpm_confidence,
        "key": result.key,
        "camelot": result.camelot,
        "open_key": result.open_key,
        "key_confidence": result.key_confidence,
        "lufs": result.lufs if result.lufs is not None else nan,
        "true_peak_db": result.true_peak_db if result.true_peak_db is not None else nan,
        "replaygain_track_gain_db": result.replaygain_track_gain_db
        if result.replaygain_track_gain_db is not None else nan,
        "duration_s": result.duration_s,
        # the band limit a lossy encoder left, and whether it makes a lossless file one of lossy origin
        "cutoff_hz": result.cutoff_hz if result.cutoff_hz is not None else nan,
        "lossy_origin": result.lossy_origin,  # None (shown empty) for a lossy file
    })


def file_metadata(result: FileResult) -> dict:
    metadata = {
        "path": MetadataValue.path(str(result.path)),
        "codec": result.codec,
        "sample_rate": result.sample_rate,
        "bit_depth": result.bits or 0,
        "duration_s": result.duration_s,
        "size_mb": round(result.size / 1e6, 2),
        "sha256": result.sha256,
    }
    if result.backup:
        metadata["backup"] = MetadataValue.path(str(result.backup))
    if result.replaced:
        metadata["previous_moved_to"] = ", ".join(str(p) for p in result.replaced)
    return metadata


def render(lib: Library, key: str, fmt: str) -> Done:
    """The path is in the metadata (no log line: every event costs a write in Dagster's store)."""
    return Done(file_metadata(result=lib.render(key, fmt)))


def verify(lib: Library, key: str, fmt: str, *, record: bool = True) -> list[str]:
    """The output check; with ``record`` a bad file fails the track (the catalog is the
    source of truth)."""
    row = lib.catalog.tracks.get(key)
    if row is not None and row.status == Status.DUPLICATE:  # moved aside on purpose, maybe before any output
        return []
    problems = lib.verify(key, fmt)
    if problems and record:
        lib.catalog.tracks.mark_failed(key, f"{ASSET_NAMES[fmt]} check",
                                f"{fmt} file failed verification: {'; '.join(problems)}", "check-failed")
    return problems


def catalog(lib: Library, key: str, warn: Log = print) -> Done:
    missing = lib.missing_parts(key)
    if missing:
        raise TrackError(f"{key} is incomplete: {', '.join(missing)}.",
                         hint="Materialise the missing assets for this track, then the catalog.")
    lib.catalog.tracks.mark_done(key)
    settled, problems = duplicates.settle(lib, key)
    for problem in problems:  # the old copies stay where they are; the next pass retries
        warn(f"could not set the older copies aside: {problem}")
    row, files = lib.track(key), lib.catalog.files.all([key])  # a settled group may have renamed them
    return Done({
        "status": row.status,
        "title": row.title or "",
        "artist": row.artist or "",
        "bpm": row.bpm or 0.0,
        "key": row.key_name or "",
        "camelot": row.camelot or "",
        "files": MetadataValue.md("\n".join(
            ["| format | path | MB |", "|---|---|---|"]
            + [f"| {f.format} | `{f.path}` | {f.size / 1e6:.2f} |" for f in files])),
        "catalog": MetadataValue.path(str(lib.catalog.path)),
        "superseded": ", ".join(m for g in settled for m in g.members if m != key),
    })
