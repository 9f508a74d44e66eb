"""The Spotify client against a local fake of the Web API and Accounts service.

spotipy is real and talks HTTP to ``FakeSpotify`` on 127.0.0.1; nothing of ours is mocked.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from music_pipeline.core.domain.errors import SourceUnavailable, TrackError
from music_pipeline.core.sources.spotify.auth import authorize_url, login, save_token
from music_pipeline.core.sources.spotify.client import SpotifyClient
from music_pipeline.core.sources.spotify.models import (
    AccessDenied,
    LoginFailed,
    NotConfigured,
    NotLoggedIn,
    RateLimited,
    SpotifyConfig,
    SpotifyPlaylist,
    SpotifyTrack,
    TrackNotFound,
)
from music_pipeline_tests.fakes.spotify import (
    FakeSpotify,
    make_episode,
    make_local_track,
    make_track,
    spotify_id,
)


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    server = FakeSpotify()
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "conf" / "spotify-token.json"


@pytest.fixture
def client(fake: FakeSpotify, cache: Path) -> SpotifyClient:
    """A client whose user has logged in already."""
    fake.login_cache(cache)
    return SpotifyClient(fake.config(cache))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoginThread:
    """Runs ``login()`` in the background the way a terminal would, capturing what it prints."""

    def __init__(self, config: SpotifyConfig, timeout_s: float = 10) -> None:
        self.printed: list[str] = []
        self.error: BaseException | None = None
        self._announced = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(config, timeout_s), daemon=True)
        self._thread.start()

    def _run(self, config: SpotifyConfig, timeout_s: float) -> None:
        def announce(text: str) -> None:
            self.printed.append(text)
            self._announced.set()

        try:
            login(config, timeout_s=timeout_s, announce=announce)
        except BaseException as err:  # handed to the test thread
            self.error = err
        finally:
            self._announced.set()

    def url(self) -> str:
        assert self._announced.wait(10), "login() never printed a URL"
        match = re.search(r"http://127\.0\.0\.1:\d+/authorize\?\S+", "\n".join(self.printed))
        assert match, self.printed
        return match.group(0)

    def join(self) -> BaseException | None:
        self._thread.join(15)
        assert not self._thread.is_alive(), "login() did not return"
        return self.error


# --------------------------------------------------------------------------- login


def test_login_end_to_end_without_a_browser(fake: FakeSpotify, cache: Path) -> None:
    config = fake.config(cache, redirect_uri=f"http://127.0.0.1:{free_port()}/callback")
    run = LoginThread(config)
    # "The user opens the URL on their phone": requests follows the fake's 302 to our listener.
    answer = requests.get(run.url(), timeout=5)
    assert answer.status_code == 200 and "close this tab" in answer.text
    assert run.join() is None

    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    token = json.loads(cache.read_text())
    assert token["refresh_token"] == fake.issued_refresh_tokens[-1]
    assert token["access_token"] == fake.issued_access_tokens[-1]
    assert fake.token_grants == ["authorization_code"]
    printed = "\n".join(run.printed)
    for secret in (fake.client_secret, token["access_token"], token["refresh_token"]):
        assert secret not in printed
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no temp file left behind

    # and the login is usable right away
    fake.add_like(make_track(name="Strobe", artists=["deadmau5"]))
    assert [t.name for t in SpotifyClient(config).liked().items] == ["Strobe"]


def test_login_rejects_a_forged_state(fake: FakeSpotify, cache: Path) -> None:
    config = fake.config(cache, redirect_uri=f"http://127.0.0.1:{free_port()}/callback")
    run = LoginThread(config)
    forged = re.sub(r"state=[^&]+", "state=forged", run.url())
    answer = requests.get(forged, timeout=5)  # a real code, but for somebody else's attempt
    assert answer.status_code == 400
    err = run.join()
    assert isinstance(err, LoginFailed) and "state mismatch" in str(err)
    assert not cache.exists()
    assert fake.token_grants == []  # the code was never exchanged


def test_login_declined_and_timeout(fake: FakeSpotify, cache: Path) -> None:
    config = fake.config(cache, redirect_uri=f"http://127.0.0.1:{free_port()}/callback")
    fake.deny_next_authorization = True
    run = LoginThread(config)
    requests.get(run.url(), timeout=5)
    err = run.join()
    assert isinstance(err, LoginFailed) and "declined" in str(err)

    start = time.monotonic()
    with pytest.raises(LoginFailed, match="did not arrive"):
        login(config, timeout_s=0.3, announce=lambda _: None)
    assert time.monotonic() - start < 3
    assert not cache.exists()


def test_login_with_wrong_client_secret_says_so(fake: FakeSpotify, cache: Path) -> None:
    config = fake.config(cache, redirect_uri=f"http://127.0.0.1:{free_port()}/callback",
                         client_secret="wrong-secret-value")
    run = LoginThread(config)
    requests.get(run.url(), timeout=5)
    err = run.join()
    assert isinstance(err, NotConfigured) and "client id or secret" in str(err)
    assert "wrong-secret-value" not in str(err)
    assert not cache.exists()


def test_authorize_url_and_config_checks(fake: FakeSpotify, cache: Path) -> None:
    url = authorize_url(fake.config(cache), state="xyz")
    assert url.startswith(f"{fake.url}/authorize?") and "state=xyz" in url and "user-library-read" in url
    assert fake.client_secret not in url
    assert fake.client_secret not in repr(fake.config(cache))
    with pytest.raises(NotConfigured, match="SPOTIFY_CLIENT_ID"):
        SpotifyClient(fake.config(cache, client_id=""))
    with pytest.raises(NotConfigured, match="loopback"):
        login(fake.config(cache, redirect_uri="https://example.com/callback"), announce=lambda _: None)


# --------------------------------------------------------------------------- reading


def test_liked_pages_through_120_likes(fake: FakeSpotify, client: SpotifyClient) -> None:
    for i in range(120):  # oldest first, so "Song 119" ends up newest
        fake.add_like(make_track(name=f"Song {i}", artists=[f"Artist {i}"]))
    seen: list[SpotifyTrack] = []
    offset: int | None = 0
    while offset is not None:
        page = client.liked(offset)
        assert page.total == 120
        seen.extend(page.items)
        offset = page.next_offset
    assert len(seen) == 120 and len({t.id for t in seen}) == 120
    assert seen[0].name == "Song 119" and seen[-1].name == "Song 0"
    assert seen[0].added_at > seen[-1].added_at  # newest first, ISO timestamps
    calls = [(r.query["offset"], r.query["limit"]) for r in fake.api_calls("/v1/me/tracks")]
    assert calls == [("0", "50"), ("50", "50"), ("100", "50")]

    # the client never asks for more than the API allows; the fake enforces it like the real one
    assert len(client.liked(0, limit=500).items) == 50
    raw = requests.get(f"{fake.api_prefix}me/tracks?limit=51",
                       headers={"Authorization": f"Bearer {fake.issued_access_tokens[-1]}"}, timeout=5)
    assert raw.status_code == 400 and raw.json() == {"error": {"status": 400, "message": "Invalid limit"}}


def test_track_metadata_is_parsed(fake: FakeSpotify, client: SpotifyClient) -> None:
    track = make_track(name="Strobe", artists=["deadmau5", "Kaskade"], isrc="usus11000356",
                       duration_ms=637_000, album="For Lack of a Better Name", release_date="2009-09-22",
                       track_number=10,
                       images=[{"url": "https://i.scdn.co/small", "width": 64, "height": 64},
                               {"url": "https://i.scdn.co/large", "width": 640, "height": 640},
                               {"url": "https://i.scdn.co/mid", "width": 300, "height": 300}])
    fake.add_like(track, added_at="2025-10-31T22:15:00Z")
    (got,) = client.liked().items
    assert got == SpotifyTrack(
        id=track["id"], name="Strobe", artists=("deadmau5", "Kaskade"), album="For Lack of a Better Name",
        isrc="USUS11000356", duration_s=637.0, release_date="2009-09-22", track_number=10,
        artwork_url="https://i.scdn.co/large", url=f"https://open.spotify.com/track/{track['id']}",
        genres=(), added_at="2025-10-31T22:15:00Z",
    )
    assert got.key == f"spotify-{track['id']}"
    assert client.track(track["id"]) == SpotifyTrack(**{**got.__dict__, "added_at": None})
    # ids, URIs and links all name the same track
    assert client.track(f"spotify:track:{track['id']}").id == track["id"]
    assert client.track(f"https://open.spotify.com/intl-de/track/{track['id']}?si=abc").id == track["id"]


def test_missing_fields_do_not_crash(fake: FakeSpotify, client: SpotifyClient) -> None:
    bare = {"id": spotify_id("bare"), "type": "track", "name": "Bare"}
    odd = make_track(name="Odd", genres=["techno"], images=[{"url": "https://i.scdn.co/x", "width": None,
                                                               "height": None}])
    odd["artists"] = [{"name": None}, {"id": "x"}, {"name": "Only Name"}]
    odd["album"]["release_date"] = "1997"
    odd["track_number"] = None
    fake.add_like(bare)
    fake.add_like(odd)
    fake.add_like({"id": None, "type": "track"})  # a track the API could not resolve any more
    odd_t, bare_t = client.liked().items
    assert bare_t.name == "Bare" and bare_t.artists == () and bare_t.album is None
    assert bare_t.isrc is None and bare_t.duration_s == 0.0 and bare_t.artwork_url is None
    assert bare_t.release_date is None and bare_t.track_number is None and bare_t.genres == ()
    assert odd_t.artists == ("Only Name",) and odd_t.genres == ("techno",)
    assert odd_t.artwork_url == "https://i.scdn.co/x" and odd_t.release_date == "1997"


def test_playlists_follow_absolute_next_links(fake: FakeSpotify, client: SpotifyClient) -> None:
    for i in range(55):
        fake.add_playlist(f"Set {i:02d}", [make_track(name=f"t{i}-{j}") for j in range(i % 3)])
    playlists = client.playlists()
    assert len(playlists) == 55
    assert playlists[7] == SpotifyPlaylist(
        id=spotify_id("playlist:Set 07"), name="Set 07",
        snapshot_id=fake.playlists[spotify_id("playlist:Set 07")]["snapshot_id"], owner="dj",
        url=f"https://open.spotify.com/playlist/{spotify_id('playlist:Set 07')}", total=1,
    )
    calls = fake.api_calls("/v1/me/playlists")
    assert [c.query.get("offset") for c in calls] == ["0", "50"]  # second page via the next URL


def test_playlist_items_skip_episodes_local_files_and_nulls(fake: FakeSpotify, client: SpotifyClient) -> None:
    a, b = make_track(name="A", isrc="GBAYE0601498"), make_track(name="B")
    pid = fake.add_playlist("Mixed", [a, make_episode(), None, make_local_track(), b])
    page = client.playlist_items(pid)
    assert [t.name for t in page.items] == ["A", "B"]
    assert page.total == 5 and page.next_offset is None
    assert page.items[0].isrc == "GBAYE0601498" and page.items[0].added_at == "2024-01-01T00:00:00Z"
    assert fake.api_calls(f"/v1/playlists/{pid}/items")[0].query["additional_types"] == "track,episode"

    fake.playlist_item_field = "track"  # the pre-2026 shape
    assert [t.name for t in client.playlist_items(pid).items] == ["A", "B"]


def test_playlist_items_page_with_next_offset(fake: FakeSpotify, client: SpotifyClient) -> None:
    pid = fake.add_playlist("Long", [make_track(name=f"n{i}") if i % 10 else None for i in range(70)])
    first = client.playlist_items(pid, limit=100)  # clamped to the API's maximum of 50
    assert first.next_offset == 50 and first.total == 70 and len(first.items) == 45
    second = client.playlist_items(pid, offset=first.next_offset)
    assert second.next_offset is None and len(second.items) == 18
    with pytest.raises(TrackNotFound, match="playlist"):
        client.playlist_items(spotify_id("gone"))


def test_now_playing(fake: FakeSpotify, client: SpotifyClient) -> None:
    assert client.now_playing() is None  # 204 No Content
    track = make_track(name="Windowlicker", artists=["Aphex Twin"])
    fake.now_playing = track
    playing = client.now_playing()
    assert playing is not None and playing.id == track["id"] and playing.artists == ("Aphex Twin",)
    fake.is_playing = False
    assert client.now_playing() is None  # paused
    fake.is_playing = True
    fake.now_playing = make_episode()
    assert client.now_playing() is None  # a podcast


def test_track_errors(fake: FakeSpotify, client: SpotifyClient) -> None:
    with pytest.raises(TrackNotFound) as err:
        client.track(spotify_id("never-existed"))
    assert isinstance(err.value, SourceUnavailable)
    with pytest.raises(TrackError, match="not a Spotify track id"):
        client.track("https://open.spotify.com/album/4cOdK2wGLETKBW3PvgPWqT")
    assert not fake.api_calls("/v1/tracks/4cOd")


# --------------------------------------------------------------------------- failures


def test_rate_limit_is_reported_not_slept(fake: FakeSpotify, client: SpotifyClient) -> None:
    fake.add_like(make_track(name="After the wait"))
    fake.rate_limit_next(1, retry_after=7)
    start = time.monotonic()
    with pytest.raises(RateLimited) as err:
        client.liked()
    assert err.value.retry_after == 7.0 and "7 s" in str(err.value)
    assert time.monotonic() - start < 2
    assert len(fake.api_calls()) == 1  # no hidden retries
    assert [t.name for t in client.liked().items] == ["After the wait"]


def test_expired_token_is_refreshed_once_transparently(fake: FakeSpotify, client: SpotifyClient,
                                                       cache: Path) -> None:
    fake.add_like(make_track(name="Still here"))
    before = json.loads(cache.read_text())
    fake.expire_tokens()  # spotipy still believes its token is good for an hour
    assert [t.name for t in client.liked().items] == ["Still here"]
    assert fake.token_grants == ["refresh_token"]
    after = json.loads(cache.read_text())
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] == before["refresh_token"]
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    # the next process reads the new token from the cache and needs no refresh
    assert SpotifyClient(client.config).liked().total == 1
    assert fake.token_grants == ["refresh_token"]


def test_401_after_refresh_means_logged_out(fake: FakeSpotify, client: SpotifyClient) -> None:
    fake.unauthorized_next(2)
    with pytest.raises(NotLoggedIn) as err:
        client.liked()
    assert err.value.hint == "run `music-pipeline spotify-login`"
    assert fake.token_grants == ["refresh_token"]  # exactly one refresh attempt
    assert len(fake.api_calls()) == 2


def test_revoked_access_means_logged_out(fake: FakeSpotify, client: SpotifyClient) -> None:
    fake.revoke_refresh_tokens()
    with pytest.raises(NotLoggedIn, match="revoked") as err:
        client.playlists()
    assert "spotify-login" in str(err.value)


def test_not_logged_in(fake: FakeSpotify, cache: Path) -> None:
    client = SpotifyClient(fake.config(cache))
    with pytest.raises(NotLoggedIn) as err:
        client.liked()
    assert err.value.hint == "run `music-pipeline spotify-login`"
    assert "run `music-pipeline spotify-login`" in str(err.value)

    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"access_token": "x", "expires_at": 9e9, "scope": "user-library-read"}))
    with pytest.raises(NotLoggedIn):  # no refresh token: it would die within the hour
        client.now_playing()
    fake.login_cache(cache, scope="user-library-read")
    with pytest.raises(NotLoggedIn, match="playlist-read-private"):  # logged in with fewer permissions
        client.playlists()
    assert fake.requests == []  # decided without asking Spotify, and never prompted


def test_missing_scope_on_the_server_is_access_denied(fake: FakeSpotify, cache: Path) -> None:
    fake.login_cache(cache, scope="playlist-read-private")
    client = SpotifyClient(fake.config(cache, scope="playlist-read-private"))
    with pytest.raises(AccessDenied, match="liked songs"):
        client.liked()


def test_server_down_and_5xx_are_source_unavailable(fake: FakeSpotify, client: SpotifyClient) -> None:
    fake.fail_next(1, status=502)
    with pytest.raises(SourceUnavailable, match="502"):
        client.liked()
    fake.close()
    with pytest.raises(SourceUnavailable, match="Could not reach Spotify"):
        client.liked()
    with pytest.raises(SourceUnavailable):
        client.now_playing()


def test_token_refresh_with_the_network_down(fake: FakeSpotify, client: SpotifyClient, cache: Path) -> None:
    token = json.loads(cache.read_text())
    token["expires_at"] = 0  # spotipy will refresh before the call
    cache.write_text(json.dumps(token))
    fake.close()
    with pytest.raises(SourceUnavailable):
        client.liked()


# --------------------------------------------------------------------------- secrets and the cache


def test_secrets_stay_out_of_logs_and_errors(fake: FakeSpotify, client: SpotifyClient, cache: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.add_like(make_track(name="x"))
    fake.expire_tokens()
    client.liked()  # API call, 401, refresh, retry: spotipy logs headers and payloads at DEBUG
    fake.revoke_refresh_tokens()
    with pytest.raises(NotLoggedIn) as err:
        client.liked()
    assert "Bearer ***" in caplog.text  # spotipy did log the headers, redacted
    basic = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
    for secret in [fake.client_secret, basic, *fake.issued_access_tokens, *fake.issued_refresh_tokens]:
        assert secret not in caplog.text
        assert secret not in str(err.value) and secret not in repr(err.value)
        assert secret not in repr(client) and secret not in repr(client.config)


def test_token_cache_is_replaced_atomically_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "token.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    save_token(path, {"refresh_token": "r"})
    assert json.loads(path.read_text()) == {"refresh_token": "r"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["token.json"]

    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    with pytest.raises(TrackError, match="Could not save the Spotify login"):
        save_token(blocked / "token.json", {"refresh_token": "r"})
