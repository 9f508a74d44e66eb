"""A thin, typed wrapper around ``notion_client`` that every Notion call of the product goes through.

It adds what the sink needs and notion-client does not do, in one place:

* **One request rate for all processes.** The ``httpx.Client`` handed to notion-client has a
  request hook that takes a slot from the :class:`SharedRateLimiter` before *every* HTTP attempt
  (retries included) and a response hook that, on a 429, calls ``limiter.penalize(Retry-After)``,
  so every process of the code location pauses, not only the one that was told.
* **Retries of its own.** notion-client's retries are switched off (``retry=False``) and this
  module does all retrying, because notion-client's

  - do not retry 5xx for POST or PATCH (we retry PATCH, which is idempotent, and POST ``create``
    with a look-up for the page first, see below);
  - sleep out of our sight (no shared penalty before the sleep, no injectable ``sleep`` for
    tests, a separate attempt count), so counting, back-off and giving up would be split
    between two loops that multiply (2 internal retries x our attempts);
  - understand only whole-second ``Retry-After``.

  429 (and 529 service_overload, which Notion asks to be handled the same way) is retried
  after ``Retry-After`` (1 s when absent or unreadable) through the shared pause, and does not use up
  ``max_attempts`` (the server said when to come back, and the shared limiter slows everyone
  down); at most ``max_rate_limited`` of them per call. 500/502/503/504, 409 conflict_error,
  timeouts and connection errors are retried after ``backoff_s * 2**n`` seconds (jittered
  upwards by up to 25 %, capped at :data:`MAX_BACKOFF`), at most ``max_attempts`` attempts in
  all; then :class:`NotionUnavailable` (a retryable reason) says the next sync tries again.
* **No duplicate pages.** A POST that failed with a 5xx or a timeout may still have created the
  page. ``create(..., dedupe=...)`` calls ``dedupe()`` (the caller looks the page up by its
  key) after such a failure, before trying again and before giving up, and returns the page it
  finds instead of creating a second one. A 429 or a refused connection never created
  anything, so no look-up follows those. (Notion's query index can lag a write by a few
  seconds; the back-off before the look-up gives it that time, but a look-up that still misses
  the page ends in a duplicate, which the sink's key reconciliation has to absorb.)
* **Whole answers.** A query returns at most 10,000 results, then ``has_more: false`` with
  ``request_status: {"type": "incomplete"}``: :meth:`NotionApi.query` reads in ``created_time``
  order and, told it is incomplete, goes on with a query for pages created from the last one
  it saw (Notion's advice for large data sources: split the query). A page object carries at
  most 25 references per relation (``has_more`` on it): :meth:`NotionApi.complete` reads the
  rest through the page-property endpoint, and :meth:`NotionApi.retrieve` answers complete pages.
* **Errors that say what to do.** 401, 403 and 404 on the integration's database are
  :class:`NotionAccessError` with ``misconfigured = True``: the sink is set up wrongly, which is
  not a track's failure. 400 validation_error is :class:`NotionValidationError` with Notion's
  message. The token never appears in a message, a ``repr`` or a log line: errors are raised
  ``from None`` (the chained ``httpx`` errors hold the request and its ``Authorization``
  header), notion-client logs through a logger of ours at WARNING (at DEBUG it would log
  response bodies; it never logs request headers), and no attribute of ours holds the token.

This module is plain Python (no Dagster), like the rest of ``core``.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import notion_client
from notion_client.client import ClientOptions
from notion_client.errors import HTTPResponseError, RequestTimeoutError

from ...domain.errors import Reason, TrackError
from ..ratelimit import MAX_PENALTY, SharedRateLimiter

log = logging.getLogger(__name__)
#: notion-client's own log lines (one WARNING per failed attempt, with Notion's message and
#: request id). Passing a logger of ours also keeps notion-client from adding a stderr
#: handler to its ``notion_client`` logger for every client it makes.
client_log = logging.getLogger(__name__ + ".client")

DEFAULT_BASE_URL = "https://api.notion.com"
#: The setting that holds the integration secret (named in error messages).
TOKEN_SETTING = "NOTION_TOKEN"
INTEGRATIONS_URL = "https://www.notion.so/profile/integrations"
#: The longest back-off between two attempts after a 5xx or a network error, in seconds.
MAX_BACKOFF = 30.0
#: Statuses retried with back-off (409 conflict_error: "try again", says Notion).
RETRY_STATUSES = frozenset({409, 500, 502, 503, 504})
#: "Slow down": 429 rate_limited, and 529 service_overload, which Notion documents to be handled as a 429.
SLOW_DOWN_STATUSES = frozenset({429, 529})

T = TypeVar("T")
_ID = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
_SHARE_HINT = ("Open the database in Notion, ••• menu → Connections → add your integration; "
               "check the id in the database's URL.")


# --------------------------------------------------------------------------- errors


class NotionError(TrackError):
    """Notion refused or failed a request. ``status`` and ``code`` are Notion's (``None`` for a
    network failure), ``request_id`` is what Notion support asks for."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None,
                 code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status, self.code, self.request_id = status, code, request_id


class NotionAccessError(NotionError):
    """401/403/404: the token, the database's connection or the integration's capabilities are
    wrong. ``misconfigured`` is True when the sink's setup is at fault (not the track): the
    caller stops syncing and shows the message rather than failing tracks one by one."""

    misconfigured: bool = True


class NotionPageNotFound(NotionAccessError):
    """404 for a page: deleted for good, or its database is no longer shared. The caller can
    tell the two apart with ``NotionApi.data_source()``, which fails in the second case."""

    misconfigured = False


class NotionValidationError(NotionError):
    """400 validation_error: Notion rejected the request's content; ``notion_message`` is
    Notion's own explanation (which property, which value), for the caller to react to."""

    def __init__(self, message: str, *, notion_message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.notion_message = notion_message


class NotionUnavailable(NotionError):
    """Notion did not answer usefully (5xx, timeouts, no connection, endless 429) after every
    attempt: may pass, the next sync tries again."""

    reason = Reason.SOURCE_UNAVAILABLE


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DataSource:
    """A database's (first) data source: what pages are created in and queried from.
    ``properties`` maps each property name to Notion's schema entry ``{"id", "name", "type", ...}``."""

    database_id: str
    id: str
    title: str
    properties: dict[str, dict] = field(repr=False)


@dataclass(frozen=True)
class _Op:
    """What a call does, for error messages."""

    action: str  # "read the database", "create a page in the database", ...
    capability: str  # the integration capability it needs: "Read content", ...
    kind: str  # "database", "data source" or "page"
    object_id: str
    setting: str | None = None  # the setting that names the id, e.g. TRACKS_DB_ID


class _Retry(Exception):
    """Internal: one attempt failed in a way worth another try."""

    def __init__(self, what: str, *, delay: float | None = None, applied: bool = True,
                 rate_limited: bool = False, error: NotionError | None = None) -> None:
        super().__init__(what)
        self.what, self.delay, self.applied, self.rate_limited, self.error = what, delay, applied, rate_limited, error


# --------------------------------------------------------------------------- the API


class NotionApi:
    """Notion's API as the sink uses it (API version 2025-09-03: pages live in data sources).

    ``limiter`` is shared by every process that talks to Notion with the same integration
    (without one, requests are not paced and a 429 only pauses this object, by sleeping
    ``Retry-After``). ``requests`` counts the HTTP requests attempted, retries included;
    ``on_request(method, path)`` is called for each of them. ``sleep`` is used for every
    back-off (and for 429 pauses without a limiter); the limiter sleeps on its own.
    """

    def __init__(self, token: str, *, base_url: str | None = None, limiter: SharedRateLimiter | None = None,
                 timeout_s: float = 30.0, max_attempts: int = 5, backoff_s: float = 1.0,
                 max_rate_limited: int = 10, sleep: Callable[[float], None] = time.sleep,
                 on_request: Callable[[str, str], None] | None = None) -> None:
        if not token or not token.strip():
            raise NotionAccessError(
                f"{TOKEN_SETTING} is empty: the Notion sink needs the integration's secret.",
                hint=f"Copy the Internal Integration Secret from {INTEGRATIONS_URL} into {TOKEN_SETTING}.")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts!r}")
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_rate_limited = max_rate_limited
        self.requests = 0
        self._sleep = sleep
        self._on_request = on_request
        self._count_lock = threading.Lock()
        self._sources: dict[str, tuple[str, str | None]] = {}  # data source id -> (database id, setting)
        self._http = httpx.Client(event_hooks={"request": [self._before_send], "response": [self._after_receive]})
        self._client = notion_client.Client(client=self._http, options=ClientOptions(
            auth=token.strip(), base_url=self.base_url, timeout_ms=max(1, int(timeout_s * 1000)),
            retry=False, logger=client_log, log_level=logging.WARNING))

    def __repr__(self) -> str:  # no token
        return f"NotionApi(base_url={self.base_url!r}, requests={self.requests})"

    def __enter__(self) -> NotionApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ---- the calls

    def data_source(self, database_id: str, *, setting: str | None = None) -> DataSource:
        """The database's data source and its schema (two requests). ``setting`` names where the id
        came from (e.g. ``"TRACKS_DB_ID"``) for the error messages, also of later calls on the
        data source."""
        where = f"{setting} " if setting else "The database id "
        if not (database_id or "").strip():
            raise NotionAccessError(f"{where.strip()} is empty: the Notion sink needs the id of its database.",
                                    hint="Copy it from the database's URL: https://www.notion.so/<workspace>/<id>?v=…")
        database_id = database_id.strip()
        if not _ID.match(database_id):
            raise NotionAccessError(
                f"{where}{database_id!r} is not a Notion database id (32 hexadecimal characters).",
                hint="Copy it from the database's URL: the part before ?v= in https://www.notion.so/<workspace>/<id>?v=…")
        op = _Op("read the database", "Read content", "database", database_id, setting)
        database = self._call(op, functools.partial(self._client.databases.retrieve, database_id=database_id))
        sources = database.get("data_sources") or []
        if not sources:
            raise NotionAccessError(
                f"The Notion database {database_id}{_setting(setting)} has no data source the integration can read.",
                hint="If it is a linked view of another database, use the original database's id.")
        ds_id = sources[0]["id"]
        self._sources[ds_id] = (database["id"], setting)
        ds = self._call(op, functools.partial(self._client.data_sources.retrieve, data_source_id=ds_id))
        title = _plain(ds.get("title")) or _plain(database.get("title"))
        return DataSource(database_id=database["id"], id=ds["id"], title=title, properties=ds["properties"])

    def query(self, data_source_id: str, *, filter: dict | None = None, sorts: list | None = None,
              page_size: int = 100) -> Iterator[dict]:
        """The data source's pages (not in the trash) matching ``filter``, in ``sorts`` order
        (else by creation), one request per ``page_size`` pages, fetched as the iterator is
        consumed. Past the results one query returns (``request_status`` incomplete) the query
        goes on from the last creation time seen; with ``sorts`` of the caller's it cannot, and
        :class:`NotionError` says so rather than a partial answer passing for the whole."""
        body: dict[str, Any] = {"page_size": page_size,
                                "sorts": sorts if sorts is not None else [{"timestamp": "created_time",
                                                                          "direction": "ascending"}]}
        op = self._source_op("read the database", "Read content", data_source_id)
        seen: set[str] = set()
        since: str | None = None
        while True:
            cursor: str | None = None
            last, new = since, 0
            while True:
                part = _and(filter, {"timestamp": "created_time", "created_time": {"on_or_after": since}}
                            if since else None)
                resp = self._call(op, functools.partial(self._client.data_sources.query, data_source_id=data_source_id,
                                                        start_cursor=cursor, **body,
                                                        **({"filter": part} if part is not None else {})))
                for page in resp.get("results", []):
                    if page.get("object", "page") != "page" or page["id"] in seen:
                        continue  # seen: created in the minute a split query starts at
                    seen.add(page["id"])
                    new += 1
                    last = page.get("created_time") or last
                    yield page
                cursor = resp.get("next_cursor")
                if not resp.get("has_more") or not cursor:
                    break
            if (resp.get("request_status") or {}).get("type") != "incomplete":
                return
            if sorts is not None or not new or last == since:
                raise NotionError(
                    f"Notion stopped answering {_target(op)} after {len(seen)} results (request_status incomplete) "
                    + ("and the query is sorted, so it cannot be split by creation time."
                       if sorts is not None else "and more pages than that were created within one minute."),
                    hint="Narrow the query (a filter), or split the database.")
            log.info("Notion's query stopped at its cap (%d pages so far); going on from pages created at %s",
                     len(seen), last)
            since = last

    def complete(self, page: dict) -> dict:
        """``page`` with every relation it shows cut at 25 references (``has_more``) read whole
        through the page-property endpoint (100 references a request); itself when none is."""
        cut = {name: prop for name, prop in (page.get("properties") or {}).items()
               if prop.get("type") == "relation" and prop.get("has_more")}
        if not cut:
            return page
        page = {**page, "properties": dict(page["properties"])}
        op = _Op("read the page", "Read content", "page", page["id"])
        for name, prop in cut.items():
            items: list[dict] = []
            cursor: str | None = None
            while True:
                resp = self._call(op, functools.partial(
                    self._client.pages.properties.retrieve, page_id=page["id"], property_id=prop["id"],
                    **({"start_cursor": cursor} if cursor else {})))
                items += [item["relation"] for item in resp.get("results", []) if item.get("type") == "relation"]
                cursor = resp.get("next_cursor")
                if not resp.get("has_more") or not cursor:
                    break
            page["properties"][name] = {**prop, "relation": items, "has_more": False}
        return page

    def query_one(self, data_source_id: str, *, filter: dict | None = None, sorts: list | None = None) -> dict | None:
        """The first page matching ``filter`` (one request), or None."""
        return next(iter(self.query(data_source_id, filter=filter, sorts=sorts, page_size=1)), None)

    def retrieve(self, page_id: str) -> dict:
        """The page, its relations whole (see :meth:`complete`)."""
        op = _Op("read the page", "Read content", "page", page_id)
        return self.complete(self._call(op, functools.partial(self._client.pages.retrieve, page_id=page_id)))

    def create(self, data_source_id: str, properties: dict, *,
               dedupe: Callable[[], dict | None] | None = None) -> dict:
        """A new page in the data source. After a failure that may have created it anyway (5xx,
        timeout), ``dedupe()`` looks for it and the page it returns is returned instead."""
        op = self._source_op("create a page in the database", "Insert content", data_source_id)
        call = functools.partial(self._client.pages.create,
                                 parent={"type": "data_source_id", "data_source_id": data_source_id},
                                 properties=properties)
        return self._call(op, call, dedupe=dedupe)

    def update(self, page_id: str, *, properties: dict | None = None, in_trash: bool | None = None) -> dict:
        """Change the page's ``properties`` and/or move it to or out of the trash."""
        kwargs: dict[str, Any] = {}
        if properties is not None:
            kwargs["properties"] = properties
        if in_trash is not None:
            kwargs["in_trash"] = in_trash
        op = _Op("update the page", "Update content", "page", page_id)
        return self._call(op, functools.partial(self._client.pages.update, page_id=page_id, **kwargs))

    # ---- retrying

    def _call(self, op: _Op, send: Callable[[], T], *, dedupe: Callable[[], dict | None] | None = None) -> T:
        failures = limited = 0
        while True:
            try:
                return self._attempt(op, send)
            except _Retry as retry:
                if retry.rate_limited:
                    limited += 1
                    if limited > self.max_rate_limited:
                        raise self._gave_up(retry, limited, rate_limited=True) from None
                    if self.limiter is None:  # else the penalty is in the shared schedule already
                        self._sleep(retry.delay or 0.0)
                    log.info("Notion asked to slow down (%s); retrying %s after %.1f s", retry.what, op.action,
                             retry.delay or 0)
                    continue
                failures += 1
                if failures < self.max_attempts:
                    delay = min(self.backoff_s * 2 ** (failures - 1), MAX_BACKOFF) * random.uniform(1.0, 1.25)
                    delay = min(max(delay, retry.delay or 0.0), MAX_PENALTY)
                    log.warning("Notion did not answer (%s) to %s; attempt %d of %d in %.1f s",
                                retry.what, op.action, failures + 1, self.max_attempts, delay)
                    self._sleep(delay)
                if dedupe is not None and retry.applied:
                    found = dedupe()
                    if found is not None:
                        log.info("The page Notion did not confirm was created after all; not creating it again")
                        return found  # type: ignore[return-value]
                if failures >= self.max_attempts:
                    raise self._gave_up(retry, failures) from None

    def _attempt(self, op: _Op, send: Callable[[], T]) -> T:
        """One attempt: the answer, or ``_Retry``, or the error the caller gets. The exception is
        raised after the ``except`` blocks, so it has no ``__context__``: notion-client's errors
        chain to httpx's, which hold the request and its ``Authorization`` header."""
        outcome: Exception
        try:
            return send()
        except HTTPResponseError as err:
            status, code = err.status, str(getattr(err.code, "value", err.code))
            if status in SLOW_DOWN_STATUSES:
                outcome = _Retry(f"{status} {code}", delay=_retry_after(err.headers), applied=False, rate_limited=True)
            elif status in RETRY_STATUSES:
                retry_after = _retry_after(err.headers) if err.headers.get("retry-after") else None
                outcome = _Retry(f"{status} {code}", delay=retry_after, error=_notion_error(err))
            else:
                outcome = self._error(op, err)
        except RequestTimeoutError:
            outcome = _Retry(f"no answer within {self.timeout_s:g} s")
        except httpx.ConnectError as err:  # nothing was sent
            outcome = _Retry(f"cannot connect to {self.base_url}: {err}", applied=False)
        except httpx.TransportError as err:
            outcome = _Retry(f"{type(err).__name__}: {err}")
        raise outcome

    def _gave_up(self, retry: _Retry, attempts: int, rate_limited: bool = False) -> NotionUnavailable:
        if rate_limited:
            err = NotionUnavailable(
                f"Notion kept answering 429 rate_limited ({attempts} times); the next sync tries again.",
                hint="Another program using the same integration may be sending too many requests.",
                status=429, code="rate_limited")
            err.reason = Reason.RATE_LIMITED
            return err
        base = retry.error
        return NotionUnavailable(
            f"Notion did not answer ({retry.what}) after {attempts} attempts; the next sync tries again.",
            status=base.status if base else None, code=base.code if base else None,
            request_id=base.request_id if base else None)

    def _error(self, op: _Op, err: HTTPResponseError) -> NotionError:
        """The error the caller gets for a final (non-retryable) answer."""
        status, code = err.status, str(getattr(err.code, "value", err.code))
        ids = {"status": status, "code": code, "request_id": err.request_id}
        message = str(err)
        target = _target(op)
        if status == 401:
            return NotionAccessError(
                f"Notion rejected {TOKEN_SETTING} ({status} {code}): the integration secret is wrong or was revoked.",
                hint=f"Copy the Internal Integration Secret from {INTEGRATIONS_URL} into {TOKEN_SETTING}.", **ids)
        if status == 404 and op.kind == "page":
            return NotionPageNotFound(
                f"Notion cannot find the page {op.object_id} ({status} {code}): it was deleted for good, "
                "or its database is no longer shared with your integration.",
                hint="If the database was disconnected: " + _SHARE_HINT, **ids)
        if status == 404:
            return NotionAccessError(
                f"Notion cannot find {target}: either the id is wrong or the database is not shared "
                "with your integration.", hint=_SHARE_HINT, **ids)
        if status == 403:
            return NotionAccessError(
                f"Notion does not let the integration {op.action} ({status} {code}; {target}): the integration "
                f"lacks the “{op.capability}” capability, or its connection to the database is read-only.",
                hint=f"At {INTEGRATIONS_URL}, open your integration → Capabilities and enable “Read content”, "
                     "“Update content” and “Insert content” (the sink needs all three).", **ids)
        if status == 400 and code == "validation_error":
            return NotionValidationError(f"Notion rejected the request to {op.action} ({status} {code}): {message}",
                                         notion_message=message, **ids)
        return NotionError(f"Notion refused to {op.action} ({status} {code}): {message}", **ids)

    def _source_op(self, action: str, capability: str, data_source_id: str) -> _Op:
        """An operation on a data source, named after its database when ``data_source()`` found it."""
        database_id, setting = self._sources.get(data_source_id, (None, None))
        if database_id is not None:
            return _Op(action, capability, "database", database_id, setting)
        return _Op(action, capability, "data source", data_source_id)

    # ---- the httpx hooks (run for every attempt)

    def _before_send(self, request: httpx.Request) -> None:
        if self.limiter is not None:
            self.limiter.acquire()
        with self._count_lock:
            self.requests += 1
        if self._on_request is not None:
            self._on_request(request.method, request.url.path)

    def _after_receive(self, response: httpx.Response) -> None:
        if response.status_code in SLOW_DOWN_STATUSES and self.limiter is not None:
            self.limiter.penalize(_retry_after(response.headers))


# --------------------------------------------------------------------------- helpers


def _retry_after(headers: httpx.Headers) -> float:
    """``Retry-After`` in seconds (a number or an HTTP date); 1 when absent or unreadable."""
    raw = (headers.get("retry-after") or "").strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return 1.0
    if seconds != seconds or seconds < 0:  # NaN, or a date in the past
        return 0.0 if seconds < 0 else 1.0
    return min(seconds, MAX_PENALTY)


def _and(*filters: dict | None) -> dict | None:
    """The filters together, one level deep (Notion allows two levels of nesting in all)."""
    parts: list[dict] = []
    for f in filters:
        if f is not None:
            parts += f["and"] if set(f) == {"and"} else [f]
    return None if not parts else parts[0] if len(parts) == 1 else {"and": parts}


def _notion_error(err: HTTPResponseError) -> NotionError:
    return NotionError(str(err), status=err.status, code=str(getattr(err.code, "value", err.code)),
                       request_id=err.request_id)


def _setting(setting: str | None) -> str:
    return f" ({setting})" if setting else ""


def _target(op: _Op) -> str:
    return f"the {op.kind} {op.object_id}{_setting(op.setting)}"


def _plain(rich_text: Any) -> str:
    return "".join(r.get("plain_text", "") for r in rich_text or [] if isinstance(r, dict))


__all__ = ["DataSource", "NotionAccessError", "NotionApi", "NotionError", "NotionPageNotFound",
           "NotionUnavailable", "NotionValidationError"]
