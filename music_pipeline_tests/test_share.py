"""The share endpoint and Notion's webhook against hostile clients: a real server process
(`python -m music_pipeline.endpoints`, as `up` starts it) and a real HTTP client. Nothing it
refuses is registered, and no secret reaches its output. (That an accepted link and a signed
Notion event each start a run: test_daemon.py, with the whole product.)"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from music_pipeline.endpoints.app import shared_link
from music_pipeline.endpoints.guard import Burst, Refused, check_link

from .daemon import REPO, free_port, wait

TOKEN = "share-Token-0123456789abcdef"


@contextlib.contextmanager
def _server(tmp: Path, **extra: str):
    port = free_port()
    env = {**os.environ, "MUSIC_SHARE_TOKEN": TOKEN, "DAGSTER_HOME": str(tmp / "home"),
           "MUSIC_LIBRARY": str(tmp / "library"), **extra}
    for name in ("MUSIC_SHARE_ALLOW_HOSTS", "NOTION_WEBHOOK_TOKEN", "MUSIC_SHARE_BURST", "NOTION_TOKEN", "TRACKS_DB_ID"):
        if name not in extra:
            env.pop(name, None)
    log = tmp / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "music_pipeline.endpoints", "--port", str(port),
                                 "--webserver", "http://127.0.0.1:9"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=2).ok
        except requests.RequestException:
            assert proc.poll() is None, log.read_text()
            return False

    try:
        wait(ready, 30, "the endpoints' server", interval=0.2)
        yield url, tmp, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The endpoints' server with a share token, its Dagster webserver nowhere (a refused
    request never gets that far); the rate limit wide open (its own test below)."""
    with _server(tmp_path_factory.mktemp("share"), MUSIC_SHARE_BURST="100000", NOTION_TOKEN="secret_notion-x",
                 TRACKS_DB_ID="0f4c6d0e9a8b4c5d8e7f6a5b4c3d2e1f", NOTION_API_BASE_URL="http://127.0.0.1:9") as running:
        yield running


def _share(url: str, body=None, token: str | None = TOKEN, **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(f"{url}/tracks", json=body, headers=headers, timeout=10, **kwargs)


def _nothing_registered(tmp: Path) -> bool:
    return not (tmp / "library" / "catalog.sqlite").exists() or not _catalog_keys(tmp)


def _catalog_keys(tmp: Path) -> list[str]:
    from music_pipeline.core.library.catalog import Catalog

    return [t.key for t in Catalog(tmp / "library" / "catalog.sqlite").tracks.all()]


@pytest.mark.parametrize("token", [None, "", "wrong-token", TOKEN[:-1], TOKEN + "x", f"Basic {TOKEN}"])
def test_a_request_without_the_right_token_is_refused_and_registers_nothing(server, token) -> None:
    url, tmp, _ = server
    headers = {"Authorization": token} if token and token.startswith("Basic") else {}
    answer = _share(url, {"url": "https://soundcloud.com/artist/a-track"},
                    token=None if (token is None or token.startswith("Basic")) else token, headers=headers)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    assert _nothing_registered(tmp)


def test_a_body_over_64_kb_is_413_malformed_json_is_400(server) -> None:
    url, tmp, _ = server
    big = _share(url, data=b"{" + b" " * (65 * 1024) + b"}", headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    broken = _share(url, data=b'{"url": "https://soundcloud.com/a/b"', headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and "could not be read" in broken.json()["error"]
    not_object = _share(url, ["https://soundcloud.com/a/b"])
    assert not_object.status_code == 400
    assert _nothing_registered(tmp)


@pytest.mark.parametrize("link, why", [
    ("file:///etc/passwd", "only http and https"),
    ("/home/dj/music/song.flac", "only http and https"),
    ("ftp://example.com/song.mp3", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("http://localhost:3000/graphql", "this machine or its local network"),
    ("http://127.0.0.1:3000/graphql", "this machine or its local network"),
    ("http://[::1]:3000/", "this machine or its local network"),
    ("http://10.0.0.7/admin", "this machine or its local network"),
    ("http://192.168.1.1/", "this machine or its local network"),
    ("http://169.254.169.254/latest/meta-data/", "this machine or its local network"),
    ("http://[::ffff:127.0.0.1]/", "this machine or its local network"),
    ("http://0.0.0.0:3000/", "this machine or its local network"),
    ("http:///nohost", "no host"),
])
def test_a_link_to_this_machine_its_network_or_a_path_is_refused(server, link, why) -> None:
    url, tmp, _ = server
    answer = _share(url, {"url": link})
    assert answer.status_code == 422 and why in answer.json()["error"], answer.text
    assert _nothing_registered(tmp)


def test_a_burst_from_one_client_gets_429_with_the_time_to_wait(tmp_path: Path) -> None:
    with _server(tmp_path) as (url, _, _):  # the default limit: 10 at once
        codes = [_share(url, {"url": "file:///x"}, token="wrong").status_code for _ in range(14)]
        late = _share(url, {"url": "file:///x"})
    assert codes[:10] == [401] * 10 and codes[10:] == [429] * 4  # counted before the token: no guessing at speed
    assert late.status_code == 429 and int(late.headers["Retry-After"]) >= 1


PAGE = "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"


def _sign(key: str, body: bytes) -> dict:
    return {"X-Notion-Signature": "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()}


def test_a_handshake_is_noted_never_trusted_and_every_event_must_be_signed_with_the_operators_token(server) -> None:
    """The handshake is unsigned: whoever sends one first must not choose the key events are
    checked with. Offered tokens are noted for the operator; only the one they put in place
    (after Notion's Verify dialog accepted it) signs events."""
    url, tmp, log = server
    hook = f"{url}/notion/webhook"
    for offered in ("secret_Attacker-First", "secret_Verify-1234"):
        assert requests.post(hook, json={"verification_token": offered}, timeout=10).status_code == 200
    noted = tmp / "home" / "notion-webhook-offered"
    assert "secret_Verify-1234" in noted.read_text() and (noted.stat().st_mode & 0o777) == 0o600
    assert not (tmp / "home" / "notion-webhook-token").exists()
    event = json.dumps({"id": "e1", "type": "page.created", "entity": {"id": PAGE, "type": "page"}}).encode()
    planted = requests.post(hook, data=event, headers=_sign("secret_Attacker-First", event), timeout=10)
    assert planted.status_code == 401  # an offered token signs nothing

    (tmp / "home" / "notion-webhook-token").write_text("secret_Verify-1234\n")  # the operator's step
    good = _sign("secret_Verify-1234", event)
    unsigned = requests.post(hook, data=event, timeout=10)
    wrong = requests.post(hook, data=event, headers={"X-Notion-Signature": "sha256=" + "0" * 64}, timeout=10)
    other_key = requests.post(hook, data=event, headers=_sign("secret_Attacker-First", event), timeout=10)
    tampered = requests.post(hook, data=event.replace(b"e1", b"e9"), headers=good, timeout=10)
    assert [r.status_code for r in (unsigned, wrong, other_key, tampered)] == [401] * 4
    accepted = requests.post(hook, data=event, headers=good, timeout=10)
    assert accepted.status_code == 200 and accepted.json()["page"] == PAGE
    not_a_page_id = json.dumps({"id": "e3", "type": "page.created", "entity": {"id": "../v1/users", "type": "page"}})
    ignored = requests.post(hook, data=not_a_page_id.encode(), headers=_sign("secret_Verify-1234", not_a_page_id.encode()),
                            timeout=10)
    assert ignored.status_code == 200 and "page" not in ignored.json()  # nothing but an id goes into an API path
    comment = json.dumps({"id": "e2", "type": "comment.created", "entity": {"id": PAGE, "type": "comment"}}).encode()
    assert requests.post(hook, data=comment, headers=_sign("secret_Verify-1234", comment), timeout=10).json()["ignored"]
    assert requests.post(hook, data=b"{not json", timeout=10).status_code == 400
    deep = b"[" * 50_000 + b"]" * 50_000  # over 64 KB: refused before it is parsed
    assert requests.post(hook, data=deep, timeout=10).status_code == 413
    nested = b"[" * 20_000 + b"]" * 20_000
    assert requests.post(hook, data=nested, timeout=10).status_code == 400
    assert _share(url, data=nested, headers={"Content-Type": "application/json"}).status_code == 400
    time.sleep(0.5)
    shown = log.read_text()
    assert "secret_Verify-1234" not in shown and "secret_Attacker" not in shown and TOKEN not in shown, shown
    assert "Traceback" not in shown, shown


def test_without_notion_the_webhook_says_so_and_a_short_token_starts_nothing(tmp_path: Path) -> None:
    with _server(tmp_path) as (url, _, _):
        answer = requests.post(f"{url}/notion/webhook", json={"verification_token": "secret_x"}, timeout=10)
        assert answer.status_code == 503 and "not configured" in answer.json()["error"]
    short = subprocess.run([sys.executable, "-m", "music_pipeline.endpoints", "--port", str(free_port()),
                            "--webserver", "http://127.0.0.1:9"], cwd=REPO, capture_output=True, text=True,
                           env={**os.environ, "MUSIC_SHARE_TOKEN": "tooshort"}, timeout=60)
    assert short.returncode == 2 and "24 characters" in short.stderr and "tooshort" not in short.stderr


def test_what_a_phone_shares_is_read_whatever_the_body() -> None:
    link = "https://soundcloud.com/artist/a-track"
    assert shared_link(json.dumps({"url": link}).encode(), "application/json") == link
    assert shared_link(f"url={link}".encode(), "application/x-www-form-urlencoded") == link
    # Android's share target: the link inside the shared text
    assert shared_link(f"title=A+Track&text=Listen+to+this%3A+{link}".encode(),
                       "application/x-www-form-urlencoded") == link
    assert shared_link(f"Hear {link}.".encode(), "text/plain; charset=utf-8") == link
    assert shared_link(link.encode(), "application/x-www-form-urlencoded") == link  # curl -d 'https://...'
    multipart = (f"--XyZ\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\n{link}\r\n--XyZ--\r\n").encode()
    assert shared_link(multipart, "multipart/form-data; boundary=XyZ") == link
    with pytest.raises(ValueError):
        shared_link(b"[1, 2]", "application/json")


def test_a_host_the_operator_trusts_may_be_on_the_lan() -> None:
    with pytest.raises(Refused):
        check_link("http://192.168.1.20/music/a.flac")
    assert check_link("http://192.168.1.20/music/a.flac", ["192.168.1.20"]) == "http://192.168.1.20/music/a.flac"
    assert check_link("http://93.184.216.34/a.mp3") == "http://93.184.216.34/a.mp3"  # a public address
    with pytest.raises(Refused, match="could not be looked up"):  # a name only some network knows
        check_link("http://metadata.nothing-resolves-this.invalid/computeMetadata/v1/")


def test_the_burst_refills_at_its_rate() -> None:
    burst = Burst(burst=2, rate=50.0)
    assert [burst.wait_s("a") for _ in range(2)] == [0.0, 0.0]
    assert burst.wait_s("a") > 0 and burst.wait_s("b") == 0.0  # per client
    time.sleep(0.05)
    assert burst.wait_s("a") == 0.0
