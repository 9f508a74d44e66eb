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
    asset,
)

from ..core.domain.errors import Reason, TrackError
from ..core.library.steps import Library
from ..resources import AnalysisResource, DownloaderResource, LibraryResource, SpotifyResource
from . import steps, touched
from .sources import SOURCE_ASSETS

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
        library.catalog.tracks.mark_failed(key, step, str(err), err.reason)
        context.log.error(f"{key}: {err}")
        raise Failure(description=str(err), metadata={"track": key, "step": step, "reason": str(err.reason)},
                      allow_retries=False) from err
    except Exception as err:
        message = f"Unexpected error in {step}: {type(err).__name__}: {err}"
        library.catalog.tracks.mark_failed(key, step, message, Reason.INTERNAL)
        raise


class RawAudioConfig(Config):
    force_download: bool = False
    """Download or import again even when the original is already in the library."""


def _emit(context: AssetExecutionContext, outcome: steps.Done | steps.Stop,
          library: Library | None = None) -> Iterator[MaterializeResult]:
    """A Done becomes the materialisation; a Stop is logged and observed, and the track's
    later steps are skipped (these assets have ``output_required=False``). Partitions whose
    files the step renamed or retagged (a dedup merge) are recorded as they are now."""
    if outcome.touched and library is not None:
        touched.record(context, library, outcome.touched)
    if isinstance(outcome, steps.Stop):
        context.log.info(outcome.note)
        context.log_event(AssetObservation(asset_key=context.asset_key, partition=context.partition_key,
                                           metadata=outcome.metadata))
        return
    yield MaterializeResult(metadata=outcome.metadata)


@asset(partitions_def=tracks, group_name=GROUP, pool="download", kinds={"yt-dlp", "ffmpeg"},
       output_required=False, deps=SOURCE_ASSETS)
def raw_audio(context: AssetExecutionContext, config: RawAudioConfig, library: LibraryResource,
              downloader: DownloaderResource, spotify: SpotifyResource) -> Iterator[MaterializeResult]:
    """The original audio, downloaded with yt-dlp (best audio, not re-encoded) or imported
    from a local file, with the source's metadata and cover art. A Spotify track (its audio
    is DRM-protected) is matched to an upload first: the match, its score and the runners-up
    are in the metadata, and a doubtful match stops here as "needs review" instead of
    downloading a wrong version. A track already set aside as a duplicate is not fetched
    again (its run stops here)."""
    lib = library.get()
    with track_step(context, lib, "raw_audio") as key:
        outcome = steps.raw_audio(lib, key, downloader.options(), target=context.run.tags.get(TARGET_TAG),
                                  force=config.force_download, log=context.log.info,
                                  spotify=spotify.client if spotify.configured else None)
    yield from _emit(context, outcome)


@asset(partitions_def=tracks, group_name=GROUP, deps=[raw_audio], kinds={"chromaprint"}, output_required=False,
       pool="analysis")
def fingerprint(context: AssetExecutionContext, library: LibraryResource) -> Iterator[MaterializeResult]:
    """The Chromaprint fingerprint of the raw audio, checked against the library before any
    other work (fingerprint index, source URLs, ISRC, normalised name). A copy of a track the
    library already has stops here: it is marked duplicate, its raw audio moves to
    ``duplicates/``, and the analysis, transcodes and catalog steps are skipped. Decodes the
    track once for this and the analysis."""
    lib = library.get()
    with track_step(context, lib, "fingerprint") as key:
        outcome = steps.fingerprint(lib, key, log=context.log.info, warn=context.log.warning)
    yield from _emit(context, outcome, lib)


@asset(partitions_def=tracks, group_name=GROUP, deps=[fingerprint], kinds={"librosa"}, pool="analysis")
def audio_features(context: AssetExecutionContext, library: LibraryResource,
                   analysis: AnalysisResource) -> MaterializeResult:
    """BPM, key (canonical, Camelot, Open Key) with confidences, EBU R128 loudness, true peak,
    ReplayGain 2.0 gain and the band limit (``cutoff_hz``; ``lossy_origin`` when a lossless
    file holds lossy audio) of the raw audio, from the decode the fingerprint step made."""
    lib = library.get()
    with track_step(context, lib, "audio_features") as key:
        return MaterializeResult(metadata=steps.audio_features(lib, key, analysis.settings()).metadata)


def _format_asset(name: str, fmt: str, description: str):
    @asset(name=name, partitions_def=tracks, group_name=GROUP, deps=[audio_features],
           pool="ffmpeg", kinds={"ffmpeg", "mutagen"}, description=description)
    def _asset(context: AssetExecutionContext, library: LibraryResource) -> MaterializeResult:
        lib = library.get()
        with track_step(context, lib, name) as key:
            return MaterializeResult(metadata=steps.render(lib, key, fmt).metadata)

    return _asset


m4a_alac = _format_asset("m4a_alac", "ALAC", "Apple Lossless in M4A, tagged (iTunes atoms, cover art).")
aiff = _format_asset("aiff", "AIFF", "AIFF, big-endian PCM at the source's bit depth, with ID3 tags.")
wav = _format_asset("wav", "WAV", "WAV with the plain WAVE_FORMAT_PCM header DJ players accept, ID3 tags; "
                                  "copied to WAV_BACKUP_DIR when set.")

FORMAT_ASSETS = {"ALAC": m4a_alac, "AIFF": aiff, "WAV": wav}


@asset(partitions_def=tracks, group_name=GROUP, deps=[m4a_alac, aiff, wav],
       kinds={"sqlite"})
def catalog(context: AssetExecutionContext, library: LibraryResource) -> MaterializeResult:
    """The track's row in the catalog (``<library>/catalog.sqlite``), marked done once every
    output, the features and the fingerprint are in; older copies this track replaces are
    set aside now (their partitions, and this one's renamed or retagged outputs, recorded
    again as they are now)."""
    lib = library.get()
    with track_step(context, lib, "catalog") as key:
        outcome = steps.catalog(lib, key, warn=context.log.warning)
        touched.record(context, lib, [k for k in outcome.touched if k != key])
        if key in outcome.touched:  # its outputs, recorded earlier in this run; its row follows below
            touched.record(context, lib, [key], assets=[a for a in touched.FILE_ASSETS if a != "catalog"])
        return MaterializeResult(metadata=outcome.metadata)


TRACK_ASSETS = [raw_audio, audio_features, fingerprint, m4a_alac, aiff, wav, catalog]
