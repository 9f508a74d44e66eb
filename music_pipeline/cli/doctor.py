"""`music-pipeline doctor`: check the set-up (tools, library, catalog, DAGSTER_HOME, several
machines, Notion and Eagle) and say what to fix; `--install` installs Debian's packages."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from .. import settings
from .common import mark, open_resources

DEBIAN_PACKAGES = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "fpcalc": "libchromaprint-tools"}
DEBIAN_LIBS = ["libchromaprint1"]
# What the tests need besides: Debian's browser for the UI tests (nothing downloaded), and the
# PostgreSQL and Redis servers the service tests start themselves on 127.0.0.1.
TEST_PACKAGES = {"chromium": "chromium", "postgres": "postgresql", "redis-server": "redis-server"}


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
    from ..core.library.steps import is_writable

    results += _library_checks(root)
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
    return results + _mirror_checks() + _dj_checks(root) + _share_checks(Path(home or settings.DEFAULT_DAGSTER_HOME))


def _share_checks(home: Path) -> list[tuple[bool, str, str]]:
    """The share endpoint and Notion's webhook: on or off, a token hard to guess, the
    subscription's verification token kept or awaited (never shown)."""
    from ..endpoints import notion_webhook
    from ..endpoints.app import ALLOW_HOSTS_ENV, SHARE_TOKEN_ENV

    token = os.environ.get(SHARE_TOKEN_ENV, "").strip()
    if not token:
        return [(True, f"share endpoint: off (optional: set {SHARE_TOKEN_ENV} to share links from a phone to "
                       "POST /tracks, and to take Notion's webhook at /notion/webhook)", "")]
    results = [(len(token) >= 24, f"share endpoint: on, {SHARE_TOKEN_ENV} {len(token)} characters "
                                  "(`up` serves it on port 3001 unless --share-port)",
                "use a token of 24 characters or more that nothing else uses, e.g. `openssl rand -hex 24`")]
    if os.environ.get(ALLOW_HOSTS_ENV):
        results.append((True, f"share endpoint: links to {os.environ[ALLOW_HOSTS_ENV]} fetched though local "
                              f"({ALLOW_HOSTS_ENV})", ""))
    home = home.expanduser().resolve()
    kept = notion_webhook.signing_token(home)
    where = notion_webhook.TOKEN_ENV if os.environ.get(notion_webhook.TOKEN_ENV) else notion_webhook.token_path(home)
    state = (f"events checked with the token in {where}" if kept else
             f"no token in place yet (tokens Notion offered are noted in {notion_webhook.offered_path(home)})")
    results.append((True, f"Notion webhook: {state}"
                          " — Notion calls only public HTTPS: put a reverse proxy or a tunnel in front of "
                          "/notion/webhook (README: Sharing a link)", ""))
    return results


def _dj_checks(root: Path) -> list[tuple[bool, str, str]]:
    """The DJ exports: where they go, which files they name, and which root those paths start at."""
    from ..core.dj.locations import RootMap

    dj = open_resources()["dj"].settings()
    if (problem := dj.problem()) is not None:
        return [(False, f"DJ exports: {problem}", "set DJ_EXPORT_FORMAT to AIFF, ALAC or WAV, and DJ_LIBRARY_ROOT to "
                                                "an absolute path such as /Volumes/VIBES or E:\\")]
    roots = RootMap(root, dj.library_root)
    named = roots.dj_path(root / dj.format / "x").rsplit("x", 1)[0]
    where = (f"name the files under {dj.library_root} (DJ_LIBRARY_ROOT), e.g. {named}" if dj.library_root else
             f"name the files as on this machine, e.g. {named} (set DJ_LIBRARY_ROOT when the DJ's computer mounts "
             "the library elsewhere, e.g. /Volumes/VIBES or E:\\)")
    return [(True, f"DJ exports: rekordbox.xml and collection.nml in {dj.folder(root)}, {dj.format} files; they "
                   + where, "")]


def _library_checks(root: Path) -> list[tuple[bool, str, str]]:
    """The library folder: writable, and with room for one more track (a full disk is not ok)."""
    from ..core.library.steps import ROOM_FOR_A_TRACK, free_bytes, is_writable

    writable, free = is_writable(root), free_bytes(root)
    where = f"library {root} ({os.environ.get(settings.MUSIC_LIBRARY) and 'MUSIC_LIBRARY' or 'default'})"
    free_text = f"{free / 1e9:.1f} GB free" if free >= 1e8 else f"{free / 1e6:.1f} MB free"
    results = [(writable, f"{where}: {'writable' if writable else 'not writable'}, {free_text}",
                f"make {root} writable or set MUSIC_LIBRARY to a folder you can write")]
    if writable and free < ROOM_FOR_A_TRACK:
        results.append((False, f"{where}: the disk is full ({free_text}; a track needs about "
                               f"{ROOM_FOR_A_TRACK // 1024**2} MB)",
                        f"free some space on the disk holding {root}, or set MUSIC_LIBRARY to a larger one"))
    return results


def _mirror_checks() -> list[tuple[bool, str, str]]:
    """Notion (token valid, database shared, schema compatible) and Eagle (reachable)."""
    from ..core.domain.errors import TrackError as Problem

    resources = open_resources()
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
    from ..core.sources.notion.mapping import FIELDS

    return list(FIELDS)


def _catalog_checks(root: Path) -> list[tuple[bool, str, str]]:
    """The catalog: reachable (the file, or the PostgreSQL server of MUSIC_CATALOG_URL), sound
    (SQLite's own check), at this version's schema, and its paths found under the library
    folder (a drive mounted elsewhere keeps them)."""
    from ..core.domain.errors import TrackError
    from ..core.library.catalog import CATALOG_FILE, Catalog
    from ..core.library.migrations import SCHEMA_VERSION

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
    from ..instance import missing_settings

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
    from ..instance import missing_production_env, uses_celery, uses_postgres

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
    from ..core.domain.identity import redact_url

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
    from ..workers import app

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
        print(f"{mark(ok, 'FIX ')} {what}")
        if not ok:
            print(f"     → {fix}")
    failed = sum(not ok for ok, _, _ in checks)
    print("Everything is in place." if not failed else f"{failed} thing(s) to fix.")
    return 0 if not failed else 1


# -- up -------------------------------------------------------------------------------------

