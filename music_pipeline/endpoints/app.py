"""The share endpoint and Notion's webhook: a small ASGI app `music-pipeline up` serves beside
the Dagster UI (port 3001 unless ``--share-port`` says otherwise), on when MUSIC_SHARE_TOKEN is
set.

``POST /tracks`` (``Authorization: Bearer $MUSIC_SHARE_TOKEN``; a JSON body ``{"url": ...}``, a
form body, or the shared text itself) registers the link and asks Dagster for its run exactly
as `music-pipeline add` does, and answers 202 with the track's key and where to watch it.
``POST /notion/webhook`` completes Notion's subscription handshake and turns each signed event
about a page of the tracks database into what the ``notion_queue`` sensor would do with it.

Everything a client sends is checked before anything is registered: the token or signature
(401), the size (413 over 64 KB), the body (400), the link (422: only http(s), never this
machine or its network), the pace (429 with Retry-After). No token, signature, body or secret
in a link is ever logged.
"""

from __future__ import annotations

import asyncio
import email.parser
import hmac
import json
import os
import queue
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import notion_webhook
from .guard import Burst, Refused, check_link

MAX_BODY = 64 * 1024
SHARE_TOKEN_ENV = "MUSIC_SHARE_TOKEN"
ALLOW_HOSTS_ENV = "MUSIC_SHARE_ALLOW_HOSTS"
BURST_ENV = "MUSIC_SHARE_BURST"  # requests one client may send at once (then one every 2 s); default 10
_LINK = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)


MIN_TOKEN = 24  # characters: a share token shorter than this is refused (doctor says so too)


@dataclass
class Settings:
    webserver: str  # the Dagster webserver runs are asked of
    home: Path  # DAGSTER_HOME: where Notion's verification token is kept
    share_token: str = ""
    allow_hosts: tuple[str, ...] = ()
    share_burst: Burst = field(default_factory=lambda: Burst(burst=10, rate=0.5))
    webhook_burst: Burst = field(default_factory=lambda: Burst(burst=60, rate=10.0))
    notion: bool = False  # NOTION_TOKEN and TRACKS_DB_ID set: the webhook has a database to take pages from

    @classmethod
    def from_env(cls, webserver: str) -> Settings:
        from .. import settings

        home = Path(os.environ.get(settings.DAGSTER_HOME) or settings.DEFAULT_DAGSTER_HOME).expanduser().resolve()
        allow = tuple(h.strip() for h in os.environ.get(ALLOW_HOSTS_ENV, "").split(",") if h.strip())
        burst = os.environ.get(BURST_ENV, "").strip()
        return cls(webserver, home, os.environ.get(SHARE_TOKEN_ENV, "").strip(), allow,
                   Burst(burst=int(burst), rate=0.5) if burst.isdigit() and int(burst) > 0 else Burst(burst=10, rate=0.5),
                   notion=bool(os.environ.get("NOTION_TOKEN") and os.environ.get("TRACKS_DB_ID")))


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def _body(request: Request) -> bytes | JSONResponse:
    """The raw body, or 413 past :data:`MAX_BODY` (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        return _error(413, f"the body is over {MAX_BODY // 1024} KB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return _error(413, f"the body is over {MAX_BODY // 1024} KB")
        chunks.append(chunk)
    return b"".join(chunks)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _too_fast(burst: Burst, request: Request) -> JSONResponse | None:
    wait = burst.wait_s(_client(request))
    if wait > 0:
        return _error(429, "too many requests; try again shortly", **{"Retry-After": str(max(1, round(wait)))})
    return None


def shared_link(body: bytes, content_type: str) -> str:
    """The link a client shared: ``url`` of a JSON object or a form, else the first http(s)
    link in its ``text`` or ``title`` (a phone's share sheet puts it there), else the first
    link in a plain-text body. :class:`ValueError` for a body that is not what it says."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json" or (not kind and body.lstrip()[:1] in (b"{", b"[")):
        payload = json.loads(body.decode("utf-8"))
        if not isinstance(payload, dict):
            raise ValueError("the JSON body is not an object")
        fields = {k: v for k, v in payload.items() if isinstance(v, str)}
    elif kind == "application/x-www-form-urlencoded":
        try:
            fields = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=bool(body)).items()}
        except ValueError:  # not a form after all (curl -d 'https://...'): the link as text
            fields = {}
        if not fields.keys() & {"url", "text", "title"}:  # nor a form of a share sheet (a link with ?v=...)
            fields = {"text": body.decode("utf-8")}
    elif kind == "multipart/form-data":
        message = email.parser.BytesParser().parsebytes(
            f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body)
        if not message.is_multipart():
            raise ValueError("the multipart body has no parts")
        fields = {}
        for part in message.get_payload():
            name = part.get_param("name", header="content-disposition")
            if name and not part.get_filename():
                fields[str(name)] = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    else:  # text/plain, or what a share sheet calls text
        fields = {"text": body.decode("utf-8")}
    if fields.get("url", "").strip():
        return fields["url"].strip()
    for name in ("text", "title"):
        if match := _LINK.search(fields.get(name, "")):
            return match.group(0).rstrip(".,;:!?)]}")
    return fields.get("url", "")


class _Pages:
    """Pages Notion's events name, taken off the queue one batch at a time in a thread of
    their own (the handler answers Notion at once: it retries an endpoint that is slow)."""

    PENDING = 500  # pages waiting at most; past that Notion is told to come back (429)
    BATCH = 50  # pages taken at once (about 17 s of Notion's 3 requests a second)
    REMEMBERED = 2048  # event ids remembered: a replay within them is not fetched again

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pending: queue.Queue[str] = queue.Queue(maxsize=self.PENDING)
        self._seen: dict[str, None] = {}
        self._seen_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="notion-webhook", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def put(self, event_id: str, page_id: str) -> bool:
        """Queue the page; False when too many are waiting. An event seen already is dropped."""
        with self._seen_lock:
            if event_id and event_id in self._seen:
                return True
            try:
                self._pending.put_nowait(page_id)
            except queue.Full:
                return False
            if event_id:
                self._seen[event_id] = None
                while len(self._seen) > self.REMEMBERED:
                    del self._seen[next(iter(self._seen))]
        return True

    def _work(self) -> None:
        while True:
            ids = [self._pending.get()]
            while not self._pending.empty() and len(ids) < self.BATCH:
                ids.append(self._pending.get_nowait())
            try:
                take_pages(self.settings.webserver, ids)
            except Exception as err:  # noqa: BLE001 - the sensor's next tick takes what this missed
                print(f"notion webhook: {len(ids)} page(s) left to the notion_queue sensor: "
                      f"{type(err).__name__}: {err}", flush=True)


def take_pages(webserver: str, page_ids: list[str]) -> list[str]:
    """What the notion_queue sensor does with a queued page, for these pages now: each taken
    (registered, marked on the page) and one bulk run requested for them. Returns their keys."""
    from ..core.library import mirrors
    from ..core.sources.download import resolve_id
    from ..intake import request_keys
    from ..remote import DagsterRemote
    from ..resources import build_resources, resolved

    resources = build_resources()
    notion = resolved(resources["notion"])
    if not notion.configured:
        return []
    lib = resources["library"].get()
    options = resources["downloader"].options()
    taken = mirrors.take_queue(lib, notion.mirror(), lambda url: resolve_id(url, options), page_ids=page_ids)
    for line in (*taken.notes, *taken.errors):
        print(f"notion webhook: {line}", flush=True)
    if taken.keys:
        intake = request_keys(DagsterRemote(webserver), taken.keys, "notion webhook")
        if intake.error:
            print(f"notion webhook: {intake.error}; the notion_queue sensor requests them next tick", flush=True)
    return taken.keys


def build_app(settings: Settings) -> Starlette:
    pages = _Pages(settings)

    async def share(request: Request) -> JSONResponse:
        if (slow := _too_fast(settings.share_burst, request)) is not None:
            return slow
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if len(settings.share_token) < MIN_TOKEN or scheme.lower() != "bearer" \
                or not hmac.compare_digest(token.strip().encode(), settings.share_token.encode()):
            return _error(401, "a valid Authorization: Bearer token is required", **{"WWW-Authenticate": "Bearer"})
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            link = shared_link(body, request.headers.get("content-type", ""))
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            return _error(400, f"the body could not be read: {type(err).__name__}")
        try:
            link = await asyncio.to_thread(check_link, link, settings.allow_hosts)
        except Refused as err:
            return _error(422, str(err))
        from ..intake import request_link

        result = await asyncio.to_thread(request_link, settings.webserver, link, "share")
        return JSONResponse(result.body, status_code=result.status)

    async def webhook(request: Request) -> JSONResponse:
        if (slow := _too_fast(settings.webhook_burst, request)) is not None:
            return slow
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        if not settings.notion:
            return _error(503, "Notion is not configured here (NOTION_TOKEN and TRACKS_DB_ID)")
        try:
            payload = notion_webhook.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _error(400, "the body is not JSON")
        if (offered := notion_webhook.verification_token(payload)) is not None:
            # unsigned, so it proves nothing: noted for the operator, never trusted (notion_webhook)
            notion_webhook.offer(settings.home, offered)
            print("notion webhook: a verification token was offered; the last ones offered are in "
                  f"{notion_webhook.offered_path(settings.home)}. Paste Notion's into its Verify dialog and put the "
                  f"same in {notion_webhook.token_path(settings.home)} (or {notion_webhook.TOKEN_ENV})", flush=True)
            return JSONResponse({"ok": True})
        token = notion_webhook.signing_token(settings.home)
        if token is None or not notion_webhook.signed(token, body, request.headers.get("x-notion-signature")):
            return _error(401, "the X-Notion-Signature does not match")
        if not isinstance(payload, dict):
            return _error(400, "the event is not a JSON object")
        event = notion_webhook.parse(payload)
        if event.type in notion_webhook.EVENTS and event.page_id:
            if not pages.put(event.id, event.page_id):  # fetched and checked (its database, its status) there
                return _error(429, "too many pages waiting; send it again shortly", **{"Retry-After": "30"})
            return JSONResponse({"ok": True, "page": event.page_id})
        return JSONResponse({"ok": True, "ignored": event.type})

    async def health(_request: Request) -> JSONResponse:
        ok = pages.alive
        return JSONResponse({"ok": ok, "share": len(settings.share_token) >= MIN_TOKEN, "notion": settings.notion},
                            status_code=200 if ok else 503)

    return Starlette(routes=[Route("/tracks", share, methods=["POST"]),
                             Route("/notion/webhook", webhook, methods=["POST"]),
                             Route("/health", health, methods=["GET"])])
