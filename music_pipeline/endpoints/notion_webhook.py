"""Notion's webhook, as Notion documents it (developers.notion.com, "Webhooks"; facts in
DESIGN.md): the one-time verification handshake, the signature on every event, and what an
event asks of us.

* When a subscription is created, Notion posts ``{"verification_token": "secret_..."}`` once,
  unsigned, and then signs every event with it: ``X-Notion-Signature: sha256=<HMAC-SHA256 of
  the raw body, keyed by the token>``. Being unsigned, the handshake proves nothing: anyone who
  reaches the endpoint could offer a token of their own. So an offered token is only noted (in
  ``$DAGSTER_HOME/notion-webhook-offered``, readable by its owner only, the last ten), never
  trusted: events are checked with the token the operator chose, ``NOTION_WEBHOOK_TOKEN`` or the
  file ``notion-webhook-token`` they put in DAGSTER_HOME, after pasting the same token into
  Notion's "Verify" dialog (which fails for any token Notion did not send). No token is logged.
* Events carry ids, not content, and arrive late, aggregated and out of order: an event only
  says which page to look at; the page is fetched and reconciled by the same code the
  ``notion_queue`` sensor runs, which does nothing to a page already taken.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "NOTION_WEBHOOK_TOKEN"
TOKEN_FILE = "notion-webhook-token"  # the operator's choice: events are checked with it
OFFERED_FILE = "notion-webhook-offered"  # what handshakes offered: noted, never trusted
OFFERED_KEPT = 10
#: The events that can mean "a page to take from the queue": a page added, or one given a link.
EVENTS = ("page.created", "page.properties_updated", "page.undeleted")
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.IGNORECASE)


def token_path(home: Path) -> Path:
    return home / TOKEN_FILE


def offered_path(home: Path) -> Path:
    return home / OFFERED_FILE


def signing_token(home: Path) -> str | None:
    """The token events are checked with: NOTION_WEBHOOK_TOKEN, else the operator's file."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    try:
        return token_path(home).read_text().strip() or None
    except OSError:
        return None


def offer(home: Path, token: str) -> None:
    """Note a handshake's token (with the time) among the last :data:`OFFERED_KEPT`, in a file
    only this user reads, written whole or not at all."""
    import time

    path = offered_path(home)
    try:
        lines = path.read_text().splitlines()
    except OSError:
        lines = []
    lines = [*lines, f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {token}"][-OFFERED_KEPT:]
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{OFFERED_FILE}.{os.getpid()}.{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def page_id(value: object) -> str | None:
    """``value`` if it is a Notion id (a UUID, dashed or not), else None: nothing else goes
    into an API path."""
    return value if isinstance(value, str) and _UUID.match(value) else None


def signed(token: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=`` + the HMAC-SHA256 of ``body`` keyed by ``token``
    (compared in constant time)."""
    if not header or not token:
        return False
    expected = "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    page_id: str | None  # the page the event is about, if it is about a page
    parent_id: str | None  # its parent (the database or data source), where the event says


def parse(payload: dict) -> Event:
    entity = payload.get("entity") if isinstance(payload.get("entity"), dict) else {}
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    parent = data.get("parent") if isinstance(data.get("parent"), dict) else {}
    page = page_id(entity.get("id")) if entity.get("type") == "page" else None
    parent_id = parent.get("data_source_id") or parent.get("id")
    return Event(str(payload.get("id") or ""), str(payload.get("type") or ""), page,
                 str(parent_id) if parent_id else None)


def verification_token(payload: object) -> str | None:
    """The handshake's token, if ``payload`` is the handshake."""
    if isinstance(payload, dict) and set(payload) == {"verification_token"} \
            and isinstance(payload["verification_token"], str) and payload["verification_token"].strip():
        return payload["verification_token"].strip()
    return None


def loads(body: bytes) -> object:
    return json.loads(body.decode("utf-8"))
