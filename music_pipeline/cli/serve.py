"""`music-pipeline up` (the Dagster UI, daemon and code server on a persistent DAGSTER_HOME)
and `music-pipeline worker` (a Celery worker for an instance on several machines)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from .. import settings
from .common import mark, open_library, reap
from .doctor import doctor_checks, install_debian_packages


def cmd_up(args: argparse.Namespace) -> int:
    if args.production:
        from ..instance import missing_production_env

        missing = missing_production_env()
        if missing:
            print(f"{mark(False)} `up --production` keeps runs in PostgreSQL and runs tracks on Celery workers; "
                  f"set these first: {', '.join(missing)}\n"
                  "     DAGSTER_PG_USERNAME, DAGSTER_PG_PASSWORD, DAGSTER_PG_HOST, DAGSTER_PG_PORT, DAGSTER_PG_DB: "
                  "the PostgreSQL database\n"
                  "     CELERY_BROKER_URL, CELERY_RESULT_BACKEND: Redis, e.g. redis://host:6379/0\n"
                  "     (README: Several machines)", file=sys.stderr)
            return 2
    if not args.no_install and not install_debian_packages():
        print("Some system packages are missing; `music-pipeline doctor` says which.", file=sys.stderr)
    home = settings.ensure_dagster_home(production=args.production)
    library = open_library()
    reap(library)  # its storages created now, under the lock, not raced by a `run` started meanwhile
    library.inbox.mkdir(parents=True, exist_ok=True)
    for ok, what, fix in doctor_checks():
        if not ok:
            print(f"{mark(ok)} {what}\n     → {fix}")
    workspace = Path.cwd() / "workspace.yaml"
    target = ["-w", str(workspace)] if workspace.exists() else ["-m", "music_pipeline.definitions"]
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    from ..endpoints.app import MIN_TOKEN, SHARE_TOKEN_ENV

    companions = []
    token = os.environ.get(SHARE_TOKEN_ENV, "").strip()
    if len(token) >= MIN_TOKEN:
        share = (f"{_http(args.share_host, args.share_port)}/tracks   (POST a link with Authorization: Bearer "
                 f"${SHARE_TOKEN_ENV}; Notion's events: /notion/webhook)")
        ui_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(args.host, args.host)
        companions.append(("the share endpoint", [sys.executable, "-m", "music_pipeline.endpoints", "--host",
                                                  args.share_host, "--port", str(args.share_port), "--webserver",
                                                  _http(ui_host, args.port)]))
    elif token:
        share = f"{mark(False)} off: {SHARE_TOKEN_ENV} is shorter than {MIN_TOKEN} characters (`openssl rand -hex 24`)"
    else:
        share = f"off   (set {SHARE_TOKEN_ENV} to share links from a phone and take Notion's webhook)"
    print(f"""
music_pipeline is starting.
  UI:         http://{args.host}:{args.port}   (assets, runs, the inbox sensor)
  Share:      {share}
  Library:    {library.root}
  Inbox:      {library.inbox}   ← drop audio files or a .txt of URLs here
  Dagster:    DAGSTER_HOME={home}
Stop with Ctrl-C; runs and partitions are kept in DAGSTER_HOME.
""", flush=True)
    from ..supervisor import supervise  # not exec'd: SIGTERM must reach the code server and run workers too

    return supervise([dagster, "dev", *target, "--host", args.host, "--port", str(args.port)], companions)


def _http(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def cmd_worker(args: argparse.Namespace) -> int:
    """exec `celery -A music_pipeline.workers worker`: prefork pool processes forked from a main
    process that has the code location imported, so every run starts warm."""
    from ..instance import missing_production_env

    missing = missing_production_env()
    home = os.environ.get(settings.DAGSTER_HOME)
    if missing or not home or not (Path(home) / "dagster.yaml").is_file():
        print(f"{mark(False)} a worker needs the same environment as the machine that ran `up --production`: "
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
