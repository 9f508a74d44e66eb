"""A track's life: every event from every status to every status, on the table and on a real
catalog (SQLite and PostgreSQL), the catalog exact when processes race for one track, and the
per-track use-case rules (which source, a pinned match, a Spotify match, review, the duplicate
stop, the checks, done) as plain functions over a real library, without Dagster."""

import itertools
import multiprocessing
import threading
from pathlib import Path

import pytest

from music_pipeline.core.domain.errors import Reason, TrackError
from music_pipeline.core.domain.identity import source_for
from music_pipeline.core.domain.lifecycle import (
    INITIAL,
    RULES,
    Event,
    Status,
    TransitionRefused,
    before_set_aside,
    decide,
    transitions,
)
from music_pipeline.core.library import usecases
from music_pipeline.core.library.catalog import Catalog
from music_pipeline.core.library.rows import Track
from music_pipeline.core.library.steps import Library
from music_pipeline.core.sources import discovery
from music_pipeline.core.sources.matching import Candidate
from music_pipeline.core.sources.ytdlp import DownloadOptions

from .audio import make_track, write
from .dedup_audio import transform, tune
from .services import fresh_database

Q, R, D, F, N, X = (Status.QUEUED, Status.RUNNING, Status.DONE, Status.FAILED, Status.NEEDS_REVIEW,
                    Status.DUPLICATE)
IGNORE, REFUSE = "ignore", "refuse"

#: What each event does from each status, written out from what the product does (the spec the
#: table in core/domain/lifecycle.py must match). A run's events come from every status a run can
#: find a track in (Dagster re-executes any step alone); a duplicate stays one until undone.
SPEC: dict[Event, dict[Status, Status | str]] = {
    Event.START:       {Q: R, R: R, D: R, F: R, N: R, X: IGNORE},
    Event.FAIL:        {Q: F, R: F, D: F, F: F, N: F, X: IGNORE},
    Event.CRASH:       {Q: IGNORE, R: F, D: IGNORE, F: IGNORE, N: IGNORE, X: IGNORE},  # only while running
    Event.FINISH:      {Q: D, R: D, D: D, F: D, N: D, X: IGNORE},
    Event.NEED_REVIEW: {Q: N, R: N, D: N, F: N, N: N, X: IGNORE},
    Event.REQUEUE:     {Q: Q, R: Q, D: Q, F: Q, N: Q, X: IGNORE},
    Event.REJECT:      {Q: F, R: IGNORE, D: IGNORE, F: IGNORE, N: IGNORE, X: IGNORE},  # only before any run
    Event.SET_ASIDE:   {Q: X, R: X, D: X, F: X, N: X, X: REFUSE},  # a duplicate is repointed, not set aside
}
#: Undo gives a duplicate back the status recorded before (never "running": no run works on it).
UNDO_TARGETS = {Q, D, F, N}


def expected(event: Event, current: Status, target: Status) -> Status | str:
    """The outcome of ``event`` on a track in ``current`` asked to lead to ``target``."""
    if event == Event.UNDO:
        if target not in UNDO_TARGETS:
            return REFUSE
        return target if current == X else IGNORE
    own = next(v for v in SPEC[event].values() if isinstance(v, Status))
    if target != own:
        return REFUSE  # an event leads to its own status only
    return SPEC[event][current]


CASES = list(itertools.product(Status, Status))  # (from, to): the full product


def test_the_spec_names_every_event_and_status() -> None:
    assert set(SPEC) | {Event.UNDO} == set(Event) == set(RULES)
    assert all(set(row) == set(Status) for row in SPEC.values())


@pytest.mark.parametrize(("current", "target"), CASES, ids=[f"{a}->{b}" for a, b in CASES])
def test_the_table_allows_ignores_and_refuses_as_the_spec_says(current: Status, target: Status) -> None:
    for event in Event:
        want = expected(event, current, target)
        if want == REFUSE:
            with pytest.raises(TransitionRefused) as refused:
                decide(current, event, target, key="k")
            assert refused.value.event == event and refused.value.current == current
            assert str(event) in str(refused.value) and "track k" in str(refused.value)
        else:
            assert decide(current, event, target) == (None if want == IGNORE else want), event


def test_the_map_of_moves_and_what_it_lets_a_track_do() -> None:
    moves = transitions()
    assert set(moves) == {(a, b) for a, b in CASES for e in Event if expected(e, a, b) == b}
    assert moves[(R, F)] == [Event.FAIL, Event.CRASH]
    assert moves[(X, Q)] == [Event.UNDO]
    assert (X, R) not in moves and (X, D) in moves  # a duplicate is only ever undone
    # every status can be reached from a new track, and every one but a duplicate can finish
    reach, frontier = {INITIAL}, [INITIAL]
    while frontier:
        here = frontier.pop()
        for (a, b) in moves:
            if a == here and b not in reach:
                reach.add(b)
                frontier.append(b)
    assert reach == set(Status)
    assert all((s, D) in moves for s in Status if s != X)
    # whatever a track was when it was set aside, undo can give it back (a running one as queued)
    assert {s: before_set_aside(s) for s in Status if s != X} == {Q: Q, R: Q, D: D, F: F, N: N}
    assert all(decide(X, Event.UNDO, before_set_aside(s)) for s in Status if s != X)


# -- on a real catalog -----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalog(request, tmp_path_factory) -> Catalog:
    url = None if request.param == "sqlite" else fresh_database(request.getfixturevalue("postgres_server")).url
    return Catalog(tmp_path_factory.mktemp("lifecycle") / "library" / "catalog.sqlite", url=url)


#: Each event as the product fires it: the catalog's method for it.
FIRE = {
    Event.START: lambda c, k, t: c.tracks.mark_running(k),
    Event.FAIL: lambda c, k, t: c.tracks.mark_failed(k, "wav", "ffmpeg failed", Reason.MEDIA_TOOL),
    Event.CRASH: lambda c, k, t: c.tracks.mark_crashed(k, "The process running this is gone."),
    Event.FINISH: lambda c, k, t: c.tracks.mark_done(k),
    Event.NEED_REVIEW: lambda c, k, t: c.tracks.mark_needs_review(k, "raw_audio", "No confident match."),
    Event.REQUEUE: lambda c, k, t: c.tracks.requeue(k),
    Event.REJECT: lambda c, k, t: c.tracks.mark_unavailable(k, "discovery", "removed", Reason.REMOVED),
    Event.SET_ASIDE: lambda c, k, t: c.tracks.mark_duplicate(k, "youtube-keeperkeep", "g1"),
    Event.UNDO: lambda c, k, t: c.tracks.restore_status(k, t),
}
#: How a new track gets to each status: through the same events.
REACH = {Q: [], R: [Event.START], D: [Event.START, Event.FINISH], F: [Event.FAIL], N: [Event.NEED_REVIEW],
         X: [Event.START, Event.FAIL, Event.SET_ASIDE]}
_keys = itertools.count()


def _track_in(catalog: Catalog, status: Status) -> str:
    key = f"youtube-{next(_keys):011d}"
    catalog.tracks.register(source_for(f"https://youtu.be/{key[-11:]}"))
    for event in REACH[status]:
        assert FIRE[event](catalog, key, None) is True
    assert catalog.tracks.get(key).status == status
    return key


@pytest.mark.parametrize(("current", "target"), CASES, ids=[f"{a}->{b}" for a, b in CASES])
def test_the_catalog_applies_exactly_the_table(catalog: Catalog, current: Status, target: Status) -> None:
    """Every event the catalog can fire towards ``target``, on a track in ``current``."""
    events = [e for e in Event if e == Event.UNDO or RULES[e].resolve() == target]
    assert events  # every status is some event's target
    for event in events:
        key = _track_in(catalog, current)
        before = catalog.tracks.get(key)
        want = expected(event, current, target)
        if want == REFUSE:
            with pytest.raises(TransitionRefused, match=f"^Cannot {event} track {key}.*: it is {current}, and "):
                FIRE[event](catalog, key, target)
            assert catalog.tracks.get(key) == before, event
        elif want == IGNORE:
            assert FIRE[event](catalog, key, target) is False, event
            assert catalog.tracks.get(key) == before, event  # not a field touched
        else:
            assert FIRE[event](catalog, key, target) is True, event
            row = catalog.tracks.get(key)
            assert row.status == target, event
            _assert_fields(event, row, before)


def _assert_fields(event: Event, row: Track, before: Track) -> None:
    """What the status means in the row's other fields."""
    if event in (Event.FAIL, Event.CRASH, Event.REJECT):
        reason = {Event.FAIL: "media-tool", Event.CRASH: "crashed", Event.REJECT: "removed"}[event]
        assert row.error and row.error_step and row.error_reason == reason
    elif event == Event.NEED_REVIEW:
        assert row.error == "No confident match." and row.error_reason == "needs-review"
    elif event in (Event.START, Event.FINISH, Event.REQUEUE):
        assert row.error is None and row.error_step is None and row.error_reason is None
        assert (row.processed_at is not None) == (event == Event.FINISH or before.processed_at is not None)
    elif event == Event.SET_ASIDE:
        assert (row.duplicate_of, row.dedup_group) == ("youtube-keeperkeep", "g1")
        assert row.error == before.error  # kept for an undo back to "failed"
    elif event == Event.UNDO:
        assert row.duplicate_of is None and row.dedup_group is None
        assert row.error == before.error


def test_an_unknown_track_is_left_alone(catalog: Catalog) -> None:
    """A step can fail before its track is registered: recording that must not hide its error."""
    for event in Event:
        assert FIRE[event](catalog, "youtube-notcatalogd", Status.QUEUED) is False


def test_a_failure_frees_the_names_its_track_had_reserved(catalog: Catalog) -> None:
    root = catalog.root
    key, other = _track_in(catalog, R), _track_in(catalog, R)
    name = root / "WAV" / f"Song {key}.wav"
    assert catalog.files.reserve_path(key, "WAV", [name], free=lambda p: True) == name
    catalog.tracks.mark_crashed(key, "gone")
    catalog.tracks.mark_running(key)  # its next run: the name is not held by the dead one any more
    assert catalog.files.reserve_path(other, "WAV", [name], free=lambda p: True) == name


def _set_aside(root: str, url: str | None, key: str, barrier) -> str:
    catalog = Catalog(Path(root) / "catalog.sqlite", url=url)
    barrier.wait()
    try:
        group = f"g-{multiprocessing.current_process().name}"
        return "applied" if catalog.tracks.mark_duplicate(key, "youtube-keeperkeep", group) else "ignored"
    except TransitionRefused:
        return "refused"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_racing_to_set_one_track_aside_apply_it_once(backend, request, tmp_path) -> None:
    """Before, each one wrote its own group over the others' (all three "applied"; the last won)."""
    url = None if backend == "sqlite" else fresh_database(request.getfixturevalue("postgres_server")).url
    catalog = Catalog(tmp_path / "library" / "catalog.sqlite", url=url)
    key = _track_in(catalog, D)
    context = multiprocessing.get_context("spawn")
    # closed and joined, not terminated: a process that ran Dagster in-process may have SIGTERM
    # ignored (Dagster maps it to SIGINT's handler, ignored under a shell's `&`), and spawned
    # workers inherit that, so Pool.terminate() would wait on them forever
    with context.Manager() as manager:
        barrier = manager.Barrier(3)
        pool = context.Pool(3)
        try:
            outcomes = pool.starmap(_set_aside, [(str(tmp_path / "library"), url, key, barrier)] * 3)
        finally:
            pool.close()
            pool.join()
    assert sorted(outcomes) == ["applied", "refused", "refused"]
    assert catalog.tracks.get(key).status == X


def test_a_dead_run_report_racing_the_track_finishing_never_fails_a_finished_track(catalog: Catalog) -> None:
    """``fail_orphan`` read "running", then wrote "failed": a track that finished in between
    was shown failed (on PostgreSQL, 32 of these 100). The crash event is one conditional write."""
    keys = [_track_in(catalog, R) for _ in range(100 if catalog.shared else 20)]  # SQLite's writers poll: slow
    go = threading.Barrier(2)

    def finish() -> None:
        for key in keys:
            go.wait()
            catalog.tracks.mark_done(key)

    def crash() -> None:
        for key in keys:
            go.wait()
            catalog.tracks.mark_crashed(key, "gone")

    threads = [threading.Thread(target=finish), threading.Thread(target=crash)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {catalog.tracks.get(k).status for k in keys} == {D}


# -- the per-track use-case rules, as plain functions ----------------------------------------------


def _row(status: Status, **fields) -> Track:
    return Track(key="youtube-aaaaaaaaaaa", status=status, source_kind="url", **fields)


@pytest.mark.parametrize(("key", "row", "force", "plan"), [
    ("youtube-aaaaaaaaaaa", _row(X, raw_path="/r.flac"), True, usecases.Plan("duplicate")),
    ("spotify-abc", _row(X), False, usecases.Plan("duplicate")),  # a set-aside Spotify track is not matched
    ("spotify-abc", _row(Q, match_pinned=1, match_url="https://u/p"), False, usecases.Plan("pinned", "https://u/p")),
    # pinned on a track downloaded from elsewhere: fetched again, from the pinned source
    ("youtube-aaaaaaaaaaa", _row(Q, match_pinned=1, match_url="https://u/p", raw_path="/r.flac"), False,
     usecases.Plan("pinned", "https://u/p", True)),
    # pinned earlier, failed since: its raw audio is reused unless forced (then its match is the pin)
    ("spotify-abc", _row(F, match_pinned=1, match_url="https://u/p", raw_path="/r.flac"), False,
     usecases.Plan("own")),
    ("spotify-abc", _row(F, match_pinned=1, match_url="https://u/p", raw_path="/r.flac"), True,
     usecases.Plan("match", None, True)),
    ("spotify-abc", _row(Q), False, usecases.Plan("match")),  # DRM-protected: an upload is matched
    ("spotify-abc", _row(N), False, usecases.Plan("match")),  # a review asked again: matched again
    ("spotify-abc", _row(D, raw_path="/r.flac"), False, usecases.Plan("own")),
    ("youtube-aaaaaaaaaaa", _row(F), False, usecases.Plan("own")),
    ("youtube-aaaaaaaaaaa", _row(D, raw_path="/r.flac"), True, usecases.Plan("own", None, True)),
])
def test_which_source_a_track_is_fetched_from(key: str, row: Track, force: bool, plan: usecases.Plan) -> None:
    assert usecases.plan_fetch(key, row, force=force) == plan


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    return Library(tmp_path / "library")


SPOTIFY = "https://open.spotify.com/track/4cOdK2wGLETKBW3PvgPWqT"


def _spotify_track(lib: Library) -> str:
    key = source_for(SPOTIFY).key
    lib.register(source_for(SPOTIFY))
    lib.catalog.tracks.update(key, title="Glass", artist="Mira", artists=["Mira"], source_duration_s=8.0)
    return key


def test_a_doubtful_spotify_match_waits_for_review_and_a_pin_fetches_from_there(lib, http_server,
                                                                                 tmp_path) -> None:
    key = _spotify_track(lib)
    nightcore = Candidate(url="https://www.youtube.com/watch?v=nightcore01", id="nightcore01",
                          title="Glass (Nightcore)", channel="nightcore4ever", duration_s=6.0)
    lines: list[str] = []
    outcome = usecases.fetch(lib, key, DownloadOptions(), log=lines.append, search=lambda q: [nightcore])
    assert isinstance(outcome, usecases.Review)
    assert outcome.note.startswith(f"{key} needs review: No confident match for Mira - Glass")
    assert outcome.match["best"]["url"] == nightcore.url  # the candidates, for the person who picks
    row = lib.track(key)
    assert row.status == N and row.error_reason == "needs-review" and row.raw_path is None
    assert lines == []  # nothing was downloaded

    make_track(http_server.root / "glass.flac", seconds=8, codec_args=["-c:a", "flac"])
    discovery.pin(lib, key, http_server.url("glass.flac"))
    assert lib.track(key).status == Q
    outcome = usecases.fetch(lib, key, DownloadOptions(), log=lines.append, search=lambda q: pytest.fail(q))
    assert isinstance(outcome, usecases.Fetched)
    row = outcome.row
    assert row.status == R and row.match_pinned == 1 and Path(row.raw_path).exists()
    assert any("downloading the pinned source" in line for line in lines)


def test_a_confident_spotify_match_is_downloaded(lib, http_server) -> None:
    key = _spotify_track(lib)
    make_track(http_server.root / "glass-official.flac", seconds=8, codec_args=["-c:a", "flac"])
    official = Candidate(url=http_server.url("glass-official.flac"), id="glass-official",
                         title="Mira - Glass (Official Audio)", channel="Mira - Topic", duration_s=8.0)
    lines: list[str] = []
    outcome = usecases.fetch(lib, key, DownloadOptions(), log=lines.append, search=lambda q: [official])
    assert isinstance(outcome, usecases.Fetched)
    assert outcome.row.match_url == official.url and outcome.row.match_score >= 0.8
    assert outcome.row.status == R and outcome.row.title == "Glass"  # Spotify's metadata kept
    assert any("downloading the match" in line for line in lines)


def test_a_copy_stops_at_the_fingerprint_and_its_next_run_at_once(lib, tmp_path) -> None:
    original = write(tmp_path / "in" / "Lifecycle Band - Song.flac", tune(4), codec_args=["-c:a", "flac"])
    copy = transform(original, tmp_path / "in" / "song copy.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    keeper, other = source_for(str(original)).key, source_for(str(copy)).key
    for path in (original, copy):
        lib.register(source_for(str(path)))

    assert isinstance(usecases.fetch(lib, keeper, DownloadOptions()), usecases.Fetched)
    first = usecases.fingerprint(lib, keeper)
    assert isinstance(first, usecases.Fingerprinted) and first.supersedes is None
    lib.catalog.tracks.mark_done(keeper)  # the rest of its steps (analysis, outputs) are not what this is about

    assert isinstance(usecases.fetch(lib, other, DownloadOptions()), usecases.Fetched)
    stop = usecases.fingerprint(lib, other)
    assert isinstance(stop, usecases.SetAside) and stop.keeper == keeper
    row = lib.track(other)
    assert row.status == X and row.duplicate_of == keeper and stop.group.id == row.dedup_group
    assert f"dedup --undo {row.dedup_group}" in stop.note

    again = usecases.fetch(lib, other, DownloadOptions(), force=True)  # its next run: stops before any download
    assert again == usecases.SetAside(other, keeper, stop.group)
    assert lib.track(other) == row
    assert usecases.verify(lib, other, "WAV", step="wav check") == []  # moved aside: not checked


def test_a_bad_output_fails_the_track_and_an_incomplete_one_is_not_done(lib, song_file) -> None:
    key = source_for(str(song_file)).key
    lib.register(source_for(str(song_file)))
    usecases.fetch(lib, key, DownloadOptions())
    assert usecases.verify(lib, key, "WAV", step="wav check", record=False) == [f"no WAV file is recorded for {key}"]
    assert lib.track(key).status == R  # only reported
    usecases.verify(lib, key, "WAV", step="wav check")
    row = lib.track(key)
    assert row.status == F and row.error_step == "wav check" and "failed verification" in row.error
    with pytest.raises(TrackError, match=f"{key} is incomplete: no ALAC file"):
        usecases.finish(lib, key)
    assert lib.track(key).status == F
