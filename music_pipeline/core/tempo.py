"""Tempo estimation with octave-error handling.

1. Onset strength: log-compressed spectral flux of short frames (a drum hit or a note
   onset raises energy across many bins at once), high-passed so slow swells do not count.
2. Periodicity: the autocorrelation of the onset envelope. A tempo's salience sums the
   autocorrelation at its beat period and at whole multiples of it (2, 3, 4 beats): a
   real pulse repeats at every multiple, a coincidental peak does not.
3. Metrical level: the classic mistake is a tempo at half, double, two thirds or three
   halves of the felt beat, since those periods are also present in the music. The
   candidates related to the strongest periodicity by those ratios are weighed by their
   salience and by a prior that is flat over a preferred range (default 70-180 BPM,
   where popular and dance music lives: hip-hop, house, techno, drum & bass) and falls
   off outside it, so the evidence decides inside the range and the range decides only
   between near-equals.
4. Precision: the winner is refined on a fine grid using periods up to eight beats long,
   which pins the BPM to a tenth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RANGE = (70.0, 180.0)
MIN_BPM, MAX_BPM = 40.0, 260.0
RATIOS = (1 / 3, 1 / 2, 2 / 3, 1.0, 3 / 2, 2.0, 3.0)


@dataclass(frozen=True)
class Tempo:
    bpm: float
    confidence: float  # 0..1: how clearly one periodicity stands out


def onset_envelope(signal: np.ndarray, rate: int, hop: int = 128, n_fft: int = 512) -> tuple[np.ndarray, float]:
    """Spectral-flux onset strength; returns (envelope, frames per second)."""
    if signal.size < n_fft:
        return np.zeros(1, dtype=np.float32), rate / hop
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop]
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1))
    # Up to ~5.5 kHz at 11 kHz sampling; skip the DC bin.
    log_spec = np.log1p(100.0 * spectrum[:, 1:]).astype(np.float32)
    flux = np.maximum(np.diff(log_spec, axis=0), 0.0).sum(axis=1)
    fps = rate / hop
    # Remove the slowly varying part (one-second moving average): only attacks remain.
    width = max(1, int(fps))
    local = np.convolve(flux, np.ones(width, dtype=np.float32) / width, mode="same")
    envelope = np.maximum(flux - local, 0.0)
    return envelope.astype(np.float32), fps


def _autocorrelation(envelope: np.ndarray) -> np.ndarray:
    x = envelope - envelope.mean()
    n = x.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    # Unbiased: longer lags have fewer overlapping frames.
    acf = acf / np.maximum(n - np.arange(n), 1)
    return acf / acf[0] if acf[0] > 0 else acf


def _interp(acf: np.ndarray, lags: np.ndarray) -> np.ndarray:
    return np.interp(lags, np.arange(acf.size), acf, right=0.0)


def _salience(acf: np.ndarray, fps: float, bpm: np.ndarray, multiples: int = 4) -> np.ndarray:
    lag = fps * 60.0 / bpm
    total = np.zeros_like(bpm)
    for k in range(1, multiples + 1):
        total += np.maximum(_interp(acf, k * lag), 0.0)
    return total / multiples


def _prior(bpm: np.ndarray, low: float, high: float, width_octaves: float = 0.25) -> np.ndarray:
    """1 inside [low, high], a Gaussian fall-off in octaves outside it."""
    below = np.log2(np.maximum(low / bpm, 1.0))
    above = np.log2(np.maximum(bpm / high, 1.0))
    return np.exp(-0.5 * ((below + above) / width_octaves) ** 2)


def estimate(signal: np.ndarray, rate: int, preferred: tuple[float, float] = DEFAULT_RANGE) -> Tempo:
    envelope, fps = onset_envelope(signal, rate)
    if envelope.size < fps * 4 or not np.any(envelope > 0):
        return Tempo(0.0, 0.0)
    acf = _autocorrelation(envelope)
    grid = MIN_BPM * 2 ** (np.arange(0, np.log2(MAX_BPM / MIN_BPM), 1 / 240))  # 0.3 % steps
    salience = _salience(acf, fps, grid)
    # The strongest periodicity, whatever its metrical level.
    strongest = grid[int(np.argmax(salience))]
    candidates = []
    for ratio in RATIOS:
        centre = strongest * ratio
        if not MIN_BPM <= centre <= MAX_BPM:
            continue
        near = np.abs(np.log2(grid / centre)) < 0.03  # ±2 %: find the local peak
        index = np.flatnonzero(near)[np.argmax(salience[near])]
        candidates.append((grid[index], salience[index]))
    low, high = preferred
    scores = [s * float(_prior(np.array([b]), low, high)[0]) for b, s in candidates]
    best = int(np.argmax(scores))
    bpm = _refine(acf, fps, candidates[best][0])
    ordered = sorted(scores, reverse=True)
    runner_up = ordered[1] if len(ordered) > 1 else 0.0
    # Confident when the chosen level clearly beats the alternatives and the pulse is strong.
    margin = (ordered[0] - runner_up) / ordered[0] if ordered[0] > 0 else 0.0
    strength = min(1.0, candidates[best][1] / 0.5)
    return Tempo(round(bpm, 1), round(float(np.clip(0.5 * margin + 0.5 * strength, 0, 1)), 3))


def _refine(acf: np.ndarray, fps: float, bpm: float) -> float:
    fine = bpm * (1 + np.linspace(-0.02, 0.02, 401))
    salience = _salience(acf, fps, fine, multiples=8)
    return float(fine[int(np.argmax(salience))])
