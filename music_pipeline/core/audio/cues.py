"""Cue points a DJ would set by hand: a memory cue on the first downbeat, and hot cues where
the track's sections change (the intro ends, the drop hits, the break comes, the outro).

Sections are found bar by bar on the grid: each bar's loudness and spectral shape, and at
each bar line the difference between the bars just before and just after it (Foote's
novelty, on bars rather than frames, so a change is already on a downbeat). Dance music is
built in phrases of 8 and 16 bars, so a change on a phrase line counts more than one inside
a phrase. The strongest changes, at least 8 bars apart, become hot cues, named by what the
energy does there: up to the loudest level yet is a drop, down is a break, down at the end
is the outro.
"""

from __future__ import annotations

import numpy as np

from .beatgrid import Cue, Grid

MAX_HOT = 8
CONTEXT_BARS = 4  # bars compared on each side of a bar line
MIN_SPACING_BARS = 8
PHRASE_BONUS = {16: 1.5, 8: 1.25, 4: 1.0}  # a change on a 16-bar line counts 1.5 times
OFF_PHRASE = 0.6
#: rekordbox's hot cue colours
COLOURS = {"Intro": (40, 226, 20), "Drop": (230, 40, 40), "Break": (48, 90, 255), "Outro": (180, 50, 255),
           "Section": (255, 160, 0), "Memory": (230, 40, 40)}
STEP_DB = 2.0  # a section this much louder or quieter than the one before is a drop or a break


def find(signal: np.ndarray, rate: int, grid: Grid | None) -> tuple[Cue, ...]:
    """The memory cue and up to 8 hot cues of a track with a grid (none without one)."""
    if grid is None or grid.needs_look:
        return ()
    duration = signal.size / rate
    bars = [t for t, place in grid.beats(duration) if place == 1]
    if not bars:
        return ()
    memory = Cue(round(bars[0], 3), "Start", -1, COLOURS["Memory"])
    hot = [Cue(round(bars[0], 3), "Intro", 0, COLOURS["Intro"])]
    edges = np.array([*bars, duration])
    if len(bars) < 2 * CONTEXT_BARS + 1:
        return (memory, *hot)
    features, loudness = _bar_features(signal, rate, edges)
    novelty = _novelty(features)
    chosen = _pick(novelty)
    # name each change by the energy of the section it opens against the one it closes
    cuts = [0, *chosen, len(bars)]
    levels = [float(np.mean(loudness[a:b])) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    counts: dict[str, int] = {}
    loudest = levels[0]
    for index, bar in enumerate(chosen, start=1):
        before, after = levels[index - 1], levels[index]
        if after >= before + STEP_DB and after >= loudest - STEP_DB:
            kind = "Drop"
        elif after <= before - STEP_DB:
            kind = "Outro" if index == len(chosen) and len(bars) - bar <= 32 else "Break"
        else:
            kind = "Section"
        loudest = max(loudest, after)
        counts[kind] = counts.get(kind, 0) + 1
        name = kind if kind == "Outro" else f"{kind} {counts[kind]}"
        hot.append(Cue(round(bars[bar], 3), name, index, COLOURS[kind]))
    return (memory, *hot)


def _bar_features(signal: np.ndarray, rate: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bar: log energies in 12 bands (z-scored over the track), and loudness in dB."""
    n_fft, hop = 2048, 1024
    if signal.size < n_fft:
        return np.zeros((edges.size - 1, 12)), np.zeros(edges.size - 1)
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop]
    power = np.empty((frames.shape[0], n_fft // 2 + 1), dtype=np.float32)
    window = np.hanning(n_fft).astype(np.float32)
    for start in range(0, frames.shape[0], 2048):
        power[start:start + 2048] = np.abs(np.fft.rfft(frames[start:start + 2048] * window, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    bounds = np.geomspace(40, rate / 2, 13)
    bands = np.stack([power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in zip(bounds[:-1], bounds[1:],
                                                                                          strict=True)], axis=1)
    times = (np.arange(frames.shape[0]) * hop + n_fft / 2) / rate
    index = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, edges.size - 2)
    counts = np.maximum(np.bincount(index, minlength=edges.size - 1), 1)[:, None]
    per_bar = np.zeros((edges.size - 1, bands.shape[1]))
    np.add.at(per_bar, index, bands)
    per_bar /= counts
    log = 10 * np.log10(per_bar + 1e-10)
    loudness = 10 * np.log10(per_bar.sum(axis=1) + 1e-10)
    z = (log - log.mean(axis=0)) / (log.std(axis=0) + 1e-6)
    return z, loudness


def _novelty(features: np.ndarray) -> np.ndarray:
    """At each bar line b: how far the CONTEXT_BARS bars after it are from those before, with
    the phrase bonus of b (counted from the first downbeat)."""
    count = features.shape[0]
    novelty = np.zeros(count)
    for b in range(CONTEXT_BARS, count - CONTEXT_BARS + 1):
        before = features[b - CONTEXT_BARS:b].mean(axis=0)
        after = features[b:b + CONTEXT_BARS].mean(axis=0)
        phrase = next((bonus for size, bonus in PHRASE_BONUS.items() if b % size == 0), OFF_PHRASE)
        novelty[b if b < count else count - 1] = phrase * float(np.linalg.norm(after - before)) / np.sqrt(
            features.shape[1])
    return novelty


def _pick(novelty: np.ndarray) -> list[int]:
    """The strongest clear changes (above the track's typical bar-to-bar difference), at
    least MIN_SPACING_BARS apart, in time order; at most MAX_HOT - 1 (the intro is the first)."""
    floor = max(0.5, float(np.median(novelty[novelty > 0])) * 2) if (novelty > 0).any() else np.inf
    chosen: list[int] = []
    for b in np.argsort(-novelty):
        if novelty[b] < floor or len(chosen) >= MAX_HOT - 1:
            break
        if b >= MIN_SPACING_BARS // 2 and all(abs(int(b) - c) >= MIN_SPACING_BARS for c in chosen):
            chosen.append(int(b))
    return sorted(chosen)
