"""Asking the running Dagster for tracks: what `music-pipeline add`, the share endpoint and
Notion's webhook do with a link, the one way a request from outside becomes a run.

Each target is checked and named (its track key); a target the library already has is asked
for under the key the library knows it by; a link carrying a secret (a signed URL, a password)
is registered in the library here and never sent to Dagster, whose run config and tags the UI
shows. Then one bulk run (``process_tracks``) is launched for all of them through the
webserver's GraphQL API, so the partitions and runs land in the instance the UI shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .core.domain.errors import TrackError
from .remote import DagsterRemote, RemoteError


@dataclass
class Requested:
    target: str  # as given, masked (never the secret)
    key: str | None = None  # the track's partition key, None when refused
    known: bool = False  # the library already had it (under ``key``)
    error: str | None = None


@dataclass
class Intake:
    items: list[Requested] = field(default_factory=list)
    run_id: str | None = None
    error: str | None = None  # the run could not be launched

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys(item.key for item in self.items if item.key))

    @property
    def failures(self) -> int:
        return sum(1 for item in self.items if item.error) + (1 if self.error else 0)


def request_tracks(remote: DagsterRemote, library, targets: Iterable[str], origin: str,
                   resolve: Callable[[str], tuple[str, str]] | None = None) -> Intake:
    """Register what needs registering and launch one bulk run for ``targets`` (URLs or
    files) on the Dagster at ``remote``, tagged with ``origin``. Never raises for one bad
    target: each says why in its :class:`Requested`."""
    from .automation.bulk import ORIGIN_TAG, run_config
    from .core.domain.identity import looks_like_url, redact_url, source_for
    from .core.library.steps import register_target
    from .core.sources.download import resolve_id

    resolve = resolve or resolve_id
    intake = Intake()
    given: dict[str, str] = {}  # key -> the URL or file the run fetches it from
    for target in targets:
        item = Requested(redact_url(target))
        intake.items.append(item)
        try:
            source = source_for(target, resolve)
            owner = (library.known_as(source) or (source.key if library.catalog.tracks.get(source.key) else None)) \
                if library.has_catalog() else None
            if owner is not None:  # the same rule as every way in: the track the library has it as
                item.key, item.known = owner, True
            else:
                if source.url and redact_url(source.url) != source.url:
                    # A signed link or a password: never in the run's config or tags (the UI shows both).
                    # Registered here, in the library this machine shares with the daemon.
                    if not library.has_catalog():  # not this machine's share of Dagster's library
                        raise TrackError(f"it carries a secret (a signed link or a password), so it is not sent "
                                         f"to Dagster but registered in the library here, and {library.root} has "
                                         "no catalog yet: nothing was registered or added.",
                                         hint="Set MUSIC_LIBRARY to the library Dagster uses, drop the URL in a "
                                              ".txt in its inbox, or process it here with `music-pipeline run`.")
                    register_target(library, target, resolve)
                else:
                    given[source.key] = source.url if looks_like_url(target) else str(Path(target).expanduser().resolve())
                item.key = source.key
            remote.add_partition("tracks", item.key)
        except (TrackError, RemoteError) as err:
            item.key, item.error = None, str(err)
    if intake.keys:
        try:
            intake.run_id = remote.launch("process_tracks", tags={ORIGIN_TAG: origin},
                                          run_config=run_config(intake.keys, targets=given))
        except RemoteError as err:
            intake.error = str(err)
    return intake


def request_keys(remote: DagsterRemote, keys: list[str], origin: str) -> Intake:
    """One bulk run for tracks already registered (pages a Notion webhook named)."""
    from .automation.bulk import ORIGIN_TAG, run_config

    intake = Intake([Requested(key, key=key, known=True) for key in keys])
    try:
        for key in keys:
            remote.add_partition("tracks", key)
        intake.run_id = remote.launch("process_tracks", tags={ORIGIN_TAG: origin}, run_config=run_config(keys))
    except RemoteError as err:
        intake.error = str(err)
    return intake


@dataclass
class Answer:
    status: int  # the HTTP status for the client
    body: dict


def request_link(webserver: str, link: str, origin: str) -> Answer:
    """A link shared from outside (the share endpoint), requested as `add` requests it:
    202 with the track's key and where to watch it, else why not."""
    from .resources import build_resources

    remote = DagsterRemote(webserver)
    if not remote.reachable():
        return Answer(503, {"error": f"Dagster is not running at {webserver}; nothing was registered"})
    intake = request_tracks(remote, build_resources()["library"].get(), [link], origin)
    (item,) = intake.items
    if item.error:
        return Answer(422, {"error": item.error})
    if intake.error:
        return Answer(503, {"error": intake.error, "key": item.key})
    base = webserver.rstrip("/")
    print(f"share: {item.target} → {item.key} (run {intake.run_id})", flush=True)
    return Answer(202, {"key": item.key, "known": item.known, "run_id": intake.run_id,
                        "run": f"{base}/runs/{intake.run_id}",
                        "track": f"{base}/assets/raw_audio?view=partitions&partition={item.key}"})
