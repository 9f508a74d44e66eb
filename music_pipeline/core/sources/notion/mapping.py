"""Which Notion property holds which track field, and how values are written and compared.

The tracks database is the user's: its property names and types are whatever they made.
A mapping names the property for each field (defaults are the common names); the schema is
read once and only properties that exist with a compatible type are written. Values are
compared in one canonical form (plain strings, rounded numbers, sorted name sets), so a
second sync with nothing changed writes nothing, and a value that differs from what the
pipeline last wrote is a person's edit, which is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...domain.identity import redact_text, redact_url
from ...domain.records import TrackRecord

#: Status shown in Notion for each catalog status (the queue's pages follow their track).
STATUS_LABELS = {"queued": "Queued", "running": "Downloading", "done": "Done", "failed": "Failed",
                 "needs_review": "Needs review", "duplicate": "Duplicate"}
#: A page a person queued carries one of these, or none.
QUEUE_LABELS = ("", "queued", "to download", "todo", "to do", "new")

_TEXT = ("title", "rich_text", "select")
_LIST = ("multi_select", "relation", "rich_text")
_URL = ("url", "rich_text", "files")
_PATH = ("rich_text", "url", "files")
#: Notion's limits on what one request writes: a text object's content and any URL, 2,000
#: characters; a multi-select or a relation, 100 options or related pages.
_MAX_TEXT = 2000
MAX_ITEMS = 100


@dataclass(frozen=True)
class Field:
    """One track field: the property it goes to by default and the types that can hold it."""

    name: str
    default: str
    types: tuple[str, ...]
    always: bool = False  # follows the track whatever a person typed (status, error)
    relation: str | None = None  # related database setting (ARTISTS_DB_ID, PLAYLISTS_DB_ID)


FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("title", "Name", ("title", "rich_text")),
    Field("track_id", "Track ID", ("rich_text", "title"), always=True),  # identity: the pipeline's
    Field("artists", "Artist", _LIST, relation="ARTISTS_DB_ID"),
    Field("album", "Album", _TEXT),
    Field("bpm", "BPM", ("number", "rich_text")),
    Field("key", "Key", _TEXT),
    Field("camelot", "Camelot", _TEXT),
    Field("loudness", "LUFS", ("number", "rich_text")),
    Field("duration", "Duration", ("number", "rich_text")),
    Field("url", "URL", _URL),
    # the source URL whole (masked) when too long for a URL property, which then has it without its query
    Field("full_url", "Full URL", ("rich_text",)),
    Field("soundcloud", "SoundCloud", _URL),
    Field("youtube", "YouTube", _URL),
    Field("spotify", "Spotify", _URL),
    Field("isrc", "ISRC", _TEXT),
    Field("alac_file", "ALAC File", _PATH),
    Field("aiff_file", "AIFF File", _PATH),
    Field("wav_file", "WAV File", _PATH),
    Field("playlists", "Playlists", _LIST, relation="PLAYLISTS_DB_ID"),
    Field("genres", "Genre", ("multi_select", "rich_text", "select")),
    Field("status", "Status", ("select", "rich_text"), always=True),
    Field("error", "Error", ("rich_text",), always=True),
    Field("processed", "Processed", ("date", "rich_text")),
    Field("lossless", "Lossless", ("checkbox",)),
)}
#: Fields whose value is a source URL (the queue reads them; pages are found by them).
URL_FIELDS = ("url", "soundcloud", "youtube", "spotify")
SET_TYPES = ("multi_select", "relation")


@dataclass(frozen=True)
class Prop:
    field: str
    name: str  # the property's name in the database
    type: str


@dataclass
class Schema:
    """The tracks database's properties the pipeline may write, and what it cannot."""

    data_source_id: str
    props: dict[str, Prop] = field(default_factory=dict)  # field -> property
    problems: list[str] = field(default_factory=list)

    def prop(self, name: str) -> Prop | None:
        return self.props.get(name)


def resolve(data_source_id: str, properties: Mapping[str, dict], mapping: Mapping[str, str] | None = None,
            *, related: Mapping[str, bool] | None = None) -> Schema:
    """Match the fields to the data source's ``properties`` (name -> {"type": ...}).

    ``mapping`` renames fields' properties (an empty name leaves a field out); ``related``
    says which relation settings are configured (a relation property needs its database).
    A missing or mistyped property is a problem to report, not an error: the rest is written.
    """
    mapping = mapping or {}
    related = related or {}
    unknown = sorted(set(mapping) - set(FIELDS))
    schema = Schema(data_source_id)
    if unknown:
        schema.problems.append(f"unknown field(s) in the property mapping: {', '.join(unknown)} "
                               f"(known: {', '.join(FIELDS)})")
    by_lower = {name.casefold(): name for name in properties}
    for f in FIELDS.values():
        wanted = mapping.get(f.name, f.default)
        if not wanted:
            continue
        name = wanted if wanted in properties else by_lower.get(wanted.casefold())
        if name is None and f.name == "title":  # every database has exactly one title property
            name = next((n for n, p in properties.items() if p.get("type") == "title"), None)
        if name is None:
            if f.name in mapping or f.name in ("title", "track_id", "status"):
                schema.problems.append(f"no property {wanted!r} for {f.name} (add a {' or '.join(f.types)} "
                                       "property, or map the field to another one)")
            continue
        kind = properties[name].get("type", "")
        if kind not in f.types:
            schema.problems.append(f"property {name!r} is {kind or 'of an unknown type'}; {f.name} needs "
                                   f"{' or '.join(f.types)} (left out)")
            continue
        if kind == "relation" and not (f.relation and related.get(f.relation)):
            schema.problems.append(f"property {name!r} is a relation; set {f.relation} to its database to "
                                   f"fill it (left out)")
            continue
        if any(p.name == name for p in schema.props.values()):
            schema.problems.append(f"property {name!r} is mapped twice; {f.name} left out")
            continue
        schema.props[f.name] = Prop(f.name, name, kind)
    return schema


# -- values ------------------------------------------------------------------------------


def values(record: TrackRecord) -> dict[str, Any]:
    """The track's value for every field, plain (strings, numbers, lists of names). URLs are
    masked as everywhere else (a signed link's token, a private SoundCloud link's secret)."""
    files = {fmt.lower(): f for fmt, f in record.files.items()}
    source = redact_url(record.source_url) if record.source_url else None
    return {
        "title": record.title or record.key,
        "track_id": record.key,
        "artists": list(record.artists),
        "album": record.album,
        "bpm": round(record.bpm, 2) if record.bpm else None,
        "key": record.key_name,
        "camelot": record.camelot,
        "loudness": round(record.lufs, 1) if record.lufs is not None else None,
        "duration": round(record.duration_s, 1) if record.duration_s else None,
        "url": source,
        "full_url": source if source and _fit_url(source) != source else None,
        **{site: redact_url(url) if (url := record.site_url(site)) else None
           for site in ("soundcloud", "youtube", "spotify")},
        "isrc": record.isrc,
        "alac_file": str(files["alac"].path) if "alac" in files else None,
        "aiff_file": str(files["aiff"].path) if "aiff" in files else None,
        "wav_file": str(files["wav"].path) if "wav" in files else None,
        "playlists": list(record.playlists),
        "genres": list(record.genres),
        "status": STATUS_LABELS.get(record.status, record.status),
        "error": redact_text(record.error) if record.status in ("failed", "needs_review") else "",
        "processed": (record.processed_at or "")[:10] or None,
        "lossless": record.lossless,
    }


def _option(name: str) -> str:
    """A select option name: Notion refuses commas in them, and more than 100 characters."""
    return " ".join(str(name).replace(",", " ").split())[:100]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _file_url(value: str) -> str:
    return Path(value).as_uri() if value.startswith("/") else value


def _fit_url(url: str) -> str | None:
    """``url`` as a URL property takes it (2,000 characters): itself, else without its query
    and fragment (the page it names), else nothing; never a request Notion refuses."""
    if len(url) <= _MAX_TEXT:
        return url
    bare = url.split("#", 1)[0].split("?", 1)[0]
    return bare if len(bare) <= _MAX_TEXT else None


def fit(current: tuple, new: tuple) -> tuple | None:
    """``new``, a name set, as one request can write it (at most :data:`MAX_ITEMS`): itself when
    it fits; else what is there and stays, plus as many of the rest as fit; None when what is
    there and stays is already more than fit (writing fewer would unlink some of them)."""
    if len(new) <= MAX_ITEMS:
        return new
    keep = set(current) & set(new)
    if len(keep) > MAX_ITEMS:
        return None
    return tuple(sorted(keep | set(sorted(set(new) - keep)[:MAX_ITEMS - len(keep)])))


def canonical(kind: str, value: Any) -> Any:
    """A plain value as it reads back from a property of ``kind`` (what compare uses)."""
    if kind in ("title", "rich_text"):
        return _text(value)[:_MAX_TEXT]
    if kind == "number":
        return None if value in (None, "") else float(value)
    if kind == "select":
        items = value if isinstance(value, (list, tuple)) else [value] if value not in (None, "") else []
        return _option(items[0]) if items else None
    if kind in SET_TYPES:
        items = value if isinstance(value, (list, tuple)) else [value] if value not in (None, "") else []
        return tuple(sorted({_option(v) if kind == "multi_select" else str(v) for v in items if v}))
    if kind == "url":
        return _fit_url(_file_url(value)) if value else None
    if kind == "files":
        items = value if isinstance(value, (list, tuple)) else [value] if value else []
        return tuple(u for v in items if (u := _fit_url(_file_url(v))))
    if kind == "date":
        return str(value)[:10] if value else None
    if kind == "checkbox":
        return bool(value)
    return value


def read(prop: dict) -> Any:
    """A page's property value in canonical form."""
    kind = prop.get("type", "")
    raw = prop.get(kind)
    if kind in ("title", "rich_text"):
        return "".join(part.get("plain_text") or part.get("text", {}).get("content", "") for part in raw or [])
    if kind == "select":
        return raw["name"] if raw else None
    if kind == "multi_select":
        return tuple(sorted(o["name"] for o in raw or []))
    if kind == "relation":
        return tuple(sorted(r["id"] for r in raw or []))
    if kind == "files":
        return tuple((f.get("external") or f.get("file") or {}).get("url", "") for f in raw or [])
    if kind == "date":
        return (raw or {}).get("start", "")[:10] or None
    if kind == "number":
        return None if raw is None else float(raw)
    if kind == "checkbox":
        return bool(raw)
    return raw


def request(kind: str, value: Any) -> dict:
    """A canonical value as Notion's request shape for a property of ``kind``."""
    if kind in ("title", "rich_text"):
        return {kind: [{"type": "text", "text": {"content": value}}] if value else []}
    if kind == "select":
        return {"select": {"name": value} if value else None}
    if kind == "multi_select":
        return {"multi_select": [{"name": v} for v in value][:MAX_ITEMS]}
    if kind == "relation":
        return {"relation": [{"id": v} for v in value][:MAX_ITEMS]}
    if kind == "files":
        return {"files": [{"name": (u.rsplit("/", 1)[-1] or u)[:100], "type": "external", "external": {"url": u}}
                          for u in value][:MAX_ITEMS]}
    if kind == "date":
        return {"date": {"start": value} if value else None}
    return {kind: value}


def empty(value: Any) -> bool:
    return value in (None, "", (), [], False)


def decide(kind: str, desired: Any, current: Any, last: Any, *, always: bool = False,
           missing: object = None) -> Any:
    """What the property should hold after this sync, or ``missing`` when it stays as it is.

    ``last`` is what the pipeline wrote there before (``missing`` when it never did). A
    value that differs from it was typed by a person and is kept. Name sets merge instead:
    the names the pipeline put there and no longer has go, names new to the library join, and
    the rest is as the person left it (a name of ours they took away stays away).
    """
    if kind in SET_TYPES:
        ours = set(desired)
        before = set() if last is missing else set(last)
        # ours that left the library go, names new to the library come; the rest is the person's
        # (a name of ours they removed stays removed)
        result = tuple(sorted((set(current) - (before - ours)) | (ours - before)))
        return missing if result == tuple(current) else result
    if desired == current:
        return missing
    if always or (last is missing and empty(current)) or (last is not missing and current == last):
        return desired
    return missing  # a person's value
