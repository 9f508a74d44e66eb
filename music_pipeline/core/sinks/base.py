"""The sink protocol and its registry (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..library.steps import Library

Scope = Literal["track", "library"]


class Link(str):
    """A metadata value the UI shows as a link."""


class Markdown(str):
    """A metadata value the UI renders as Markdown."""


class FilePath(str):
    """A metadata value the UI shows as a path."""


@dataclass(frozen=True)
class Report:
    """What a sink did with a track or the library.

    ``action``: what happened ("created", "updated", "unchanged", "written", "skipped").
    ``skipped``: why nothing was written (not configured, unreachable, refused by the
    service): a sink that cannot be reached does not fail the track, it says so.
    ``changed``: what it changed (fields, tracks, files), for the log and the UI.
    ``metadata``: shown on the asset's materialisation in the UI.
    ``notes`` and ``warnings``: sentences for the run's log."""

    action: str
    changed: tuple[str, ...] = ()
    skipped: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # a misconfiguration said loudly (not the track's failure)

    @classmethod
    def skip(cls, why: str, *, error: bool = False, **metadata: Any) -> Report:
        return cls("skipped", skipped=why, metadata=metadata, errors=(why,) if error else ())


@runtime_checkable
class Sink(Protocol):
    """What every sink says about itself: whether it is configured (None when it is, else a
    sentence naming the settings to set) and the settings it reads."""

    def why_off(self) -> str | None: ...


@runtime_checkable
class TrackSink(Sink, Protocol):
    """A record per track. Raises ``TrackError`` when the service failed on the way (the
    track's sink run fails, and is retried when the error says it may be)."""

    def write_track(self, lib: Library, key: str) -> Report: ...


@runtime_checkable
class LibrarySink(Sink, Protocol):
    """The whole library at once, written atomically and only when something changed."""

    def write_library(self, lib: Library) -> Report: ...


@dataclass(frozen=True)
class Registration:
    """A sink as the rest of the product sees it.

    ``asset``: the Dagster asset that runs it; ``kind``: the UI's kind tag; ``settings``: the
    environment variables that configure it; ``resources``: the Dagster resources ``build``
    takes (by name), and ``build`` makes the sink from them."""

    name: str
    scope: Scope
    asset: str
    kind: str
    description: str
    settings: tuple[str, ...]
    resources: tuple[str, ...]
    build: Callable[..., Sink]


REGISTRY: dict[str, Registration] = {}


def register(registration: Registration) -> Registration:
    if registration.name in REGISTRY:
        raise ValueError(f"a sink named {registration.name!r} is already registered")
    REGISTRY[registration.name] = registration
    return registration


def registered(scope: Scope | None = None) -> list[Registration]:
    """The registered sinks (of one scope), in registration order."""
    from . import dj, mirrors  # noqa: F401 - their modules register them

    return [r for r in REGISTRY.values() if scope is None or r.scope == scope]
