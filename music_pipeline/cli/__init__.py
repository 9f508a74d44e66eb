"""The `music-pipeline` command line, a module per concern:

- ``serve``: ``up`` (install what is missing, then the Dagster UI, daemon and code server on a
  persistent DAGSTER_HOME, with the inbox sensor running) and ``worker`` (a Celery worker for
  an instance on several machines, ``up --production``);
- ``tracks``: ``add`` (ask the running Dagster), ``run`` (process here and print where every
  file went), ``process``, ``sync``, ``mirror``, ``pin``, ``spotify-login``;
- ``library``: ``analyze`` (BPM, key and loudness of local files) and ``dedup`` (duplicate
  recordings among files or the library, moved aside on request);
- ``doctor``: check the set-up and say what to fix.
"""

from __future__ import annotations

import argparse
import sys

from ..core.domain.errors import TrackError
from .common import DEFAULT_WEBSERVER, mark
from .doctor import cmd_doctor
from .library import cmd_analyze, cmd_dedup, cmd_export
from .serve import cmd_up, cmd_worker
from .tracks import cmd_add, cmd_mirror, cmd_pin, cmd_process, cmd_run, cmd_spotify_login, cmd_sync


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="music-pipeline", description="Keep a DJ's music library in sync: download, transcode, analyse, tag, catalog.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="install what is missing and start the Dagster UI + daemon")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=3000)
    up.add_argument("--share-host", default="127.0.0.1",
                    help="where the share endpoint and Notion's webhook listen (with MUSIC_SHARE_TOKEN set)")
    up.add_argument("--share-port", type=int, default=3001)
    up.add_argument("--no-install", action="store_true", help="do not apt-get missing packages")
    up.add_argument("--production", action="store_true",
                    help="several machines: a new dagster.yaml keeps runs in PostgreSQL and sends track runs to "
                         "Celery workers (`music-pipeline worker`); needs DAGSTER_PG_* and CELERY_* set")
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser("worker", help="a Celery worker executing track runs (several machines: "
                                           "`up --production` on one, this on any)")
    worker.add_argument("--name", default="music", help="worker name; the node is NAME@host (%(default)s)")
    worker.add_argument("--concurrency", "-c", type=int, default=0,
                        help="runs at once in this worker (default: one per core)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=cmd_worker)

    add = sub.add_parser("add", help="register URLs/files and request their runs from the running Dagster")
    add.add_argument("targets", nargs="+", metavar="URL_OR_FILE")
    add.add_argument("--webserver", default=DEFAULT_WEBSERVER, help="Dagster webserver URL (%(default)s)")
    add.set_defaults(func=cmd_add)

    run = sub.add_parser("run", help="process URLs/files in this process now and print where files went")
    run.add_argument("targets", nargs="+", metavar="URL_OR_FILE")
    run.add_argument("--force", action="store_true", help="download/import again even if already here")
    run.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step logs")
    run.set_defaults(func=cmd_run)

    analyze = sub.add_parser("analyze", help="analyse local files (BPM, key, loudness) without the pipeline")
    analyze.add_argument("targets", nargs="+", metavar="FILE_OR_DIR")
    analyze.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    analyze.add_argument("--jobs", "-j", type=int, default=0, help="parallel processes (default: one per core)")
    analyze.add_argument("--min-bpm", type=float, default=70.0, help="preferred BPM range, low end (%(default)s)")
    analyze.add_argument("--max-bpm", type=float, default=180.0, help="preferred BPM range, high end (%(default)s)")
    analyze.add_argument("--key-profile", default="temperley", help="temperley, krumhansl or edma (%(default)s)")
    analyze.add_argument("--fingerprint", action="store_true", help="include the Chromaprint fingerprint in --json")
    analyze.set_defaults(func=cmd_analyze)

    dedup = sub.add_parser("dedup", help="find duplicate recordings among files (or the library's tracks)")
    dedup.add_argument("targets", nargs="*", metavar="FILE_OR_DIR",
                       help="files or folders (default: the library's catalogued tracks)")
    dedup.add_argument("--json", action="store_true", help="one JSON object per group, one per line")
    dedup.add_argument("--jobs", "-j", type=int, default=0, help="parallel processes (default: one per core)")
    dedup.add_argument("--move", action="store_true",
                       help="move every non-keeper to <library>/duplicates/<group>/ (undo with --undo GROUP)")
    dedup.add_argument("--undo", metavar="GROUP", help="put a group's duplicates back where they were")
    dedup.add_argument("--threshold", type=float, default=0.5,
                       help="fingerprint similarity that counts as the same recording (%(default)s)")
    dedup.set_defaults(func=cmd_dedup)

    login = sub.add_parser("spotify-login", help="log in to Spotify (headless: prints a URL to open anywhere)")
    login.add_argument("--timeout", type=float, default=300, help="seconds to wait for the redirect (%(default)s)")
    login.set_defaults(func=cmd_spotify_login)

    pin = sub.add_parser("pin", help="fix the source a track is downloaded from (a Spotify match by hand)")
    pin.add_argument("track", metavar="TRACK", help="track key, e.g. spotify-4cOdK2wGLETKBW3PvgPWqT")
    pin.add_argument("url", metavar="URL")
    pin.add_argument("--later", action="store_true", help="only pin; process it at the next sync")
    pin.set_defaults(func=cmd_pin)

    process = sub.add_parser("process", help="process catalogued tracks in one run: single (the newest queued), "
                                             "batch (-n oldest queued), all (queued + retryable failures), "
                                             "reprocess (finished tracks again)")
    process.add_argument("mode", choices=["single", "batch", "all", "reprocess"])
    process.add_argument("-n", type=int, default=0, help="at most this many tracks")
    process.add_argument("--force", action="store_true", help="download/import the originals again")
    process.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step logs")
    process.set_defaults(func=cmd_process)

    sync = sub.add_parser("sync", help="the fallback chain: the given URLs/files, else the track playing on "
                                       "Spotify, else new SoundCloud likes, else new Spotify likes, else the "
                                       "newest queued track")
    sync.add_argument("targets", nargs="*", metavar="URL_OR_FILE")
    sync.set_defaults(func=cmd_sync)

    mirror = sub.add_parser("mirror", help="mirror finished tracks into Notion and Eagle (after configuring a "
                                           "sink, or to repair one): each track's page and item found or created, "
                                           "only what changed written")
    mirror.add_argument("tracks", nargs="*", metavar="TRACK_KEY", help="these tracks (default: every finished one)")
    mirror.add_argument("-n", type=int, default=0, help="at most this many tracks")
    mirror.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step logs")
    mirror.set_defaults(func=cmd_mirror)

    export = sub.add_parser("export", help="write the library for DJ software now: rekordbox XML or a Traktor "
                                           "collection (tracks with grids and cues, playlists by source)")
    export.add_argument("software", choices=["rekordbox", "traktor"])
    export.add_argument("path", metavar="PATH", help="the file to write (e.g. rekordbox.xml, collection.nml)")
    export.add_argument("--format", choices=["AIFF", "ALAC", "WAV", "aiff", "alac", "wav"],
                        help="which file each track names (default DJ_EXPORT_FORMAT, else AIFF)")
    export.add_argument("--root", help="the library folder as the DJ's computer names it, e.g. /Volumes/VIBES "
                                       "(default DJ_LIBRARY_ROOT; empty: as on this machine)")
    export.set_defaults(func=cmd_export)

    doctor = sub.add_parser("doctor", help="check ffmpeg, Chromaprint, the library folder and DAGSTER_HOME")
    doctor.add_argument("--install", action="store_true", help="apt-get install missing Debian packages")
    doctor.add_argument("--tests", action="store_true", help="also what the tests need (Debian's chromium, postgresql and redis-server)")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TrackError as err:  # a bad library folder, a catalog from a newer version, ...
        print(f"{mark(False)} {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except OSError as err:
        print(f"{mark(False)} {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; files being written were discarded, finished ones are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
