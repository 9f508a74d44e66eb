"""The product as a newcomer runs it: `music-pipeline up` (webserver, daemon, code server) on
a temporary home, tracks sent by every path, and what the UI's GraphQL API then shows.

Every path ends in runs of the same per-track job: a good track is materialised with its
check results, a bad one is a FAILED partition with the user's message, a request for
several tracks is one bulk run whose track runs carry its tag, and killed processes leave
no run STARTED and no track stuck."""

import functools
import hashlib
import hmac
import http.server
import json
import os
import signal
import threading
from pathlib import Path

import pytest
import requests

from music_pipeline.core.domain.identity import source_for
from music_pipeline.core.library.catalog import Catalog

from .audio import make_track
from .conftest import QuietHandler, SlowHandler
from .daemon import SCREENSHOTS, Dagster, browser_page, dagster_up, drop, wait
from .fakes.notion import FakeNotion

TRACK_ASSETS = ["raw_audio", "fingerprint", "audio_features", "m4a_alac", "aiff", "wav", "catalog"]
SOURCES = {"inbox", "spotify_likes", "spotify_playlists", "spotify_now_playing", "soundcloud_likes",
           "soundcloud_sets", "notion_queue"}
RUNS = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results {
    runId status jobName runConfigYaml tags { key value } } } } }"""
EVENTS = """query($run: ID!) { logsForRun(runId: $run, limit: 2000) { ... on EventConnection { events {
    __typename
    ... on MessageEvent { message }
    ... on ExecutionStepFailureEvent { stepKey error { message } }
    ... on AssetCheckEvaluationEvent { evaluation { checkName success assetKey { path } partition } }
    ... on EngineEvent { message metadataEntries { label ... on TextMetadataEntry { text } } } } } } }"""
PARTITIONS = """query($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) { assetKey { path }
    assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } }"""


pytestmark = pytest.mark.slow  # the module starts the whole product
SHARE_TOKEN = "Share-Token-For-The-Phone-5f3a9c"


@pytest.fixture
def www(tmp_path: Path):
    """A folder served at full speed and at about 40 KB/s (``slow.throttled = False`` lifts it)."""
    root = tmp_path / "www"
    root.mkdir()
    servers = {}
    for name, handler in (("fast", QuietHandler), ("slow", SlowHandler)):
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers[name] = httpd
    yield root, {name: f"http://127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}, servers["slow"]
    for httpd in servers.values():
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def notion():
    """The Notion workspace of the module's product: a tracks database, where a person queues
    pages and every processed track is mirrored."""
    with FakeNotion() as fake:
        db = fake.create_database("Tracks", {"Name": "title", "Track ID": "rich_text", "URL": "url", "BPM": "number",
                                             "Key": "select", "Camelot": "select", "Status": "select",
                                             "Error": "rich_text", "ALAC File": "rich_text", "Artist": "multi_select"})
        yield fake, db


@pytest.fixture(scope="module")
def dagster(tmp_path_factory: pytest.TempPathFactory, notion):
    """One product for the module (its Notion sink on): each test sends tracks of its own and
    looks only at their runs."""
    fake, db = notion
    env = {"NOTION_TOKEN": fake.token, "TRACKS_DB_ID": db.id, "NOTION_API_BASE_URL": fake.url,
           # the share endpoint on; the tests' web servers are on this machine, trusted by name
           "MUSIC_SHARE_TOKEN": SHARE_TOKEN, "MUSIC_SHARE_ALLOW_HOSTS": "127.0.0.1"}
    with dagster_up(tmp_path_factory.mktemp("product"), extra_env=env) as running:
        yield running


def runs(dagster: Dagster, **tags: str) -> list[dict]:
    found = dagster.graphql(RUNS, {"tags": [{"key": k, "value": v} for k, v in tags.items()]})
    return found["runsOrError"]["results"]


def tag(run: dict, name: str) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == name), None)


def events(dagster: Dagster, run_id: str) -> list[dict]:
    return dagster.graphql(EVENTS, {"run": run_id})["logsForRun"]["events"]


def partitions(dagster: Dagster) -> dict[str, dict[str, set[str]]]:
    nodes = dagster.graphql(PARTITIONS, {"keys": [{"path": [name]} for name in TRACK_ASSETS]})["assetNodes"]
    return {n["assetKey"]["path"][-1]: {"materialized": set(n["assetPartitionStatuses"]["materializedPartitions"]),
                                        "failed": set(n["assetPartitionStatuses"]["failedPartitions"])}
            for n in nodes}


def about(found: list[dict], keys: list[str]) -> list[dict]:
    """The runs in ``found`` for any of the tracks ``keys`` (a track run by its partition, a bulk
    run by its config): what one test sent, on the product its module shares."""
    return [r for r in found if tag(r, "dagster/partition") in keys
            or (r["jobName"] == "process_tracks" and any(k in r["runConfigYaml"] for k in keys))]


def finished(dagster: Dagster, job: str, keys: list[str]) -> list[dict] | None:
    found = [r for r in about(runs(dagster), keys) if r["jobName"] == job]
    return found if found and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in found) else None


def assert_track_truth(dagster: Dagster, good: list[str], bad: dict[str, str]) -> None:
    """Good tracks materialised on every per-track asset with passing checks in their run; bad
    ones FAILED on raw_audio with the user's message, and nothing of theirs materialised."""
    status = partitions(dagster)
    for key in good:
        assert all(key in status[name]["materialized"] for name in TRACK_ASSETS), key
        (run,) = [r for r in runs(dagster, **{"dagster/partition": key}) if r["jobName"] == "process_track"]
        checks = {(e["evaluation"]["assetKey"]["path"][-1], e["evaluation"]["checkName"]): e["evaluation"]
                  for e in events(dagster, run["runId"]) if e["__typename"] == "AssetCheckEvaluationEvent"}
        assert set(checks) == {("raw_audio", "decodes"), ("m4a_alac", "valid"), ("aiff", "valid"), ("wav", "valid")}
        assert all(c["success"] and c["partition"] == key for c in checks.values())
    for key, phrase in bad.items():
        assert key in status["raw_audio"]["failed"], (key, status["raw_audio"])
        assert not any(key in status[name]["materialized"] for name in TRACK_ASSETS)
        (run,) = [r for r in runs(dagster, **{"dagster/partition": key}) if r["jobName"] == "process_track"]
        assert run["status"] == "FAILURE"
        failures = [e for e in events(dagster, run["runId"]) if e["__typename"] == "ExecutionStepFailureEvent"]
        assert failures and failures[0]["stepKey"] == "raw_audio" and phrase in failures[0]["error"]["message"]
        assert "Traceback" not in failures[0]["error"]["message"]


def test_every_path_shows_the_same_truth_in_the_ui(dagster: Dagster, www, tmp_path: Path) -> None:
    root, hosts, _ = www
    nodes = dagster.graphql("{ assetNodes { assetKey { path } dependencyKeys { path } } }")["assetNodes"]
    raw = next(n for n in nodes if n["assetKey"]["path"] == ["raw_audio"])
    assert {k["path"][-1] for k in raw["dependencyKeys"]} == SOURCES  # the lineage starts at the sources
    sensors = dagster.graphql("""{ sensorsOrError(repositorySelector: {repositoryName: "__repository__",
        repositoryLocationName: "music_pipeline"}) { ... on Sensors { results { name sensorState { status } } } } }""")
    states = {s["name"]: s["sensorState"]["status"] for s in sensors["sensorsOrError"]["results"]}
    assert states["inbox_sensor"] == "RUNNING" and states["library_automation_sensor"] == "RUNNING"

    # three tracks dropped in the inbox, one not audio
    files = [make_track(tmp_path / f"Inbox Band - Drop {n}.flac", seconds=4, bpm=96 + 9 * n, seed=n,
                        codec_args=["-c:a", "flac"]) for n in range(2)]
    broken = tmp_path / "Inbox Band - Broken.mp3"
    broken.write_text("this is not audio")
    drop(dagster.library / "inbox", *files, broken)
    inbox_keys = [source_for(str(p)).key for p in (*files, broken)]

    # three URLs through `sync`, one a 404
    for n in range(2):
        make_track(root / f"Sync Band - Song {n}.flac", seconds=4, bpm=120 + 7 * n, seed=10 + n,
                   codec_args=["-c:a", "flac"])
    urls = [f"{hosts['fast']}/Sync Band - Song {n}.flac".replace(" ", "%20") for n in range(2)]
    urls.append(f"{hosts['fast']}/gone.flac")
    synced = dagster.cli("sync", *urls)
    assert synced.returncode == 1, synced.stdout + synced.stderr  # one failed, and says so
    assert "HTTP 404" in synced.stdout and "2 of 3 processed" in synced.stdout
    sync_keys = [source_for(u).key for u in urls]

    keys = inbox_keys + sync_keys
    wait(lambda: finished(dagster, "process_tracks", keys) and len(finished(dagster, "process_track", keys)) == 6,
         240, "the inbox's bulk run and its track runs")
    assert_track_truth(dagster, good=inbox_keys[:2] + sync_keys[:2],
                       bad={inbox_keys[2]: "not an audio file", sync_keys[2]: "HTTP 404 (not found)"})

    # each multi-track request is one unit of bulk work, its track runs linked by its tag
    bulks = [r for r in about(runs(dagster), keys) if r["jobName"] == "process_tracks"]
    assert {tag(r, "music_pipeline/origin") for r in bulks} == {"inbox", "cli sync"}
    for bulk in bulks:
        assert bulk["status"] == "FAILURE"  # one of its tracks failed: the bulk run says so
        members = {tag(r, "dagster/partition"): r["status"] for r in runs(dagster, **{"music_pipeline/bulk":
                                                                                       bulk["runId"]})}
        expected = inbox_keys if tag(bulk, "music_pipeline/origin") == "inbox" else sync_keys
        assert members == {k: "SUCCESS" for k in expected[:2]} | {expected[2]: "FAILURE"}
    catalog = Catalog(dagster.library / "catalog.sqlite")
    assert [catalog.tracks.get(k).status for k in inbox_keys + sync_keys] == ["done", "done", "failed"] * 2

    # `add` of a signed link with a password: processed, and its secrets in no run tag, config or log
    make_track(root / "Signed - Link.flac", seconds=3, seed=30, codec_args=["-c:a", "flac"])
    host = hosts["fast"].split("//", 1)[1]
    secret_url = f"http://dj:PassWord@{host}/Signed%20-%20Link.flac?token=SeCrEt-TOKEN&X-Amz-Signature=sig-4f2a9c"
    added = dagster.cli("add", secret_url, "--webserver", dagster.url)
    assert added.returncode == 0 and "SeCrEt" not in added.stdout + added.stderr, added.stdout + added.stderr
    signed_key = source_for(secret_url).key
    wait(lambda: [r for r in runs(dagster, **{"dagster/partition": signed_key}) if r["status"] == "SUCCESS"], 120,
         "the signed link's track run")
    for run in runs(dagster):
        shown = repr(run) + repr(events(dagster, run["runId"]))
        assert all(secret not in shown for secret in ("PassWord", "SeCrEt-TOKEN", "sig-4f2a9c")), run["jobName"]

    # the same in a real browser (screenshots kept in music_pipeline_tests/artifacts/ui/)
    with browser_page(dagster.url) as page:
        page.goto("/assets/raw_audio?view=lineage")
        for name in ("raw_audio", "fingerprint", *(SOURCES - {"spotify_now_playing"})):  # that one's label is cut
            page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=SCREENSHOTS / "lineage.png")
        page.goto(f"/assets/raw_audio?view=partitions&partition={inbox_keys[2]}")
        page.get_by_text("failed, and did not materialize this asset").wait_for(timeout=30_000)
        page.screenshot(path=SCREENSHOTS / "failed-partition.png")
        page.get_by_role("button", name="View logs").click()
        page.get_by_text("is not an audio file").first.wait_for(timeout=30_000)  # the user's message
        page.screenshot(path=SCREENSHOTS / "failed-run.png")
        page.goto(f"/assets/aiff?view=partitions&partition={inbox_keys[0]}")
        page.get_by_role("tab", name="Checks").click()
        page.get_by_text("Passed").first.wait_for(timeout=30_000)
        page.screenshot(path=SCREENSHOTS / "check-passed.png")


def test_a_page_queued_in_notion_is_processed_end_to_end_and_follows_its_track(dagster: Dagster, notion, www) -> None:
    """A person adds a page with a link to the tracks database; the daemon's notion_queue
    sensor takes it, a bulk run processes the track, and the page ends up "Done" with the
    track's data, one page, no copy; a link that 404s shows "Failed" with the reason."""
    fake, db = notion
    root, hosts, _ = www
    make_track(root / "Queued Song.flac", seconds=4, bpm=126, seed=40, codec_args=["-c:a", "flac"],
               metadata={"title": "Queued Song", "artist": "Notion Band"})
    links = [f"{hosts['fast']}/Queued%20Song.flac", f"{hosts['fast']}/gone.flac"]
    good = fake.seed_page(db.data_source_id, {"Name": "queued by hand", "URL": links[0]})
    gone = fake.seed_page(db.data_source_id, {"Name": "dead link", "URL": links[1]})

    def settled() -> bool:
        statuses = [FakeNotion.plain(fake.page(p["id"]))["Status"] for p in (good, gone)]
        return statuses == ["Done", "Failed"]

    wait(settled, 300, "the queued pages to show Done and Failed", interval=2)
    page = FakeNotion.plain(fake.page(good["id"]))
    key = page["Track ID"]
    catalog = Catalog(dagster.library / "catalog.sqlite")
    row = catalog.tracks.get(key)
    assert row.status == "done"
    assert page["Key"] == row.key_short and page["Camelot"] == row.camelot and page["BPM"] == row.bpm
    assert page["ALAC File"] == catalog.files.get(key, "ALAC").path
    assert page["Artist"] == ["Notion Band"] and page["Name"] == "queued by hand"  # typed by hand: kept
    failed = FakeNotion.plain(fake.page(gone["id"]))
    assert "404" in failed["Error"]
    # nothing created twice (the database also holds the pages of the other tests' tracks)
    ours = [p for p in map(FakeNotion.plain, fake.pages_in(db.data_source_id))
            if p.get("Track ID") == key or p.get("URL") in links]
    assert len(ours) == 2, ours
    nodes = dagster.graphql(PARTITIONS, {"keys": [{"path": ["notion_records"]}]})["assetNodes"]
    assert key in nodes[0]["assetPartitionStatuses"]["materializedPartitions"]
    assert fake.token not in dagster.log.read_text()
    assert not [r for r in fake.requests if r.status == 429]


def test_a_link_shared_from_a_phone_is_processed_and_its_token_shown_nowhere(dagster: Dagster, www) -> None:
    """`POST /tracks` with the share token: the track is requested exactly as `add` requests it
    (one bulk run, then its track run), and the answer says where to watch it."""
    root, hosts, _ = www
    make_track(root / "Shared Song.flac", seconds=3, seed=50, codec_args=["-c:a", "flac"])
    link = f"{hosts['fast']}/Shared%20Song.flac"
    answer = requests.post(f"{dagster.share_url}/tracks", json={"url": link},
                           headers={"Authorization": f"Bearer {SHARE_TOKEN}"}, timeout=60)
    assert answer.status_code == 202, answer.text
    key = answer.json()["key"]
    assert key == source_for(link).key and answer.json()["run"].startswith(f"{dagster.url}/runs/")
    wait(lambda: finished(dagster, "process_track", [key]), 180, "the shared track's run")
    assert_track_truth(dagster, good=[key], bad={})
    (bulk,) = [r for r in about(runs(dagster), [key]) if r["jobName"] == "process_tracks"]
    assert tag(bulk, "music_pipeline/origin") == "share" and bulk["runId"] == answer.json()["run_id"]
    # shared again (a phone retrying): the same track, a new request, nothing twice in the library
    again = requests.post(f"{dagster.share_url}/tracks", data={"text": f"listen {link}"},
                          headers={"Authorization": f"Bearer {SHARE_TOKEN}"}, timeout=60)
    assert again.status_code == 202 and again.json()["key"] == key and again.json()["known"]
    refused = requests.post(f"{dagster.share_url}/tracks", json={"url": link}, timeout=60)
    assert refused.status_code == 401
    for run in runs(dagster):
        assert SHARE_TOKEN not in repr(run)
    assert SHARE_TOKEN not in dagster.log.read_text()


SENSOR_TICKS = """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { ticks(limit: 1) { timestamp status } } } } }"""


def _last_tick(dagster: Dagster, sensor: str) -> float:
    """When the sensor's last finished tick started (0 while one is still going)."""
    selector = {"repositoryLocationName": "music_pipeline", "repositoryName": "__repository__", "sensorName": sensor}
    ticks = dagster.graphql(SENSOR_TICKS, {"selector": selector})["sensorOrError"]["sensorState"]["ticks"]
    return float(ticks[0]["timestamp"]) if ticks and ticks[0]["status"] != "STARTED" else 0.0


def test_a_page_added_in_notion_starts_when_its_webhook_event_arrives(dagster: Dagster, notion, www) -> None:
    """Notion's handshake, then a signed `page.created` for a page a person added: the page is
    taken and its track requested at once, not at the sensor's next tick; the same event
    replayed, and events out of order, do nothing more."""
    fake, db = notion
    root, hosts, _ = www
    hook = f"{dagster.share_url}/notion/webhook"
    assert requests.post(hook, json={"verification_token": "secret_Webhook-Verify-77"}, timeout=30).ok
    offered = (dagster.home / "notion-webhook-offered").read_text()
    assert "secret_Webhook-Verify-77" in offered
    # the operator's step (README): Notion's Verify dialog took it, so it signs the events from now on
    (dagster.home / "notion-webhook-token").write_text("secret_Webhook-Verify-77")
    make_track(root / "Webhook Song.flac", seconds=3, seed=51, codec_args=["-c:a", "flac"])
    link = f"{hosts['fast']}/Webhook%20Song.flac"

    def signed(event: dict) -> dict:
        body = json.dumps(event).encode()
        return {"data": body, "headers": {"X-Notion-Signature": "sha256=" + hmac.new(
            b"secret_Webhook-Verify-77", body, hashlib.sha256).hexdigest(), "Content-Type": "application/json"}}

    # right after the sensor's tick (every 60 s), so that what follows within seconds is the webhook's
    seen = wait(lambda: _last_tick(dagster, "notion_queue"), 90, "a finished notion_queue tick", interval=0.5)
    wait(lambda: _last_tick(dagster, "notion_queue") > seen, 90, "the next tick to finish", interval=0.5)
    page = fake.seed_page(db.data_source_id, {"Name": "added on the phone", "URL": link})
    parent = {"id": db.id, "type": "database", "data_source_id": db.data_source_id}
    updated = {"id": "evt-2", "type": "page.properties_updated", "entity": {"id": page["id"], "type": "page"},
               "data": {"parent": parent, "updated_properties": ["URL"]}}
    created = {"id": "evt-1", "type": "page.created", "entity": {"id": page["id"], "type": "page"},
               "data": {"parent": parent}}
    for event in (updated, created, created):  # out of order, then replayed
        assert requests.post(hook, timeout=30, **signed(event)).status_code == 200
    key = wait(lambda: FakeNotion.plain(fake.page(page["id"])).get("Track ID"), 20, "the page to be taken",
               interval=0.2)
    bulks = wait(lambda: [r for r in about(runs(dagster), [key]) if r["jobName"] == "process_tracks"], 20,
                 "the webhook's bulk run", interval=0.2)
    assert [tag(r, "music_pipeline/origin") for r in bulks] == ["notion webhook"]  # once, not at the tick
    wait(lambda: FakeNotion.plain(fake.page(page["id"]))["Status"] == "Done", 180, "the page to show Done")
    assert len([p for p in map(FakeNotion.plain, fake.pages_in(db.data_source_id)) if p.get("URL") == link]) == 1
    assert "secret_Webhook-Verify-77" not in dagster.log.read_text()


def _bulk_pid(dagster: Dagster, run_id: str) -> int | None:
    for event in events(dagster, run_id):
        if event["__typename"] == "EngineEvent" and event["message"].startswith("Started process for run"):
            return int(next(m["text"] for m in event["metadataEntries"] if m["label"] == "pid"))
    return None


def test_killed_processes_leave_no_run_started_and_the_tracks_run_again(dagster: Dagster, www,
                                                                       tmp_path: Path) -> None:
    root, hosts, slow = www
    for n in range(2):  # about 15 s to download each at the slow host's pace
        make_track(root / f"Slow Band - Long {n}.wav", seconds=7, bpm=100 + 11 * n, seed=20 + n)
    urls = [f"{hosts['slow']}/Slow Band - Long {n}.wav".replace(" ", "%20") for n in range(2)]
    keys = [source_for(u).key for u in urls]

    # a bulk run (`add`: the daemon launches it) killed while its track runs download
    added = dagster.cli("add", *urls, "--webserver", dagster.url)
    assert added.returncode == 0, added.stdout + added.stderr
    started = wait(lambda: [r for r in about(runs(dagster), keys) if r["jobName"] == "process_track"
                            and r["status"] == "STARTED"], 120, "the track runs to start")
    (bulk,) = [r for r in about(runs(dagster), keys) if r["jobName"] == "process_tracks"]
    pid = wait(lambda: _bulk_pid(dagster, bulk["runId"]), 30, "the bulk run's pid")
    os.kill(pid, signal.SIGKILL)
    assert started
    # run monitoring notices: nothing stays STARTED, the bulk run fails and is retried once
    wait(lambda: not [r for r in runs(dagster) if r["status"] in ("STARTED", "STARTING") and
                      tag(r, "music_pipeline/bulk") == bulk["runId"]], 90, "the killed track runs to fail")
    slow.throttled = False  # killed inside the downloads: the retry need not crawl
    killed = [r for r in runs(dagster, **{"music_pipeline/bulk": bulk["runId"]})]
    assert killed and all(r["status"] == "FAILURE" for r in killed)
    catalog = Catalog(dagster.library / "catalog.sqlite")
    wait(lambda: all(getattr(catalog.tracks.get(k), "status", None) == "done" for k in keys), 240,
         "the retried bulk run to finish the tracks")
    retried = [r for r in about(runs(dagster), keys) if r["jobName"] == "process_tracks"
               and r["runId"] != bulk["runId"]]
    assert retried and tag(retried[0], "dagster/parent_run_id") == bulk["runId"]

    # a run worker launched on its own (the UI's Materialize of one partition) killed mid-run
    slow.throttled = True
    make_track(root / "Slow Band - Alone.wav", seconds=7, seed=30)
    url = f"{hosts['slow']}/Slow Band - Alone.wav".replace(" ", "%20")
    key = source_for(url).key
    dagster.graphql("""mutation($key: String!) { addDynamicPartition(repositorySelector: {repositoryLocationName:
        "music_pipeline", repositoryName: "__repository__"}, partitionsDefName: "tracks", partitionKey: $key) {
        __typename } }""", {"key": key})
    launched = dagster.graphql("""mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
                               {"params": {"selector": {"repositoryLocationName": "music_pipeline",
                                                        "repositoryName": "__repository__",
                                                        "jobName": "process_track"},
                                           "executionMetadata": {"tags": [
                                               {"key": "dagster/partition", "value": key},
                                               {"key": "music_pipeline/target", "value": url}]}}})
    run_id = launched["launchRun"]["run"]["runId"]
    wait(lambda: next(r for r in runs(dagster) if r["runId"] == run_id)["status"] == "STARTED", 120,
         "the single run to start")
    worker = wait(lambda: _bulk_pid(dagster, run_id), 30, "the run worker's pid")
    os.kill(worker, signal.SIGKILL)
    wait(lambda: next(r for r in runs(dagster) if r["runId"] == run_id)["status"] == "FAILURE", 90,
         "run monitoring to mark the killed run failed")
    slow.throttled = False
    again = dagster.cli("add", url, "--webserver", dagster.url)  # the next request runs it again
    assert again.returncode == 0, again.stdout + again.stderr
    wait(lambda: getattr(catalog.tracks.get(key), "status", None) == "done", 180, "the track to run again")
