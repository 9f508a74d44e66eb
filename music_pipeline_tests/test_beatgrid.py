"""The beat grid and cues on generated tracks whose beats, bars and sections are known."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from music_pipeline.core.audio import analysis, cues, gridfit
from music_pipeline.core.audio.beatgrid import Grid

from .audio import choir, click_track, sections, song

RATE = 44_100


def _analysis_signal(stereo: np.ndarray) -> np.ndarray:
    return soxr.resample(stereo.mean(axis=1), RATE, analysis.RATE).astype(np.float32)


def _padded(signal: np.ndarray, lead_s: float, seconds: float) -> np.ndarray:
    pad = np.zeros((int(round(lead_s * RATE)), 2), np.float32)
    return np.concatenate([pad, signal])[: int(seconds * RATE)]


def _worst_miss(grid: Grid, beats: np.ndarray) -> float:
    """How far the grid, its first beat and BPM extrapolated, is from the furthest true beat."""
    period = 60.0 / grid.bpm
    k = np.round((beats - grid.first_beat_s) / period)
    return float(np.abs(beats - (grid.first_beat_s + k * period)).max())


@pytest.mark.parametrize("bpm, first", [(123.45, 0.371), (174.0, 0.0), (87.0, 0.2)])
def test_a_steady_track_gets_its_exact_tempo_first_beat_and_a_grid_that_holds_to_the_end(bpm, first) -> None:
    seconds = 90.0
    signal = _analysis_signal(_padded(song(seconds, bpm, seed=3), first, seconds))
    grid = gridfit.estimate(signal, analysis.RATE)
    assert grid is not None and len(grid.segments) == 1 and not grid.needs_look
    assert abs(grid.bpm - bpm) <= 0.02
    assert abs(grid.first_beat_s - first) <= 0.005
    beats = np.arange(first, seconds - 0.5, 60.0 / bpm)
    assert _worst_miss(grid, beats) <= 0.020  # a whole minute and a half on the grid
    assert grid.beats_per_bar == 4 and grid.segments[0].beat == 1  # the song's bars start with it
    assert grid.confidence >= 0.5


@pytest.mark.parametrize("bpm", [72.5, 96.0])
def test_a_choir_whose_notes_swell_gets_a_grid_on_its_chord_changes(bpm) -> None:
    """No drum, no attack: the beat is where the harmony changes, under a tremolo that makes
    the short frames see onsets everywhere."""
    seconds = 60.0
    grid = gridfit.estimate(_analysis_signal(choir(seconds, bpm, seed=2)), analysis.RATE)
    assert grid is not None and len(grid.segments) == 1 and not grid.needs_look
    assert abs(grid.bpm - bpm) <= 0.02
    assert _worst_miss(grid, np.arange(0.0, seconds - 0.5, 60.0 / bpm)) <= 0.010


def test_a_track_that_changes_tempo_gets_a_segment_per_tempo() -> None:
    stereo = np.concatenate([song(40.0, 100.0, seed=4), song(60.0, 128.0, seed=5)])
    grid = gridfit.estimate(_analysis_signal(stereo), analysis.RATE)
    assert grid is not None and not grid.needs_look
    assert [round(s.bpm, 1) for s in grid.segments] == [100.0, 128.0]
    assert abs(grid.segments[0].start_s) <= 0.005 and abs(grid.segments[1].start_s - 40.0) <= 0.005
    assert [s.beat for s in grid.segments] == [1, 1]


def test_a_drifting_tempo_is_never_a_confident_wrong_grid() -> None:
    """Clicks slowing from 124 to 116 BPM (a live drummer, a rubato): one straight grid cannot
    hold, so it is flagged for a look, or every segment it gives holds."""
    times, t, n = [], 0.5, 0
    while t < 80:
        times.append(t)
        t += 60.0 / (124.0 - 8.0 * t / 80)
        n += 1
    out = np.zeros(int(81 * RATE))
    click = np.sin(2 * np.pi * 1500 * np.arange(int(0.02 * RATE)) / RATE) * np.exp(-np.arange(int(0.02 * RATE)) / 150)
    for index, start in enumerate(times):
        i = int(start * RATE)
        out[i:i + click.size] += (1.0 if index % 4 == 0 else 0.6) * click
    grid = gridfit.estimate(_analysis_signal(np.repeat(out[:, None], 2, axis=1)), analysis.RATE)
    assert grid is not None
    if not grid.needs_look:
        beats = dict(grid.beats(81.0))
        placed = np.array(sorted(beats))
        worst = max(float(np.abs(placed - b).min()) for b in times[2:-2])
        assert worst <= 0.020, grid
    else:
        assert grid.confidence <= 0.3


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_silence_and_noise_have_no_grid_and_no_cues(kind) -> None:
    rng = np.random.default_rng(0)
    stereo = np.zeros((RATE * 20, 2), np.float32) if kind == "silence" else \
        (0.3 * rng.standard_normal((RATE * 20, 2))).astype(np.float32)
    signal = _analysis_signal(stereo)
    assert gridfit.estimate(signal, analysis.RATE) is None
    decoded = analysis.Decoded(signal, None if kind == "silence" else -12.0, None, None)
    features = analysis.features_of(decoded, analysis.Settings(fingerprint=False))
    assert features.grid is None and features.cues == ()
    assert features.as_dict()["grid"] is None


def test_a_click_track_in_three_gets_three_beats_to_the_bar() -> None:
    grid = gridfit.estimate(_analysis_signal(click_track(60, 120.0, accent_every=3)), analysis.RATE)
    assert grid is not None and grid.beats_per_bar == 3 and abs(grid.bpm - 120.0) <= 0.02
    assert grid.segments[0].beat == 1  # the accented click is beat 1


def test_cues_mark_the_sections_on_their_downbeats_with_names_and_colours() -> None:
    parts = [(16, "intro"), (16, "drop"), (8, "break"), (16, "drop"), (8, "outro")]
    signal = _analysis_signal(sections(parts, bpm=126.0))
    grid = gridfit.estimate(signal, analysis.RATE)
    assert grid is not None and abs(grid.bpm - 126.0) <= 0.02
    found = cues.find(signal, analysis.RATE, grid)
    bar = 4 * 60.0 / 126.0
    starts = [sum(bars for bars, _ in parts[:i]) * bar for i in range(len(parts))]
    memory = [c for c in found if c.number == -1]
    hot = sorted((c for c in found if c.number >= 0), key=lambda c: c.number)
    assert len(memory) == 1 and abs(memory[0].start_s - grid.downbeat_s) <= 0.001
    assert [c.name for c in hot] == ["Intro", "Drop 1", "Break 1", "Drop 2", "Outro"]
    assert all(abs(c.start_s - s) <= 0.005 for c, s in zip(hot, starts, strict=True))
    assert [c.number for c in hot] == list(range(5)) and len(hot) <= 8
    assert hot[1].colour != hot[2].colour  # a drop and a break look different


def test_the_main_tempo_is_the_longest_segment_the_last_one_included() -> None:
    from music_pipeline.core.audio.beatgrid import Segment

    grid = Grid((Segment(0.0, 120.0, 1), Segment(30.0, 128.0, 1)), end_s=360.0)
    assert grid.bpm == 128.0 and Grid.from_dict(grid.as_dict()).bpm == 128.0
    assert Grid((Segment(0.0, 120.0, 1), Segment(300.0, 128.0, 1)), end_s=330.0).bpm == 120.0
