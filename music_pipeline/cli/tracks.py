"""The track commands: `add` (ask the running Dagster), `run` (process here), `process`,
`sync`, `mirror`, `pin` and `spotify-login`. Every one ends in `process_track` runs."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import settings
from ..core.domain.errors import TrackError
from ..core.domain.lifecycle import Status
from .common import mark, open_instance, open_library, open_resources, reap

if TYPE_CHECKING:
    from ..core.library.rows import Track, TrackFile


def _register(targets: list[str]) -> tuple[list[str], int]:
    """Register every target; returns the partition keys and how many could not be."""
    from ..core.domain.identity import is_collection, redact_url
    from ..core.library.steps import register_target
    from ..core.sources.discovery import expand_collection
    from ..core.sources.download import resolve_id

    library = open_library()
    keys: list[str] = []
    failures = 0
    for target in targets:
        try:
            if is_collection(target):  # a playlist: its tracks, and the playlist itself
                registration = expand_collection(library, target)
                print(f"{target}: {len(registration.keys)} track(s), {len(registration.new)} new")
                keys += [k for k in registration.new if k not in keys]
                continue
            source, row = register_target(library, target, resolve=resolve_id)
        except TrackError as err:
            print(f"{mark(False)} {redact_url(target)}: {err}")
            failures += 1
            continue
        if row.key != source.key:
            print(f"{redact_url(target)}: already in the library as {row.key}")
        if row.key not in keys:
            keys.append(row.key)
    return keys, failures



def cmd_add(args: argparse.Namespace) -> int:
    """Ask the running Dagster itself (GraphQL) for one bulk run of the targets, so the
    partitions and runs land in the instance the UI shows, whatever folder this command
    runs from; the run carries each URL or file, and registers what its catalog lacks."""
    from ..intake import request_tracks
    from ..remote import DagsterRemote

    remote = DagsterRemote(args.webserver)
    if not remote.reachable():
        print(f"{mark(False)} the Dagster webserver at {args.webserver} is not reachable; nothing was added."
              "\n     → start it with `music-pipeline up` (or pass --webserver), or process the tracks here "
              "with `music-pipeline run`.")
        return 1
    library = open_library()
    if os.environ.get(settings.DAGSTER_HOME) or Path(settings.DEFAULT_DAGSTER_HOME).is_dir():
        reap(library)  # the home the webserver shows, on this machine
    intake = request_tracks(remote, library, args.targets, "cli add")
    for item in intake.items:
        if item.error:
            print(f"{mark(False)} {item.target}: {item.error}")
        elif item.known:
            print(f"{item.target}: already in the library as {item.key}")
    if intake.error:
        print(f"{mark(False)} {intake.error}")
        return 1
    if intake.run_id:
        for key in intake.keys:
            print(f"{mark(True)} {key}: requested")
        print(f"     one run for {len(intake.keys)} track(s) — {args.webserver.rstrip('/')}/runs/{intake.run_id}")
    return 0 if not intake.failures else 1


def cmd_run(args: argparse.Namespace) -> int:
    keys, failures = _register(args.targets)
    code = _bulk(keys=keys, force=args.force, verbose=args.verbose, origin="cli run", parallel=1)
    return max(code, 1 if failures else 0)


def _first_failure(result) -> str | None:
    """The first failed step's sentence: a Failure's description, else the first error in its
    chain that is not Dagster's wrapper (a CatalogError, not "Error occurred while executing
    op"), without our class's dotted name."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return data.user_failure_data.description
            error = data.error
            while error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            message = error.message.strip()
            return message.split(": ", 1)[1] if message.startswith("music_pipeline.") else message
    return None


def _print_track(row: Track, files: list[TrackFile], seconds: float) -> None:
    """A finished track in two lines plus its files; what is unknown says so, never "None"."""
    from ..core.library.steps import display_name

    print(f"{mark(True)} {display_name(row)}  ({row.key}, {seconds:.1f} s)")
    bpm = f"{row.bpm:.2f} BPM" if row.bpm is not None else "BPM n/a"
    key = f"{row.key_name} ({row.camelot})" if row.key_name else "key n/a"
    lufs = f"{row.lufs:.1f} LUFS" if row.lufs is not None else "loudness n/a"
    grid = ("no beat grid" if row.downbeat_s is None else
            f"beat 1 at {row.downbeat_s:.3f} s ({row.beats_per_bar}/4"
            + (", grid needs a look)" if row.grid_needs_look else ")"))
    print(f"     {bpm}, {grid}, {key}, {lufs}, {row.duration_s or 0:.1f} s")
    for record in files:
        print(f"     {record.format:<5} {record.path}")




def cmd_spotify_login(args: argparse.Namespace) -> int:
    from ..core.sources.spotify.auth import login

    resource = open_resources()["spotify"]
    config = resource.config()
    login(config, timeout_s=args.timeout)
    print(f"{mark(True)} logged in; the token is in {config.token_cache} (the Dagster processes read it there)")
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    """The pin is set in the bulk run that then processes the track (with --later, in a run
    of its own): the UI shows who chose the source, and when."""
    from ..core.domain.identity import redact_url
    from ..core.sources import discovery

    library = open_library()
    url = discovery.pin_source(library, args.track, args.url)
    pins = {args.track: args.url}
    if redact_url(args.url) != args.url:  # a signed link: never in a run's config (the UI shows it)
        discovery.pin(library, args.track, args.url)
        pins = {}
    print(f"{mark(True)} {args.track} will be downloaded from {url}")
    if args.later:
        print("     it is picked up by `music-pipeline process all` or the nightly sync")
    return _bulk(keys=[] if args.later else [args.track], origin="cli pin", pins=pins)


def _bulk(keys: list[str] | None = None, select: str = "", limit: int = 0, force: bool = False,
          verbose: bool = False, origin: str = "cli", job_name: str = "process_track", parallel: int = 0,
          pins: dict[str, str] | None = None) -> int:
    """Run the bulk job (each track a run of the per-track job) here, printing each track as
    it finishes; exit code 1 when any failed. The runs land in DAGSTER_HOME's instance, so
    they show in the UI too."""
    from ..automation.bulk import ORIGIN_TAG, process_tracks, progress, run_config
    from ..automation.jobs import bind, library_index_job
    from ..instance import WORKER_TAG, worker_tag
    from ..platform._dagster_internal import make_new_run_id
    from ..resources import build_resources

    resources = build_resources()  # from the environment now, not when the code location was imported
    library = resources["library"].get()
    library.catalog  # noqa: B018 - a catalog this version cannot use stops here, with its message
    if keys is not None and not keys and not pins:
        if pins is None:
            print("nothing to process")
        return 0
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL" if not verbose else "INFO"}}}}
    failed: list[str] = []

    def report(number: int, total: int, key: str, outcome: str, seconds: float) -> None:
        row = library.catalog.tracks.get(key)
        status = row.status if row else None
        print(f"[{number}/{total}] ", end="")
        if job_name == "mirror_track":
            if not _print_mirrors(instance, library, key, outcome, log):
                failed.append(key)
        elif outcome == "done" and status == Status.DONE:
            _print_track(row, library.catalog.files.all([key]), seconds)
        elif status == Status.DUPLICATE:
            print(f"{mark(True)} {key} is a duplicate of {row.duplicate_of} (group {row.dedup_group}); "
                  f"nothing transcoded\n     `music-pipeline dedup --undo {row.dedup_group}` processes it anyway")
        elif status == Status.NEEDS_REVIEW:
            print(f"{mark(False, 'REVIEW')} {key}: {row.error}")
        elif outcome == "skipped":
            print(f"{mark(True, 'SKIP')} {key}: another run is processing it")
        elif outcome == "done":
            print(f"{mark(True)} {key}")
        else:
            failed.append(key)
            print(_failure_line(instance, key, row, log))
        sys.stdout.flush()

    config = run_config(keys, select=select, limit=limit, force=force, job_name=job_name, parallel=parallel,
                        pins=pins)
    run_id = make_new_run_id()
    log = None if verbose else settings.ensure_dagster_home() / "logs" / f"{run_id}.log"
    with open_instance() as instance, progress(report), _errors_to(log):
        reap(library, instance)
        result = process_tracks.execute_in_process(
            run_config={**quiet, **config}, instance=instance, resources=resources, raise_on_error=False,
            tags={ORIGIN_TAG: origin, WORKER_TAG: worker_tag(run_id)}, run_id=run_id)
        metadata = _bulk_metadata(result)
        index_missing = not (library.root / "library_index.csv").exists()  # e.g. a killed index write
        if job_name == "process_track" and (metadata.get("done") or index_missing):
            bind(library_index_job, resources).execute_in_process(instance=instance, run_config=quiet,
                                                                  raise_on_error=False)
    total = metadata.get("tracks", 0)
    if pins and not keys and result.success:  # pinned for later: nothing processed, nothing to say
        return 0
    if not total:
        message = _first_failure(result)
        print(message + (f" (details: {log})" if log and log.exists() else "") if message else "nothing to process")
        return 1 if message else 0
    unmirrored = [key for key in failed if (row := library.catalog.tracks.get(key)) and row.status == Status.DONE]
    print(f"{total - len(failed) + len(unmirrored)} of {total} processed"
          + (f" ({len(unmirrored)} not mirrored: `music-pipeline mirror` tries again)" if unmirrored else "")
          + f"; library: {library.root}")
    return 1 if failed else 0


@contextlib.contextmanager
def _errors_to(log: Path | None):
    """Send this process's stderr (Dagster's error events, whole stack traces, from every
    track run) to ``log`` while the runs execute, so a failing track is one line here and its
    traces are in the file that line names; with ``log`` None (``-v``) they are printed."""
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "ab") as file:
        os.dup2(file.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    if log.stat().st_size == 0:
        log.unlink()


def _failure_line(instance, key: str, row: Track | None, log: Path | None) -> str:
    """One line for a failed track: the step and its message (the catalog's, or the failed
    step's own when the track itself finished and a later step, a mirror, failed), then where
    the traces are."""
    from dagster import DagsterEventType, RunsFilter

    from ..automation.bulk import PARTITION_TAG

    step, message = (row.error_step, row.error) if row else (None, None)
    done = row is not None and row.status == Status.DONE
    runs = instance.get_runs(filters=RunsFilter(job_name="process_track", tags={PARTITION_TAG: key}), limit=1) \
        if done or not message else []
    if runs:
        for entry in instance.all_logs(runs[0].run_id, of_type=DagsterEventType.STEP_FAILURE):
            data = entry.dagster_event.step_failure_data
            step = entry.dagster_event.step_key
            message = (data.user_failure_data and data.user_failure_data.description) or \
                (data.error and data.error.message.strip())
            break
    where = f" [{step}]" if step else ""
    if done:  # a mirror failed: `music-pipeline mirror KEY` tries it again
        message = f"processed (its files are in the library), but {message}"
    return (f"{mark(False)} {key}{where}: {message or 'failed (see its run in the Dagster UI)'}"
            + (f" (details: {log})" if log else ""))


def _print_mirrors(instance, library, key: str, outcome: str, log: Path | None) -> bool:
    """One line for a track's mirrors, from its `mirror_track` run: per sink, the record it
    wrote, why it skipped (Eagle closed: "skipped: Eagle not reachable at …"), or the error it
    met. False (the command exits 1) when a sink failed or refused us (a bad token)."""
    from dagster import DagsterEventType, RunsFilter

    from ..automation.bulk import PARTITION_TAG
    from ..core.library import mirrors as library_mirrors
    from ..core.sinks import registered
    from .common import tty

    runs = instance.get_runs(filters=RunsFilter(job_name="mirror_track", tags={PARTITION_TAG: key}), limit=1)
    said: dict[str, tuple[str, str]] = {}  # asset -> (how: written|skipped|failed, text)
    for entry in instance.all_logs(runs[0].run_id) if runs and outcome != "skipped" else []:
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.is_step_failure and event.step_failure_data:
            data = event.step_failure_data
            said[event.step_key] = ("failed", (data.user_failure_data and data.user_failure_data.description)
                                    or (data.error.message.strip() if data.error else "failed"))
        elif event.event_type == DagsterEventType.ASSET_OBSERVATION:
            metadata = event.event_specific_data.asset_observation.metadata
            if "skipped" in metadata:
                why = str(metadata["skipped"].value)
                said[event.step_key] = ("failed" if "misconfigured" in metadata else "skipped",
                                        why if why.startswith("skipped") else f"skipped: {why}")
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            said[event.step_key] = ("written", "")
    labels = {"notion": ("Notion page", library_mirrors.NOTION), "eagle": ("Eagle item", library_mirrors.EAGLE)}
    parts = []
    for registration in registered("track"):
        how, text = said.get(registration.asset, ("", ""))
        label, sink = labels.get(registration.name, (registration.name.capitalize(), registration.name))
        if how == "written" and (state := library.catalog.mirrors.get(key, sink)) is not None:
            parts.append(f"{label} {state.remote_id}")
        elif how:
            parts.append(text)
    ok = outcome != "failed" and all(how != "failed" for how, _ in said.values())
    wrote = any(how == "written" for how, _ in said.values())
    if outcome == "skipped":
        parts = ["another run is mirroring it"]
    sign = mark(ok) if not ok or wrote else ("•" if tty() else "SKIP")  # nothing written: not "ok"
    print(f"{sign} {key}: "
          f"{'; '.join(parts) or 'failed (see its run in the Dagster UI)'}"
          + (f" (details: {log})" if not ok and log else ""))
    return ok


def _bulk_metadata(result) -> dict:
    """The bulk op's counts (done, failed, ...), from its output or its failure."""
    for event in result.all_events:
        if event.is_successful_output and event.step_output_data.metadata:
            return {k: v.value for k, v in event.step_output_data.metadata.items()}
        if event.is_step_failure and event.step_failure_data.user_failure_data:
            return {k: v.value for k, v in event.step_failure_data.user_failure_data.metadata.items()}
    return {}


def cmd_process(args: argparse.Namespace) -> int:
    if args.mode == "batch" and not args.n:
        args.n = 10
    return _bulk(select=args.mode, limit=args.n, force=args.force, verbose=args.verbose,
                 origin=f"cli process {args.mode}")


def cmd_mirror(args: argparse.Namespace) -> int:
    return _bulk(keys=args.tracks or None, select="" if args.tracks else "done", limit=args.n, verbose=args.verbose,
                 origin="cli mirror", job_name="mirror_track")


def cmd_sync(args: argparse.Namespace) -> int:
    """The original system's fallback chain: a target if given; else the track playing on
    Spotify; else new SoundCloud likes; else new Spotify likes; else the newest queued track."""
    from ..core.domain.errors import TrackError as Problem
    from ..core.sources import discovery

    if args.targets:
        keys, failures = _register(args.targets)
        return max(_bulk(keys=keys, origin="cli sync"), 1 if failures else 0)
    resources = open_resources()
    library, spotify, soundcloud = resources["library"].get(), resources["spotify"], resources["soundcloud"]
    steps = []
    if spotify.configured:
        steps.append(("the track playing on Spotify", lambda: discovery.spotify_now_playing(library, spotify.client())))
    if soundcloud.configured:
        steps.append(("new SoundCloud likes", lambda: discovery.soundcloud_likes(
            library, soundcloud.user, resources["downloader"].options(), {"complete": True}, 50)))
    if spotify.configured:
        steps.append(("new Spotify likes", lambda: discovery.spotify_likes(library, spotify.client(), {"complete": True,
                      "newest": _newest_like(library)}, 50)))
    for what, step in steps:
        try:
            found = step()
        except Problem as err:
            print(f"{mark(False, 'SKIP')} {what}: {err}")
            continue
        if found.new:
            print(f"{what}: {len(found.new)} track(s)")
            return _bulk(keys=found.new, origin="cli sync")
        print(f"{what}: nothing new")
    print("the newest queued track:")
    return _bulk(select="single", origin="cli sync")


def _newest_like(library) -> str:
    dates = [m.added_at for key in library.catalog.playlists.tracks("spotify-liked")
             for m in library.catalog.playlists.memberships(key)
             if m.playlist_id == "spotify-liked" and m.added_at]
    return max(dates) if dates else ""


# -- dedup ----------------------------------------------------------------------------------
