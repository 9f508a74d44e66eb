"""Dagster resources: configuration for each outside system, built from the environment."""

from .analysis import AnalysisResource
from .dj import DjResource
from .downloader import DownloaderResource
from .library import LibraryResource
from .mirrors import EagleResource, NotionResource
from .sources import SoundCloudResource, SpotifyResource

#: Secret fields and the variables they come from: a run re-binds the per-track job with its
#: resources, and a value given as itself would be kept in the job's snapshot in the instance.
SECRETS = {("library", "catalog_url"): "MUSIC_CATALOG_URL", ("notion", "token"): "NOTION_TOKEN", ("eagle", "token"): "EAGLE_TOKEN",
           ("spotify", "client_id"): "SPOTIFY_CLIENT_ID", ("spotify", "client_secret"): "SPOTIFY_CLIENT_SECRET"}


def unresolved(resources: dict) -> dict:
    """``resources`` with each secret that came from its environment variable given back as
    that ``EnvVar`` (Dagster resolves it when the run starts, and stores only its name)."""
    import os

    from dagster import EnvVar

    out = dict(resources)
    for (name, field), variable in SECRETS.items():
        resource = out.get(name)
        value = getattr(resource, field, None) if resource is not None else None
        if value and isinstance(value, str) and not isinstance(value, EnvVar) and value == os.environ.get(variable):
            fields = {f: getattr(resource, f) for f in type(resource).model_fields}
            out[name] = type(resource)(**{**fields, field: EnvVar(variable)})
    return out


def resolved(resource):
    """``resource`` with its ``EnvVar`` fields read from this process's environment (what a run
    does when it starts), for code that uses a resource outside one."""
    from dagster import EnvVar

    fields = {f: getattr(resource, f) for f in type(resource).model_fields}
    return type(resource)(**{f: v.get_value() if isinstance(v, EnvVar) else v for f, v in fields.items()})


def build_resources(**overrides) -> dict:
    """The resources for this environment, built in one place for the code location, the
    command line and the tests (the library root from MUSIC_LIBRARY, WAV_BACKUP_DIR when
    set, the accounts from their variables); ``overrides`` replaces any of them."""
    from .. import settings

    resources = {
        "library": LibraryResource(root=str(settings.library_root()), wav_backup_dir=settings.wav_backup_dir(),
                                   catalog_url=settings.catalog_url()),
        "downloader": DownloaderResource(),
        "analysis": AnalysisResource(),
        "spotify": SpotifyResource(**settings.spotify_resource_config()),
        "soundcloud": SoundCloudResource(user=settings.soundcloud_user()),
        "notion": NotionResource(**settings.notion_resource_config()),
        "eagle": EagleResource(**settings.eagle_resource_config()),
        "dj": DjResource(**settings.dj_resource_config()),
    }
    return {**resources, **overrides}


__all__ = ["AnalysisResource", "DjResource", "DownloaderResource", "EagleResource", "LibraryResource", "NotionResource", "SoundCloudResource", "SpotifyResource",
           "build_resources", "resolved", "unresolved"]
