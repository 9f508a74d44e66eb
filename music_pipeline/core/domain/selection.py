"""Which tracks a request processes: the old system's modes as plain rules.

* ``single``: the newest queued track;
* ``batch``: the oldest queued tracks (``limit`` of them);
* ``all``: every queued track, failed ones whose failure may pass (network, disk, a crash;
  not DRM, geo-blocked, not audio or needs review) and "running" ones no run is working on
  (their run was killed);
* ``reprocess``: finished tracks again (after an analysis upgrade); their originals are
  reused, not downloaded again.

Explicit keys (a sensor, `add`, `run`, `sync`, `pin`) skip what is finished or set aside
unless forced or reprocessed, and every request skips what another run is working on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import Reason
from .lifecycle import Status

MODES = ("single", "batch", "all", "reprocess")


class TrackState(Protocol):
    """What the rules read of a track (the catalog's ``Track`` row has it)."""

    key: str
    status: str
    error_reason: str | None


@dataclass
class Selection:
    keys: list[str]
    skipped: list[str] = field(default_factory=list)  # "key: why", for the log


def choose(rows: list[TrackState], mode: str, *, limit: int = 0, in_flight: Iterable[str] = ()) -> list[str]:
    """The keys a mode selects from the catalog's rows (oldest first)."""
    busy = set(in_flight)
    if mode == "single":
        queued = [r.key for r in rows if r.status == Status.QUEUED and r.key not in busy]
        keys = queued[-1:]
    elif mode == "batch":
        keys = [r.key for r in rows if r.status == Status.QUEUED]
    elif mode == "all":
        keys = [r.key for r in rows if r.status == Status.QUEUED
                or (r.status == Status.FAILED and Reason.of(r.error_reason).retryable)
                or (r.status == Status.RUNNING and r.key not in busy)]
    elif mode == "reprocess":
        keys = [r.key for r in rows if r.status == Status.DONE]
    else:
        raise ValueError(f"Unknown mode {mode!r}: choose one of {', '.join(MODES)}.")
    keys = [k for k in keys if k not in busy]
    return keys[:limit] if limit else keys


def pending(keys: Iterable[str], rows: dict[str, TrackState], *, in_flight: Iterable[str] = (), force: bool = False,
            reprocess: bool = False) -> Selection:
    """Of explicitly requested keys, those to process now (in order, each once)."""
    busy = set(in_flight)
    result = Selection([])
    for key in dict.fromkeys(keys):
        row = rows.get(key)
        status = Status(row.status) if row else None
        if key in busy:
            result.skipped.append(f"{key}: another run is processing it")
        elif status is not None and status.finished and not force and not (reprocess and status == Status.DONE):
            result.skipped.append(f"{key}: already {status}")
        else:
            result.keys.append(key)
    return result
