"""The `music-pipeline` command line.

- ``up``: install what is missing, then start the Dagster UI and daemon (``dagster dev``)
  on a persistent DAGSTER_HOME, with the inbox sensor running;
- ``add``: register tracks and ask the running Dagster instance to process them;
- ``run``: process tracks right here, now, and print where every file went;
- ``analyze``: BPM, key and loudness of local files;
- ``dedup``: duplicate recordings among local files or the library, moved aside on request;
- ``doctor``: check the set-up and say what to fix;
- ``worker``: a Celery worker executing runs for an instance on several machines
  (``up --production``).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import settings
from .core.domain.errors import TrackError
from .core.domain.status import Status

if TYPE_CHECKING:
    from .core.library.rows import Track, TrackFile

DEBIAN_PACKAGES = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "fpcalc": "libchromaprint-tools"}
DEBIAN_LIBS = ["libchromaprint1"]
# What the tests need besides: Debian's browser for the UI tests (nothing downloaded), and the
# PostgreSQL and Redis servers the service tests start themselves on 127.0.0.1.
TEST_PACKAGES = {"chromium": "chromium", "postgres": "postgresql", "redis-server": "redis-server"}
DEFAULT_WEBSERVER = os.environ.get("DAGSTER_WEBSERVER_URL", "http://127.0.0.1:3000")


def _tty() -> bool:
    return sys.stdout.isatty()


def _mark(ok: bool, bad: str = "FAIL") -> str:
    return ("\033[32m✓\033[0m" if ok else "\033[31m✗\033[0m") if _tty() else ("ok  " if ok else bad)


# -- doctor ---------------------------------------------------------------------------------


def doctor_checks() -> list[tuple[bool, str, str]]:
    """(ok, what, how to fix) for everything the pipeline needs."""
    results: list[tuple[bool, str, str]] = []
    for tool, package in DEBIAN_PACKAGES.items():
        path = shutil.which(tool)
        version = ""
        if path:
            flag = "-version" if tool != "fpcalc" else "-v"
            proc = subprocess.run([path, flag], capture_output=True, text=True, check=False)
            version = (proc.stdout or proc.stderr).splitlines()[0] if (proc.stdout or proc.stderr) else ""
        results.append((bool(path), f"{tool}: {version or path or 'not found'}",
                        f"install it: apt-get install {package} (or `music-pipeline doctor --install`)"))
    chroma = chromaprint_loads()
    results.append((chroma, f"libchromaprint: {'loaded' if chroma else 'not found'}",
                    "install it: apt-get install libchromaprint1"))
    root = settings.library_root()
    from .core.library.steps import free_bytes, is_writable

    writable = is_writable(root)
    results.append((writable, f"library {root} ({os.environ.get(settings.MUSIC_LIBRARY) and 'MUSIC_LIBRARY' or 'default'}):"
                    f" {'writable' if writable else 'not writable'}, {free_bytes(root) / 1e9:.1f} GB free",
                    f"make {root} writable or set MUSIC_LIBRARY to a folder you can write"))
    results += _catalog_checks(root)
    home = os.environ.get(settings.DAGSTER_HOME)
    if home:
        temporary = str(Path(home).resolve()).startswith(("/tmp/", "/var/tmp/"))
        writable = is_writable(Path(home))
        results.append((writable, f"DAGSTER_HOME: {home}" + (" (under /tmp: lost on reboot)" if temporary else ""),
                        "make DAGSTER_HOME a writable, lasting folder: runs and partitions live there"))
        results += _dagster_yaml_checks(Path(home) / "dagster.yaml")
        results += production_checks(Path(home) / "dagster.yaml")
    else:
        results.append((True, f"DAGSTER_HOME: not set; music-pipeline up/add/run use "
                              f"{Path(settings.DEFAULT_DAGSTER_HOME).resolve()}",
                        ""))
        results += _dagster_yaml_checks(Path(settings.DEFAULT_DAGSTER_HOME).resolve() / "dagster.yaml")
        results.append((True, "  (export DAGSTER_HOME before running `dagster dev` yourself: without it, it keeps "
                              "runs and partitions in a temporary folder deleted on exit)", ""))
    backup = settings.wav_backup_dir()
    if backup:
        ok = is_writable(Path(backup))
        results.append((ok, f"WAV_BACKUP_DIR {backup}: {'writable' if ok else 'not writable'}",
                        "mount the backup volume or unset WAV_BACKUP_DIR"))
    spotify = settings.spotify()
    if spotify["client_id"] and spotify["client_secret"]:
        cache = Path(spotify["token_cache"])
        results.append((cache.is_file(), f"Spotify: configured, {'logged in' if cache.is_file() else 'not logged in'}"
                                         f" (token cache {cache})", "run `music-pipeline spotify-login`"))
    else:
        results.append((True, "Spotify: not configured (optional: set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET "
                              "to sync likes and playlists)", ""))
    user = settings.soundcloud_user()
    results.append((True, f"SoundCloud: {'syncing ' + user if user else 'not configured (optional: set SOUNDCLOUD_USER)'}",
                    ""))
    return results + _mirror_checks()


def _mirror_checks() -> list[tuple[bool, str, str]]:
    """Notion (token valid, database shared, schema compatible) and Eagle (reachable)."""
    from .core.domain.errors import TrackError as Problem

    resources = _resources()
    notion, eagle = resources["notion"], resources["eagle"]
    results: list[tuple[bool, str, str]] = []
    if not notion.configured:
        results.append((True, "Notion: not configured (optional: set NOTION_TOKEN and TRACKS_DB_ID to mirror the "
                              "library into a Notion database and queue tracks there)", ""))
    else:
        try:
            mirror = notion.mirror()
        except Problem as err:
            results.append((False, "Notion: cannot use the tracks database", str(err)))
        else:
            schema = mirror.schema
            results.append((True, f"Notion: token valid, tracks database shared; {len(schema.props)} of "
                                  f"{len(mapping_fields())} fields mapped", ""))
            results += [(False, f"Notion schema: {problem}", "add or rename the property in Notion, or map the "
                         "field with NOTION_PROPERTIES (JSON, e.g. {\"bpm\": \"Tempo\"})") for problem in schema.problems]
    if not eagle.enabled:
        results.append((True, "Eagle: off (EAGLE_API_BASE=off)", ""))
        return results
    try:
        info = eagle.client().info()
    except Problem as err:
        explicit = bool(os.environ.get("EAGLE_API_BASE"))
        results.append((not explicit, f"Eagle: {err}" if explicit else
                        f"Eagle: not running at {eagle.api_base} (optional: start the Eagle app to mirror the "
                        "library into it; EAGLE_API_BASE=off stops trying)", "start Eagle, or fix EAGLE_API_BASE"))
    else:
        results.append((True, f"Eagle: reachable at {eagle.api_base} (version {info.get('version', '?')}); "
                              f"imports the {eagle.format} files", ""))
    return results


def mapping_fields() -> list[str]:
    from .core.sources.notion.mapping import FIELDS

    return list(FIELDS)


def _catalog_checks(root: Path) -> list[tuple[bool, str, str]]:
    """The catalog: reachable (the file, or the PostgreSQL server of MUSIC_CATALOG_URL), sound
    (SQLite's own check), at this version's schema, and its paths found under the library
    folder (a drive mounted elsewhere keeps them)."""
    from .core.domain.errors import TrackError
    from .core.library.catalog import CATALOG_FILE, Catalog
    from .core.library.migrations import SCHEMA_VERSION

    path = root / CATALOG_FILE
    url = settings.catalog_url()
    if not url and not path.exists():
        return [(True, f"catalog {path}: not created yet (the first track creates it)", "")]
    try:
        catalog = Catalog(path, url=url)
        problems = catalog.check()
        missing, checked = catalog.files.missing() if not problems else (0, 0)
    except (TrackError, ValueError) as err:
        hint = getattr(err, "hint", "") or "MUSIC_CATALOG_URL is a SQLAlchemy URL: postgresql+psycopg2://user:password@host:5432/db"
        return [(False, f"catalog: {getattr(err, 'message', err)}", hint)]
    where = f"catalog on PostgreSQL {catalog.where}" if catalog.shared else f"catalog {path}"
    if problems:
        return [(False, f"{where}: " + "; ".join(problems[:3]),
                 "upgrade music_pipeline on every machine" if catalog.shared else
                 "restore it from a backup, or move it aside to start an empty one (the library's files stay)")]
    results = [(True, f"{where}: {'reachable' if catalog.shared else 'sound'}, schema version {SCHEMA_VERSION} "
                      f"(migrated), {catalog.tracks.count()} track(s)", "")]
    if missing:
        results.append((False, f"catalog: {missing} of {checked} catalogued files checked are not under {root}",
                        "was the library moved or its drive mounted elsewhere? Point MUSIC_LIBRARY at the folder "
                        "that holds ALAC/ AIFF/ WAV/ (the same folder on every machine)"))
    return results


def chromaprint_loads() -> bool:
    """Whether libchromaprint loads, asked afresh (pyacoustid decides once, at import: after
    `--install` in the same process it would still say no)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("chromaprint")
    try:
        return bool(name) and bool(ctypes.CDLL(name))
    except OSError:
        return False


def _dagster_yaml_checks(config: Path) -> list[tuple[bool, str, str]]:
    """An existing dagster.yaml is the user's and is never rewritten: say what it lacks."""
    from .instance import missing_settings

    if not config.exists():
        return []
    lacking = missing_settings(config)
    return [(not lacking, f"{config}: " + ("has the settings music_pipeline relies on" if not lacking else
                                           "lacks " + "; ".join(lacking)),
             "add them (README: Configuration shows the file `up` writes), or move the file aside and run "
             "`music-pipeline up` to get the new one")]


def production_checks(config: Path) -> list[tuple[bool, str, str]]:
    """Several machines: PostgreSQL reachable when the dagster.yaml keeps the instance there;
    with the DistributedRunLauncher, Redis reachable, workers answering, and each worker seeing
    the same library folder as this machine, with ffmpeg and fpcalc."""
    from .instance import missing_production_env, uses_celery, uses_postgres

    results: list[tuple[bool, str, str]] = []
    postgres, celery = uses_postgres(config), uses_celery(config)
    if not (postgres or celery):
        return results
    missing = missing_production_env()
    if missing:
        results.append((False, f"{config} reads settings from the environment; unset: {', '.join(missing)}",
                        "set them as on every other machine (README: Several machines)"))
        return results
    if postgres:
        results.append(_postgres_check())
    # the catalog (on PostgreSQL when MUSIC_CATALOG_URL is set) is checked by _catalog_checks
    if celery:
        results += _celery_checks()
    return results


def _postgres_check() -> tuple[bool, str, str]:
    import psycopg2

    env = os.environ
    where = f"{env['DAGSTER_PG_HOST']}:{env['DAGSTER_PG_PORT']}/{env['DAGSTER_PG_DB']} as {env['DAGSTER_PG_USERNAME']}"
    try:
        conn = psycopg2.connect(host=env["DAGSTER_PG_HOST"], port=env["DAGSTER_PG_PORT"],
                                dbname=env["DAGSTER_PG_DB"], user=env["DAGSTER_PG_USERNAME"],
                                password=env["DAGSTER_PG_PASSWORD"], connect_timeout=3)
    except psycopg2.Error as err:
        message = " ".join(str(err).replace(env["DAGSTER_PG_PASSWORD"], "***").split())
        return (False, f"Dagster storage on PostgreSQL {where}: not reachable ({message})",
                "start PostgreSQL, or fix DAGSTER_PG_HOST/PORT/DB/USERNAME/PASSWORD")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
    finally:
        conn.close()
    return (True, f"Dagster storage on PostgreSQL {where}: reachable (server {version})", "")


def _redacted(url: str) -> str:
    from .core.domain.identity import redact_url

    return redact_url(url)


def _celery_checks() -> list[tuple[bool, str, str]]:
    import redis

    broker = os.environ["CELERY_BROKER_URL"]
    results: list[tuple[bool, str, str]] = []
    for name, url in (("broker", broker), ("result backend", os.environ["CELERY_RESULT_BACKEND"])):
        if not url.startswith(("redis://", "rediss://")):
            results.append((True, f"Celery {name} {_redacted(url)}: not Redis, not checked", ""))
            continue
        try:
            redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
        except redis.RedisError as err:
            results.append((False, f"Redis ({name}) {_redacted(url)}: not reachable ({err})",
                            "start Redis, or fix CELERY_BROKER_URL / CELERY_RESULT_BACKEND"))
            return results
        results.append((True, f"Redis ({name}) {_redacted(url)}: reachable", ""))
    from .workers import app

    try:
        infos = app.control.inspect(timeout=2.5)._request("worker_info") or {}
    except Exception as err:  # noqa: BLE001 - the broker refusing: say so
        return [*results, (False, f"Celery workers: cannot ask ({type(err).__name__}: {err})",
                           "check CELERY_BROKER_URL")]
    if not infos:
        return [*results, (False, "Celery workers: no worker answered",
                           "start one with `music-pipeline worker` (on this or another machine)")]
    results.append((True, f"Celery workers: {len(infos)} answered ({', '.join(sorted(infos))})", ""))
    here = str(settings.library_root())
    for name, info in sorted(infos.items()):
        root = info.get("library_root")
        results.append((root == here, f"worker {name}: library {root}" + ("" if root == here else
                        f", but this machine's is {here}"),
                        f"mount the library at the same path on {name} and this machine, and set MUSIC_LIBRARY "
                        f"to it on both (worker {name}: {root}; here: {here})"))
        tools = [tool for tool in ("ffmpeg", "fpcalc") if not info.get(tool)]
        results.append((not tools, f"worker {name}: " + ("ffmpeg and fpcalc found" if not tools else
                                                          f"{' and '.join(tools)} not found"),
                        f"on {info.get('hostname', name)}: `music-pipeline doctor --install`"))
    return results


def postgres_bindir() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl, postgres): on the PATH, or
    Debian's /usr/lib/postgresql/<version>/bin (the newest), which is not on the PATH."""
    on_path = shutil.which("initdb")
    if on_path:
        folder = Path(on_path).resolve().parent  # a symlink on the PATH points into the real folder
        if (folder / "pg_ctl").exists():
            return folder
    found = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if (d / "initdb").exists() and (d / "pg_ctl").exists()]

    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in folder.parent.name.split(".") if part.isdigit())

    return max(found, key=version) if found else None


def tool_for_tests(tool: str) -> str | None:
    """Where a tool the tests need is (``postgres`` is found in PostgreSQL's own folder)."""
    if tool == "postgres":
        folder = postgres_bindir()
        return str(folder / "postgres") if folder and (folder / "postgres").exists() else None
    return shutil.which(tool)


def checks_for_tests() -> list[tuple[bool, str, str]]:
    """(ok, what, how to fix) for what the tests need besides the pipeline's own tools."""
    results: list[tuple[bool, str, str]] = []
    for tool, package in TEST_PACKAGES.items():
        path = tool_for_tests(tool)
        what = {"chromium": "chromium (for the UI tests)", "postgres": "PostgreSQL (for the service tests)",
                "redis-server": "redis-server (for the service tests)"}[tool]
        version = ""
        if path and tool != "chromium":
            proc = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
            version = (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr) else ""
        results.append((bool(path), f"{what}: {version or path or 'not found'}",
                        f"install it: apt-get install {package} (or `music-pipeline doctor --install --tests`)"))
    return results


def install_debian_packages(for_tests: bool = False) -> bool:
    """apt-get install whatever Debian package is missing (with ``for_tests``, also the
    browser the UI tests drive and the PostgreSQL and Redis servers the service tests start);
    True when nothing is missing after."""
    missing = sorted({pkg for tool, pkg in DEBIAN_PACKAGES.items() if not shutil.which(tool)})
    if not chromaprint_loads():
        missing += DEBIAN_LIBS
    if for_tests:
        missing += sorted({pkg for tool, pkg in TEST_PACKAGES.items() if not tool_for_tests(tool)})
    if not missing:
        return True
    if shutil.which("apt-get") is None:
        print(f"Please install these with your system's package manager: {' '.join(missing)}")
        return False
    prefix = [] if os.geteuid() == 0 else (["sudo"] if shutil.which("sudo") else None)
    if prefix is None:
        print(f"Run as root: apt-get install {' '.join(missing)}")
        return False
    print(f"Installing Debian packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=False, env=env)
    proc = subprocess.run([*prefix, "apt-get", "install", "-y", "-qq", *missing], check=False, env=env)
    return proc.returncode == 0


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.install:
        install_debian_packages(for_tests=args.tests)
    checks = doctor_checks()
    if args.tests:
        checks += checks_for_tests()
    for ok, what, fix in checks:
        print(f"{_mark(ok, 'FIX ')} {what}")
        if not ok:
            print(f"     → {fix}")
    failed = sum(not ok for ok, _, _ in checks)
    print("Everything is in place." if not failed else f"{failed} thing(s) to fix.")
    return 0 if not failed else 1


# -- up -------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    if args.production:
        from .instance import missing_production_env

        missing = missing_production_env()
        if missing:
            print(f"{_mark(False)} `up --production` keeps runs in PostgreSQL and runs tracks on Celery workers; "
                  f"set these first: {', '.join(missing)}\n"
                  "     DAGSTER_PG_USERNAME, DAGSTER_PG_PASSWORD, DAGSTER_PG_HOST, DAGSTER_PG_PORT, DAGSTER_PG_DB: "
                  "the PostgreSQL database\n"
                  "     CELERY_BROKER_URL, CELERY_RESULT_BACKEND: Redis, e.g. redis://host:6379/0\n"
                  "     (README: Several machines)", file=sys.stderr)
            return 2
    if not args.no_install and not install_debian_packages():
        print("Some system packages are missing; `music-pipeline doctor` says which.", file=sys.stderr)
    home = settings.ensure_dagster_home(production=args.production)
    _instance().dispose()  # its storages created now, under the lock, not raced by a `run` started meanwhile
    library = _library()
    library.inbox.mkdir(parents=True, exist_ok=True)
    for ok, what, fix in doctor_checks():
        if not ok:
            print(f"{_mark(ok)} {what}\n     → {fix}")
    workspace = Path.cwd() / "workspace.yaml"
    target = ["-w", str(workspace)] if workspace.exists() else ["-m", "music_pipeline.definitions"]
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    print(f"""
music_pipeline is starting.
  UI:         http://{args.host}:{args.port}   (assets, runs, the inbox sensor)
  Library:    {library.root}
  Inbox:      {library.inbox}   ← drop audio files or a .txt of URLs here
  Dagster:    DAGSTER_HOME={home}
Stop with Ctrl-C; runs and partitions are kept in DAGSTER_HOME.
""", flush=True)
    os.execv(dagster, [dagster, "dev", *target, "--host", args.host, "--port", str(args.port)])
    return 0  # pragma: no cover - execv does not return


def cmd_worker(args: argparse.Namespace) -> int:
    """exec `celery -A music_pipeline.workers worker`: prefork pool processes forked from a main
    process that has the code location imported, so every run starts warm."""
    from .instance import missing_production_env

    missing = missing_production_env()
    home = os.environ.get(settings.DAGSTER_HOME)
    if missing or not home or not (Path(home) / "dagster.yaml").is_file():
        print(f"{_mark(False)} a worker needs the same environment as the machine that ran `up --production`: "
              + (f"unset: {', '.join(missing)}; " if missing else "")
              + ("DAGSTER_HOME with that dagster.yaml" if not home or not (Path(home) / "dagster.yaml").is_file()
                 else "") + "\n     (README: Several machines)", file=sys.stderr)
        return 2
    celery = shutil.which("celery") or str(Path(sys.executable).with_name("celery"))
    argv = [celery, "-A", "music_pipeline.workers", "worker", "-Q", "dagster", "-n", f"{args.name}@%h",
            "--pool", "prefork", "--loglevel", args.loglevel, "--without-gossip", "--without-mingle"]
    if args.concurrency:
        argv += ["--concurrency", str(args.concurrency)]
    print(f"worker {args.name}: library {settings.library_root()}, DAGSTER_HOME={home}", flush=True)
    os.execv(celery, argv)
    return 0  # pragma: no cover - execv does not return


# -- add and run ----------------------------------------------------------------------------


def _library():
    from .resources import build_resources

    return build_resources()["library"].get()


def _register(targets: list[str]) -> tuple[list[str], int]:
    """Register every target; returns the partition keys and how many could not be."""
    from .core.domain.identity import is_collection
    from .core.library.steps import register_target
    from .core.sources.discovery import expand_collection
    from .core.sources.download import resolve_id

    library = _library()
    keys: list[str] = []
    failures = 0
    for target in targets:
        try:
            if is_collection(target):  # a playlist: its tracks, and the playlist itself
                registration = expand_collection(library, target)
                print(f"{target}: {len(registration.keys)} track(s), {len(registration.new)} new")
                keys += [k for k in registration.new if k not in keys]
                continue
            source, _ = register_target(library, target, resolve=resolve_id)
        except TrackError as err:
            print(f"{_mark(False)} {target}: {err}")
            failures += 1
            continue
        if source.key not in keys:
            keys.append(source.key)
    return keys, failures


def _instance():
    """DAGSTER_HOME's instance. Its SQLite storages create their tables on first use, and
    two processes doing that at once on a fresh home fail ("table secondary_indexes already
    exists"): the first use happens here, under a lock on the folder."""
    from dagster import DagsterInstance

    from .core.library.store import exclusive
    from .instance import init_pools

    home = settings.ensure_dagster_home()
    with exclusive(home):
        instance = DagsterInstance.get()
        instance.get_runs_count()  # run storage
        instance.event_log_storage.get_asset_records([])  # event log (and its index) storage
        instance.all_instigator_state()  # schedule storage
        init_pools(instance)  # before two runs race to create them
    return instance


def cmd_add(args: argparse.Namespace) -> int:
    """Ask the running Dagster itself (GraphQL) for one bulk run of the targets, so the
    partitions and runs land in the instance the UI shows, whatever folder this command
    runs from; the run carries each URL or file, and registers what its catalog lacks."""
    from .automation.bulk import ORIGIN_TAG, run_config
    from .core.domain.identity import looks_like_url, redact_url, source_for
    from .core.library.steps import register_target
    from .core.sources.download import resolve_id
    from .remote import DagsterRemote, RemoteError

    remote = DagsterRemote(args.webserver)
    if not remote.reachable():
        print(f"{_mark(False)} the Dagster webserver at {args.webserver} is not reachable; nothing was added."
              "\n     → start it with `music-pipeline up` (or pass --webserver), or process the tracks here "
              "with `music-pipeline run`.")
        return 1
    failures = 0
    targets: dict[str, str] = {}
    keys: list[str] = []
    for target in args.targets:
        try:
            source = source_for(target, resolve_id)
            if source.url and redact_url(source.url) != source.url:
                # A signed link or a password: never in the run's config or tags (the UI shows both).
                # Registered here, in the library this machine shares with the daemon.
                library = _library()
                if not library.has_catalog():
                    raise TrackError(f"{redact_url(target)} carries a secret, so it is not sent to Dagster; "
                                     f"it is registered in this machine's library, but {library.root} has none.",
                                     hint="Set MUSIC_LIBRARY to the library Dagster uses, or drop the URL in a "
                                          ".txt in its inbox.")
                register_target(library, target, resolve_id)
            else:
                targets[source.key] = source.url if looks_like_url(target) else str(Path(target).expanduser().resolve())
            remote.add_partition("tracks", source.key)
            keys.append(source.key)
        except (TrackError, RemoteError) as err:
            print(f"{_mark(False)} {redact_url(target)}: {err}")
            failures += 1
    if keys:
        try:
            run_id = remote.launch("process_tracks", tags={ORIGIN_TAG: "cli add"},
                                   run_config=run_config(keys, targets=targets))
        except RemoteError as err:
            print(f"{_mark(False)} {err}")
            return 1
        for key in keys:
            print(f"{_mark(True)} {key}: requested")
        print(f"     one run for {len(keys)} track(s) — {args.webserver.rstrip('/')}/runs/{run_id}")
    return 0 if not failures else 1


def cmd_run(args: argparse.Namespace) -> int:
    keys, failures = _register(args.targets)
    code = _bulk(keys=keys, force=args.force, verbose=args.verbose, origin="cli run", parallel=1)
    return max(code, 1 if failures else 0)


def _first_failure(result) -> str | None:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            return event.step_failure_data.error.message.strip()
    return None


def _print_track(row: Track, files: list[TrackFile], seconds: float) -> None:
    """A finished track in two lines plus its files; what is unknown says so, never "None"."""
    from .core.library.steps import display_name

    print(f"{_mark(True)} {display_name(row)}  ({row.key}, {seconds:.1f} s)")
    bpm = f"{row.bpm} BPM" if row.bpm is not None else "BPM n/a"
    key = f"{row.key_name} ({row.camelot})" if row.key_name else "key n/a"
    lufs = f"{row.lufs:.1f} LUFS" if row.lufs is not None else "loudness n/a"
    print(f"     {bpm}, {key}, {lufs}, {row.duration_s or 0:.1f} s")
    for record in files:
        print(f"     {record.format:<5} {record.path}")


# -- analyze --------------------------------------------------------------------------------

PUBLIC_FIELDS = ("path", "bpm", "bpm_confidence", "key", "key_short", "camelot", "open_key", "key_confidence",
                 "lufs", "loudness_range_lu", "true_peak_db", "replaygain_track_gain_db",
                 "replaygain_track_peak", "duration_s", "cutoff_hz", "lossy_origin", "elapsed_s")


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else 0
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                         f"  {elapsed:.0f} s, ~{eta:.0f} s left ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def cmd_analyze(args: argparse.Namespace) -> int:
    import json

    from .core.audio import analysis, parallel, tonality

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
            line = f"{_mark(False)} {record['path']}: {record['error']}"
        else:
            lufs = f"{record['lufs']:.1f} LUFS" if record["lufs"] is not None else "-- LUFS"
            line = (f"{record['bpm']:6.1f} BPM  {record['key']:<9} {record['camelot']:>3} {record['open_key']:>3}  "
                    f"{lufs}  {record['duration_s']:.0f} s  {record['path']}")
        if progress.enabled:
            sys.stderr.write("\r\033[K")
        print(line, flush=True)
    progress.close()
    if failures:
        print(f"{failures} of {len(files)} file(s) could not be analysed", file=sys.stderr)
    return 0 if not failures else 1


# -- sources: login, pin, process, sync --------------------------------------------------------


def _resources() -> dict:
    """The resources for use here, outside a run: their ``EnvVar``s resolved (a run resolves
    its own, and keeps them out of its config)."""
    from .resources import build_resources

    # each initialised in a context kept open until the command ends, then closed: Dagster's
    # init context holds an in-memory instance, which, left to the garbage collector, printed
    # SQLAlchemy "Cannot operate on a closed database" tracebacks under doctor's output
    return {name: _OPEN.enter_context(resource.process_config_and_initialize_cm())
            for name, resource in build_resources().items()}


_OPEN = contextlib.ExitStack()
atexit.register(_OPEN.close)


def cmd_spotify_login(args: argparse.Namespace) -> int:
    from .core.sources.spotify.auth import login

    resource = _resources()["spotify"]
    config = resource.config()
    login(config, timeout_s=args.timeout)
    print(f"{_mark(True)} logged in; the token is in {config.token_cache} (the Dagster processes read it there)")
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    from .core.sources import discovery

    row = discovery.pin(_library(), args.track, args.url)
    print(f"{_mark(True)} {row.key} will be downloaded from {row.match_url}")
    if args.later:
        print("     it is picked up by `music-pipeline process all` or the nightly sync")
        return 0
    return _bulk(keys=[row.key], origin="cli pin")


def _bulk(keys: list[str] | None = None, select: str = "", limit: int = 0, force: bool = False,
          verbose: bool = False, origin: str = "cli", job_name: str = "process_track", parallel: int = 0) -> int:
    """Run the bulk job (each track a run of the per-track job) here, printing each track as
    it finishes; exit code 1 when any failed. The runs land in DAGSTER_HOME's instance, so
    they show in the UI too."""
    from dagster._core.utils import make_new_run_id

    from .automation.bulk import ORIGIN_TAG, process_tracks, progress, run_config
    from .automation.jobs import bind, library_index_job
    from .instance import WORKER_TAG, worker_tag
    from .resources import build_resources

    resources = build_resources()  # from the environment now, not when the code location was imported
    library = resources["library"].get()
    library.catalog  # noqa: B018 - a catalog this version cannot use stops here, with its message
    if keys is not None and not keys:
        print("nothing to process")
        return 0
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL" if not verbose else "INFO"}}}}
    failed: list[str] = []

    def report(number: int, total: int, key: str, outcome: str, seconds: float) -> None:
        row = library.catalog.tracks.get(key)
        status = row.status if row else None
        print(f"[{number}/{total}] ", end="")
        if job_name == "mirror_track":
            _print_mirrors(library, key, outcome)
        elif outcome == "done" and status == Status.DONE:
            _print_track(row, library.catalog.files.all([key]), seconds)
        elif status == Status.DUPLICATE:
            print(f"{_mark(True)} {key} is a duplicate of {row.duplicate_of} (group {row.dedup_group}); "
                  f"nothing transcoded\n     `music-pipeline dedup --undo {row.dedup_group}` processes it anyway")
        elif status == Status.NEEDS_REVIEW:
            print(f"{_mark(False, 'REVIEW')} {key}: {row.error}")
        elif outcome == "skipped":
            print(f"{_mark(True, 'SKIP')} {key}: another run is processing it")
        elif outcome == "done":
            print(f"{_mark(True)} {key}")
        else:
            failed.append(key)
            step = f" [{row.error_step}]" if row and row.error_step else ""
            print(f"{_mark(False)} {key}{step}: {(row and row.error) or 'failed (see its run in the Dagster UI)'}")
        sys.stdout.flush()

    config = run_config(keys, select=select, limit=limit, force=force, job_name=job_name, parallel=parallel)
    run_id = make_new_run_id()
    with _instance() as instance, progress(report):
        result = process_tracks.execute_in_process(
            run_config={**quiet, **config}, instance=instance, resources=resources, raise_on_error=False,
            tags={ORIGIN_TAG: origin, WORKER_TAG: worker_tag(run_id)}, run_id=run_id)
        metadata = _bulk_metadata(result)
        index_missing = not (library.root / "library_index.csv").exists()  # e.g. a killed index write
        if job_name == "process_track" and (metadata.get("done") or index_missing):
            bind(library_index_job, resources).execute_in_process(instance=instance, run_config=quiet,
                                                                  raise_on_error=False)
    total = metadata.get("tracks", 0)
    if not total:
        message = _first_failure(result)
        print(message or "nothing to process")
        return 1 if message else 0
    print(f"{total - len(failed)} of {total} processed; library: {library.root}")
    return 1 if failed else 0


def _print_mirrors(library, key: str, outcome: str) -> None:
    from .core.library import mirrors

    where = [f"{name} {state.remote_id}" for name, sink in (("Notion page", mirrors.NOTION),
                                                                ("Eagle item", mirrors.EAGLE))
             if (state := library.catalog.mirrors.get(key, sink)) is not None]
    print(f"{_mark(outcome == 'done')} {key}: {', '.join(where) or 'no sink configured or reachable'}"
          + ("" if outcome == "done" else " (failed: see its run in the Dagster UI)"))


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
    from .core.domain.errors import TrackError as Problem
    from .core.sources import discovery

    if args.targets:
        keys, failures = _register(args.targets)
        return max(_bulk(keys=keys, origin="cli sync"), 1 if failures else 0)
    resources = _resources()
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
            print(f"{_mark(False, 'SKIP')} {what}: {err}")
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


def cmd_dedup(args: argparse.Namespace) -> int:
    """Report duplicate groups among files (or the library's tracks); move them only with --move."""
    import json

    from .core.audio import parallel
    from .core.domain import dedup
    from .core.library import duplicates

    library = _library()
    if args.undo:
        record = duplicates.undo(library, args.undo)
        members = record.others
        print(f"{_mark(True)} {args.undo}: {len(record.moves)} file(s) put back; {', '.join(members)} restored")
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
                print(f"{_mark(False)} {record['path']}: {record['error']}", file=sys.stderr)
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
    groups = dedup.find_groups(items, threshold=args.threshold)
    moved = 0
    for group in groups:
        if args.move:
            moved += len(duplicates.apply(library, group).moves)
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


def _undo_mirrors(library, members: list[str]) -> int:
    """The members' Notion pages back out of the trash (what their merge added taken off the
    keeper's page); a Notion that cannot be reached is said, and `dedup --undo` still counts."""
    from .core.domain.errors import TrackError as Problem
    from .core.library import mirrors

    notion = _resources()["notion"]
    if not notion.configured or not library.catalog.mirrors.merges(mirrors.NOTION, members):
        return 0
    try:
        restored = mirrors.undo_notion(library, notion.mirror(), members)
    except Problem as err:
        print(f"{_mark(False)} Notion pages not restored yet: {err}\n     the notion_queue sensor restores them "
              "once Notion answers")
        return 1
    print(f"{_mark(True)} {len(restored)} Notion page(s) restored from the trash")
    return 0


def _note(group, member: str) -> str:
    """What a member's audio lacks (a lossy origin, seconds cut off), shown beside its path."""
    return f" ({group.notes[member]})" if member in group.notes else ""


# -- entry point ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="music-pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="install what is missing and start the Dagster UI + daemon")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=3000)
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
        print(f"{_mark(False)} {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except OSError as err:
        print(f"{_mark(False)} {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; files being written were discarded, finished ones are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
