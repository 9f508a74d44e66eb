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
    for name in ("MUSIC_SHARE_ALLOW_HOSTS", "NOTION_WEBHOOK_TOKEN", "MUSIC_SHARE_BURST"):
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
    with _server(tmp_path_factory.mktemp("share"), MUSIC_SHARE_BURST="100000") as running:
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


def test_notions_handshake_is_kept_once_and_every_event_must_be_signed(server) -> None:
    url, tmp, log = server
    hook = f"{url}/notion/webhook"
    first = requests.post(hook, json={"verification_token": "secret_Verify-1234"}, timeout=10)
    assert first.status_code == 200
    kept = tmp / "home" / "notion-webhook-token"
    assert kept.read_text() == "secret_Verify-1234" and (kept.stat().st_mode & 0o777) == 0o600
    forged = requests.post(hook, json={"verification_token": "secret_Attacker"}, timeout=10)
    assert forged.status_code == 409 and kept.read_text() == "secret_Verify-1234"  # the key is not replaced

    event = json.dumps({"id": "e1", "type": "page.created", "entity": {"id": "p-1", "type": "page"}}).encode()
    good = "sha256=" + hmac.new(b"secret_Verify-1234", event, hashlib.sha256).hexdigest()
    unsigned = requests.post(hook, data=event, timeout=10)
    wrong = requests.post(hook, data=event, headers={"X-Notion-Signature": "sha256=" + "0" * 64}, timeout=10)
    other_key = requests.post(hook, data=event, timeout=10, headers={
        "X-Notion-Signature": "sha256=" + hmac.new(b"secret_Attacker", event, hashlib.sha256).hexdigest()})
    tampered = requests.post(hook, data=event.replace(b"p-1", b"p-2"), headers={"X-Notion-Signature": good},
                             timeout=10)
    assert [r.status_code for r in (unsigned, wrong, other_key, tampered)] == [401] * 4
    ignored = json.dumps({"id": "e2", "type": "comment.created", "entity": {"id": "c", "type": "comment"}}).encode()
    sig = "sha256=" + hmac.new(b"secret_Verify-1234", ignored, hashlib.sha256).hexdigest()
    assert requests.post(hook, data=ignored, headers={"X-Notion-Signature": sig}, timeout=10).json()["ignored"]
    assert requests.post(hook, data=b"{not json", timeout=10).status_code == 400
    time.sleep(0.5)
    shown = log.read_text()
    assert "secret_Verify-1234" not in shown and TOKEN not in shown, shown


def test_what_a_phone_shares_is_read_whatever_the_body() -> None:
    link = "https://soundcloud.com/artist/a-track"
    assert shared_link(json.dumps({"url": link}).encode(), "application/json") == link
    assert shared_link(f"url={link}".encode(), "application/x-www-form-urlencoded") == link
    # Android's share target: the link inside the shared text
    assert shared_link(f"title=A+Track&text=Listen+to+this%3A+{link}".encode(),
                       "application/x-www-form-urlencoded") == link
    assert shared_link(f"Hear {link}.".encode(), "text/plain; charset=utf-8") == link
    multipart = (f"--XyZ\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\n{link}\r\n--XyZ--\r\n").encode()
    assert shared_link(multipart, "multipart/form-data; boundary=XyZ") == link
    with pytest.raises(ValueError):
        shared_link(b"[1, 2]", "application/json")


def test_a_host_the_operator_trusts_may_be_on_the_lan() -> None:
    with pytest.raises(Refused):
        check_link("http://192.168.1.20/music/a.flac")
    assert check_link("http://192.168.1.20/music/a.flac", ["192.168.1.20"]) == "http://192.168.1.20/music/a.flac"
    assert check_link("https://soundcloud.com/a/b") == "https://soundcloud.com/a/b"  # resolved or not: let through


def test_the_burst_refills_at_its_rate() -> None:
    burst = Burst(burst=2, rate=50.0)
    assert [burst.wait_s("a") for _ in range(2)] == [0.0, 0.0]
    assert burst.wait_s("a") > 0 and burst.wait_s("b") == 0.0  # per client
    time.sleep(0.05)
    assert burst.wait_s("a") == 0.0
