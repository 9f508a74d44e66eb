"""Every Notion request of the product goes through here: notion-client (API 2025-09-03:
databases hold data sources), a rate limit shared by every process, retries, and errors a
user can act on.

notion-client's own retries are turned off and done here instead, so that every attempt
takes a slot of the shared limiter, a 429 pauses every process (not only the one told), 5xx
answers are retried for writes too (notion-client retries them only for GET and DELETE), and
a create that may have gone through is looked up before it is sent again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import notion_client
from notion_client.errors import APIResponseError, HTTPResponseError, RequestTimeoutError

from ...domain.errors import Reason, TrackError
from ..ratelimit import SharedRateLimiter

_RETRY_STATUS = {409, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 30.0


class NotionError(TrackError):
    """Notion did not do what was asked (after the retries)."""

    reason = Reason.SOURCE_UNAVAILABLE  # may pass: the next sync tries again


class NotionAccessError(NotionError):
    """401, 403 or 404 on the integration's database: the sink is misconfigured. Not the
    track's failure; the message says what the user must do."""

    reason = Reason.LOGIN
    misconfigured = True


class NotionValidationError(NotionError):
    """Notion refused a request's content (400 validation_error): a bug or a schema changed."""

    reason = Reason.ERROR


class PageGone(NotionError, LookupError):
    """A page the catalog knew is no longer there (deleted, or no longer shared)."""


@dataclass(frozen=True)
class DataSource:
    database_id: str
    id: str
    title: str
    properties: dict[str, dict]  # name -> {"id", "type", ...}


class NotionApi:
    """The Notion API for one integration token, rate-limited across processes by ``limiter``."""

    def __init__(self, token: str, *, base_url: str | None = None, limiter: SharedRateLimiter | None = None,
                 timeout_s: float = 30.0, max_attempts: int = 5, backoff_s: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limiter, self.max_attempts, self.backoff_s, self.sleep = limiter, max_attempts, backoff_s, sleep
        self.requests = 0  # HTTP requests sent, retries included
        self._http = httpx.Client(timeout=timeout_s, event_hooks={"request": [self._before],
                                                                  "response": [self._after]})
        quiet = logging.getLogger("music_pipeline.notion_client")
        quiet.setLevel(logging.CRITICAL)  # its request log is ours to write, without bodies
        options: dict[str, Any] = {"auth": token, "retry": False, "logger": quiet, "log_level": logging.CRITICAL,
                                   "timeout_ms": int(timeout_s * 1000)}
        if base_url:
            options["base_url"] = base_url.rstrip("/")
        self._client = notion_client.Client(client=self._http, **options)

    def __repr__(self) -> str:  # never the token
        return f"NotionApi({self._client.options.base_url}, {self.requests} requests)"

    def close(self) -> None:
        self._http.close()

    # -- the HTTP hooks ---------------------------------------------------------------------

    def _before(self, request: httpx.Request) -> None:
        if self.limiter is not None:
            self.limiter.acquire()
        self.requests += 1

    def _after(self, response: httpx.Response) -> None:
        if response.status_code == 429 and self.limiter is not None:
            self.limiter.penalize(_retry_after(response.headers))

    # -- calls ------------------------------------------------------------------------------

    def _call(self, what: str, send: Callable[[], Any], *, not_found: str | None = None,
              before_retry: Callable[[], Any] | None = None) -> Any:
        """``send()`` with retries for what may pass (429, 409, 5xx, timeouts, a lost connection)."""
        last = ""
        for attempt in range(self.max_attempts):
            if attempt and before_retry is not None:
                found = before_retry()
                if found is not None:
                    return found
            try:
                return send()
            except APIResponseError as err:
                if err.status not in _RETRY_STATUS:
                    raise self._explain(err, what, not_found) from None
                last = f"{err.status} {_code(err)}"
                delay = _retry_after(err.headers) if err.status == 429 else self._backoff(attempt)
            except HTTPResponseError as err:  # a body that is not Notion's (a proxy's error page)
                if err.status < 500:
                    raise NotionError(f"Notion answered {err.status} to {what}.") from None
                last, delay = f"{err.status}", self._backoff(attempt)
            except (RequestTimeoutError, httpx.TransportError) as err:
                last, delay = f"{type(err).__name__}: no answer", self._backoff(attempt)
            if attempt + 1 < self.max_attempts:
                self.sleep(delay)
        raise NotionError(f"Notion did not answer {what} ({last}) after {self.max_attempts} attempts; "
                          "the next sync tries again.")

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_s * 2 ** attempt, MAX_BACKOFF_S) * random.uniform(0.75, 1.25)

    def _explain(self, err: APIResponseError, what: str, not_found: str | None) -> NotionError:
        message = str(err).splitlines()[0][:300] if str(err) else _code(err)
        if err.status == 401:
            return NotionAccessError(
                "Notion rejected NOTION_TOKEN (401 unauthorized): the integration secret is wrong or was revoked.",
                hint="Copy the Internal Integration Secret from https://www.notion.so/profile/integrations into "
                     "NOTION_TOKEN.")
        if err.status == 403:
            return NotionAccessError(
                f"Notion refused {what} (403 {_code(err)}): the integration lacks a capability.",
                hint="In https://www.notion.so/profile/integrations, open the integration's Capabilities and allow "
                     "Read content, Update content and Insert content.")
        if err.status == 404:
            if not_found is not None:
                return NotionAccessError(not_found)
            return PageGone(f"Notion has no {what} any more (404 object_not_found).")
        if _code(err) == "validation_error":
            return NotionValidationError(f"Notion refused {what}: {message}")
        return NotionError(f"Notion refused {what} ({err.status} {_code(err)}): {message}")

    # -- the endpoints the mirror uses --------------------------------------------------------

    def data_source(self, database_id: str, *, setting: str = "TRACKS_DB_ID") -> DataSource:
        """A database's (first) data source and its schema."""
        missing = (f"Notion cannot find the database {database_id} ({setting}): the id is wrong, or the database "
                   "is not shared with your integration.")
        hint = (" Open the database in Notion, ••• menu → Connections → add your integration; check the id in the "
                "database's URL (the 32 characters before ?v=).")
        database = self._call(f"the database {setting}", lambda: self._client.databases.retrieve(
            database_id=database_id), not_found=missing + hint)
        sources = database.get("data_sources") or []
        if not sources:
            raise NotionAccessError(f"The Notion database {database_id} ({setting}) has no data source.",
                                    hint="Point it at a database with properties (not a linked view or a page).")
        source = self._call(f"the database {setting}", lambda: self._client.data_sources.retrieve(
            data_source_id=sources[0]["id"]), not_found=missing + hint)
        title = "".join(t.get("plain_text", "") for t in source.get("title") or []) or database_id
        return DataSource(database_id, source["id"], title, source.get("properties") or {})

    def query(self, data_source_id: str, *, filter: dict | None = None, sorts: list | None = None,
              page_size: int = 100) -> Iterator[dict]:
        """Every page that matches, 100 a request."""
        cursor = None
        while True:
            body: dict[str, Any] = {"data_source_id": data_source_id, "page_size": page_size}
            if filter:
                body["filter"] = filter
            if sorts:
                body["sorts"] = sorts
            if cursor:
                body["start_cursor"] = cursor
            answer = self._call("a query of the tracks database", lambda b=body: self._client.data_sources.query(**b),
                                not_found=f"Notion cannot find the data source {data_source_id}: is the database "
                                          "still shared with your integration?")
            yield from answer.get("results", [])
            if not answer.get("has_more"):
                return
            cursor = answer.get("next_cursor")

    def retrieve(self, page_id: str) -> dict:
        return self._call(f"page {page_id}", lambda: self._client.pages.retrieve(page_id=page_id))

    def create(self, data_source_id: str, properties: dict, *, dedupe: Callable[[], dict | None] | None = None) -> dict:
        """A new page; ``dedupe`` finds it when an attempt that failed may have created it."""
        return self._call("a new page", lambda: self._client.pages.create(
            parent={"type": "data_source_id", "data_source_id": data_source_id}, properties=properties),
            before_retry=dedupe)

    def update(self, page_id: str, *, properties: dict | None = None, in_trash: bool | None = None) -> dict:
        body: dict[str, Any] = {"page_id": page_id}
        if properties:
            body["properties"] = properties
        if in_trash is not None:
            body["in_trash"] = in_trash
        return self._call(f"page {page_id}", lambda: self._client.pages.update(**body))


def _retry_after(headers: httpx.Headers) -> float:
    try:
        return max(0.0, float(headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _code(err: HTTPResponseError) -> str:
    return str(getattr(err.code, "value", err.code))
