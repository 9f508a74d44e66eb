"""Notion and Eagle as Dagster resources: configuration only, from the environment
(NOTION_TOKEN, TRACKS_DB_ID, PLAYLISTS_DB_ID, ARTISTS_DB_ID, NOTION_API_BASE_URL,
NOTION_PROPERTIES; EAGLE_API_BASE, EAGLE_TOKEN, EAGLE_FORMAT). Both are optional: unset, the
assets and the sensor say "skipped: not configured" and the rest of the pipeline goes on."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from ..core.sources import eagle
from ..core.sources.notion import mapping
from ..core.sources.notion.api import NotionApi
from ..core.sources.notion.mirror import NotionMirror, Related
from ..core.sources.ratelimit import SharedRateLimiter

DEFAULT_EAGLE = "http://localhost:41595"
#: Notion allows an integration about 3 requests a second on average.
NOTION_RATE = 3.0

#: Per process: the schema is read once per run (a bulk run is one process), not per track;
#: a long-lived process (the sensors' code server) reads it again after SCHEMA_TTL_S.
_mirrors: dict[tuple, tuple[float, NotionMirror]] = {}
SCHEMA_TTL_S = 600.0


def limiter_path(token: str) -> Path:
    """One schedule per integration token, shared by every process on this machine (sensors,
    runs, lanes, commands): Notion counts requests per integration."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"music-pipeline-{os.getuid()}" / f"notion-{digest}.rate"


def notion_limiter(token: str, rate: float = NOTION_RATE) -> SharedRateLimiter:
    """The integration's one request schedule: in the production instance's PostgreSQL when
    there is one (every machine talking to the workspace shares it), else in the file of
    :func:`limiter_path` (every process of this machine)."""
    from ..instance import production_database

    database = production_database()
    if database is None:
        return SharedRateLimiter(limiter_path(token), rate=rate, burst=3)
    import psycopg2

    name = limiter_path(token).stem  # notion-<token hash>: the token itself is never stored
    return SharedRateLimiter.postgres(lambda: psycopg2.connect(**database, connect_timeout=10), name, rate=rate,
                                      burst=3, where=f"PostgreSQL {database['host']}:{database['port']}/"
                                                     f"{database['dbname']}")


class NotionResource(ConfigurableResource):
    """The Notion integration and the tracks database it mirrors the library into."""

    token: str = Field(default="", description="Internal integration secret (NOTION_TOKEN).")
    tracks_db_id: str = Field(default="", description="The tracks database's id (TRACKS_DB_ID).")
    playlists_db_id: str = Field(default="", description="Playlists database, for a Playlists relation "
                                                         "(PLAYLISTS_DB_ID; else a multi-select).")
    artists_db_id: str = Field(default="", description="Artists database, for an Artist relation (ARTISTS_DB_ID).")
    api_base_url: str = Field(default="", description="API base URL, for a proxy or a local server "
                                                      "(NOTION_API_BASE_URL; default the public API).")
    properties: dict[str, str] = Field(default_factory=dict, description=(
        "Property name per field, where it differs from the default (NOTION_PROPERTIES as JSON); an empty name "
        "leaves a field out. Fields and defaults: " + ", ".join(f"{f.name}={f.default!r}"
                                                                for f in mapping.FIELDS.values())))
    rate: float = Field(default=NOTION_RATE, description="Requests per second on average, across every process.")
    backoff_s: float = Field(default=1.0, description="Seconds before the first retry of a 5xx or a lost "
                                                      "connection (doubling up to 5 attempts).")

    @property
    def configured(self) -> bool:
        return bool(self.token and self.tracks_db_id)

    @property
    def why_not(self) -> str:
        return "skipped: Notion is not configured (set NOTION_TOKEN and TRACKS_DB_ID)"

    def api(self) -> NotionApi:
        return NotionApi(self.token, base_url=self.api_base_url or None,
                         limiter=notion_limiter(self.token, self.rate),
                         backoff_s=self.backoff_s)

    def mirror(self) -> NotionMirror:
        """The tracks database, its schema read once in this process."""
        cache_key = (self.token, self.tracks_db_id, self.playlists_db_id, self.artists_db_id, self.api_base_url,
                     tuple(sorted(self.properties.items())))
        cached = _mirrors.get(cache_key)
        if cached is None or time.monotonic() - cached[0] > SCHEMA_TTL_S:
            api = self.api()
            source = api.data_source(self.tracks_db_id, setting="TRACKS_DB_ID")
            related_ids = {"ARTISTS_DB_ID": self.artists_db_id, "PLAYLISTS_DB_ID": self.playlists_db_id}
            schema = mapping.resolve(source.id, source.properties, self.properties,
                                     related={k: bool(v) for k, v in related_ids.items()})
            related = {}
            for field in ("artists", "playlists"):
                prop = schema.prop(field)
                if prop is not None and prop.type == "relation":
                    setting = mapping.FIELDS[field].relation
                    other = api.data_source(related_ids[setting], setting=setting)
                    title = next(n for n, p in other.properties.items() if p.get("type") == "title")
                    related[field] = Related(api, other.id, title)
            _mirrors[cache_key] = (time.monotonic(), NotionMirror(api, schema, related=related))
        return _mirrors[cache_key][1]


class EagleResource(ConfigurableResource):
    """The Eagle app's local API, which the library's files are imported into."""

    api_base: str = Field(default=DEFAULT_EAGLE, description="Eagle's local API (EAGLE_API_BASE).")
    token: str = Field(default="", description="API token when Eagle asks for one (EAGLE_TOKEN).")
    format: str = Field(default="ALAC", description="Which file is imported: ALAC, AIFF or WAV (EAGLE_FORMAT).")
    enabled: bool = Field(default=True, description="Off: never contact Eagle (EAGLE_API_BASE=off).")

    def client(self) -> eagle.EagleClient:
        return eagle.EagleClient(self.api_base, token=self.token or None)
