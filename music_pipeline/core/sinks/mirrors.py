"""Notion and Eagle as track sinks: a page and an item per track.

A sink that is not configured, not reachable, or refuses the integration (401, 403, a
database not shared) does not fail the track: it reports why and writes nothing, and the
rest of the pipeline is unaffected. One that answers but fails on the way (5xx after
retries, a network cut) raises; the next run picks up where it stopped, and nothing is
created twice (pages are found by key, URL and ISRC first; items by id, then checksum).
"""

from __future__ import annotations

from typing import Any

from ..domain.errors import TrackError
from ..domain.paths import FORMATS
from ..library import mirrors
from ..sources import eagle as eagle_api
from .base import Link, Markdown, Registration, Report, register

_reported: set[tuple] = set()  # schema problems are said once per process, not once per track


class NotionSink:
    """The track's page in the Notion tracks database (``notion``: a NotionResource, or
    anything with ``configured``, ``why_not``, ``tracks_db_id`` and ``mirror()``)."""

    def __init__(self, notion: Any) -> None:
        self.notion = notion

    def why_off(self) -> str | None:
        return None if self.notion.configured else self.notion.why_not

    def write_track(self, lib, key: str) -> Report:
        if (why := self.why_off()) is not None:
            return Report.skip(why)
        warnings = []
        try:
            mirror = self.notion.mirror()
            sent = mirror.api.requests
            problems = tuple(mirror.schema.problems)
            if problems and (self.notion.tracks_db_id, problems) not in _reported:
                _reported.add((self.notion.tracks_db_id, problems))
                warnings.append("Notion tracks database: " + "; ".join(problems))
            outcome = mirrors.sync_notion(lib, mirror, key)
        except TrackError as err:
            if getattr(err, "misconfigured", False):
                return Report.skip(f"Notion refused: {err}", error=True)
            raise
        notes = ((f"kept what a person typed in {', '.join(outcome.kept)}",) if outcome.kept else ()) + tuple(outcome.notes)
        return Report(outcome.action, changed=tuple(outcome.changed), notes=notes, warnings=tuple(warnings),
                      metadata={
                          "page": Link(outcome.url) if outcome.url else outcome.page_id,
                          "page_id": outcome.page_id,
                          "action": outcome.action,
                          "changed": ", ".join(outcome.changed),
                          "kept_hand_edits": ", ".join(outcome.kept),
                          "merged_pages": ", ".join(page for page, _ in outcome.merged),
                          "schema_problems": Markdown("\n".join(f"- {p}" for p in mirror.schema.problems) or "none"),
                          "notion_requests": mirror.api.requests - sent,
                      })


class EagleSink:
    """The track's item in the Eagle app (``eagle``: an EagleResource, or anything with
    ``enabled``, ``format`` and ``client()``)."""

    def __init__(self, eagle: Any) -> None:
        self.eagle = eagle

    def why_off(self) -> str | None:
        if not self.eagle.enabled:
            return "skipped: Eagle is turned off (EAGLE_API_BASE=off)"
        if self.eagle.format not in FORMATS:
            return f"EAGLE_FORMAT {self.eagle.format!r} is not one of {', '.join(FORMATS)}; nothing imported into Eagle"
        return None

    def write_track(self, lib, key: str) -> Report:
        if (why := self.why_off()) is not None:
            return Report.skip(why, error=self.eagle.enabled)  # a wrong format is said loudly
        try:
            result = mirrors.sync_eagle(lib, self.eagle.client(), key, self.eagle.format)
        except eagle_api.EagleTokenRejected as err:  # misconfigured: said loudly, not the track's failure
            return Report.skip(str(err), error=True)
        except eagle_api.EagleNotReachable as err:
            return Report.skip(str(err))
        return self._report(result)

    def write_tracks(self, lib, keys: list[str]) -> dict[str, Report | TrackError]:
        """The batch path: several tracks' items at once, the new ones imported in one request
        (V2's ``item/add`` with ``items``, else V1's ``addFromPaths`` and one polling loop for
        all) instead of an import and its polling per track. Each track's report, or the error
        it met (the others went on)."""
        if (why := self.why_off()) is not None:
            return {key: Report.skip(why, error=self.eagle.enabled) for key in keys}
        try:
            outcomes = mirrors.sync_eagle_many(lib, self.eagle.client(), keys, self.eagle.format)
        except eagle_api.EagleTokenRejected as err:
            return {key: Report.skip(str(err), error=True) for key in keys}
        except eagle_api.EagleNotReachable as err:
            return {key: Report.skip(str(err)) for key in keys}
        return {key: o if isinstance(o, TrackError) else self._report(o) for key, o in outcomes.items()}

    @staticmethod
    def _report(result: mirrors.EagleOutcome) -> Report:
        notes = (f"Eagle's V1 API cannot change the item's {' and '.join(result.stale)} (Eagle 4's V2 API can); "
                 "change them in Eagle if you want",) if result.stale else ()
        return Report(result.action, changed=tuple(result.trashed), notes=notes,
                      metadata={"item_id": result.item_id, "action": result.action,
                                "trashed_duplicates": ", ".join(result.trashed),
                                "not_changeable": ", ".join(result.stale)})


register(Registration(
    name="notion", scope="track", asset="notion_records", kind="notion",
    description="The track's page in the Notion tracks database (TRACKS_DB_ID): found by the track key, then a "
                "source URL, then the ISRC before one is created; only what changed is written, and a value a person "
                "edited by hand since the last sync is kept. Pages of the same track made by hand are merged into it "
                "and put in Notion's trash (never deleted).",
    settings=("NOTION_TOKEN", "TRACKS_DB_ID", "PLAYLISTS_DB_ID", "ARTISTS_DB_ID", "NOTION_API_BASE_URL",
              "NOTION_PROPERTIES"),
    resources=("notion",), build=NotionSink))
register(Registration(
    name="eagle", scope="track", asset="eagle_records", kind="eagle",
    description="The track's item in the Eagle app (EAGLE_API_BASE): the preferred format imported once (the "
                "stored item id, then Eagle's items by checksum, are checked first), with name, website, annotation "
                "(BPM, key, loudness) and tags, in a folder per playlist. Items of the track's duplicates go to "
                "Eagle's trash.",
    settings=("EAGLE_API_BASE", "EAGLE_TOKEN", "EAGLE_FORMAT"), resources=("eagle",), build=EagleSink))
