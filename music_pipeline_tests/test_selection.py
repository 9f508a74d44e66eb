"""Which tracks a request processes: the old system's modes as plain rules (core.selection)."""

import pytest

from music_pipeline.core.domain.selection import choose, pending
from music_pipeline.core.library.rows import Track


def row(key: str, status: str, reason: str | None = None) -> Track:
    return Track(key=key, status=status, source_kind="url", error_reason=reason)


ROWS = [row("a", "queued"), row("b", "done"), row("c", "failed", "source-unavailable"), row("d", "failed", "drm"),
        row("e", "queued"), row("f", "running"), row("g", "needs_review", "needs-review"), row("h", "duplicate"),
        row("i", "failed", "disk-full"), row("j", "failed", "not-audio"), row("k", "done")]


def test_single_is_the_newest_queued_track_no_run_is_working_on() -> None:
    assert choose(ROWS, "single") == ["e"]
    assert choose(ROWS, "single", in_flight={"e"}) == ["a"]
    assert choose([row("b", "done")], "single") == []


def test_batch_is_the_oldest_queued_tracks_up_to_the_limit() -> None:
    assert choose(ROWS, "batch") == ["a", "e"]
    assert choose(ROWS, "batch", limit=1) == ["a"]


def test_all_takes_queued_retryable_failures_and_killed_runs_but_never_hopeless_ones() -> None:
    # c (network) and i (disk full) may pass; d (DRM), j (not audio) and g (needs review) will not;
    # f is "running" with no run working on it: its run was killed
    assert choose(ROWS, "all") == ["a", "c", "e", "f", "i"]
    assert choose(ROWS, "all", in_flight={"f", "c"}) == ["a", "e", "i"]  # really running: left alone


def test_reprocess_is_every_finished_track() -> None:
    assert choose(ROWS, "reprocess") == ["b", "k"]
    assert choose(ROWS, "reprocess", limit=1) == ["b"]


def test_an_unknown_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="single, batch, all, reprocess"):
        choose(ROWS, "everything")


def test_explicit_keys_skip_finished_and_busy_tracks_once_each_in_order() -> None:
    rows = {r.key: r for r in ROWS}
    chosen = pending(["e", "b", "new", "e", "h", "f"], rows, in_flight={"f"})
    assert chosen.keys == ["e", "new"]  # an unknown key is a track the run will register
    assert chosen.skipped == ["b: already done", "h: already duplicate", "f: another run is processing it"]
    assert pending(["b", "h"], rows, force=True).keys == ["b", "h"]  # --force downloads again
    assert pending(["b", "h"], rows, reprocess=True).keys == ["b"]  # a duplicate stays set aside
