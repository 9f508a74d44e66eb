"""Environment settings, read in one place.

Names are those of the original system where it had them, so its users can move over:
NOTION_TOKEN, TRACKS_DB_ID, EAGLE_API_BASE, EAGLE_TOKEN, SPOTIFY_CLIENT_ID,
SPOTIFY_CLIENT_SECRET and WAV_BACKUP_DIR. MUSIC_LIBRARY is new: the library root.
"""

from __future__ import annotations

import os
from pathlib import Path

MUSIC_LIBRARY = "MUSIC_LIBRARY"
WAV_BACKUP_DIR = "WAV_BACKUP_DIR"
DAGSTER_HOME = "DAGSTER_HOME"

DEFAULT_LIBRARY = "./library"
DEFAULT_DAGSTER_HOME = "./.dagster_home"


def library_root() -> Path:
    """The library root: $MUSIC_LIBRARY, else ./library (relative to where you start)."""
    return Path(os.environ.get(MUSIC_LIBRARY) or DEFAULT_LIBRARY).expanduser().resolve()


def spotify() -> dict:
    """SpotifyResource settings from the environment (empty strings when unset)."""
    return {"client_id": os.environ.get("SPOTIFY_CLIENT_ID", ""),
            "client_secret": os.environ.get("SPOTIFY_CLIENT_SECRET", ""),
            "redirect_uri": os.environ.get("SPOTIFY_REDIRECT_URI") or "http://127.0.0.1:8888/callback",
            "token_cache": os.environ.get("SPOTIFY_TOKEN_CACHE")
            or str(Path(os.environ.get(DAGSTER_HOME) or DEFAULT_DAGSTER_HOME).expanduser().resolve()
                   / "spotify-token.json")}


def spotify_resource_config() -> dict:
    """As ``spotify()``, but the client id and secret as Dagster ``EnvVar``s when set, so
    the UI shows the variable's name, never its value."""
    from dagster import EnvVar

    values = spotify()
    for name, variable in (("client_id", "SPOTIFY_CLIENT_ID"), ("client_secret", "SPOTIFY_CLIENT_SECRET")):
        if values[name]:
            values[name] = EnvVar(variable)
    return values


def notion_resource_config() -> dict:
    """NotionResource settings from the environment; the token as a Dagster ``EnvVar`` so the
    UI shows the variable's name, never its value."""
    import json

    from dagster import EnvVar

    try:
        properties = json.loads(os.environ.get("NOTION_PROPERTIES") or "{}")
    except ValueError:
        properties = {}
    if not isinstance(properties, dict):
        properties = {}
    return {"token": EnvVar("NOTION_TOKEN") if os.environ.get("NOTION_TOKEN") else "",
            "tracks_db_id": os.environ.get("TRACKS_DB_ID", ""),
            "playlists_db_id": os.environ.get("PLAYLISTS_DB_ID", ""),
            "artists_db_id": os.environ.get("ARTISTS_DB_ID", ""),
            "api_base_url": os.environ.get("NOTION_API_BASE_URL", ""),
            "properties": {str(k): str(v) for k, v in properties.items()}}


def eagle_resource_config() -> dict:
    """EagleResource settings: EAGLE_API_BASE (``off`` never contacts Eagle), EAGLE_TOKEN, EAGLE_FORMAT."""
    from dagster import EnvVar

    base = os.environ.get("EAGLE_API_BASE") or "http://localhost:41595"
    return {"api_base": base if base.lower() != "off" else "", "enabled": base.lower() != "off",
            "token": EnvVar("EAGLE_TOKEN") if os.environ.get("EAGLE_TOKEN") else "",
            "format": (os.environ.get("EAGLE_FORMAT") or "ALAC").upper()}


def dj_resource_config() -> dict:
    """DjResource settings: the exports' format, the library's root as the DJ's computer names
    it (DJ_LIBRARY_ROOT) and the exports' folder."""
    return {"format": (os.environ.get("DJ_EXPORT_FORMAT") or "AIFF").upper(),
            "library_root": os.environ.get("DJ_LIBRARY_ROOT", ""),
            "export_dir": os.environ.get("DJ_EXPORT_DIR", "")}


def soundcloud_user() -> str:
    return os.environ.get("SOUNDCLOUD_USER", "")


def timezone() -> str:
    """Schedules' time zone: $MUSIC_PIPELINE_TZ, else $TZ, else UTC."""
    return os.environ.get("MUSIC_PIPELINE_TZ") or os.environ.get("TZ") or "UTC"


INBOX_PER_TICK = "MUSIC_PIPELINE_INBOX_PER_TICK"
DEFAULT_INBOX_PER_TICK = 200


def inbox_per_tick() -> int:
    """How many inbox entries (audio files, list lines) one inbox_sensor tick takes:
    $MUSIC_PIPELINE_INBOX_PER_TICK, else 200, which keeps a tick to seconds, far from
    Dagster's 60-second limit. A value that is not a positive number counts as unset."""
    try:
        value = int(os.environ.get(INBOX_PER_TICK) or DEFAULT_INBOX_PER_TICK)
    except ValueError:
        return DEFAULT_INBOX_PER_TICK
    return value if value > 0 else DEFAULT_INBOX_PER_TICK


def catalog_url() -> str | None:
    """$MUSIC_CATALOG_URL: the catalog on PostgreSQL, shared by several machines (a SQLAlchemy
    URL, ``postgresql+psycopg2://user:password@host:5432/music``); unset, catalog.sqlite in the
    library folder. It holds a password: it is passed to runs as an environment variable,
    never written into their config."""
    return os.environ.get("MUSIC_CATALOG_URL") or None


def wav_backup_dir() -> str | None:
    return os.environ.get(WAV_BACKUP_DIR) or None


def ensure_dagster_home(production: bool = False) -> Path:
    """Make DAGSTER_HOME persistent: without it `dagster dev` keeps runs and partitions in
    a temporary folder it deletes on exit. Sets the variable for this process and its
    children when it was unset. A dagster.yaml is written only when there is none: the
    SQLite one, or with ``production`` the PostgreSQL + Celery one (``up --production``)."""
    home = Path(os.environ.get(DAGSTER_HOME) or DEFAULT_DAGSTER_HOME).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ[DAGSTER_HOME] = str(home)
    config = home / "dagster.yaml"
    if not config.exists():  # an existing one is the user's: doctor says what it lacks
        from .instance import dagster_yaml, production_yaml

        # Whole or not at all, and never over one another process wrote meanwhile.
        tmp = config.with_name(f".dagster.yaml.{os.getpid()}")
        tmp.write_text(production_yaml() if production else dagster_yaml(home))
        try:
            os.link(tmp, config)
        except FileExistsError:
            pass
        except OSError:  # no hard links on this volume
            if not config.exists():
                os.replace(tmp, config)
        finally:
            tmp.unlink(missing_ok=True)
    return home

