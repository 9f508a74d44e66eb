"""NotionApi against the Notion fake, through the real notion-client over HTTP on 127.0.0.1
(nothing of ours is mocked): schema, pagination, writes, retries and the shared rate limit
(also across real processes), the errors a user sees, and that the token never leaks."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from notion_client.errors import NotionClientErrorBase

from music_pipeline.core.domain.errors import Reason, TrackError
from music_pipeline.core.sources.notion.api import (
    DataSource,
    NotionAccessError,
    NotionApi,
    NotionError,
    NotionPageNotFound,
    NotionUnavailable,
    NotionValidationError,
    client_log,
)
from music_pipeline.core.sources.ratelimit import SharedRateLimiter
from music_pipeline_tests.fakes.notion import FakeNotion

TOKEN = "ntn_s3cret_T0KEN_must_never_be_printed_4242"
SCHEMA = {"Name": "title", "Key": "rich_text", "BPM": "number", "Owned": "checkbox", "Genre": "select"}
SPAWN = multiprocessing.get_context("spawn")
#: Sleeps end a little late, never early, and a request takes a moment to reach the fake.
TOLERANCE = 0.06


class Sleeps(list):
    """A ``sleep`` that records what it was asked (and sleeps for real with ``real``)."""

    def __init__(self, real: bool = False) -> None:
        super().__init__()
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.real:
            time.sleep(seconds)


@pytest.fixture
def fake() -> Iterator[FakeNotion]:
    with FakeNotion(token=TOKEN) as f:
        yield f


@pytest.fixture
def db(fake: FakeNotion):
    return fake.create_database("Tracks", SCHEMA)


@pytest.fixture
def limiter(tmp_path: Path) -> SharedRateLimiter:
    return SharedRateLimiter(tmp_path / "notion.ratelimit", rate=500, burst=50)  # fast, for the functional tests


@pytest.fixture
def api(fake: FakeNotion, limiter: SharedRateLimiter) -> Iterator[NotionApi]:
    with NotionApi(TOKEN, base_url=fake.url, limiter=limiter, backoff_s=0.01) as a:
        yield a


def _props(name: str, key: str | None = None, **extra) -> dict:
    props = {"Name": {"title": [{"text": {"content": name}}]}}
    if key is not None:
        props["Key"] = {"rich_text": [{"text": {"content": key}}]}
    props.update(extra)
    return props


def _by_key(api: NotionApi, ds_id: str, key: str):
    return lambda: api.query_one(ds_id, filter={"property": "Key", "rich_text": {"equals": key}})


# --------------------------------------------------------------------------- the calls


def test_data_source_returns_the_schema(fake, db, api):
    ds = api.data_source(db.id, setting="TRACKS_DB_ID")
    assert isinstance(ds, DataSource)
    assert (ds.database_id, ds.id, ds.title) == (db.id, db.data_source_id, "Tracks")
    assert {n: p["type"] for n, p in ds.properties.items()} == SCHEMA
    assert ds.properties["Name"]["id"] == "title"
    assert api.requests == 2
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", f"/v1/databases/{db.id}"), ("GET", f"/v1/data_sources/{db.data_source_id}")]
    assert api.data_source(db.id.replace("-", "")).id == db.data_source_id  # the compact id of the URL


def test_query_paginates_with_filter_and_sorts(fake, db, limiter):
    for i in range(250):
        fake.seed_page(db.data_source_id, {"Name": f"Track {i:03d}", "BPM": i, "Owned": i % 2 == 0})
    seen = []
    with NotionApi(TOKEN, base_url=fake.url, limiter=limiter, on_request=lambda m, p: seen.append((m, p))) as api:
        pages = list(api.query(db.data_source_id))
        assert [FakeNotion.plain(p)["Name"] for p in pages] == [f"Track {i:03d}" for i in range(250)]
        assert api.requests == 3 and seen == [("POST", f"/v1/data_sources/{db.data_source_id}/query")] * 3
        assert [r.body.get("start_cursor") for r in fake.requests] == [None, pages[100]["id"], pages[200]["id"]]

        owned = list(api.query(db.data_source_id, filter={"property": "Owned", "checkbox": {"equals": True}},
                               sorts=[{"property": "BPM", "direction": "descending"}], page_size=50))
        assert [FakeNotion.plain(p)["BPM"] for p in owned] == list(range(248, -1, -2))
        assert api.requests == 3 + 3  # 125 pages, 50 a request

        lazy = api.query(db.data_source_id)  # nothing sent until it is consumed
        assert api.requests == 6
        assert FakeNotion.plain(next(lazy))["Name"] == "Track 000" and api.requests == 7
        one = api.query_one(db.data_source_id, filter={"property": "Name", "title": {"equals": "Track 042"}})
        assert one is not None and FakeNotion.plain(one)["BPM"] == 42 and api.requests == 8
        assert api.query_one(db.data_source_id, filter={"property": "BPM", "number": {"greater_than": 999}}) is None


def test_create_retrieve_update_and_trash_round_trip(fake, db, api):
    ds = api.data_source(db.id)
    page = api.create(ds.id, _props("Strobe", "k1", BPM={"number": 128}, Genre={"select": {"name": "House"}}))
    assert page["parent"]["data_source_id"] == db.data_source_id
    assert fake.writes()[-1].body["parent"] == {"type": "data_source_id", "data_source_id": db.data_source_id}
    assert FakeNotion.plain(api.retrieve(page["id"]))["Genre"] == "House"
    updated = api.update(page["id"], properties={"BPM": {"number": 129}})
    assert FakeNotion.plain(updated)["BPM"] == 129 and FakeNotion.plain(updated)["Name"] == "Strobe"
    assert api.update(page["id"], in_trash=True)["in_trash"] is True
    assert list(api.query(ds.id)) == []
    assert api.retrieve(page["id"])["in_trash"] is True
    restored = api.update(page["id"], in_trash=False, properties={"Owned": {"checkbox": True}})
    assert restored["in_trash"] is False and FakeNotion.plain(restored)["Owned"] is True
    assert [p["id"] for p in api.query(ds.id)] == [page["id"]]
    assert [r.body for r in fake.writes()[1:]] == [
        {"properties": {"BPM": {"number": 129}}}, {"in_trash": True},
        {"properties": {"Owned": {"checkbox": True}}, "in_trash": False}]


# --------------------------------------------------------------------------- 429 and the shared limiter


def test_429_storm_pauses_every_process_sharing_the_limiter(fake, db, tmp_path):
    path = tmp_path / "notion.ratelimit"
    page = fake.seed_page(db.data_source_id, {"Name": "Strobe"})
    a = NotionApi(TOKEN, base_url=fake.url, limiter=SharedRateLimiter(path))
    b = NotionApi(TOKEN, base_url=fake.url, limiter=SharedRateLimiter(path))  # another process's own object
    fake.rate_limit_next(5, retry_after=1)
    other: dict = {}

    def b_reads_while_a_is_told_to_wait() -> None:
        deadline = time.monotonic() + 10
        while not any(r.status == 429 for r in fake.requests) and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.1)  # a's response hook has taken the 429 to the shared schedule by now
        other["start"] = time.time()
        other["page"] = b.retrieve(page["id"])
        other["waited"] = time.time() - other["start"]

    thread = threading.Thread(target=b_reads_while_a_is_told_to_wait)
    thread.start()
    try:
        got = a.update(page["id"], properties={"BPM": {"number": 128}})
    finally:
        thread.join(30)
        a.close()
        b.close()
    assert FakeNotion.plain(got)["BPM"] == 128 and other["page"]["id"] == page["id"]
    log = sorted(fake.requests, key=lambda r: r.at)
    assert sorted(r.status for r in log) == [200, 200] + [429] * 5
    assert a.requests + b.requests == len(log) == 7
    # after every 429 nobody (a or b) sent anything before Retry-After had passed
    for before, after in zip(log, log[1:], strict=False):
        if before.status == 429:
            assert after.at - before.at >= 1 - TOLERANCE, (before, after)
    # b, which was never told, still waited out a's Retry-After
    b_first = next(r for r in log if r.method == "GET" and r.at >= other["start"])
    last_429 = max(r.at for r in log if r.status == 429 and r.at < b_first.at)
    assert b_first.at - last_429 >= 1 - TOLERANCE
    assert other["waited"] >= 0.8


def test_429_without_a_limiter_sleeps_retry_after_and_does_not_use_up_attempts(fake, db):
    page = fake.seed_page(db.data_source_id, {"Name": "Strobe"})
    sleeps = Sleeps()
    with NotionApi(TOKEN, base_url=fake.url, max_attempts=2, max_rate_limited=4, sleep=sleeps) as api:
        fake.rate_limit_next(3, retry_after=2)
        assert api.retrieve(page["id"])["id"] == page["id"]
        assert sleeps == [2, 2, 2] and api.requests == 4
        fake.rate_limit_next(5, retry_after=0)
        with pytest.raises(NotionUnavailable) as e:
            api.retrieve(page["id"])
    assert e.value.reason is Reason.RATE_LIMITED and e.value.reason.retryable
    assert str(e.value).startswith("Notion kept answering 429 rate_limited (5 times); the next sync tries again.")
    assert api.requests == 4 + 5


# --------------------------------------------------------------------------- 5xx, dedupe, outages


def test_5xx_on_patch_and_post_are_retried_with_backoff(fake, db, limiter):
    ds = db.data_source_id
    page = fake.seed_page(ds, {"Name": "Strobe"})
    sleeps = Sleeps(real=True)
    with NotionApi(TOKEN, base_url=fake.url, limiter=limiter, backoff_s=0.05, sleep=sleeps) as api:
        fake.fail_next(2, 503)
        assert FakeNotion.plain(api.update(page["id"], properties={"BPM": {"number": 1}}))["BPM"] == 1
        assert [r.status for r in fake.requests] == [503, 503, 200] and api.requests == 3
        assert 0.05 <= sleeps[0] <= 0.05 * 1.25 and 0.1 <= sleeps[1] <= 0.1 * 1.25  # exponential, jittered
        times = [r.at for r in fake.requests]
        assert times[1] - times[0] >= sleeps[0] and times[2] - times[1] >= sleeps[1]

        for status in (500, 502, 504):  # a plain 5xx applied nothing: the retry creates the one page
            fake.fail_next(1, status)
            api.create(ds, _props(f"After {status}", f"k{status}"))
        assert [r.status for r in fake.writes()[3:]] == [500, 200, 502, 200, 504, 200]
        assert sorted(FakeNotion.plain(p)["Key"] for p in fake.pages_in(ds)) == ["", "k500", "k502", "k504"]


def test_create_after_a_failure_that_created_the_page_makes_no_duplicate(fake, db, api):
    ds = db.data_source_id
    fake.fail_next(1, 503, after_apply=True)  # the page is created, the answer is a 503
    page = api.create(ds, _props("Strobe", "k1"), dedupe=_by_key(api, ds, "k1"))
    assert FakeNotion.plain(page)["Key"] == "k1"
    assert [p["id"] for p in fake.pages_in(ds)] == [page["id"]]
    assert [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in fake.requests] == [
        ("POST", "pages", 503), ("POST", "query", 200)]  # the look-up, no second create

    # without the look-up, the retry would have made a second page: what dedupe is for
    fake.fail_next(1, 503, after_apply=True)
    api.create(ds, _props("Ghosts", "k2"))
    assert [FakeNotion.plain(p)["Key"] for p in fake.pages_in(ds)] == ["k1", "k2", "k2"]

    # the look-up finds nothing (a plain 5xx applied nothing): the page is created once
    calls = []

    def dedupe():
        calls.append(1)
        return _by_key(api, ds, "k3")()

    fake.fail_next(1, 503)
    api.create(ds, _props("Spastik", "k3"), dedupe=dedupe)
    assert len(calls) == 1 and [FakeNotion.plain(p)["Key"] for p in fake.pages_in(ds)].count("k3") == 1
    # a 429 never creates anything: no look-up
    calls.clear()
    fake.rate_limit_next(1, retry_after=0)
    api.create(ds, _props("Raw", "k4"), dedupe=dedupe)
    assert calls == []


def test_gives_up_after_max_attempts_with_a_retryable_error(fake, db, limiter):
    page = fake.seed_page(db.data_source_id, {"Name": "Strobe"})
    sleeps = Sleeps()
    with NotionApi(TOKEN, base_url=fake.url, limiter=limiter, sleep=sleeps) as api:
        fake.fail_next(5, 503)
        with pytest.raises(NotionUnavailable) as e:
            api.update(page["id"], properties={"BPM": {"number": 1}})
        assert str(e.value) == ("Notion did not answer (503 service_unavailable) after 5 attempts; "
                                "the next sync tries again.")
        assert isinstance(e.value, TrackError) and e.value.reason.retryable and e.value.status == 503
        assert api.requests == 5 and len(sleeps) == 4
        assert all(2 ** n <= s <= 2 ** n * 1.25 for n, s in enumerate(sleeps))  # backoff_s * 2**n, jittered
        assert api.retrieve(page["id"])["id"] == page["id"]  # the outage is over


def test_connection_refused_is_retried_then_a_retryable_error(fake, db):
    fake.close()
    sleeps = Sleeps()
    calls = []
    with NotionApi(TOKEN, base_url=fake.url, max_attempts=3, backoff_s=0.01, sleep=sleeps) as api:
        with pytest.raises(NotionUnavailable) as e:
            api.retrieve("00000000-0000-4000-8000-000000000000")
        assert str(e.value).startswith(f"Notion did not answer (cannot connect to {fake.url}: ")
        assert "Connection refused" in str(e.value)
        assert str(e.value).endswith(") after 3 attempts; the next sync tries again.")
        assert e.value.reason.retryable and api.requests == 3 and len(sleeps) == 2
        with pytest.raises(NotionUnavailable):  # nothing was sent, so nothing to look up
            api.create(db.data_source_id, _props("x"), dedupe=lambda: calls.append(1))
        assert calls == []


# --------------------------------------------------------------------------- errors a user acts on


def test_401_says_to_copy_the_integration_secret(fake, db):
    with NotionApi("ntn_wrong_secret", base_url=fake.url) as api:
        with pytest.raises(NotionAccessError) as e:
            api.data_source(db.id, setting="TRACKS_DB_ID")
        assert api.requests == 1  # not retried
    assert e.value.misconfigured is True and (e.value.status, e.value.code) == (401, "unauthorized")
    assert str(e.value) == (
        "Notion rejected NOTION_TOKEN (401 unauthorized): the integration secret is wrong or was revoked. "
        "Copy the Internal Integration Secret from https://www.notion.so/profile/integrations into NOTION_TOKEN.")
    with pytest.raises(NotionAccessError, match="NOTION_TOKEN is empty"):
        NotionApi("  ", base_url=fake.url)


def test_404_says_to_share_the_database(fake, db, api):
    share = ("either the id is wrong or the database is not shared with your integration. Open the database "
             "in Notion, ••• menu → Connections → add your integration; check the id in the database's URL.")
    fake.set_access(db.id, "not_shared")
    with pytest.raises(NotionAccessError) as e:
        api.data_source(db.id, setting="TRACKS_DB_ID")
    assert str(e.value) == f"Notion cannot find the database {db.id} (TRACKS_DB_ID): {share}"
    assert e.value.misconfigured and (e.value.status, e.value.code) == (404, "object_not_found")
    nobody = "0123456789abcdef0123456789abcdef"
    with pytest.raises(NotionAccessError, match=f"cannot find the database {nobody} \\(TRACKS_DB_ID\\)"):
        api.data_source(nobody, setting="TRACKS_DB_ID")
    # later calls on the data source name the database and its setting too
    fake.set_access(db.id, None)
    ds = api.data_source(db.id, setting="TRACKS_DB_ID")
    page = api.create(ds.id, _props("Strobe"))
    fake.set_access(db.id, "not_shared")
    for call in (lambda: list(api.query(ds.id)), lambda: api.create(ds.id, _props("x"))):
        with pytest.raises(NotionAccessError) as e:
            call()
        assert str(e.value) == f"Notion cannot find the database {db.id} (TRACKS_DB_ID): {share}"
    # a page: deleted for good or its database disconnected; not necessarily the setup's fault
    with pytest.raises(NotionPageNotFound) as e:
        api.update(page["id"], properties={"BPM": {"number": 1}})
    assert e.value.misconfigured is False and isinstance(e.value, NotionAccessError)
    assert str(e.value).startswith(f"Notion cannot find the page {page['id']} (404 object_not_found): ")
    # an id that cannot be one is refused without a request
    before = api.requests
    for bad, needle in (("https://www.notion.so/x", "is not a Notion database id"), ("", "TRACKS_DB_ID is empty")):
        with pytest.raises(NotionAccessError, match=needle) as e:
            api.data_source(bad, setting="TRACKS_DB_ID")
        assert e.value.misconfigured
    assert api.requests == before


def test_403_names_the_missing_capability(fake, db, api):
    ds = api.data_source(db.id, setting="TRACKS_DB_ID")
    page = api.create(ds.id, _props("Strobe"))
    fake.set_access(db.id, "restricted")
    for call, capability in ((lambda: api.data_source(db.id, setting="TRACKS_DB_ID"), "Read content"),
                             (lambda: list(api.query(ds.id)), "Read content"),
                             (lambda: api.create(ds.id, _props("x")), "Insert content"),
                             (lambda: api.update(page["id"], properties={}), "Update content")):
        with pytest.raises(NotionAccessError) as e:
            call()
        msg = str(e.value)
        assert e.value.misconfigured and (e.value.status, e.value.code) == (403, "restricted_resource")
        assert f"lacks the “{capability}” capability" in msg, msg
        assert "https://www.notion.so/profile/integrations" in msg and "Capabilities" in msg


def test_400_validation_error_carries_notions_message(fake, db, api):
    before = api.requests
    with pytest.raises(NotionValidationError) as e:
        api.create(db.data_source_id, _props("x", BPM={"number": "fast"}))
    assert api.requests == before + 1  # not retried
    assert "body.properties.BPM.number should be a number" in e.value.notion_message
    assert str(e.value).startswith("Notion rejected the request to create a page in the database "
                                   "(400 validation_error): body failed validation: body.properties.BPM.number")
    assert not isinstance(e.value, NotionAccessError) and fake.pages_in(db.data_source_id) == []


def test_the_token_never_leaks(fake, db, limiter, capfd, caplog):
    notion_client_handlers = list(logging.getLogger("notion_client").handlers)
    wrong = "ntn_wrong_secret_XYZ_987654321"
    api = NotionApi(TOKEN, base_url=fake.url, limiter=limiter, max_attempts=2, backoff_s=0.01)
    bad = NotionApi(wrong, base_url=fake.url, limiter=limiter)
    # everything at DEBUG, notion-client's logger included (we configure it at WARNING)
    caplog.set_level(logging.DEBUG)
    for name in (client_log.name, "httpx", "httpcore", "notion_client"):
        caplog.set_level(logging.DEBUG, logger=name)
    ds = api.data_source(db.id, setting="TRACKS_DB_ID")
    page = api.create(ds.id, _props("Strobe"))
    errors: list[BaseException] = []

    def expect(call) -> None:
        with pytest.raises(TrackError) as e:
            call()
        errors.append(e.value)

    expect(lambda: bad.data_source(db.id, setting="TRACKS_DB_ID"))  # 401
    expect(lambda: api.create(ds.id, _props("x", BPM={"number": "fast"})))  # 400
    fake.fail_next(2, 503)
    expect(lambda: api.update(page["id"], properties={"BPM": {"number": 1}}))  # 503, gave up
    fake.rate_limit_next(1, retry_after=0)
    api.retrieve(page["id"])  # 429, then fine
    fake.set_access(db.id, "restricted")
    expect(lambda: api.update(page["id"], properties={}))  # 403
    fake.set_access(db.id, "not_shared")
    expect(lambda: api.data_source(db.id, setting="TRACKS_DB_ID"))  # 404
    expect(lambda: api.retrieve(page["id"]))  # 404 page
    fake.close()
    expect(lambda: api.retrieve(page["id"]))  # connection refused
    api.close()
    bad.close()

    assert len(errors) == 7 and caplog.text  # the logs were captured, and are not empty
    out, err = capfd.readouterr()
    texts = [out, err, caplog.text, repr(api), repr(bad), repr(ds)]
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error)), repr(vars(error))]
        chained = error
        while chained is not None:  # httpx's errors hold the request, Authorization header included
            assert not isinstance(chained, httpx.HTTPError | NotionClientErrorBase), repr(chained)
            chained = chained.__cause__ or chained.__context__
    for secret in (TOKEN, wrong, TOKEN[4:20], wrong[4:20]):
        assert not any(secret in text for text in texts), secret
    assert logging.getLogger("notion_client").handlers == notion_client_handlers  # no stderr handler added


# --------------------------------------------------------------------------- across processes


def _send_many(url: str, token: str, path: str, page_id: str, count: int, barrier, results) -> None:
    with NotionApi(token, base_url=url, limiter=SharedRateLimiter(Path(path))) as api:
        barrier.wait()
        for _ in range(count):
            api.retrieve(page_id)
        results.put((os.getpid(), api.requests))


def test_three_processes_together_stay_within_3_requests_per_second(fake, db, tmp_path):
    processes, count, rate, burst = 3, 15, 3.0, 3  # the limiter's defaults: Notion's average rate
    page = fake.seed_page(db.data_source_id, {"Name": "Strobe"})
    barrier, results = SPAWN.Barrier(processes), SPAWN.Queue()
    procs = [SPAWN.Process(target=_send_many, args=(fake.url, fake.token, str(tmp_path / "notion.ratelimit"),
                                                    page["id"], count, barrier, results))
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    got = [results.get(timeout=60) for _ in range(processes)]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert sorted(n for _pid, n in got) == [count] * processes
    log = sorted(fake.requests, key=lambda r: r.at)
    assert len(log) == processes * count and {r.status for r in log} == {200}
    times = [r.at for r in log]
    for i in range(len(times)):  # no window holds more than the burst beyond what the rate allows
        for k in range(burst, len(times) - i):
            assert times[i + k] - times[i] >= (k - burst + 1) / rate - TOLERANCE, (i, k)
    assert times[-1] - times[0] >= (len(times) - burst) / rate - TOLERANCE


# --------------------------------------------------------------------------- Notion's documented limits


def test_529_service_overload_is_handled_as_a_429_through_the_shared_pause(fake, db, tmp_path):
    path = tmp_path / "notion.ratelimit"
    page = fake.seed_page(db.data_source_id, {"Name": "Strobe"})
    sleeps = Sleeps()
    with NotionApi(TOKEN, base_url=fake.url, limiter=SharedRateLimiter(path), max_attempts=1, sleep=sleeps) as api:
        fake.rate_limit_next(2, retry_after=1, status=529)
        assert api.retrieve(page["id"])["id"] == page["id"]  # not a failure, not an attempt used up
    assert [r.status for r in fake.requests] == [529, 529, 200] and sleeps == []  # the limiter paused, not a sleep
    for before, after in zip(fake.requests, fake.requests[1:], strict=False):
        assert after.at - before.at >= 1 - TOLERANCE  # Retry-After honoured
    assert SharedRateLimiter(path)._read().blocked_until > 0  # in the schedule every process reads


def test_a_query_goes_on_past_notions_result_cap(fake, db, api):
    fake.query_cap = 4
    made = [fake.seed_page(db.data_source_id, {"Name": f"Song {n}", "BPM": n})["id"] for n in range(11)]
    assert [p["id"] for p in api.query(db.data_source_id, page_size=3)] == made
    odd = {"property": "BPM", "number": {"greater_than": 2}}
    assert [p["id"] for p in api.query(db.data_source_id, filter=odd)] == made[3:]
    fake.tick = fake.tick * 0  # more pages in one minute than one query returns: said, not cut short
    for n in range(5):
        fake.seed_page(db.data_source_id, {"Name": f"Same minute {n}"})
    with pytest.raises(NotionError, match="within one minute"):
        list(api.query(db.data_source_id))


def test_relations_past_25_references_are_read_whole(fake, api):
    other = fake.create_database("Artists", {"Name": "title"})
    tracks = fake.create_database("Tracks", {"Name": "title", "Artist": {"relation": {
        "data_source_id": other.data_source_id}}})
    ids = [fake.seed_page(other.data_source_id, {"Name": f"A{n}"})["id"] for n in range(130)]
    page = fake.seed_page(tracks.data_source_id, {"Name": "Many", "Artist": ids})
    got = api.retrieve(page["id"])["properties"]["Artist"]
    assert [r["id"] for r in got["relation"]] == ids and got["has_more"] is False
    queried = next(iter(api.query(tracks.data_source_id)))
    assert len(queried["properties"]["Artist"]["relation"]) == 25  # the page object as Notion gives it
    assert len(api.complete(queried)["properties"]["Artist"]["relation"]) == 130
