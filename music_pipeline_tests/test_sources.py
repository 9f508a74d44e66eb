"""Sources that sync by themselves, with a real Dagster instance: the Spotify sensors against
a local fake of the Web API (spotipy real), Spotify tracks matched and downloaded for real
(yt-dlp's YouTube search replaced at its boundary by a recorded result whose entries point
at local HTTP files), batch runs, playlists on disk, schedules and the CLI modes."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yt_dlp
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    build_schedule_context,
    build_sensor_context,
)

from music_pipeline.assets import playlist_exports, tracks
from music_pipeline.automation import bulk
from music_pipeline.automation.sources import (
    MAX_PER_TICK,
    nightly_sync,
    soundcloud_likes,
    soundcloud_playlists,
    spotify_liked,
    spotify_now_playing,
    spotify_playlists,
    weekly_dedup,
    weekly_verification,
)
from music_pipeline.cli import main
from music_pipeline.core.domain.paths import sanitize_component
from music_pipeline.core.sources import discovery
from music_pipeline.resources import (
    AnalysisResource,
    DjResource,
    DownloaderResource,
    EagleResource,
    LibraryResource,
    NotionResource,
    SoundCloudResource,
    SpotifyResource,
)
from music_pipeline_tests.conftest import check_results, materialized, requested
from music_pipeline_tests.fakes.spotify import FakeSpotify, make_track

from .audio import make_track as make_audio
from .audio import write
from .dedup_audio import tune


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    with FakeSpotify() as server:
        yield server


@pytest.fixture
def spotify(fake: FakeSpotify, tmp_path: Path) -> SpotifyResource:
    cache = tmp_path / "spotify-token.json"
    fake.login_cache(cache)
    return SpotifyResource(client_id=fake.client_id, client_secret=fake.client_secret, token_cache=str(cache),
                           api_prefix=fake.api_prefix, accounts_url=fake.accounts_url)


def tick(sensor, instance: DagsterInstance, cursor: str | None, **resources):
    context = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:  # what the daemon does
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_a_first_sync_of_many_likes_is_split_across_ticks_then_follows_new_likes(fake, spotify, instance,
                                                                                  library, library_root) -> None:
    for n in range(450):
        fake.add_like(make_track(name=f"Song {n}", artists=[f"Artist {n % 7}"], isrc=f"USAAA{n:07d}"))
    res = {"library": LibraryResource(root=str(library_root)), "spotify": spotify}
    first = tick(spotify_liked, instance, None, **res)
    assert len(requested(first)) == MAX_PER_TICK
    assert len(first.run_requests) == 1  # one unit of bulk work per tick
    (seen,) = [e for e in first.asset_events if e.asset_key.to_user_string() == "sources/spotify_likes"]
    assert seen.metadata["new_tracks"].value == MAX_PER_TICK and seen.metadata["tracks_seen"].value >= MAX_PER_TICK
    assert len(instance.get_dynamic_partitions(tracks.name)) == MAX_PER_TICK  # partitions in the same tick
    second = tick(spotify_liked, instance, first.cursor, **res)
    third = tick(spotify_liked, instance, second.cursor, **res)
    keys = requested(first) + requested(second) + requested(third)
    assert len(keys) == len(set(keys)) == 450  # everything once, nothing twice
    assert json.loads(third.cursor)["complete"] is True
    row = library.catalog.tracks.get(keys[0])
    assert row.isrc.startswith("USAAA") and row.spotify_url.startswith("https://open.spotify.com/track/")
    assert row.status == "queued" and row.title.startswith("Song ")
    # later: two new likes are all the next tick asks for
    fake.add_like(make_track(name="Fresh One", artists=["New Artist"]))
    fake.add_like(make_track(name="Fresh Two", artists=["New Artist"]))
    fourth = tick(spotify_liked, instance, third.cursor, **res)
    assert sorted(library.catalog.tracks.get(k).title for k in requested(fourth)) == ["Fresh One", "Fresh Two"]
    fifth = tick(spotify_liked, instance, fourth.cursor, **res)
    assert fifth.run_requests == []
    assert len(library.catalog.playlists.tracks("spotify-liked")) == 452
    # a burst of 300 likes at once (an imported playlist liked in one go): none is lost
    for n in range(300):
        fake.add_like(make_track(name=f"Burst {n}", artists=["Crowd"]))
    burst = tick(spotify_liked, instance, fifth.cursor, **res)
    assert len(requested(burst)) == 300
    liked = library.catalog.playlists.tracks("spotify-liked")  # newest first, as on Spotify
    assert [library.catalog.tracks.get(k).title for k in liked[:2]] == ["Burst 299", "Burst 298"]
    assert library.catalog.tracks.get(liked[300]).title == "Fresh Two" and len(liked) == 752
    assert tick(spotify_liked, instance, burst.cursor, **res).run_requests == []


def test_rate_limits_and_outages_skip_the_tick_and_keep_the_cursor(fake, spotify, instance, library_root) -> None:
    fake.add_like(make_track(name="One", artists=["A"]))
    res = {"library": LibraryResource(root=str(library_root)), "spotify": spotify}
    fake.rate_limit_next(1, retry_after=42)
    limited = tick(spotify_liked, instance, '{"offset": 0}', **res)
    assert limited.run_requests == [] and "trying again after 42 s" in limited.skip_reason.skip_message
    assert limited.cursor == '{"offset": 0}'
    fake.fail_next(1, status=503)
    down = tick(spotify_liked, instance, '{"offset": 0}', **res)
    assert down.run_requests == [] and down.cursor == '{"offset": 0}' and "spotify_liked" in down.skip_reason.skip_message
    fake.expire_tokens()  # the token expired: refreshed on the fly
    assert len(requested(tick(spotify_liked, instance, '{"offset": 0}', **res))) == 1
    unconfigured = tick(spotify_liked, instance, None, library=res["library"], spotify=SpotifyResource())
    assert "not configured" in unconfigured.skip_reason.skip_message and unconfigured.run_requests == []
    idle = tick(spotify_now_playing, instance, None, **res)
    assert idle.run_requests == []


def test_playlists_keep_membership_and_a_known_isrc_is_not_fetched_again(fake, spotify, instance, library,
                                                                          library_root) -> None:
    a = make_track(name="Alpha", artists=["X"], isrc="GBAAA0000001")
    b = make_track(name="Beta", artists=["X"], isrc="GBAAA0000002")
    c = make_track(name="Gamma", artists=["Y"], isrc="GBAAA0000003")
    pid = fake.add_playlist("Warm-up", [a, b, None, c])
    library.register(discovery.source_for("https://www.youtube.com/watch?v=aaaaaaaaaaa"))
    library.catalog.tracks.update("youtube-aaaaaaaaaaa", isrc="GBAAA0000003")
    library.catalog.tracks.mark_done("youtube-aaaaaaaaaaa")  # Gamma, already here
    res = {"library": LibraryResource(root=str(library_root)), "spotify": spotify}
    result = tick(spotify_playlists, instance, None, **res)
    keys = requested(result)
    assert sorted(library.catalog.tracks.get(k).title for k in keys) == ["Alpha", "Beta"]
    members = library.catalog.playlists.tracks(f"spotify-playlist-{pid}")
    assert members == [f"spotify-{a['id']}", f"spotify-{b['id']}", "youtube-aaaaaaaaaaa"]
    assert tick(spotify_playlists, instance, result.cursor, **res).run_requests == []  # same snapshot
    fake.playlists[pid]["items"] = [b, c]
    fake.playlists[pid]["snapshot_id"] = "changed"
    tick(spotify_playlists, instance, result.cursor, **res)
    assert library.catalog.playlists.tracks(f"spotify-playlist-{pid}") == [f"spotify-{b['id']}", "youtube-aaaaaaaaaaa"]


# -- Spotify tracks matched and downloaded --------------------------------------------------------


@pytest.fixture
def youtube_search(monkeypatch, http_server):
    """yt-dlp's YouTube search, replaced at its boundary with recorded flat results whose
    entries are local files; every other URL (the download) goes through yt-dlp for real."""
    results: dict[str, list[dict]] = {}
    original = yt_dlp.YoutubeDL.extract_info

    def extract_info(self, url, *args, **kwargs):
        if url.startswith("ytsearch"):
            query = url.split(":", 1)[1]
            entries = next((v for k, v in results.items() if k in query), [])
            return {"_type": "playlist", "id": query, "title": query, "extractor": "youtube:search",
                    "extractor_key": "YoutubeSearch", "webpage_url": url, "entries": entries}
        return original(self, url, *args, **kwargs)

    monkeypatch.setattr(yt_dlp.YoutubeDL, "extract_info", extract_info)

    def entry(name: str, title: str, channel: str, duration: float) -> dict:
        url = http_server.url(name)
        return {"_type": "url", "ie_key": "Youtube", "id": name.split(".")[0], "url": url, "webpage_url": url,
                "title": title, "channel": channel, "uploader": channel, "duration": duration, "view_count": 1000}

    return results, entry


def _resources(library_root: Path, spotify: SpotifyResource) -> dict:
    return {"library": LibraryResource(root=str(library_root)), "downloader": DownloaderResource(retries=0),
            "analysis": AnalysisResource(), "spotify": spotify, "soundcloud": SoundCloudResource(),
            "notion": NotionResource(), "eagle": EagleResource(enabled=False), "dj": DjResource()}


def test_a_spotify_like_is_matched_downloaded_tagged_and_a_doubtful_one_waits_for_review(
        fake, spotify, instance, library, library_root, youtube_search, http_server, capsys) -> None:
    results, entry = youtube_search
    write(http_server.root / "good.flac", tune(5, seconds=20), codec_args=["-c:a", "flac"])
    write(http_server.root / "remix.flac", tune(6, seconds=20), codec_args=["-c:a", "flac"])
    good = make_track(name="Night Drive", artists=["Nova"], isrc="USNOV2400001", duration_ms=20_000)
    doubtful = make_track(name="Glass", artists=["Mira"], duration_ms=20_000)
    fake.add_like(good)
    fake.add_like(doubtful)
    results["Night Drive"] = [entry("remix.flac", "Nova - Night Drive (Someone Remix)", "Remixes", 20),
                              entry("good.flac", "Nova - Night Drive (Official Audio)", "Nova - Topic", 20)]
    results["USNOV2400001"] = []
    results["Glass"] = [entry("remix.flac", "Glass (Nightcore)", "nightcore4ever", 15)]
    res = _resources(library_root, spotify)
    result = tick(spotify_liked, instance, None, library=res["library"], spotify=spotify)
    outcome = bulk.process_tracks.execute_in_process(run_config=bulk.run_config(keys=requested(result)),
                                                     instance=instance, resources=res)
    assert outcome.success  # needs review is set aside, not failed
    key = f"spotify-{good['id']}"
    row = library.catalog.tracks.get(key)
    assert row.status == "done", row.error
    assert row.match_url == http_server.url("good.flac") and row.match_score >= 0.8
    assert row.title == "Night Drive" and row.artist == "Nova"  # Spotify's metadata, not the upload's
    assert len(row.match["runners_up"]) >= 1
    assert {"raw_audio", "fingerprint", "audio_features", "m4a_alac", "aiff", "wav",
            "catalog"} <= materialized(instance, key)  # by the track's own run
    assert all(check_results(instance, key).values()) and len(check_results(instance, key)) == 4
    waiting = f"spotify-{doubtful['id']}"
    row = library.catalog.tracks.get(waiting)
    assert row.status == "needs_review" and "Nightcore" in row.error
    assert not library.catalog.files.all([waiting])  # nothing wrong was downloaded
    # the user picks the right upload by hand
    assert main(["pin", waiting, http_server.url("remix.flac")]) == 0  # pinned and processed at once
    assert "Mira - Glass" in capsys.readouterr().out
    row = library.catalog.tracks.get(waiting)
    assert row.status == "done" and row.match_pinned == 1
    # a finished track matched to the wrong version is pinned again: it is downloaded anew from there
    before = library.catalog.tracks.get(key).raw_sha256
    assert main(["pin", key, http_server.url("remix.flac"), "--later"]) == 0
    row = library.catalog.tracks.get(key)
    assert row.status == "queued" and row.match_score is None
    assert main(["process", "all"]) == 0
    row = library.catalog.tracks.get(key)
    assert row.raw_sha256 != before and row.match_url == http_server.url("remix.flac")
    assert main(["pin", key, "https://open.spotify.com/track/4cOdK2wGLETKBW3PvgPWqT"]) == 2  # DRM: refused


def test_a_bulk_run_isolates_a_failing_track_in_its_own_failed_run(library, library_root, instance, tmp_path,
                                                                   spotify) -> None:
    good = make_audio(tmp_path / "Good - One.flac", seconds=4, codec_args=["-c:a", "flac"])
    bad = tmp_path / "Bad - One.wav"
    bad.write_text("not audio")
    keys = [discovery.source_for(str(p)).key for p in (good, bad)]
    for path in (good, bad):
        library.register(discovery.source_for(str(path)))
    outcome = bulk.process_tracks.execute_in_process(run_config=bulk.run_config(keys=keys), instance=instance,
                                                     resources=_resources(library_root, spotify),
                                                     raise_on_error=False)
    assert not outcome.success  # one of two failed: the bulk run went on, then says so
    assert library.catalog.tracks.get(keys[0]).status == "done"
    failed = library.catalog.tracks.get(keys[1])
    assert failed.status == "failed" and "not an audio file" in failed.error
    assert set(instance.get_dynamic_partitions(tracks.name)) >= set(keys)
    runs = {r.tags["dagster/partition"]: r for r in instance.get_runs(
        filters=RunsFilter(job_name="process_track", tags={bulk.BULK_TAG: outcome.run_id}))}
    assert runs[keys[0]].status == DagsterRunStatus.SUCCESS and runs[keys[1]].status == DagsterRunStatus.FAILURE
    failure = next(e for e in instance.all_logs(runs[keys[1]].run_id) if e.dagster_event
                   and e.dagster_event.is_step_failure)
    assert "not an audio file" in failure.dagster_event.step_failure_data.error.message


def test_playlist_folders_and_m3u8_follow_the_catalog(library, library_root, instance, tmp_path, spotify) -> None:
    from dagster import materialize

    songs = [make_audio(tmp_path / f"Band - Song {n}.flac", seconds=4, bpm=90 + 20 * n, seed=n,
                        codec_args=["-c:a", "flac"]) for n in range(2)]
    keys = []
    for path in songs:
        source = discovery.source_for(str(path))
        library.register(source)
        keys.append(source.key)
    bulk.process_tracks.execute_in_process(run_config=bulk.run_config(keys=keys), instance=instance,
                                           resources=_resources(library_root, spotify))
    library.catalog.playlists.save("spotify-playlist-x", "spotify", "Late Night: Vol/1")
    library.catalog.playlists.set_tracks("spotify-playlist-x", keys)
    res = _resources(library_root, spotify)
    assert materialize([playlist_exports], instance=instance, resources=res).success
    name = sanitize_component("Late Night: Vol/1")  # made safe for every filesystem
    assert ":" not in name and "/" not in name
    m3u8 = library_root / "Playlists" / f"{name} (ALAC).m3u8"
    folder = library_root / "ALAC" / "Playlists" / name
    lines = m3u8.read_text().splitlines()
    assert lines[0] == "#EXTM3U" and sum(line.startswith("#EXTINF") for line in lines) == 2
    assert len([p for p in folder.iterdir() if not p.name.startswith(".")]) == 2
    library.catalog.playlists.set_tracks("spotify-playlist-x", keys[:1])  # one left the playlist upstream
    assert materialize([playlist_exports], instance=instance, resources=res).success
    assert sum(line.startswith("#EXTINF") for line in m3u8.read_text().splitlines()) == 1
    assert len([p for p in folder.iterdir() if not p.name.startswith(".")]) == 1
    assert all(Path(f.path).exists() for f in library.catalog.files.all(keys))  # the files stay


def test_schedules_and_sensors_have_documented_defaults() -> None:
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    assert nightly_sync.cron_schedule == "0 3 * * *" and nightly_sync.execution_timezone
    assert nightly_sync.default_status == DefaultScheduleStatus.RUNNING
    assert weekly_verification.job_name == "process_tracks" and weekly_dedup.job_name == "dedup_job"
    assert spotify_now_playing.default_status == DefaultSensorStatus.STOPPED
    assert spotify_liked.default_status == DefaultSensorStatus.RUNNING
    for sensor in (spotify_liked, spotify_playlists, spotify_now_playing, soundcloud_likes, soundcloud_playlists):
        assert sensor.minimum_interval_seconds >= 60 and "default" in sensor.description
    with build_schedule_context() as context:
        (request,) = nightly_sync.evaluate_tick(context).run_requests
    assert request.job_name in (None, "process_tracks")
    assert request.run_config["ops"]["run_tracks"]["config"]["sync_sources"] is True


def test_every_mode_requests_runs_of_the_same_per_track_job(library, library_root, tmp_path, monkeypatch,
                                                            http_server, capsys) -> None:
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SOUNDCLOUD_USER", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    songs = [make_audio(tmp_path / f"Mode Band - Song {n}.flac", seconds=3, bpm=92 + 9 * n, seed=40 + n,
                        codec_args=["-c:a", "flac"]) for n in range(3)]
    keys = [discovery.source_for(str(p)).key for p in songs]
    for path in songs:
        library.register(discovery.source_for(str(path)))
    write(http_server.root / "pinned.flac", tune(9, seconds=5), codec_args=["-c:a", "flac"])
    for argv in (["process", "single"], ["process", "batch", "-n", "1"], ["process", "all"],
                 ["process", "reprocess", "-n", "1"], ["sync", str(songs[0])], ["pin", keys[1], http_server.url("pinned.flac")]):
        assert main(argv) == 0, (argv, capsys.readouterr().out)
    assert [library.catalog.tracks.get(k).status for k in keys] == ["done"] * 3
    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
        bulks = {r.run_id: r.tags[bulk.ORIGIN_TAG] for r in runs if r.job_name == "process_tracks"}
        assert sorted(bulks.values()) == sorted(["cli process single", "cli process batch", "cli process all",
                                                 "cli process reprocess", "cli sync", "cli pin"])
        track_runs = [r for r in runs if r.job_name not in ("process_tracks", "library_index_job")]
        assert {r.job_name for r in track_runs} == {"process_track"}  # no other runner touches a track
        assert all(r.tags[bulk.BULK_TAG] in bulks for r in track_runs)
        by_origin = {}
        for run in track_runs:
            by_origin.setdefault(bulks[run.tags[bulk.BULK_TAG]], []).append(run.tags["dagster/partition"])
    assert by_origin["cli process single"] == [keys[2]]  # the newest queued
    assert by_origin["cli process batch"] == [keys[0]]  # the oldest queued
    assert by_origin["cli process all"] == [keys[1]]  # what was left
    assert by_origin["cli process reprocess"] == [keys[0]]
    assert "cli sync" not in by_origin  # already in the library: not processed again
    assert by_origin["cli pin"] == [keys[1]]  # pinned: downloaded again from there
    assert library.catalog.tracks.get(keys[1]).match_url == http_server.url("pinned.flac")


def test_sync_without_accounts_falls_back_to_the_newest_queued_track(library, library_root, tmp_path,
                                                                     monkeypatch, capsys) -> None:
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SOUNDCLOUD_USER", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    older = make_audio(tmp_path / "Old - Track.flac", seconds=3, codec_args=["-c:a", "flac"])
    newer = make_audio(tmp_path / "New - Track.flac", seconds=3, bpm=100, seed=2, codec_args=["-c:a", "flac"])
    for path in (older, newer):
        library.register(discovery.source_for(str(path)))
    assert main(["sync"]) == 0
    out = capsys.readouterr().out
    assert "New - Track" in out and "Old - Track" not in out
    assert os.path.isdir(tmp_path / "home")


def test_a_playlist_url_in_the_inbox_becomes_its_tracks_and_a_playlist(monkeypatch, instance, library,
                                                                       library_root) -> None:
    import copy

    from music_pipeline.automation.sensors import inbox_sensor

    from .test_collections import YT_PLAYLIST

    url = "https://www.youtube.com/playlist?list=PLw-VjHDlEOgs658kAHR_LAaILBXb-s6Q5"
    asked = []

    def extract_info(self, target, *args, **kwargs):  # YouTube cannot be reached: the recorded listing
        asked.append(target)
        return copy.deepcopy(YT_PLAYLIST)

    monkeypatch.setattr(yt_dlp.YoutubeDL, "extract_info", extract_info)
    box = library_root / "inbox"
    box.mkdir(parents=True, exist_ok=True)
    (box / "set.txt").write_text(url + "\n")
    os.utime(box / "set.txt", (0, 0))
    result = tick(inbox_sensor, instance, None, library=LibraryResource(root=str(library_root)),
                  downloader=DownloaderResource())
    assert asked == [url]
    keys = requested(result)
    assert keys == ["youtube-dQw4w9WgXcQ", "youtube-9bZkp7q19f0"]  # the private video is not a track
    assert result.run_requests[0].job_name == "process_tracks"
    assert set(keys) <= set(instance.get_dynamic_partitions(tracks.name))
    playlist = next(p for p in library.catalog.playlists.all() if p.name == "Warm-up Selects")
    assert library.catalog.playlists.tracks(playlist.id) == [keys[0], "youtube-aaaaaaaaaaa", keys[1]]
    private = library.catalog.tracks.get("youtube-aaaaaaaaaaa")  # recorded with its reason, never requested
    assert private.status == "failed" and private.error_reason == "private"


@pytest.fixture
def soundcloud_listings(monkeypatch):
    """SoundCloud cannot be reached: yt-dlp's listings are the recorded, real-shaped ones."""
    import copy

    from .test_collections import RECORDED

    answers = dict(RECORDED)
    asked: list[tuple[str, object]] = []

    def extract_info(self, url, *args, **kwargs):
        asked.append((url, self.params.get("playlistend")))
        return copy.deepcopy(answers[url])

    monkeypatch.setattr(yt_dlp.YoutubeDL, "extract_info", extract_info)
    return answers, asked


def test_soundcloud_likes_and_sets_become_tracks_and_playlists(soundcloud_listings, instance, library,
                                                              library_root) -> None:
    answers, asked = soundcloud_listings
    res = {"library": LibraryResource(root=str(library_root)), "soundcloud": SoundCloudResource(user="djkoji"),
           "downloader": DownloaderResource()}
    likes = tick(soundcloud_likes, instance, None, **res)
    keys = requested(likes)
    assert keys == ["soundcloud-1083788353", "soundcloud-294512011", "soundcloud-1524158182"]  # not the liked set
    assert asked[-1] == ("https://soundcloud.com/djkoji/likes", None)  # the first sync reads every like
    assert json.loads(likes.cursor)["complete"] is True
    again = tick(soundcloud_likes, instance, likes.cursor, **res)
    assert again.run_requests == [] and asked[-1][1] == MAX_PER_TICK  # later: only the newest likes
    sets = tick(soundcloud_playlists, instance, None, **res)
    assert requested(sets) == []  # every set track is a like already: nothing requested twice
    names = {p.name for p in library.catalog.playlists.all()}
    assert {"Warmup", "Peak: Time/Floor"} <= names
    warmup = next(p for p in library.catalog.playlists.all() if p.name == "Warmup")
    assert library.catalog.playlists.tracks(warmup.id) == ["soundcloud-1083788353", "soundcloud-294512011"]
    # a set deleted upstream leaves the catalog's playlists (its tracks stay)
    answers["https://soundcloud.com/djkoji/sets"] = {**answers["https://soundcloud.com/djkoji/sets"],
                                                     "entries": answers["https://soundcloud.com/djkoji/sets"]
                                                     ["entries"][:1]}
    tick(soundcloud_playlists, instance, sets.cursor, **res)
    assert {p.name for p in library.catalog.playlists.all()} >= {"Warmup"}
    assert "Peak: Time/Floor" not in {p.name for p in library.catalog.playlists.all()}
    assert library.catalog.tracks.get("soundcloud-1524158182") is not None
    unset = tick(soundcloud_likes, instance, None, library=res["library"], soundcloud=SoundCloudResource(),
                 downloader=res["downloader"])
    assert "SoundCloud is not configured" in unset.skip_reason.skip_message


def test_weekly_verification_reports_and_reprocess_runs_finished_tracks_again(library, library_root, instance,
                                                                              tmp_path, spotify) -> None:
    from mutagen import aiff

    song = make_audio(tmp_path / "Band - Verified.flac", seconds=4, codec_args=["-c:a", "flac"])
    source = discovery.source_for(str(song))
    library.register(source)
    res = _resources(library_root, spotify)
    bulk.process_tracks.execute_in_process(run_config=bulk.run_config(keys=[source.key]), instance=instance,
                                           resources=res)
    aiff.AIFF(library.catalog.files.get(source.key, "AIFF").path).delete()  # a tool stripped the tags
    with build_schedule_context(instance=instance) as context:
        (request,) = weekly_verification.evaluate_tick(context).run_requests
    result = bulk.process_tracks.execute_in_process(run_config=request.run_config, instance=instance,
                                                    resources=res, raise_on_error=False)
    assert not result.success  # the verification found a problem, and says which track
    (run,) = instance.get_runs(filters=RunsFilter(job_name="verify_track", tags={bulk.BULK_TAG: result.run_id}))
    evaluations = [e.dagster_event.event_specific_data for e in instance.all_logs(run.run_id)
                   if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert len(evaluations) == 4  # the asset checks themselves ran, one per output and the original
    failing = [e for e in evaluations if not e.passed]
    assert [e.asset_key.to_user_string() for e in failing] == ["aiff"]
    assert "tag title is missing" in failing[0].metadata["problems"].value
    assert library.catalog.tracks.get(source.key).status == "done"  # reported, not unmade
    assert check_results(instance, source.key)["aiff:valid"] is False  # the UI shows the latest result
    # reprocess: finished tracks again, originals reused, the damaged file written anew
    outcome = bulk.process_tracks.execute_in_process(run_config=bulk.run_config(select="reprocess"),
                                                     instance=instance, resources=res)
    assert outcome.success
    assert library.verify(source.key, "AIFF") == []
    assert {"audio_features", "aiff", "catalog"} <= materialized(instance, source.key)
    assert check_results(instance, source.key)["aiff:valid"] is True
