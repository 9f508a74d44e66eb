"""The Notion fake against the real notion-client (HTTP on 127.0.0.1; nothing mocked).

These pin the fake's behaviour to what notion-client 3.x sends and expects (API 2025-09-03), so
the coming Notion sink can be tested against it.
"""

from __future__ import annotations

from collections.abc import Iterator

import notion_client
import pytest
from notion_client import APIResponseError
from notion_client.helpers import collect_paginated_api

from music_pipeline_tests.fakes.notion import HUMAN_USER_ID, NOTION_VERSION, FakeNotion

SCHEMA = {
    "Name": "title",
    "Artist": "rich_text",
    "BPM": "number",
    "Genre": {"select": {"options": [{"name": "House"}, {"name": "Techno"}]}},
    "Tags": "multi_select",
    "Source": "url",
    "Owned": "checkbox",
    "Released": "date",
    "Artwork": "files",
    "Related": "relation",
}


@pytest.fixture
def fake() -> Iterator[FakeNotion]:
    with FakeNotion() as f:
        yield f


@pytest.fixture
def db(fake: FakeNotion):
    return fake.create_database("Library", SCHEMA)


@pytest.fixture
def client(fake: FakeNotion) -> Iterator[notion_client.Client]:
    c = notion_client.Client(auth=fake.token, base_url=fake.url)
    yield c
    c.close()


def _props(name: str, **extra) -> dict:
    props = {"Name": {"title": [{"text": {"content": name}}]}}
    props.update(extra)
    return props


def test_schema_read(fake, db, client):
    database = client.databases.retrieve(database_id=db.id)
    assert database["object"] == "database"
    assert database["data_sources"] == [{"id": db.data_source_id, "name": "Library"}]
    ds = client.data_sources.retrieve(data_source_id=database["data_sources"][0]["id"])
    assert ds["object"] == "data_source"
    assert ds["parent"] == {"type": "database_id", "database_id": db.id}
    props = ds["properties"]
    assert set(props) == set(SCHEMA)
    assert {n: p["type"] for n, p in props.items()} == {
        n: (t if isinstance(t, str) else next(iter(t))) for n, t in SCHEMA.items()}
    assert props["Name"]["id"] == "title"
    assert all(p["name"] == n and p["type"] in p for n, p in props.items())
    assert [o["name"] for o in props["Genre"]["select"]["options"]] == ["House", "Techno"]
    # compact ids work like dashed ones
    assert client.databases.retrieve(database_id=db.id.replace("-", ""))["id"] == db.id
    # the client sent the version header and the fake recorded it
    assert {r.notion_version for r in fake.requests} == {NOTION_VERSION}


def test_create_read_and_response_shapes(fake, db, client):
    page = client.pages.create(
        parent={"type": "data_source_id", "data_source_id": db.data_source_id},
        properties=_props(
            "Strobe",
            Artist={"rich_text": [{"text": {"content": "deadmau5"}}]},
            BPM={"number": 128},
            Genre={"select": {"name": "Progressive"}},
            Tags={"multi_select": [{"name": "prog"}, {"name": "long"}]},
            Source={"url": "https://youtu.be/abc"},
            Owned={"checkbox": True},
            Released={"date": {"start": "2009-09-22"}},
            Artwork={"files": [{"name": "cover.jpg", "external": {"url": "https://img/cover.jpg"}}]},
        ),
    )
    assert page["object"] == "page" and page["parent"]["data_source_id"] == db.data_source_id
    p = page["properties"]
    assert p["Name"]["title"][0]["plain_text"] == "Strobe"
    assert p["Artist"]["rich_text"][0]["text"] == {"content": "deadmau5", "link": None}
    assert p["Genre"]["select"]["name"] == "Progressive" and "id" in p["Genre"]["select"]
    assert [o["name"] for o in p["Tags"]["multi_select"]] == ["prog", "long"]
    assert p["Released"]["date"] == {"start": "2009-09-22", "end": None, "time_zone": None}
    assert p["Artwork"]["files"][0]["type"] == "external"
    assert p["Related"] == {"id": p["Related"]["id"], "type": "relation", "relation": [], "has_more": False}
    assert page["url"].startswith("https://www.notion.so/Strobe-")
    assert page["created_time"] == page["last_edited_time"] and page["created_time"].endswith(":00.000Z")
    # an unknown select name became an option, as in Notion
    ds = client.data_sources.retrieve(data_source_id=db.data_source_id)
    assert "Progressive" in [o["name"] for o in ds["properties"]["Genre"]["select"]["options"]]
    got = client.pages.retrieve(page_id=page["id"])
    assert FakeNotion.plain(got) == FakeNotion.plain(fake.page(page["id"])) == {
        "Name": "Strobe", "Artist": "deadmau5", "BPM": 128, "Genre": "Progressive", "Tags": ["prog", "long"],
        "Source": "https://youtu.be/abc", "Owned": True, "Released": "2009-09-22",
        "Artwork": ["https://img/cover.jpg"], "Related": []}
    # legacy parent {"database_id"} resolves to the database's single data source
    legacy = client.pages.create(parent={"database_id": db.id}, properties=_props("Ghosts"))
    assert legacy["parent"]["data_source_id"] == db.data_source_id
    assert len(fake.writes()) == 2


def test_query_filters(fake, db, client):
    ds = db.data_source_id
    fake.seed_page(ds, {"Name": "Strobe", "Artist": "deadmau5", "BPM": 128, "Genre": "House",
                        "Tags": ["prog"], "Source": "https://a", "Owned": True})
    fake.seed_page(ds, {"Name": "Spastik", "Artist": "Plastikman", "BPM": 130, "Genre": "Techno",
                        "Tags": ["minimal", "acid"], "Source": "https://b", "Owned": False})
    fake.seed_page(ds, {"Name": "Ghosts n Stuff", "Artist": "deadmau5", "BPM": 128, "Genre": "House"})

    def names(flt=None, **kw):
        resp = client.data_sources.query(data_source_id=ds, **({"filter": flt} if flt else {}), **kw)
        return [FakeNotion.plain(p)["Name"] for p in resp["results"]]

    assert names() == ["Strobe", "Spastik", "Ghosts n Stuff"]
    assert names({"property": "Name", "title": {"equals": "Strobe"}}) == ["Strobe"]
    assert names({"property": "Artist", "rich_text": {"contains": "MAU"}}) == ["Strobe", "Ghosts n Stuff"]
    assert names({"property": "Source", "url": {"equals": "https://b"}}) == ["Spastik"]
    assert names({"property": "BPM", "number": {"equals": 128}}) == ["Strobe", "Ghosts n Stuff"]
    assert names({"property": "Owned", "checkbox": {"equals": True}}) == ["Strobe"]
    assert names({"property": "Genre", "select": {"equals": "Techno"}}) == ["Spastik"]
    assert names({"property": "Tags", "multi_select": {"contains": "acid"}}) == ["Spastik"]
    assert names({"and": [{"property": "Artist", "rich_text": {"equals": "deadmau5"}},
                          {"property": "Name", "title": {"contains": "ghost"}}]}) == ["Ghosts n Stuff"]
    assert names({"or": [{"property": "Genre", "select": {"equals": "Techno"}},
                         {"property": "Owned", "checkbox": {"equals": True}}]}) == ["Strobe", "Spastik"]
    assert names(sorts=[{"property": "BPM", "direction": "descending"},
                        {"property": "Name", "direction": "ascending"}]) == ["Spastik", "Ghosts n Stuff", "Strobe"]
    # a filter naming an unknown property, or the wrong type for it, is a validation error
    for bad in ({"property": "Nope", "rich_text": {"equals": "x"}},
                {"property": "BPM", "rich_text": {"equals": "128"}}):
        with pytest.raises(APIResponseError) as e:
            names(bad)
        assert e.value.code == "validation_error" and e.value.status == 400


def test_pagination_over_250_pages(fake, db, client):
    for i in range(250):
        fake.seed_page(db.data_source_id, {"Name": f"Track {i:03d}", "Owned": i % 2 == 0})
    sizes, cursor = [], None
    while True:
        resp = client.data_sources.query(data_source_id=db.data_source_id, start_cursor=cursor)
        sizes.append(len(resp["results"]))
        if not resp["has_more"]:
            assert resp["next_cursor"] is None
            break
        cursor = resp["next_cursor"]
    assert sizes == [100, 100, 50]
    every = collect_paginated_api(client.data_sources.query, data_source_id=db.data_source_id)
    assert [FakeNotion.plain(p)["Name"] for p in every] == [f"Track {i:03d}" for i in range(250)]
    owned = collect_paginated_api(client.data_sources.query, data_source_id=db.data_source_id,
                                  filter={"property": "Owned", "checkbox": {"equals": True}}, page_size=40)
    assert len(owned) == 125
    with pytest.raises(APIResponseError) as e:
        client.data_sources.query(data_source_id=db.data_source_id, page_size=101)
    assert e.value.code == "validation_error"


def test_update_and_hand_edit(fake, db, client):
    page = client.pages.create(parent={"data_source_id": db.data_source_id}, properties=_props("Strobe"))
    updated = client.pages.update(page_id=page["id"], properties={
        "BPM": {"number": 128}, "Genre": {"select": {"name": "House"}}, "Owned": {"checkbox": True}})
    assert FakeNotion.plain(updated)["BPM"] == 128 and FakeNotion.plain(updated)["Name"] == "Strobe"
    assert updated["last_edited_time"] > page["last_edited_time"]
    cleared = client.pages.update(page_id=page["id"], properties={"Genre": {"select": None}})
    assert cleared["properties"]["Genre"]["select"] is None
    before = fake.page(page["id"])
    edited = fake.edit_by_hand(page["id"], {"Artist": "deadmau5"})
    assert edited["last_edited_time"] > before["last_edited_time"]
    assert edited["last_edited_by"]["id"] == HUMAN_USER_ID
    seen = client.pages.retrieve(page_id=page["id"])
    assert FakeNotion.plain(seen)["Artist"] == "deadmau5" and seen["last_edited_by"]["id"] == HUMAN_USER_ID
    assert [r.method for r in fake.writes()] == ["POST", "PATCH", "PATCH"]


def test_trashed_pages_leave_queries(fake, db, client):
    keep = fake.seed_page(db.data_source_id, {"Name": "Keep"})
    gone = fake.seed_page(db.data_source_id, {"Name": "Gone"})
    archived = client.pages.update(page_id=gone["id"], archived=True)
    assert archived["archived"] is True and archived["in_trash"] is True
    ids = [p["id"] for p in client.data_sources.query(data_source_id=db.data_source_id)["results"]]
    assert ids == [keep["id"]]
    assert client.pages.retrieve(page_id=gone["id"])["in_trash"] is True  # still retrievable
    with pytest.raises(APIResponseError) as e:  # a trashed page cannot be edited
        client.pages.update(page_id=gone["id"], properties={"BPM": {"number": 1}})
    assert e.value.code == "validation_error"
    client.pages.update(page_id=gone["id"], in_trash=False)
    assert len(client.data_sources.query(data_source_id=db.data_source_id)["results"]) == 2


@pytest.mark.parametrize(("props", "needle"), [
    ({"Nope": {"rich_text": []}}, "Nope is not a property that exists"),
    ({"BPM": {"number": "128"}}, "body.properties.BPM.number"),
    ({"BPM": {"rich_text": [{"text": {"content": "x"}}]}}, "BPM"),
    ({"Owned": {"checkbox": "yes"}}, "body.properties.Owned.checkbox"),
    ({"Tags": {"multi_select": "prog"}}, "body.properties.Tags.multi_select"),
    ({"Artist": {"rich_text": [{"text": {"content": "x" * 2001}}]}}, "2000"),
    ({"Released": {"date": {"start": "yesterday"}}}, "Released"),
])
def test_validation_errors(fake, db, client, props, needle):
    with pytest.raises(APIResponseError) as e:
        client.pages.create(parent={"data_source_id": db.data_source_id}, properties=_props("X", **props))
    assert e.value.code == "validation_error" and e.value.status == 400
    assert needle in str(e.value)
    assert fake.pages_in(db.data_source_id) == []
    # a rejected request leaves the schema alone (no select option added on the way)
    with pytest.raises(APIResponseError):
        client.pages.create(parent={"data_source_id": db.data_source_id},
                            properties=_props("X", Genre={"select": {"name": "Dub"}}, **props))
    options = fake.data_sources[db.data_source_id].properties["Genre"]["select"]["options"]
    assert [o["name"] for o in options] == ["House", "Techno"]


def test_auth_and_access_errors(fake, db, client):
    for auth in ("wrong-token", None):
        bad = notion_client.Client(base_url=fake.url, **({"auth": auth} if auth else {}))
        with pytest.raises(APIResponseError) as e:
            bad.databases.retrieve(database_id=db.id)
        assert (e.value.code, e.value.status) == ("unauthorized", 401)
    fake.set_access(db.id, "not_shared")
    for call in (lambda: client.databases.retrieve(database_id=db.id),
                 lambda: client.data_sources.query(data_source_id=db.data_source_id),
                 lambda: client.pages.create(parent={"data_source_id": db.data_source_id},
                                             properties=_props("x"))):
        with pytest.raises(APIResponseError) as e:
            call()
        assert (e.value.code, e.value.status) == ("object_not_found", 404)
    fake.set_access(db.id, "restricted")
    with pytest.raises(APIResponseError) as e:
        client.data_sources.retrieve(data_source_id=db.data_source_id)
    assert (e.value.code, e.value.status) == ("restricted_resource", 403)
    fake.set_access(db.id, None)
    assert client.databases.retrieve(database_id=db.id)["id"] == db.id
    with pytest.raises(APIResponseError) as e:  # an id nobody has
        client.pages.retrieve(page_id="00000000-0000-4000-8000-000000000000")
    assert e.value.code == "object_not_found"


def test_429_burst_is_retried_by_notion_client(fake, db, client):
    fake.rate_limit_next(2, retry_after=0)  # notion-client retries twice by default
    page = client.pages.create(parent={"data_source_id": db.data_source_id}, properties=_props("Strobe"))
    assert FakeNotion.plain(fake.page(page["id"]))["Name"] == "Strobe"
    assert [(r.method, r.path, r.status) for r in fake.requests] == [("POST", "/v1/pages", 429)] * 2 + [
        ("POST", "/v1/pages", 200)]
    assert len(fake.pages_in(db.data_source_id)) == 1  # the 429s wrote nothing
    fake.rate_limit_next(3, retry_after=0)  # one more than the client retries: it gives up
    with pytest.raises(APIResponseError) as e:
        client.databases.retrieve(database_id=db.id)
    assert e.value.code == "rate_limited" and e.value.headers["retry-after"] == "0"


def test_rate_limiter_mode(fake, db):
    fake.limit_rate(5)
    c = fake.client(retry=False)
    statuses = []
    for _ in range(8):
        try:
            c.databases.retrieve(database_id=db.id)
            statuses.append(200)
        except APIResponseError as e:
            assert e.code == "rate_limited" and e.headers["retry-after"] == "1"
            statuses.append(429)
    assert statuses == [200] * 5 + [429] * 3
    assert [r.status for r in fake.requests] == statuses
    assert all(r.at > 0 for r in fake.requests)
    fake.limit_rate(None)
    c.databases.retrieve(database_id=db.id)


def test_timestamp_date_and_relation_filters(fake, db, client):
    ds = db.data_source_id
    old = fake.seed_page(ds, {"Name": "Old", "Released": "2009-09-22"})
    new = fake.seed_page(ds, {"Name": "New", "Released": "2024-01-05", "Related": [old["id"]]})
    fake.edit_by_hand(old["id"], {"Artist": "someone"})  # now the most recently edited

    def names(flt, **kw):
        return [FakeNotion.plain(p)["Name"]
                for p in client.data_sources.query(data_source_id=ds, filter=flt, **kw)["results"]]

    since = fake.page(new["id"])["last_edited_time"]
    assert names({"timestamp": "last_edited_time", "last_edited_time": {"after": since}}) == ["Old"]
    assert names({"property": "Released", "date": {"on_or_after": "2020-01-01"}}) == ["New"]
    assert names({"property": "Related", "relation": {"contains": old["id"]}}) == ["New"]
    assert names({"property": "Related", "relation": {"is_empty": True}}) == ["Old"]
    assert names({"or": [{"property": "Name", "title": {"is_not_empty": True}}]},
                 sorts=[{"timestamp": "last_edited_time", "direction": "descending"}]) == ["Old", "New"]


def test_error_bodies_and_request_log(fake, db, client):
    import json

    bad = notion_client.Client(auth="nope", base_url=fake.url)
    with pytest.raises(APIResponseError) as e:
        bad.databases.retrieve(database_id=db.id)
    body = json.loads(e.value.body)
    assert {k: body[k] for k in ("object", "status", "code")} == {
        "object": "error", "status": 401, "code": "unauthorized"}
    assert body["message"] and e.value.request_id == body["request_id"]
    client.pages.create(parent={"data_source_id": db.data_source_id}, properties=_props("Logged"))
    write = fake.writes()[-1]
    assert write.body["properties"]["Name"]["title"][0]["text"]["content"] == "Logged"
    assert write.body["parent"] == {"data_source_id": db.data_source_id}
    assert write.status == 200 and write.at >= fake.requests[0].at
    assert "nope" not in repr(fake.requests)  # tokens are not recorded


def test_failure_after_the_write_was_applied(fake, db):
    c = fake.client(retry=False)
    fake.fail_next(1, 503, after_apply=True)
    with pytest.raises(APIResponseError) as e:
        c.pages.create(parent={"data_source_id": db.data_source_id}, properties=_props("Strobe"))
    assert (e.value.status, e.value.code) == (503, "service_unavailable")
    [page] = fake.pages_in(db.data_source_id)  # created although the answer was an error
    assert FakeNotion.plain(page)["Name"] == "Strobe"
    fake.fail_next(1, 504, after_apply=True)
    with pytest.raises(APIResponseError) as e:
        c.pages.update(page_id=page["id"], properties={"BPM": {"number": 128}})
    assert (e.value.status, e.value.code) == (504, "gateway_timeout")
    assert FakeNotion.plain(fake.page(page["id"]))["BPM"] == 128
    # a request that is invalid fails as invalid and applies nothing; the failure is used up
    fake.fail_next(1, 503, after_apply=True)
    with pytest.raises(APIResponseError) as e:
        c.pages.create(parent={"data_source_id": db.data_source_id}, properties=_props("X", BPM={"number": "1"}))
    assert e.value.code == "validation_error"
    # a plain failure still applies nothing
    fake.fail_next(1, 503)
    with pytest.raises(APIResponseError):
        c.pages.create(parent={"data_source_id": db.data_source_id}, properties=_props("Ghosts"))
    assert len(fake.pages_in(db.data_source_id)) == 1
    assert [r.status for r in fake.requests] == [503, 504, 400, 503]


# -- Notion's documented limits (API reference 2025-09-03) -------------------------------------


def test_a_query_stops_at_the_cap_and_says_it_is_incomplete(fake, db, client):
    fake.query_cap = 5
    for n in range(8):
        fake.seed_page(db.data_source_id, {"Name": f"Song {n}"})
    first = client.data_sources.query(data_source_id=db.data_source_id, page_size=3)
    assert first["has_more"] is True and "request_status" not in first
    last = client.data_sources.query(data_source_id=db.data_source_id, page_size=3, start_cursor=first["next_cursor"])
    assert len(last["results"]) == 2 and last["has_more"] is False and last["next_cursor"] is None
    assert last["request_status"] == {"type": "incomplete"}  # 3 more exist, not reachable by paging
    narrow = client.data_sources.query(data_source_id=db.data_source_id,
                                       filter={"property": "Name", "title": {"equals": "Song 7"}})
    assert len(narrow["results"]) == 1 and "request_status" not in narrow  # a narrower query is complete


def test_a_page_object_carries_25_references_and_the_property_endpoint_all(fake, db, client):
    others = [fake.seed_page(db.data_source_id, {"Name": f"Other {n}"})["id"] for n in range(120)]
    page = client.pages.create(parent={"data_source_id": db.data_source_id},
                               properties=_props("Many", Related={"relation": [{"id": i} for i in others[:100]]}))
    assert len(page["properties"]["Related"]["relation"]) == 25 and page["properties"]["Related"]["has_more"] is True
    assert len(FakeNotion.plain(fake.page(page["id"]))["Related"]) == 100  # stored whole
    with pytest.raises(APIResponseError) as e:  # at most 100 related pages in one request
        client.pages.update(page_id=page["id"], properties={"Related": {"relation": [{"id": i} for i in others]}})
    assert e.value.status == 400 and "100" in str(e.value)
    fake.edit_by_hand(page["id"], {"Related": others})  # the app has no such limit
    retrieved = client.pages.retrieve(page_id=page["id"])["properties"]["Related"]
    assert len(retrieved["relation"]) == 25 and retrieved["has_more"] is True
    listed = client.pages.properties.retrieve(page_id=page["id"], property_id=retrieved["id"])
    assert listed["object"] == "list" and listed["type"] == "property_item" and listed["has_more"] is True
    assert len(listed["results"]) == 100 and listed["results"][0]["relation"] == {"id": others[0]}
    rest = client.pages.properties.retrieve(page_id=page["id"], property_id=retrieved["id"],
                                            start_cursor=listed["next_cursor"])
    assert [r["relation"]["id"] for r in listed["results"] + rest["results"]] == others and not rest["has_more"]
    few = fake.seed_page(db.data_source_id, {"Name": "Few", "Related": others[:3]})
    shown = client.pages.retrieve(page_id=few["id"])["properties"]["Related"]
    assert len(shown["relation"]) == 3 and shown["has_more"] is False
    bpm = client.pages.properties.retrieve(page_id=few["id"], property_id=fake.page(few["id"])["properties"]["BPM"]["id"])
    assert bpm == {"object": "property_item", "id": bpm["id"], "type": "number", "number": None,
                   "request_id": bpm["request_id"]}


def test_529_service_overload_carries_retry_after(fake, db, client):
    fake.rate_limit_next(1, retry_after=2, status=529)
    with pytest.raises(notion_client.errors.HTTPResponseError) as e:
        client.databases.retrieve(database_id=db.id)
    assert e.value.status == 529 and e.value.headers["retry-after"] == "2"
    assert client.databases.retrieve(database_id=db.id)["id"] == db.id  # once only


def test_urls_longer_than_2000_characters_are_refused(fake, db, client):
    long = "https://example.com/a?" + "x" * 2000
    for value in ({"Source": {"url": long}},
                  {"Artwork": {"files": [{"name": "a", "external": {"url": long}}]}}):
        with pytest.raises(APIResponseError) as e:
            client.pages.create(parent={"data_source_id": db.data_source_id}, properties=_props("X", **value))
        assert e.value.code == "validation_error" and "2000" in str(e.value)
    assert fake.pages_in(db.data_source_id) == []


def test_trashing_a_page_already_in_the_trash_is_refused(fake, db, client):
    page = fake.seed_page(db.data_source_id, {"Name": "Gone"})
    fake.edit_by_hand(page["id"], in_trash=True)
    with pytest.raises(APIResponseError) as e:
        client.pages.update(page_id=page["id"], in_trash=True)
    assert (e.value.status, e.value.code) == (400, "validation_error") and "archived" in str(e.value)
    assert client.pages.update(page_id=page["id"], in_trash=False)["in_trash"] is False
