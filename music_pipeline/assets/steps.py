"""The per-track steps as the UI reports them: what each per-track asset calls.

Each step calls core (``core/library/usecases.py`` decides: which source, the duplicate
stop, review, the checks, done) and turns its outcome into a ``Done`` (the metadata of a
materialisation) or a ``Stop`` (the track goes no further: a duplicate, a Spotify track
whose match needs a human); a ``TrackError`` means the step failed for that track alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import MetadataValue

from ..core.audio.analysis import Settings
from ..core.domain.identity import redact_url
from ..core.domain.lifecycle import Status
from ..core.library import usecases
from ..core.library.rows import Track, TrackFile
from ..core.library.steps import FileResult, Library
from ..core.sources.ytdlp import DownloadOptions

if TYPE_CHECKING:
    from ..core.sources.spotify.client import SpotifyClient

Log = Callable[[str], None]
ASSET_NAMES = {"ALAC": "m4a_alac", "AIFF": "aiff", "WAV": "wav"}  # format -> its asset


@dataclass
class Done:
    metadata: dict
    #: other tracks whose files this step renamed or retagged (a dedup merge): their
    #: partitions are recorded again, so their metadata in the UI matches the disk
    touched: list[str] = field(default_factory=list)


@dataclass
class Stop:
    """Not a failure: the track is set aside on purpose, and the rest of its steps skipped."""

    note: str
    metadata: dict = field(default_factory=dict)
    touched: list[str] = field(default_factory=list)  # as in Done


def raw_audio(lib: Library, key: str, options: DownloadOptions, *, target: str | None = None,
              force: bool = False, log: Log = print, spotify: Callable[[], SpotifyClient] | None = None,
              search: Callable[[str], list] | None = None) -> Done | Stop:
    outcome = usecases.fetch(lib, key, options, target=target, force=force, log=log, spotify=spotify, search=search)
    if isinstance(outcome, usecases.SetAside):
        return duplicate_stop(outcome)
    if isinstance(outcome, usecases.Review):
        return review_stop(outcome)
    return Done(raw_metadata(outcome.row))


def raw_metadata(row: Track) -> dict:
    """The raw_audio asset's metadata for a track's row: its original, its source, its match."""
    metadata = {}
    if row.match_url:
        metadata["matched_source"] = MetadataValue.url(redact_url(row.match_url))
        metadata["match_score"] = row.match_score or 0.0
        metadata["match_pinned"] = bool(row.match_pinned)
        if isinstance(row.match, dict):
            metadata["match_candidates"] = MetadataValue.md(_candidates_table(row.match))
    return {**metadata,
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
            "cover_art": bool(row.cover_path)}


def fingerprint(lib: Library, key: str, log: Log = print, warn: Log = print) -> Done | Stop:
    outcome = usecases.fingerprint(lib, key, log=log, warn=warn)
    if isinstance(outcome, usecases.SetAside):  # this track's original moved, the keeper retagged
        stop = duplicate_stop(outcome)
        stop.touched = list(outcome.group.members) if outcome.group else [key, outcome.keeper]
        return stop
    result = outcome.result
    metadata = {
        "covers_s": result.duration_s,
        "fingerprint_chars": len(result.fingerprint),
        "fingerprint_start": result.fingerprint[:32],
    }
    if outcome.supersedes is not None:  # this copy beats the ones the library has: they go once it is done
        metadata["supersedes"] = ", ".join(outcome.supersedes.others)
        metadata["dedup_group"] = outcome.supersedes.id
        metadata["keeper_reason"] = outcome.supersedes.reason
    return Done(metadata)


def review_stop(review: usecases.Review) -> Stop:
    metadata: dict = {"status": Status.NEEDS_REVIEW.value, "note": review.message}
    if review.match is not None:
        metadata["candidates"] = MetadataValue.md(_candidates_table(review.match))
        metadata["review_reason"] = review.match.get("review_reason") or ""
    return Stop(review.note, metadata)


def _candidates_table(match: dict) -> str:
    rows = ["| | score | title | channel | duration | url |", "|---|---|---|---|---|---|"]
    chosen = [match["best"]] if match.get("best") else []
    for index, c in enumerate(chosen + list(match.get("runners_up") or [])):
        mark = "best" if index == 0 and chosen else ""
        rows.append(f"| {mark} | {c['score']:.2f} | {c['title']} | {c.get('channel') or ''} "
                    f"| {c.get('duration_s') or '?'} s | {c['url']} |")
    return "\n".join(rows)


def duplicate_stop(aside: usecases.SetAside) -> Stop:
    """A duplicate is not a failure: its rule and evidence, for the log and an observation."""
    group = aside.group
    metadata: dict = {"duplicate_of": aside.keeper, "dedup_group": group.id if group else "", "note": aside.note}
    if group:
        scores = [e["score"] for e in group.evidence if e.get("score") is not None]
        if scores:
            metadata["fingerprint_score"] = max(scores)
        metadata["matched_by"] = ", ".join(sorted({e["by"] for e in group.evidence}))
        metadata["reason"] = group.reason
        metadata["keeper_rule"] = group.rule
    return Stop(aside.note, metadata)


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
        **grid_metadata(result),
    })


def grid_metadata(result) -> dict:
    """The beat grid and cues as the UI shows them: the headline figures, and a table."""
    grid = result.grid
    if grid is None:
        return {"grid": "none (no beat to grid: silence, noise or no steady pulse)"}
    state = "needs a look (the tempo drifts or changes)" if grid.needs_look else "ok"
    rows = ["| segment from (s) | BPM | beat in bar |", "|---|---|---|"]
    rows += [f"| {s.start_s:.3f} | {s.bpm:.2f} | {s.beat} |" for s in grid.segments]
    cue_rows = ["| cue | at (s) | name |", "|---|---|---|"]
    cue_rows += [f"| {'memory' if c.number < 0 else f'hot {chr(65 + c.number)}'} | {c.start_s:.3f} | {c.name} |"
                 for c in result.cues]
    return {
        "grid": state,
        "first_beat_s": grid.first_beat_s,
        "downbeat_s": round(grid.downbeat_s, 3),
        "beats_per_bar": grid.beats_per_bar,
        "grid_confidence": grid.confidence,
        "grid_segments": MetadataValue.md("\n".join(rows)),
        "cues": MetadataValue.md("\n".join(cue_rows)),
    }


def record_metadata(record: TrackFile) -> dict:
    """A format asset's metadata for a file as the catalog records it now."""
    return file_metadata(FileResult(fmt=record.format, path=Path(record.path), size=record.size,
                                    sha256=record.sha256, codec=record.codec,
                                    sample_rate=record.sample_rate, bits=record.bits,
                                    duration_s=record.duration_s))


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
    """The output check; with ``record`` a bad file fails the track (``usecases.verify``)."""
    return usecases.verify(lib, key, fmt, step=f"{ASSET_NAMES[fmt]} check", record=record)


def catalog(lib: Library, key: str, warn: Log = print) -> Done:
    finished = usecases.finish(lib, key, warn=warn)
    # the older copies moved, and this track's own files may have been renamed and retagged
    return Done(catalog_metadata(lib, key, finished.superseded),
                touched=[key, *finished.superseded] if finished.settled else [])


def catalog_metadata(lib: Library, key: str, superseded: list[str] = ()) -> dict:
    """The catalog asset's metadata: the track's row and its files as the catalog has them now."""
    row, files = lib.track(key), lib.catalog.files.all([key])
    return {
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
        "superseded": ", ".join(superseded),
    }
