"""Per-track assets: one node per step, one partition per track.

Each asset calls one ``Library`` step, reports what it wrote as metadata, and turns a
``TrackError`` into a Dagster ``Failure`` whose description is the user's message (the
same message is stored in the track's catalog row). Files are the assets: nothing is
returned through an IO manager.
"""


import contextlib
from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetObservation,
    Config,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ..core import duplicates
from ..core.download import resolve_id
from ..core.errors import TrackError
from ..core.identity import redact_url
from ..core.library import FileResult, Library
from ..resources import AnalysisResource, DownloaderResource, LibraryResource

tracks = DynamicPartitionsDefinition(name="tracks")

#: Run tag carrying the URL or file a run was requested for, so the run can register the
#: track itself when it was asked for from elsewhere (`music-pipeline add`).
TARGET_TAG = "music_pipeline/target"

GROUP = "track"


@contextlib.contextmanager
def track_step(context: AssetExecutionContext, library: Library, step: str) -> Iterator[str]:
    """Run one step for the context's track, recording failures in the catalog."""
    key = context.partition_key
    try:
        yield key
    except TrackError as err:
        library.catalog.mark_failed(key, step, str(err), err.reason)
        context.log.error(f"{key}: {err}")
        raise Failure(description=str(err), metadata={"track": key, "step": step, "reason": err.reason},
                      allow_retries=False) from err
    except Exception as err:
        message = f"Unexpected error in {step}: {type(err).__name__}: {err}"
        library.catalog.mark_failed(key, step, message, "internal")
        raise


class RawAudioConfig(Config):
    force_download: bool = False
    """Download or import again even when the original is already in the library."""


@asset(partitions_def=tracks, group_name=GROUP, pool="download", kinds={"yt-dlp", "ffmpeg"},
       output_required=False)
def raw_audio(context: AssetExecutionContext, config: RawAudioConfig, library: LibraryResource,
              downloader: DownloaderResource) -> Iterator[MaterializeResult]:
    """The original audio, downloaded with yt-dlp (best audio, not re-encoded) or imported
    from a local file, with the source's metadata and cover art. A track already set aside
    as a duplicate is not fetched again (its run stops here)."""
    lib = library.get()
    with track_step(context, lib, "raw_audio") as key:
        lib.ensure_registered(key, context.run.tags.get(TARGET_TAG),
                              resolve=lambda url: resolve_id(url, downloader.options()))
        existing = lib.track(key)
        if existing["status"] == "duplicate":
            _report_duplicate(context, key, lib.catalog.group(existing["dedup_group"] or ""),
                              lib.catalog.keeper_of(key))
            return
        lib.catalog.mark_running(key)
        row = lib.fetch_raw(key, downloader.options(), log=context.log.info, force=config.force_download)
    yield MaterializeResult(metadata={
        "path": MetadataValue.path(row["raw_path"]),
        "source": MetadataValue.url(redact_url(row["source_url"])) if row.get("source_url")
        else row.get("source_path") or "",
        "title": row.get("title") or "",
        "artist": row.get("artist") or "",
        "codec": row["raw_codec"],
        "sample_rate": row["raw_sample_rate"],
        "bit_depth": row["raw_bits"] or 0,
        "lossless": bool(row["raw_lossless"]),
        "duration_s": row["duration_s"],
        "cover_art": bool(row.get("cover_path")),
    })


@asset(partitions_def=tracks, group_name=GROUP, deps=[raw_audio], kinds={"chromaprint"}, output_required=False)
def fingerprint(context: AssetExecutionContext, library: LibraryResource) -> Iterator[MaterializeResult]:
    """The Chromaprint fingerprint of the raw audio, checked against the library's
    fingerprint index before any other work. A copy of a track the library already has
    stops here: it is marked duplicate, its raw audio moves to ``duplicates/``, and the
    analysis, transcodes and catalog steps are skipped. Decodes the track once for this
    and the analysis."""
    lib = library.get()
    with track_step(context, lib, "fingerprint") as key:
        result = lib.fingerprint(key)
    try:
        verdict = duplicates.check_track(lib, key)
    except Exception as err:  # the dedup check must never fail a good track: it only saves work
        context.log.warning(f"{key}: the duplicate check failed ({type(err).__name__}: {err}); processing it anyway")
        verdict = None
    if verdict is not None and verdict.duplicate_of:
        _report_duplicate(context, key, lib.catalog.group(verdict.group.id), verdict.duplicate_of)
        return
    metadata = {
        "covers_s": result.duration_s,
        "fingerprint_chars": len(result.fingerprint),
        "fingerprint_start": result.fingerprint[:32],
    }
    if verdict is not None:  # this copy beats the ones the library has: they go once it is done
        metadata["supersedes"] = ", ".join(verdict.group.others)
        metadata["dedup_group"] = verdict.group.id
        metadata["keeper_reason"] = verdict.group.reason
        context.log.info(f"{key} is a better copy of {', '.join(verdict.group.others)}: {verdict.group.reason}")
    yield MaterializeResult(metadata=metadata)


def _report_duplicate(context: AssetExecutionContext, key: str, group: dict | None, keeper: str) -> None:
    """A duplicate is not a failure: say so in the log and as an observation with the
    group's rule and evidence, and skip the rest of the track's steps."""
    group_id = group["id"] if group else ""
    message = (f"{key} is a duplicate of {keeper} (group {group_id}); analysis and transcodes skipped. "
               f"`music-pipeline dedup --undo {group_id}` separates them for good.")
    context.log.info(message)
    metadata: dict = {"duplicate_of": keeper, "dedup_group": group_id, "note": message}
    if group:
        scores = [e["score"] for e in group["evidence"] if e.get("score") is not None]
        if scores:
            metadata["fingerprint_score"] = max(scores)
        metadata["matched_by"] = ", ".join(sorted({e["by"] for e in group["evidence"]}))
        metadata["reason"] = group["reason"]
        metadata["keeper_rule"] = group["rule"]
    context.log_event(AssetObservation(asset_key=context.asset_key, partition=key, metadata=metadata))


@asset(partitions_def=tracks, group_name=GROUP, deps=[raw_audio, fingerprint], kinds={"librosa"})
def audio_features(context: AssetExecutionContext, library: LibraryResource,
                   analysis: AnalysisResource) -> MaterializeResult:
    """BPM, key (canonical, Camelot, Open Key) with confidences, EBU R128 loudness, true peak
    and ReplayGain 2.0 gain of the raw audio, from the decode the fingerprint step made."""
    lib = library.get()
    with track_step(context, lib, "audio_features") as key:
        result = lib.analyse(key, analysis.settings())
    return MaterializeResult(metadata={
        "bpm": result.bpm,
        "bpm_confidence": result.bpm_confidence,
        "key": result.key,
        "camelot": result.camelot,
        "open_key": result.open_key,
        "key_confidence": result.key_confidence,
        "lufs": result.lufs if result.lufs is not None else float("nan"),
        "true_peak_db": result.true_peak_db if result.true_peak_db is not None else float("nan"),
        "replaygain_track_gain_db": result.replaygain_track_gain_db
        if result.replaygain_track_gain_db is not None else float("nan"),
        "duration_s": result.duration_s,
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


def _format_asset(name: str, fmt: str, description: str):
    @asset(name=name, partitions_def=tracks, group_name=GROUP, deps=[raw_audio, audio_features],
           pool="ffmpeg", kinds={"ffmpeg", "mutagen"}, description=description)
    def _asset(context: AssetExecutionContext, library: LibraryResource) -> MaterializeResult:
        lib = library.get()
        with track_step(context, lib, name) as key:
            result = lib.render(key, fmt)
        context.log.info(f"{key}: {fmt} written to {result.path}")
        return MaterializeResult(metadata=file_metadata(result))

    return _asset


m4a_alac = _format_asset("m4a_alac", "ALAC", "Apple Lossless in M4A, tagged (iTunes atoms, cover art).")
aiff = _format_asset("aiff", "AIFF", "AIFF, big-endian PCM at the source's bit depth, with ID3 tags.")
wav = _format_asset("wav", "WAV", "WAV with the plain WAVE_FORMAT_PCM header DJ players accept, ID3 tags; "
                                  "copied to WAV_BACKUP_DIR when set.")

FORMAT_ASSETS = {"ALAC": m4a_alac, "AIFF": aiff, "WAV": wav}


@asset(partitions_def=tracks, group_name=GROUP, deps=[m4a_alac, aiff, wav, audio_features, fingerprint],
       kinds={"sqlite"})
def catalog(context: AssetExecutionContext, library: LibraryResource) -> MaterializeResult:
    """The track's row in the catalog (``<library>/catalog.sqlite``), marked done once every
    output, the features and the fingerprint are in."""
    lib = library.get()
    with track_step(context, lib, "catalog") as key:
        missing = lib.missing_parts(key)
        if missing:
            raise TrackError(f"{key} is incomplete: {', '.join(missing)}.",
                             hint="Materialise the missing assets for this track, then the catalog.")
        lib.catalog.mark_done(key)
    settled, problems = duplicates.settle(lib, key)
    for problem in problems:  # the old copies stay where they are; the next pass retries
        context.log.warning(f"could not set the older copies aside: {problem}")
    row, files = lib.track(key), lib.catalog.files([key])  # a settled group may have renamed them
    return MaterializeResult(metadata={
        "status": row["status"],
        "title": row.get("title") or "",
        "artist": row.get("artist") or "",
        "bpm": row.get("bpm") or 0.0,
        "key": row.get("key_name") or "",
        "camelot": row.get("camelot") or "",
        "files": MetadataValue.md("\n".join(
            ["| format | path | MB |", "|---|---|---|"]
            + [f"| {f['format']} | `{f['path']}` | {f['size'] / 1e6:.2f} |" for f in files])),
        "catalog": MetadataValue.path(str(lib.catalog.path)),
        "superseded": ", ".join(m for g in settled for m in g["members"] if m != key),
    })


TRACK_ASSETS = [raw_audio, audio_features, fingerprint, m4a_alac, aiff, wav, catalog]
