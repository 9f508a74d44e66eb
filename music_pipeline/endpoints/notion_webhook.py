"""Notion's webhook, as Notion documents it (developers.notion.com, "Webhooks"; facts in
DESIGN.md): the one-time verification handshake, the signature on every event, and what an
event asks of us.

* When a subscription is created, Notion posts ``{"verification_token": "secret_..."}`` once,
  unsigned. The operator pastes that token into Notion's "Verify" dialog, and it then signs
  every event: ``X-Notion-Signature: sha256=<HMAC-SHA256 of the raw body, keyed by the token>``.
  The token is kept in DAGSTER_HOME (a file only its owner reads) or given as
  ``NOTION_WEBHOOK_TOKEN``; it is never logged. While one is kept, another handshake is refused:
  a forged one would otherwise replace the key events are checked with.
* Events carry ids, not content, and arrive late, aggregated and out of order: an event only
  says which page to look at; the page is fetched and reconciled by the same code the
  ``notion_queue`` sensor runs, which does nothing to a page already taken.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "NOTION_WEBHOOK_TOKEN"
TOKEN_FILE = "notion-webhook-token"
#: The events that can mean "a page to take from the queue": a page added, or one given a link.
EVENTS = ("page.created", "page.properties_updated", "page.undeleted")


def token_path(home: Path) -> Path:
    return home / TOKEN_FILE


def signing_token(home: Path) -> str | None:
    """The verification token events are signed with: NOTION_WEBHOOK_TOKEN, else the one the
    handshake stored in ``home``."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    try:
        return token_path(home).read_text().strip() or None
    except OSError:
        return None


def keep_token(home: Path, token: str) -> bool:
    """Store the handshake's token, readable by this user only, unless one is kept already
    (returns False then: the operator removes the file to subscribe anew)."""
    if signing_token(home) is not None:
        return False
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{TOKEN_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    try:
        os.link(tmp, token_path(home))  # never over a token another request stored meanwhile
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


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
    page_id = entity.get("id") if entity.get("type") == "page" else None
    parent_id = parent.get("data_source_id") or parent.get("id")
    return Event(str(payload.get("id") or ""), str(payload.get("type") or ""),
                 str(page_id) if page_id else None, str(parent_id) if parent_id else None)


def verification_token(payload: object) -> str | None:
    """The handshake's token, if ``payload`` is the handshake."""
    if isinstance(payload, dict) and set(payload) == {"verification_token"} \
            and isinstance(payload["verification_token"], str) and payload["verification_token"].strip():
        return payload["verification_token"].strip()
    return None


def loads(body: bytes) -> object:
    return json.loads(body.decode("utf-8"))
