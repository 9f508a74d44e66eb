"""Many tracks in one run: the run's start-up (a process, the code location, resources) is
paid once per batch, not once per track.

The op runs each track's steps in order (the same ``assets.steps`` the per-track assets
call) and logs an ``AssetMaterialization`` per asset and partition, so the UI shows every
track's partitions as if each asset had run for it. A failing track fails alone: its
catalog row says why, the batch goes on, and the run fails at the end only when every
track failed. Which tracks: explicit keys (sensors, `music-pipeline add`), or a selection
that replaces the old system's modes:

* ``single``: the newest queued track;
* ``batch``: the ``limit`` oldest queued tracks;
* ``all``: every queued track, and failed ones whose failure may pass (network, disk, a
  crash), not those that will fail again (DRM, geo-blocked, not audio, needs review);
* ``reprocess``: finished tracks again (after an analysis upgrade); their originals are
  reused, not downloaded again.
"""


from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    Config,
    Failure,
    OpExecutionContext,
    Output,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from ..assets import steps
from ..assets.tracks import tracks
from ..core.errors import TrackError
from ..core.library import Library
from ..resources import AnalysisResource, DownloaderResource, LibraryResource, SpotifyResource

SELECTIONS = ("single", "batch", "all", "reprocess")
RETRYABLE = {"source-unavailable", "disk-full", "internal", "media-tool", "rate-limited", "error"}
BATCH_SIZE = 25  # tracks per run requested by a sensor
STALE_RUNNING = timedelta(hours=6)  # "running" this long without an update: its run was killed


class BatchConfig(Config):
    keys: list[str] = Field(default_factory=list, description="Track keys to process, in order.")
    select: str = Field(default="", description=f"Instead of keys: {', '.join(SELECTIONS)}.")
    limit: int = Field(default=0, description="At most this many tracks (0: no limit; `batch` needs it).")
    force_download: bool = Field(default=False, description="Download or import the originals again.")


def select_keys(lib: Library, config: BatchConfig) -> list[str]:
    if config.keys:
        keys = list(dict.fromkeys(config.keys))
    elif config.select == "single":
        queued = lib.catalog.tracks("queued")
        keys = [queued[-1]["key"]] if queued else []
    elif config.select == "batch":
        keys = [r["key"] for r in lib.catalog.tracks("queued")]
    elif config.select == "all":
        stale = (datetime.now(UTC) - STALE_RUNNING).isoformat(timespec="seconds")
        keys = [r["key"] for r in lib.catalog.tracks() if r["status"] == "queued"
                or (r["status"] == "failed" and (r.get("error_reason") or "error") in RETRYABLE)
                or (r["status"] == "running" and (r.get("updated_at") or "") < stale)]  # a killed run
    elif config.select == "reprocess":
        keys = [r["key"] for r in lib.catalog.tracks("done")]
    else:
        raise Failure(f"Nothing to process: give keys or select one of {', '.join(SELECTIONS)}.")
    return keys[: config.limit] if config.limit else keys


def process_track(context: OpExecutionContext, lib: Library, key: str, *, downloader: DownloaderResource,
                  analysis: AnalysisResource, spotify: SpotifyResource, force: bool = False,
                  reprocess: bool = False) -> str:
    """All of one track's steps; returns "done", "stopped", "skipped" or "failed"."""
    step = "raw_audio"
    row = lib.catalog.get(key)
    if row is not None and not force and not reprocess and row["status"] in ("done", "duplicate"):
        context.log.info(f"{key} is already {row['status']}; skipped")
        return "skipped"
    recent = (datetime.now(UTC) - STALE_RUNNING).isoformat(timespec="seconds")
    if row is not None and not force and row["status"] == "running" and (row.get("updated_at") or "") >= recent:
        context.log.info(f"{key} is being processed by another run; skipped")
        return "skipped"

    def materialized(name: str, outcome: steps.Done) -> None:
        context.log_event(AssetMaterialization(asset_key=AssetKey(name), partition=key, metadata=outcome.metadata))

    def stopped(name: str, outcome: steps.Stop) -> str:
        context.log.info(outcome.note)
        context.log_event(AssetObservation(asset_key=AssetKey(name), partition=key, metadata=outcome.metadata))
        return "stopped"

    try:
        outcome = steps.raw_audio(lib, key, downloader.options(), force=force, log=context.log.info,
                                  spotify=spotify.client if spotify.configured else None)
        if isinstance(outcome, steps.Stop):
            return stopped(step, outcome)
        materialized(step, outcome)
        step = "fingerprint"
        outcome = steps.fingerprint(lib, key, log=context.log.info, warn=context.log.warning)
        if isinstance(outcome, steps.Stop):
            return stopped(step, outcome)
        materialized(step, outcome)
        step = "audio_features"
        materialized(step, steps.audio_features(lib, key, analysis.settings()))
        for fmt, name in steps.ASSET_NAMES.items():
            step = name
            materialized(name, steps.render(lib, key, fmt, log=context.log.info))
            problems = steps.verify(lib, key, fmt)
            if problems:
                raise TrackError(f"{fmt} file failed verification: {'; '.join(problems)}")
        step = "catalog"
        materialized(step, steps.catalog(lib, key, warn=context.log.warning))
        return "done"
    except TrackError as err:
        lib.catalog.mark_failed(key, step, str(err), err.reason)
        context.log.error(f"{key} failed in {step}: {err}")
    except Exception as err:  # one broken track must not stop a batch of thousands
        lib.catalog.mark_failed(key, step, f"Unexpected error in {step}: {type(err).__name__}: {err}", "internal")
        context.log.exception(f"{key} failed in {step} (unexpected)")
    return "failed"


@op(pool="download", description="Process many tracks in this run, one after another.")
def process_tracks(context: OpExecutionContext, config: BatchConfig, library: LibraryResource,
                   downloader: DownloaderResource, analysis: AnalysisResource, spotify: SpotifyResource):
    lib = library.get()
    keys = select_keys(lib, config)
    known = set(context.instance.get_dynamic_partitions(tracks.name))
    missing = [k for k in keys if k not in known]
    if missing:
        context.instance.add_dynamic_partitions(tracks.name, missing)
    results: dict[str, list[str]] = {"done": [], "stopped": [], "skipped": [], "failed": []}
    for number, key in enumerate(keys, 1):
        context.log.info(f"[{number}/{len(keys)}] {key}")
        outcome = process_track(context, lib, key, downloader=downloader, analysis=analysis, spotify=spotify,
                                force=config.force_download, reprocess=config.select == "reprocess")
        results[outcome].append(key)
    summary = {name: len(found) for name, found in results.items()}
    context.log.info(f"{len(keys)} track(s): {summary['done']} done, {summary['stopped']} set aside "
                     f"(duplicates, needs review), {summary['failed']} failed")
    if keys and len(results["failed"]) == len(keys):
        raise Failure(f"All {len(keys)} track(s) failed; the first: {results['failed'][0]}.",
                      metadata={"failed": ", ".join(results["failed"][:50])})
    return Output(None, metadata={**summary, "tracks": len(keys),
                                  "failed_tracks": ", ".join(results["failed"][:50])})


@job(executor_def=in_process_executor, description="Process a batch of tracks in one run (sensors, modes, sync).")
def process_batch():
    process_tracks()


def run_config(keys: list[str] | None = None, select: str = "", limit: int = 0, force: bool = False) -> dict:
    return {"ops": {"process_tracks": {"config": {"keys": keys or [], "select": select, "limit": limit,
                                                  "force_download": force}}}}
