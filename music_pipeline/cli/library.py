"""The library commands: `analyze` (BPM, key, loudness of files, no pipeline) and `dedup`
(duplicate recordings among files or the library; moved aside and put back on request)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from ..core.domain.lifecycle import Status
from .common import Progress, mark, open_instance, open_library, open_resources, reap

PUBLIC_FIELDS = ("path", "bpm", "bpm_confidence", "key", "key_short", "camelot", "open_key", "key_confidence",
                 "lufs", "loudness_range_lu", "true_peak_db", "replaygain_track_gain_db",
                 "replaygain_track_peak", "duration_s", "cutoff_hz", "lossy_origin", "grid", "cues", "elapsed_s")



def cmd_analyze(args: argparse.Namespace) -> int:
    import json

    from ..core.audio import analysis, parallel, tonality

    if args.key_profile not in tonality.PROFILES:
        print(f"unknown key profile {args.key_profile}; choose from {', '.join(tonality.PROFILES)}",
              file=sys.stderr)
        return 2
    settings = analysis.Settings(bpm_range=(args.min_bpm, args.max_bpm), key_profile=args.key_profile)
    files = parallel.expand(args.targets)
    if not files:
        print("no audio files found", file=sys.stderr)
        return 1
    jobs = args.jobs or os.cpu_count() or 1
    progress = Progress("analysing")
    failures = 0
    for record in parallel.run(files, jobs, settings, on_done=progress):
        failures += "error" in record
        if args.json:
            shown = record if "error" in record else {k: record[k] for k in PUBLIC_FIELDS}
            if args.fingerprint and "error" not in record:
                shown["fingerprint"] = record["fingerprint"]
            line = json.dumps(shown, ensure_ascii=False)
        elif "error" in record:
            line = f"{mark(False)} {record['path']}: {record['error']}"
        else:
            lufs = f"{record['lufs']:.1f} LUFS" if record["lufs"] is not None else "-- LUFS"
            grid = record["grid"]
            beat = ("no grid" if grid is None else f"beat 1 at {grid['downbeat_s']:.3f} s"
                    + (" (grid needs a look)" if grid["needs_look"] else ""))
            bpm = f"{record['bpm']:7.2f}" if record["bpm"] is not None else "     --"
            line = (f"{bpm} BPM  {record['key'] or '--':<9} {record['camelot'] or '--':>3} {record['open_key'] or '--':>3}"
                    f"  {lufs}  {beat}  {record['duration_s']:.0f} s  {record['path']}")
        if progress.enabled:
            sys.stderr.write("\r\033[K")
        print(line, flush=True)
    progress.close()
    if failures:
        print(f"{failures} of {len(files)} file(s) could not be analysed", file=sys.stderr)
    return 0 if not failures else 1


def cmd_export(args: argparse.Namespace) -> int:
    """Write the library for DJ software now, to the path given: ``export rekordbox PATH.xml``,
    ``export traktor PATH.nml`` (the automation keeps its own copies in <library>/DJ)."""
    from pathlib import Path

    from ..core.sinks import dj

    settings = open_resources()["dj"].settings()
    if args.format:
        settings = dataclasses.replace(settings, format=args.format.upper())
    if args.root is not None:
        settings = dataclasses.replace(settings, library_root=args.root or None)
    kind = {"rekordbox": dj.RekordboxExport, "traktor": dj.TraktorExport}[args.software]
    sink = kind(settings, Path(args.path).expanduser().resolve())
    if (problem := sink.why_off()) is not None:
        print(f"{mark(False)} {problem}", file=sys.stderr)
        return 2
    library = open_library()
    progress = Progress(f"exporting for {args.software}")
    try:
        report = sink.write_library(library, progress)
    finally:
        progress.close()
    for line in report.warnings:
        print(f"{mark(False, 'WARN')} {line}", file=sys.stderr)
    data = report.metadata
    roots = settings.library_root or "this machine's paths"
    print(f"{mark(True)} {data['path']}: {data['tracks']} track(s) ({settings.format}), {data['playlists']} "
          f"playlist(s), {data['grids']} beat grid(s), {data['cues']} cue(s); files named for {roots}; "
          + ("written" if data["rewritten"] else "unchanged, not rewritten")
          + f" ({data['tracks_added']} added, {data['tracks_removed']} removed, {data['tracks_updated']} updated "
            "since the last export there)")
    return 0


# -- sources: login, pin, process, sync --------------------------------------------------------


def cmd_dedup(args: argparse.Namespace) -> int:
    """Report duplicate groups among files (or the library's tracks); move them only with --move."""
    import json

    from ..core.audio import parallel
    from ..core.library import duplicates

    library = open_library()
    if args.undo:
        record = _change("dedup_undo", {"group": args.undo}, library)
        members = [m for m in record.members if m != record.keeper]
        print(f"{mark(True)} {args.undo}: {len(record.moves)} file(s) put back; {', '.join(members)} restored")
        return _undo_mirrors(library, members)
    failures = 0
    if args.targets:
        skip = [library.root / duplicates.DUPLICATES_DIR, library.root / "_trash"]
        files = [f for f in parallel.expand(args.targets)
                 if not any(Path(f).resolve().is_relative_to(folder) for folder in skip)]
        if not files:
            print("no audio files found", file=sys.stderr)
            return 1
        progress = Progress("fingerprinting")
        items = []
        for record in parallel.map_files(duplicates.file_record, files, args.jobs or os.cpu_count() or 1, progress):
            if "error" in record:
                failures += 1
                if progress.enabled:
                    sys.stderr.write("\r\033[K")
                print(f"{mark(False)} {record['path']}: {record['error']}", file=sys.stderr)
            else:
                items.append(record["item"])
        progress.close()
        items = duplicates.collapse_library_files(library, items)
    else:
        duplicates.index_backlog(library)
        items = [duplicates.track_item(row) for row in library.catalog.tracks.all(Status.DONE)]
        for item in items:
            item.paths = tuple(f.path for f in library.catalog.files.all([item.id])) or item.paths
    by_id = {item.id: item for item in items}
    groups = duplicates.find_groups(library, items, threshold=args.threshold)  # what was undone stays apart
    moved = 0
    if args.move and groups:  # the groups saved, then applied in a run that records every track it touched
        for group in groups:
            duplicates.save(library, group, state="pending")
        moved = _change("dedup_move", {"groups": [g.id for g in groups]}, library)["files_moved"]
    for group in groups:
        paths = [p for member in group.members for p in duplicates.paths_of(by_id, member)]
        keeper = duplicates.paths_of(by_id, group.keeper)[0]
        if args.json:
            notes = {path: group.notes[member] for member in group.members if member in group.notes
                     for path in duplicates.paths_of(by_id, member)}
            print(json.dumps({"group": paths, "keeper": keeper, "reason": group.reason, "id": group.id,
                              "matched_by": group.matched_by, "evidence": [e.as_dict() for e in group.evidence],
                              "notes": notes}, ensure_ascii=False), flush=True)
            continue
        print(f"{group.id} ({', '.join(group.matched_by)}): keep {keeper}{_note(group, group.keeper)}")
        print(f"    {group.reason}")
        for member in group.others:
            for path in duplicates.paths_of(by_id, member):
                print(f"    duplicate: {path}{_note(group, member)}")
    if not args.json:
        extra = f"; {moved} file(s) moved to {library.root / duplicates.DUPLICATES_DIR}" if args.move else \
            ("; nothing was moved (--move moves the duplicates, --undo GROUP puts them back)" if groups else "")
        print(f"{len(groups)} duplicate group(s) among {len(items)} track(s){extra}", file=sys.stderr)
    return 1 if failures else 0


def _change(job_name: str, config: dict, library) -> dict:
    """Execute a change job (``automation.changes``) here against DAGSTER_HOME's instance, as
    `run` does its bulk run; returns its output metadata, or for an undo the group's record."""
    from ..automation import changes
    from ..resources import build_resources

    job_def = {j.name: j for j in changes.CHANGE_JOBS}[job_name]
    with open_instance() as instance:
        reap(library, instance)
        metadata = changes.execute(instance, job_def, config, build_resources()["library"], f"cli {job_name}")
    return library.catalog.groups.get(config["group"]) if job_name == "dedup_undo" else metadata


def _undo_mirrors(library, members: list[str]) -> int:
    """The members' Notion pages back out of the trash (what their merge added taken off the
    keeper's page), and their Eagle items (Eagle 4's V2 API); a Notion or Eagle that cannot be
    reached is said, and `dedup --undo` still counts."""
    resources = open_resources()
    return max(_undo_notion(library, resources["notion"], members), _undo_eagle(library, resources["eagle"], members))


def _undo_notion(library, notion, members: list[str]) -> int:
    from ..core.library import mirrors

    if not notion.configured or not library.catalog.mirrors.merges(mirrors.NOTION, members):
        return 0
    return _restored("Notion page(s)", lambda: mirrors.undo_notion(library, notion.mirror(), members),
                     "the notion_queue sensor restores them once Notion answers")


def _undo_eagle(library, eagle, members: list[str]) -> int:
    """The members' items the pipeline put in Eagle's trash come back out (V2); with V1, which
    cannot, their next sync imports them again."""
    from ..core.library import mirrors

    if not eagle.enabled or not any((s := library.catalog.mirrors.get(k, mirrors.EAGLE)) is not None
                                    and s.status == "trashed" for k in members):
        return 0
    return _restored("Eagle item(s)", lambda: mirrors.restore_eagle(library, eagle.client(), members),
                     "each track's next sync (`music-pipeline mirror`) restores its item",
                     cannot="Eagle's V1 API cannot take items out of its trash: `music-pipeline mirror` imports "
                            "the tracks again (Eagle 4's V2 API restores them)")


def _restored(what: str, restore, later: str, cannot: str = "") -> int:
    """One mirror's part of an undo, said: what came out of the trash, or why not yet (the
    sink cannot be reached: ``later`` says who finishes it), or that the app cannot (None)."""
    from ..core.domain.errors import TrackError as Problem

    try:
        restored = restore()
    except Problem as err:
        print(f"{mark(False)} {what} not restored yet: {err}\n     {later}")
        return 1
    print(f"{mark(True)} {cannot if restored is None else f'{len(restored)} {what} restored from the trash'}")
    return 0


def _note(group, member: str) -> str:
    """What a member's audio lacks (a lossy origin, seconds cut off), shown beside its path."""
    return f" ({group.notes[member]})" if member in group.notes else ""


# -- entry point ----------------------------------------------------------------------------
