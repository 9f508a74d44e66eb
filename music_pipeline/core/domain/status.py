"""Where a track stands, as the catalog stores it."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"  # registered, waiting for a run
    RUNNING = "running"  # a run is working on it (or was, and died: see selection's "all")
    DONE = "done"  # every format written, tagged and catalogued
    FAILED = "failed"  # ``error``, ``error_step`` and ``error_reason`` say why
    NEEDS_REVIEW = "needs_review"  # a doubtful Spotify match waits for a person (``pin``)
    DUPLICATE = "duplicate"  # set aside as a copy of ``duplicate_of``, until ``dedup --undo``

    @property
    def finished(self) -> bool:
        """Nothing left to do unless forced (explicit requests skip these)."""
        return self in (Status.DONE, Status.DUPLICATE)
