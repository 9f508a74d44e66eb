"""A stateful fake of the Notion API (version 2025-09-03: databases hold data sources) on 127.0.0.1.

The real ``notion_client.Client(auth=TOKEN, base_url=fake.url)`` talks to it over HTTP exactly as
to api.notion.com (the client appends ``/v1/`` itself, so ``base_url`` has no ``/v1`` and no
trailing slash). Bearer tokens and the ``Notion-Version`` header are checked; errors have the real
shape ``{"object": "error", "status", "code", "message", "request_id"}`` so they surface as
``notion_client.APIResponseError`` with the real ``code``. Tests change its state directly::

    with FakeNotion() as fake:
        db = fake.create_database("Library", {"Name": "title", "BPM": "number",
                                               "Genre": "select", "Tags": "multi_select"})
        fake.seed_page(db.data_source_id, {"Name": "Strobe", "BPM": 128, "Tags": ["prog"]})
        fake.rate_limit_next(2, retry_after=0)          # notion-client retries 429 twice by default
        fake.rate_limit_next(1, status=529)             # 529 service_overload, to be handled as a 429
        fake.query_cap = 3                              # a query stops there (request_status incomplete)
        fake.set_access(db.id, "not_shared")            # 404 object_not_found, as the real API says
        client = notion_client.Client(auth=fake.token, base_url=fake.url)

As documented for 2025-09-03, and enforced here: a data source query returns at most
``query_cap`` (10,000) results, then ``has_more: false`` with ``request_status: {"type":
"incomplete"}``; a page object (retrieve, query, create and update answers) carries at most 25
references per relation property, with ``has_more: true`` on it, and the full list comes from
``GET /v1/pages/{id}/properties/{property_id}`` (paginated, 100 a request); a request may name
at most 100 related pages per relation; a URL is at most 2,000 characters; trashing a page that is
already in the trash answers 400 validation_error.

Property values are stored and returned in Notion's response shapes (rich_text arrays with
``plain_text``, ``select`` as ``{id, name, color}``, ...); ``FakeNotion.plain(page)`` turns a page
back into plain Python values. ``last_edited_time`` is rounded down to the minute, as Notion does;
the fake clock moves ``tick`` (one minute by default) on every write.

Not modelled: blocks/page content, comments, users, search, file uploads, views, formulas,
rollups, people/status/email/phone properties, ``filter_properties``, mentions and equations in
rich text, database/data-source creation over HTTP, per-request size limits other than the
2000-character text and URL limits and the 100-item array limit.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from .base import FakeServer, JsonHandler

NOTION_VERSION = "2025-09-03"
PROPERTY_TYPES = ("title", "rich_text", "number", "select", "multi_select", "url", "checkbox",
                  "date", "files", "relation")
BOT_USER_ID = "5b2c0a57-7f7e-4c1e-9b8e-000000000b07"
HUMAN_USER_ID = "0f3e1d2c-4b5a-4968-8776-000000000d1a"
_TEXT_TYPES = ("title", "rich_text")
_MAX_TEXT = 2000
_MAX_ARRAY = 100
#: References per relation property in a page object (more: ``has_more`` and the property endpoint).
MAX_REFERENCES = 25
#: Results of one data source query, however it is paged (more: ``request_status`` incomplete).
QUERY_CAP = 10_000
_ARCHIVED = "Can't edit block that is archived. You must unarchive the block before editing."


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _validation(message: str) -> _ApiError:
    return _ApiError(400, "validation_error", message)


def _norm_id(raw: str) -> str | None:
    """A Notion id in canonical dashed form; the API accepts both dashed and compact ids."""
    try:
        return str(uuid.UUID(raw))
    except (ValueError, AttributeError, TypeError):
        return None


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _user(user_id: str) -> dict:
    return {"object": "user", "id": user_id}


def rich_text(content: str) -> list[dict]:
    """A rich_text array as Notion returns it, for one plain text run."""
    if content == "":
        return []
    return [{
        "type": "text",
        "text": {"content": content, "link": None},
        "annotations": {"bold": False, "italic": False, "strikethrough": False, "underline": False,
                        "code": False, "color": "default"},
        "plain_text": content,
        "href": None,
    }]


def _j(value: Any) -> str:
    return "`" + json.dumps(value) + "`"


# --------------------------------------------------------------------------- state


@dataclass
class Request:
    """One request the fake received (the token is not recorded)."""

    at: float  # time.time() when it arrived
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON body, or None
    notion_version: str | None
    status: int = 0  # the status the fake answered with


@dataclass
class FakeDatabase:
    id: str
    data_source_id: str
    title: str


@dataclass
class _DataSource:
    id: str
    database_id: str
    title: str
    properties: dict[str, dict]  # name -> schema property {id, name, type, <type>: {...}}
    created_time: str


class FakeNotion(FakeServer):
    """The Notion API (``/v1``) on 127.0.0.1; one integration token. ``url`` is notion_client's
    base_url (it adds /v1/)."""

    def __init__(self, token: str = "ntn_fake_integration_token") -> None:
        super().__init__(_Handler)
        self.token = token
        # --- state, set through the helpers below
        self.databases: dict[str, dict] = {}  # id -> {"title", "data_source_ids", "created_time"}
        self.data_sources: dict[str, _DataSource] = {}
        self.pages: dict[str, dict] = {}  # id -> page object in Notion's shape (insertion = creation order)
        self.access: dict[str, str] = {}  # database/data source id -> "not_shared" | "restricted"
        self.tick = timedelta(minutes=1)  # how far the clock moves on every write
        self.query_cap = QUERY_CAP  # results one query returns at most (lower it in tests)
        # --- observations: ``requests``, every Request received
        # --- internals
        self._rate_limits: list[tuple[int, int]] = []  # (status, retry_after)
        self._per_second: float | None = None
        self._accepted: list[float] = []  # monotonic times of requests let through by the limiter
        self._failures: list[tuple[int, bool]] = []  # (status, after_apply)
        self._clock = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
        self._prop_seq = 0

    def client(self, **options: Any):
        """A real ``notion_client.Client`` pointed at this fake."""
        import notion_client

        return notion_client.Client(auth=self.token, base_url=self.url, **options)

    # ---- behaviour switches

    def set_access(self, object_id: str, mode: str | None) -> None:
        """``"not_shared"`` (404 object_not_found, what Notion answers for a database the integration
        was not connected to), ``"restricted"`` (403 restricted_resource) or None (shared). Applies
        to a database or data source id, and to the pages in it."""
        oid = _norm_id(object_id) or object_id
        with self._lock:
            if mode is None:
                self.access.pop(oid, None)
            elif mode in ("not_shared", "restricted"):
                self.access[oid] = mode
            else:
                raise ValueError(mode)

    def rate_limit_next(self, n: int, retry_after: int = 0, *, status: int = 429) -> None:
        """The next ``n`` requests get 429 rate_limited (or, with ``status=529``, 529
        service_overload, which Notion asks to be handled as a 429) with ``Retry-After:
        retry_after`` (seconds; notion-client only understands whole seconds)."""
        if status not in (429, 529):
            raise ValueError(status)
        with self._lock:
            self._rate_limits.extend([(status, int(retry_after))] * n)

    def limit_rate(self, per_second: float | None) -> None:
        """A real limiter: more than ``per_second`` requests within any 1 s window get 429 with
        ``Retry-After: 1``. None turns it off."""
        with self._lock:
            self._per_second = per_second
            self._accepted.clear()

    def fail_next(self, n: int, status: int = 503, *, after_apply: bool = False) -> None:
        """The next ``n`` requests fail with ``status`` (500 internal_server_error, 502, 503
        service_unavailable, 504 gateway_timeout). With ``after_apply`` each of them is carried
        out first (a create creates the page, an update changes it) and only the answer is the
        error, as when Notion times out after the write, so a client that retries a create
        blindly makes a duplicate."""
        with self._lock:
            self._failures.extend([(status, after_apply)] * n)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._clock += delta

    # ---- state helpers

    def create_database(self, title: str, schema: dict[str, str | dict], *, id: str | None = None,
                        data_source_id: str | None = None) -> FakeDatabase:
        """A database with one data source. ``schema`` maps property names to a type name, or to a
        dict like ``{"select": {"options": [{"name": "House"}]}}``; exactly one title property."""
        props: dict[str, dict] = {}
        for name, spec in schema.items():
            kind, conf = (spec, {}) if isinstance(spec, str) else next(iter(spec.items()))
            if kind not in PROPERTY_TYPES:
                raise ValueError(f"unsupported property type {kind!r}")
            props[name] = self._schema_property(name, kind, dict(conf or {}))
        if [p["type"] for p in props.values()].count("title") != 1:
            raise ValueError("a data source has exactly one title property")
        db_id = _norm_id(id) if id else str(uuid.uuid4())
        ds_id = _norm_id(data_source_id) if data_source_id else str(uuid.uuid4())
        with self._lock:
            now = _iso(self._clock)
            self.databases[db_id] = {"title": title, "data_source_ids": [ds_id], "created_time": now}
            self.data_sources[ds_id] = _DataSource(ds_id, db_id, title, props, now)
        return FakeDatabase(db_id, ds_id, title)

    def seed_page(self, data_source_id: str, values: dict[str, Any], *, raw: bool = False) -> dict:
        """A page created directly (no request recorded). ``values`` are plain Python values
        (see ``to_request``) or, with ``raw``, property values in the request shape."""
        ds = self.data_sources[_norm_id(data_source_id)]
        props = values if raw else {k: self.to_request(ds.properties[k]["type"], v) for k, v in values.items()}
        with self._lock:
            return json.loads(json.dumps(self._create_page(ds, props, BOT_USER_ID, limits=False)))

    def page(self, page_id: str) -> dict:
        """A copy of the stored page object."""
        with self._lock:
            return json.loads(json.dumps(self.pages[_norm_id(page_id)]))

    def pages_in(self, data_source_id: str, *, include_trashed: bool = False) -> list[dict]:
        ds_id = _norm_id(data_source_id)
        with self._lock:
            return [json.loads(json.dumps(p)) for p in self.pages.values()
                    if p["parent"]["data_source_id"] == ds_id and (include_trashed or not p["in_trash"])]

    def edit_by_hand(self, page_id: str, values: dict[str, Any] | None = None, *,
                     in_trash: bool | None = None) -> dict:
        """A person edits the page in the Notion app: plain ``values`` as in ``seed_page``;
        ``last_edited_time`` moves on and ``last_edited_by`` becomes a human user."""
        with self._lock:
            page = self.pages[_norm_id(page_id)]
            ds = self.data_sources[page["parent"]["data_source_id"]]
            props = {k: self.to_request(ds.properties[k]["type"], v) for k, v in (values or {}).items()}
            self._update_page(page, {"properties": props} if in_trash is None
                              else {"properties": props, "in_trash": in_trash}, HUMAN_USER_ID, limits=False)
            return json.loads(json.dumps(page))

    def writes(self) -> list[Request]:
        """Requests that create or change pages (POST /v1/pages, PATCH /v1/pages/...)."""
        return [r for r in self.requests
                if (r.method == "POST" and r.path == "/v1/pages") or (r.method == "PATCH" and r.path.startswith("/v1/pages/"))]

    @staticmethod
    def to_request(kind: str, value: Any) -> Any:
        """A plain Python value as the request-shaped property value for a property of ``kind``:
        str for title/rich_text/url/select, list[str] for multi_select, files (URLs) and relation
        (page ids), number, bool, ISO date str; None clears."""
        if kind in _TEXT_TYPES:
            return {kind: [] if value in (None, "") else [{"text": {"content": str(value)}}]}
        if kind == "select":
            return {"select": None if value is None else {"name": value}}
        if kind == "multi_select":
            return {"multi_select": [{"name": v} for v in value or []]}
        if kind == "date":
            return {"date": None if value is None else {"start": value}}
        if kind == "files":
            return {"files": [{"name": u.rsplit("/", 1)[-1] or u, "external": {"url": u}} for u in value or []]}
        if kind == "relation":
            return {"relation": [{"id": v} for v in value or []]}
        return {kind: value}

    @staticmethod
    def plain(page: dict) -> dict[str, Any]:
        """A page's property values as plain Python values (the inverse of ``to_request``)."""
        out: dict[str, Any] = {}
        for name, prop in page["properties"].items():
            kind, value = prop["type"], prop[prop["type"]]
            if kind in _TEXT_TYPES:
                out[name] = "".join(r["plain_text"] for r in value)
            elif kind == "select":
                out[name] = value and value["name"]
            elif kind == "multi_select":
                out[name] = [o["name"] for o in value]
            elif kind == "date":
                out[name] = value and value["start"]
            elif kind == "files":
                out[name] = [f["external"]["url"] for f in value]
            elif kind == "relation":
                out[name] = [r["id"] for r in value]
            else:
                out[name] = value
        return out

    # ---- objects

    def _schema_property(self, name: str, kind: str, conf: dict) -> dict:
        if kind == "title":
            pid = "title"
        else:
            self._prop_seq += 1
            pid = quote(f"{chr(0x41 + self._prop_seq % 26)}:{self._prop_seq:02d}", safe="")
        if kind in ("select", "multi_select"):
            conf = {"options": [self._option(o.get("name", "")) | {k: v for k, v in o.items() if k != "name"}
                                for o in conf.get("options", [])]}
        elif kind == "number":
            conf = {"format": conf.get("format", "number")}
        elif kind == "relation":
            conf = {"data_source_id": conf.get("data_source_id"), "type": "single_property", "single_property": {}}
        return {"id": pid, "name": name, "type": kind, kind: conf}

    @staticmethod
    def _option(name: str) -> dict:
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "opt:" + name)), "name": name, "color": "default",
                "description": None}

    def _database_obj(self, db_id: str) -> dict:
        db = self.databases[db_id]
        return {
            "object": "database", "id": db_id, "title": rich_text(db["title"]), "description": [],
            "icon": None, "cover": None, "parent": {"type": "workspace", "workspace": True},
            "is_inline": False, "in_trash": False, "is_locked": False,
            "created_time": db["created_time"], "last_edited_time": db["created_time"],
            "data_sources": [{"id": d, "name": self.data_sources[d].title} for d in db["data_source_ids"]],
            "url": f"https://www.notion.so/{db_id.replace('-', '')}", "public_url": None,
        }

    def _data_source_obj(self, ds: _DataSource) -> dict:
        return {
            "object": "data_source", "id": ds.id, "created_time": ds.created_time,
            "last_edited_time": ds.created_time, "created_by": _user(BOT_USER_ID),
            "last_edited_by": _user(BOT_USER_ID), "properties": json.loads(json.dumps(ds.properties)),
            "parent": {"type": "database_id", "database_id": ds.database_id},
            "database_parent": {"type": "workspace", "workspace": True},
            "archived": False, "in_trash": False, "is_inline": False, "title": rich_text(ds.title),
            "description": [], "icon": None, "cover": None,
            "url": f"https://www.notion.so/{ds.id.replace('-', '')}", "public_url": None,
        }

    def _now(self) -> str:
        self._clock += self.tick
        return _iso(self._clock.replace(second=0, microsecond=0))

    def _create_page(self, ds: _DataSource, props: Any, user: str, *, limits: bool = True) -> dict:
        values = self._validate_properties(ds, props, limits=limits)
        page_id = str(uuid.uuid4())
        now = self._now()
        properties = {name: self._empty_value(sp) for name, sp in ds.properties.items()}
        properties.update(values)
        title = next(("".join(r["plain_text"] for r in v["title"]) for v in properties.values()
                      if v["type"] == "title"), "")
        slug = "-".join("".join(c if c.isalnum() else " " for c in title).split())
        page = {
            "object": "page", "id": page_id, "created_time": now, "last_edited_time": now,
            "created_by": _user(user), "last_edited_by": _user(user), "cover": None, "icon": None,
            "parent": {"type": "data_source_id", "data_source_id": ds.id, "database_id": ds.database_id},
            "archived": False, "in_trash": False, "is_locked": False, "properties": properties,
            "url": f"https://www.notion.so/{slug + '-' if slug else ''}{page_id.replace('-', '')}",
            "public_url": None,
        }
        self.pages[page_id] = page
        return page

    def _update_page(self, page: dict, body: dict, user: str, *, limits: bool = True) -> None:
        """``limits``: the API's per-request limits apply (not to a person in the app, nor to seeding)."""
        trash = body.get("in_trash", body.get("archived"))
        if trash is not None and not isinstance(trash, bool):
            raise _validation(f"body failed validation: body.in_trash should be a boolean, instead was {_j(trash)}.")
        props = body.get("properties") or {}
        if page["in_trash"] and trash is not False and (props or trash) and limits:  # also trashing it again
            raise _validation(_ARCHIVED)
        ds = self.data_sources[page["parent"]["data_source_id"]]
        values = self._validate_properties(ds, props, limits=limits)
        page["properties"].update(values)
        if trash is not None:
            page["in_trash"] = page["archived"] = trash
        page["last_edited_time"] = self._now()
        page["last_edited_by"] = _user(user)

    @staticmethod
    def _empty_value(sp: dict) -> dict:
        kind = sp["type"]
        empty: Any = {"title": [], "rich_text": [], "number": None, "select": None, "multi_select": [],
                      "url": None, "checkbox": False, "date": None, "files": [], "relation": []}[kind]
        value = {"id": sp["id"], "type": kind, kind: empty}
        if kind == "relation":
            value["has_more"] = False
        return value

    # ---- validation of request-shaped property values

    def _find_property(self, ds: _DataSource, key: str) -> dict | None:
        if key in ds.properties:
            return ds.properties[key]
        return next((p for p in ds.properties.values() if p["id"] == key), None)

    def _validate_properties(self, ds: _DataSource, props: Any, *, limits: bool = True) -> dict[str, dict]:
        schema = json.loads(json.dumps(ds.properties))
        try:
            return self._check_properties(ds, props, limits=limits)
        except _ApiError:
            ds.properties = schema  # a rejected request adds no select options
            raise

    def _check_properties(self, ds: _DataSource, props: Any, *, limits: bool = True) -> dict[str, dict]:
        if not isinstance(props, dict):
            raise _validation(f"body failed validation: body.properties should be an object, instead was {_j(props)}.")
        out: dict[str, dict] = {}
        for key, value in props.items():
            sp = self._find_property(ds, key)
            if sp is None:
                raise _validation(f"{key} is not a property that exists.")
            out[sp["name"]] = {"id": sp["id"], "type": sp["type"],
                               sp["type"]: self._convert(ds, sp, value, f"body.properties.{key}", limits=limits)}
            if sp["type"] == "relation":
                out[sp["name"]]["has_more"] = False
        return out

    def _convert(self, ds: _DataSource, sp: dict, value: Any, where: str, *, limits: bool = True) -> Any:
        kind = sp["type"]
        if not isinstance(value, dict) or kind not in value or not set(value) <= {kind, "type", "id"} \
                or value.get("type", kind) != kind:
            raise _validation(f"body failed validation. Fix one:\n{where}.{kind} should be defined, "
                              f"instead was `undefined`." if isinstance(value, dict) and kind not in value
                              else f"body failed validation: {where} should be a {kind} property value, "
                                   f"instead was {_j(value)}.")
        v = value[kind]
        at = f"{where}.{kind}"

        def fail(expect: str, got: Any = v, path: str = at) -> _ApiError:
            return _validation(f"body failed validation: {path} should be {expect}, instead was {_j(got)}.")

        if kind in _TEXT_TYPES:
            if not isinstance(v, list):
                raise fail("an array")
            if len(v) > _MAX_ARRAY:
                raise fail(f"≤ `{_MAX_ARRAY}`", len(v), at + ".length")
            runs = []
            for i, item in enumerate(v):
                text = item.get("text") if isinstance(item, dict) else None
                if not isinstance(text, dict) or not isinstance(text.get("content"), str) \
                        or item.get("type", "text") != "text":
                    raise fail("a text rich text item", item, f"{at}[{i}]")
                if len(text["content"]) > _MAX_TEXT:
                    raise fail(f"≤ `{_MAX_TEXT}`", len(text["content"]), f"{at}[{i}].text.content.length")
                link = text.get("link")
                run = rich_text(text["content"])
                if run:
                    run[0]["text"]["link"] = link
                    run[0]["href"] = link["url"] if isinstance(link, dict) else None
                    run[0]["annotations"].update(item.get("annotations") or {})
                runs += run
            return runs
        if kind == "number":
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise fail("a number or `null`")
            return v
        if kind == "checkbox":
            if not isinstance(v, bool):
                raise fail("a boolean")
            return v
        if kind == "url":
            if v is not None and not isinstance(v, str):
                raise fail("a string or `null`")
            if isinstance(v, str) and len(v) > _MAX_TEXT:
                raise fail(f"≤ `{_MAX_TEXT}`", len(v), at + ".length")
            return v or None
        if kind == "select":
            if v is None:
                return None
            if not isinstance(v, dict) or not isinstance(v.get("name", v.get("id")), str):
                raise fail("an object with a name or id, or `null`")
            return self._resolve_option(sp, v, at)
        if kind == "multi_select":
            if not isinstance(v, list):
                raise fail("an array")
            if len(v) > _MAX_ARRAY:
                raise fail(f"≤ `{_MAX_ARRAY}`", len(v), at + ".length")
            out = []
            for i, o in enumerate(v):
                if not isinstance(o, dict) or not isinstance(o.get("name", o.get("id")), str):
                    raise fail("an object with a name or id", o, f"{at}[{i}]")
                opt = self._resolve_option(sp, o, f"{at}[{i}]")
                if opt["name"] not in [x["name"] for x in out]:
                    out.append(opt)
            return out
        if kind == "date":
            if v is None:
                return None
            if not isinstance(v, dict) or not isinstance(v.get("start"), str) or not _is_iso(v["start"]) \
                    or (v.get("end") is not None and not _is_iso(v.get("end"))):
                raise fail("an object with an ISO 8601 `start`, or `null`")
            return {"start": v["start"], "end": v.get("end"), "time_zone": v.get("time_zone")}
        if kind == "files":
            if not isinstance(v, list):
                raise fail("an array")
            out = []
            for i, f in enumerate(v):
                ext = f.get("external") if isinstance(f, dict) else None
                if not isinstance(ext, dict) or not isinstance(ext.get("url"), str) \
                        or not isinstance(f.get("name", ""), str):
                    raise fail("an external file object", f, f"{at}[{i}]")
                if len(ext["url"]) > _MAX_TEXT:  # any URL: 2,000 characters
                    raise fail(f"≤ `{_MAX_TEXT}`", len(ext["url"]), f"{at}[{i}].external.url.length")
                out.append({"name": f.get("name") or ext["url"], "type": "external",
                            "external": {"url": ext["url"]}})
            return out
        if kind == "relation":
            if not isinstance(v, list):
                raise fail("an array")
            if len(v) > _MAX_ARRAY and limits:  # "Any relation: 100 related pages" per request
                raise fail(f"≤ `{_MAX_ARRAY}`", len(v), at + ".length")
            out = []
            for i, r in enumerate(v):
                rid = _norm_id(r.get("id")) if isinstance(r, dict) else None
                if rid is None:
                    raise fail("an object with a valid uuid `id`", r, f"{at}[{i}]")
                out.append({"id": rid})
            return out
        raise fail("a supported value")  # pragma: no cover

    def _resolve_option(self, sp: dict, v: dict, at: str) -> dict:
        options = sp[sp["type"]].setdefault("options", [])
        if "name" in v:
            name = v["name"]
            if sp["type"] == "select" and "," in name:
                raise _validation(f"Invalid select option, commas not allowed: {name}")
            found = next((o for o in options if o["name"] == name), None)
            if found is None:  # like Notion: an unknown name adds the option to the schema
                found = self._option(name)
                options.append(found)
        else:
            found = next((o for o in options if o["id"] == v["id"]), None)
            if found is None:
                raise _validation(f"body failed validation: {at}.id should be an existing option id, "
                                  f"instead was {_j(v['id'])}.")
        return {"id": found["id"], "name": found["name"], "color": found["color"]}

    # ---- query

    def _query(self, ds: _DataSource, body: dict) -> dict:
        page_size = body.get("page_size", 100)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise _validation(f"body failed validation: body.page_size should be a positive integer, "
                              f"instead was {_j(page_size)}.")
        if page_size > 100:
            raise _validation(f"body failed validation: body.page_size should be ≤ `100`, instead was `{page_size}`.")
        flt = body.get("filter")
        in_trash = bool(body.get("in_trash") or body.get("archived"))
        rows = [p for p in self.pages.values()
                if p["parent"]["data_source_id"] == ds.id and p["in_trash"] == in_trash
                and (flt is None or self._matches(ds, p, flt, "body.filter"))]
        for sort in reversed(body.get("sorts") or []):
            rows = self._sorted(ds, rows, sort)
        incomplete = len(rows) > self.query_cap
        rows = rows[:self.query_cap]
        start = 0
        cursor = body.get("start_cursor")
        if cursor is not None:
            idx = next((i for i, p in enumerate(rows) if p["id"] == cursor), None)
            if idx is None:
                raise _validation(f"start_cursor provided is invalid: {cursor}")
            start = idx
        chunk = rows[start:start + page_size]
        more = start + page_size < len(rows)
        answer = {"object": "list", "results": [self.shown(p) for p in chunk],
                  "next_cursor": rows[start + page_size]["id"] if more else None, "has_more": more,
                  "type": "page_or_data_source", "page_or_data_source": {}}
        if incomplete and not more:  # the last results this query gives: the rest is not reachable by paging
            answer["request_status"] = {"type": "incomplete"}
        return answer

    def shown(self, page: dict) -> dict:
        """A page object as the API answers it: at most 25 references per relation property
        (``has_more`` says there are more)."""
        out = json.loads(json.dumps(page))
        for value in out["properties"].values():
            if value["type"] == "relation":
                value["has_more"] = len(value["relation"]) > MAX_REFERENCES
                value["relation"] = value["relation"][:MAX_REFERENCES]
        return out

    def property_item(self, page: dict, property_id: str, query: dict[str, str]) -> dict:
        """``GET /v1/pages/{id}/properties/{property_id}``: a relation, title or rich_text as a
        paginated list of property items (100 a request at most); other types as one item."""
        from urllib.parse import unquote

        value = next((v for v in page["properties"].values()
                      if v["id"] in (property_id, quote(unquote(property_id), safe=""))), None)
        if value is None:
            raise _ApiError(404, "object_not_found", f"Could not find property with ID: {property_id}.")
        kind = value["type"]
        if kind not in ("relation", "title", "rich_text"):
            return {"object": "property_item", "id": value["id"], "type": kind, kind: value[kind]}
        try:
            page_size = int(query.get("page_size", 100))
        except ValueError:
            page_size = 0
        if not 1 <= page_size <= 100:
            raise _validation(f"query failed validation: query.page_size should be ≤ `100` and ≥ `1`, "
                              f"instead was {_j(query.get('page_size'))}.")
        items = value[kind]
        start = int(query["start_cursor"]) if query.get("start_cursor", "").isdigit() else 0
        chunk = items[start:start + page_size]
        more = start + page_size < len(items)
        return {"object": "list", "type": "property_item",
                "results": [{"object": "property_item", "id": value["id"], "type": kind, kind: item}
                            for item in chunk],
                "next_cursor": str(start + page_size) if more else None, "has_more": more,
                "property_item": {"id": value["id"], "next_url": None, "type": kind, kind: {}}}

    def _sorted(self, ds: _DataSource, rows: list[dict], sort: Any) -> list[dict]:
        if not isinstance(sort, dict) or sort.get("direction", "ascending") not in ("ascending", "descending"):
            raise _validation(f"body failed validation: body.sorts should be sort objects, instead was {_j(sort)}.")
        reverse = sort.get("direction") == "descending"
        if "timestamp" in sort:
            if sort["timestamp"] not in ("created_time", "last_edited_time"):
                raise _validation(f"body failed validation: body.sorts.timestamp should be `\"created_time\"` "
                                  f"or `\"last_edited_time\"`, instead was {_j(sort['timestamp'])}.")
            return sorted(rows, key=lambda p: p[sort["timestamp"]], reverse=reverse)
        sp = self._find_property(ds, str(sort.get("property")))
        if sp is None:
            raise _validation(f"Could not find sort property with name or id: {sort.get('property')}")

        def key(p: dict) -> tuple:
            value = _comparable(p["properties"][sp["name"]])
            empty = value in (None, "", [])
            return (empty, value if not empty else 0)  # empty values last, in both directions

        present = [p for p in rows if not key(p)[0]]
        return sorted(present, key=key, reverse=reverse) + [p for p in rows if key(p)[0]]

    def _matches(self, ds: _DataSource, page: dict, flt: Any, where: str) -> bool:
        if not isinstance(flt, dict):
            raise _validation(f"body failed validation: {where} should be an object, instead was {_j(flt)}.")
        for compound in ("and", "or"):
            if compound in flt:
                subs = flt[compound]
                if not isinstance(subs, list):
                    raise _validation(f"body failed validation: {where}.{compound} should be an array, "
                                      f"instead was {_j(subs)}.")
                results = [self._matches(ds, page, s, f"{where}.{compound}[{i}]") for i, s in enumerate(subs)]
                return all(results) if compound == "and" else any(results)
        if "timestamp" in flt:
            ts = flt["timestamp"]
            if ts not in ("created_time", "last_edited_time") or not isinstance(flt.get(ts), dict):
                raise _validation(f"body failed validation: {where} is not a valid timestamp filter.")
            return _date_condition(page[ts], flt[ts], f"{where}.{ts}")
        name = flt.get("property")
        sp = self._find_property(ds, str(name)) if name is not None else None
        if sp is None:
            raise _validation(f"Could not find property with name or id: {name}")
        kind = sp["type"]
        accepted = _TEXT_TYPES if kind in _TEXT_TYPES else (kind,)
        given = [k for k in flt if k not in ("property", "type")]
        if len(given) != 1 or given[0] not in accepted or not isinstance(flt[given[0]], dict):
            raise _validation(f"body failed validation: {where} should be a {kind} filter for property "
                              f"{sp['name']!r}, instead was {_j(flt)}.")
        cond = flt[given[0]]
        value = page["properties"][sp["name"]][kind]
        return _condition(kind, value, cond, f"{where}.{given[0]}")


def _is_iso(s: Any) -> bool:
    if not isinstance(s, str):
        return False
    try:
        datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _comparable(prop: dict) -> Any:
    kind, value = prop["type"], prop[prop["type"]]
    if kind in _TEXT_TYPES:
        return "".join(r["plain_text"] for r in value)
    if kind == "select":
        return value and value["name"]
    if kind == "date":
        return value and value["start"]
    if kind in ("multi_select", "files", "relation"):
        return [str(x) for x in value]
    return value


def _one(cond: dict, where: str, ops: tuple[str, ...]) -> tuple[str, Any]:
    if len(cond) != 1 or next(iter(cond)) not in ops:
        raise _validation(f"body failed validation: {where} should have exactly one of "
                          f"{', '.join(ops)}, instead was {_j(cond)}.")
    return next(iter(cond.items()))


def _condition(kind: str, value: Any, cond: dict, where: str) -> bool:
    empties = ("is_empty", "is_not_empty")
    if kind in (*_TEXT_TYPES, "url"):
        op, arg = _one(cond, where, ("equals", "does_not_equal", "contains", "does_not_contain",
                                     "starts_with", "ends_with", *empties))
        text = "".join(r["plain_text"] for r in value) if kind != "url" else (value or "")
        if op in empties:
            return (text == "") == (op == "is_empty")
        if not isinstance(arg, str):
            raise _validation(f"body failed validation: {where}.{op} should be a string, instead was {_j(arg)}.")
        low, a = text.lower(), arg.lower()  # Notion's text filters ignore case
        return {"equals": low == a, "does_not_equal": low != a, "contains": a in low,
                "does_not_contain": a not in low, "starts_with": low.startswith(a),
                "ends_with": low.endswith(a)}[op]
    if kind == "number":
        op, arg = _one(cond, where, ("equals", "does_not_equal", "greater_than", "less_than",
                                     "greater_than_or_equal_to", "less_than_or_equal_to", *empties))
        if op in empties:
            return (value is None) == (op == "is_empty")
        if isinstance(arg, bool) or not isinstance(arg, int | float):
            raise _validation(f"body failed validation: {where}.{op} should be a number, instead was {_j(arg)}.")
        if value is None:
            return op == "does_not_equal"
        return {"equals": value == arg, "does_not_equal": value != arg, "greater_than": value > arg,
                "less_than": value < arg, "greater_than_or_equal_to": value >= arg,
                "less_than_or_equal_to": value <= arg}[op]
    if kind == "checkbox":
        op, arg = _one(cond, where, ("equals", "does_not_equal"))
        if not isinstance(arg, bool):
            raise _validation(f"body failed validation: {where}.{op} should be a boolean, instead was {_j(arg)}.")
        return (value == arg) == (op == "equals")
    if kind == "select":
        op, arg = _one(cond, where, ("equals", "does_not_equal", *empties))
        if op in empties:
            return (value is None) == (op == "is_empty")
        name = value and value["name"]
        return (name == arg) == (op == "equals")
    if kind in ("multi_select", "relation"):
        op, arg = _one(cond, where, ("contains", "does_not_contain", *empties))
        if op in empties:
            return (not value) == (op == "is_empty")
        items = [o["name"] for o in value] if kind == "multi_select" else [r["id"] for r in value]
        if kind == "relation":
            arg = _norm_id(arg) or arg
        return (arg in items) == (op == "contains")
    if kind == "files":
        op, _ = _one(cond, where, empties)
        return (not value) == (op == "is_empty")
    if kind == "date":
        if set(cond) <= set(empties):
            op, _ = _one(cond, where, empties)
            return (value is None) == (op == "is_empty")
        return value is not None and _date_condition(value["start"], cond, where)
    raise _validation(f"body failed validation: {where} is not supported.")  # pragma: no cover


def _date_condition(value: str, cond: dict, where: str) -> bool:
    op, arg = _one(cond, where, ("equals", "before", "after", "on_or_before", "on_or_after"))
    if not _is_iso(arg):
        raise _validation(f"body failed validation: {where}.{op} should be an ISO 8601 date, instead was {_j(arg)}.")

    def when(s: str) -> datetime:
        d = datetime.fromisoformat(s.replace("Z", "+00:00"))
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    v, a = when(value), when(arg)
    if op == "equals" and len(arg) == 10:  # a bare date matches the whole day
        return v.date() == a.date()
    return {"equals": v == a, "before": v < a, "after": v > a, "on_or_before": v <= a,
            "on_or_after": v >= a}[op]


# --------------------------------------------------------------------------- server


class _Handler(JsonHandler):
    owner: FakeNotion

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ---- plumbing

    def _handle(self, method: str) -> None:
        fake = self.owner
        path, query = self._split()
        raw = self._body()
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        record = fake.record(Request(time.time(), method, path, query, body, self.headers.get("Notion-Version")))
        try:
            if bad_json:
                raise _ApiError(400, "invalid_json", "Error parsing JSON body.")
            late_failure = self._gate()
            with fake._lock:
                result = self._route(method, path, body if isinstance(body, dict) else {})
            if late_failure is not None:  # applied, but the answer is an error
                raise self._failure(late_failure)
            status, payload, headers = 200, {**result, "request_id": str(uuid.uuid4())}, {}
        except _ApiError as e:
            status, headers = e.status, e.headers
            payload = {"object": "error", "status": e.status, "code": e.code, "message": e.message,
                       "request_id": str(uuid.uuid4())}
        record.status = status
        self._json(status, payload, headers)

    def _gate(self) -> int | None:
        """Outages, rate limits, auth and the version header, in that order. Returns the status
        of a failure to answer after carrying the request out (``fail_next(after_apply=True)``)."""
        fake = self.owner
        late_failure = None
        with fake._lock:
            failure, after_apply = fake._failures.pop(0) if fake._failures else (None, False)
            if after_apply:
                failure, late_failure = None, failure
            limited, retry_after = (fake._rate_limits.pop(0) if failure is None and late_failure is None
                                    and fake._rate_limits else (None, None))
            if failure is None and late_failure is None and retry_after is None and fake._per_second is not None:
                now = time.monotonic()
                fake._accepted = [t for t in fake._accepted if now - t < 1.0]
                if len(fake._accepted) >= fake._per_second:
                    limited, retry_after = 429, 1
                else:
                    fake._accepted.append(now)
        if failure is not None:
            raise self._failure(failure)
        if limited == 529:
            raise _ApiError(529, "service_overload", "Notion is experiencing high load. Please try again later.",
                            {"Retry-After": str(retry_after)})
        if retry_after is not None:
            raise _ApiError(429, "rate_limited", "You have been rate limited. Please try again in a few minutes.",
                            {"Retry-After": str(retry_after)})
        if self.headers.get("Authorization", "") != f"Bearer {fake.token}":
            raise _ApiError(401, "unauthorized", "API token is invalid.")
        if not self.headers.get("Notion-Version"):
            raise _ApiError(400, "missing_version", "Notion-Version header failed validation: Notion-Version "
                                                    "header should be defined, instead was `undefined`.")
        return late_failure

    @staticmethod
    def _failure(status: int) -> _ApiError:
        code = {500: "internal_server_error", 503: "service_unavailable",
                504: "gateway_timeout"}.get(status, "internal_server_error")
        return _ApiError(status, code, "Notion is unavailable. Please try again later.")

    def _check_access(self, *ids: str, kind: str, shown: str) -> None:
        for oid in ids:
            mode = self.owner.access.get(oid)
            if mode == "not_shared":
                raise _ApiError(404, "object_not_found", f"Could not find {kind} with ID: {shown}. Make sure the "
                                "relevant pages and databases are shared with your integration.")
            if mode == "restricted":
                raise _ApiError(403, "restricted_resource",
                                "API token does not have access to this resource.")

    def _id(self, raw: str, name: str) -> str:
        oid = _norm_id(raw)
        if oid is None or "-" not in raw and len(raw) != 32:
            raise _validation(f"path failed validation: path.{name} should be a valid uuid, instead was {_j(raw)}.")
        return oid

    def _route(self, method: str, path: str, body: dict) -> dict:
        fake = self.owner
        seg = path.strip("/").split("/")
        if not seg or seg[0] != "v1":
            raise _ApiError(400, "invalid_request_url", "Invalid request URL.")
        seg = seg[1:]
        if method == "GET" and len(seg) == 2 and seg[0] == "databases":
            db_id = self._id(seg[1], "database_id")
            if db_id not in fake.databases:
                self._not_found("database", seg[1])
            self._check_access(db_id, kind="database", shown=seg[1])
            return fake._database_obj(db_id)
        if seg and seg[0] == "data_sources" and len(seg) in (2, 3):
            ds_id = self._id(seg[1], "data_source_id")
            ds = fake.data_sources.get(ds_id)
            if ds is None:
                self._not_found("data_source", seg[1])
            self._check_access(ds.database_id, ds.id, kind="data_source", shown=seg[1])
            if method == "GET" and len(seg) == 2:
                return fake._data_source_obj(ds)
            if method == "POST" and len(seg) == 3 and seg[2] == "query":
                return fake._query(ds, body)
        if seg == ["pages"] and method == "POST":
            return self._create(body)
        page_call = len(seg) == 2 and method in ("GET", "PATCH")
        property_call = len(seg) == 4 and seg[2] == "properties" and method == "GET"
        if seg and seg[0] == "pages" and (page_call or property_call):
            page_id = self._id(seg[1], "page_id")
            page = fake.pages.get(page_id)
            if page is None:
                self._not_found("page", seg[1])
            ds = fake.data_sources[page["parent"]["data_source_id"]]
            self._check_access(ds.database_id, ds.id, kind="page", shown=seg[1])
            if property_call:
                return fake.property_item(page, seg[3], self._split()[1])
            if method == "PATCH":
                fake._update_page(page, body, BOT_USER_ID)
            return fake.shown(page)
        raise _ApiError(400, "invalid_request_url", "Invalid request URL.")

    @staticmethod
    def _not_found(kind: str, shown: str) -> None:
        raise _ApiError(404, "object_not_found", f"Could not find {kind} with ID: {shown}. Make sure the "
                        "relevant pages and databases are shared with your integration.")

    def _create(self, body: dict) -> dict:
        fake = self.owner
        parent = body.get("parent")
        if not isinstance(parent, dict):
            raise _validation("body failed validation: body.parent should be defined, instead was `undefined`.")
        if "data_source_id" in parent:
            ds_id = _norm_id(parent["data_source_id"])
            if ds_id is None:
                raise _validation("body failed validation: body.parent.data_source_id should be a valid uuid, "
                                  f"instead was {_j(parent['data_source_id'])}.")
            ds = fake.data_sources.get(ds_id)
            if ds is None:
                self._not_found("data_source", parent["data_source_id"])
        elif "database_id" in parent:
            db_id = _norm_id(parent["database_id"])
            if db_id is None:
                raise _validation("body failed validation: body.parent.database_id should be a valid uuid, "
                                  f"instead was {_j(parent['database_id'])}.")
            db = fake.databases.get(db_id)
            if db is None:
                self._not_found("database", parent["database_id"])
            if len(db["data_source_ids"]) != 1:
                raise _validation("Database has multiple data sources; use parent.data_source_id instead.")
            ds = fake.data_sources[db["data_source_ids"][0]]
        else:
            raise _validation("body failed validation. Fix one:\nbody.parent.data_source_id should be defined, "
                              "instead was `undefined`.\nbody.parent.database_id should be defined, instead "
                              "was `undefined`.\nbody.parent.page_id should be defined, instead was `undefined`.")
        self._check_access(ds.database_id, ds.id, kind="data_source" if "data_source_id" in parent else "database",
                           shown=str(parent.get("data_source_id") or parent.get("database_id")))
        return fake.shown(fake._create_page(ds, body.get("properties") or {}, BOT_USER_ID))


__all__ = ["BOT_USER_ID", "HUMAN_USER_ID", "NOTION_VERSION", "FakeDatabase", "FakeNotion", "Request", "rich_text"]
