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
PULSE_THRESHOLD = 0.75  # "nearly as strong": a faster period keeping 3/4 of the strongest one's strength


@dataclass(frozen=True)
class Tempo:
    bpm: float
    confidence: float  # 0..1: how clearly one periodicity stands out


def onset_envelope(signal: np.ndarray, rate: int, hop: int = 128, n_fft: int = 512,
                   chunk: int = 4096) -> tuple[np.ndarray, float]:
    """Spectral-flux onset strength; returns (envelope, frames per second).

    Frames are transformed ``chunk`` at a time so memory stays small for long tracks."""
    fps = rate / hop
    if signal.size < n_fft:
        return np.zeros(1, dtype=np.float32), fps
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop]
    window = np.hanning(n_fft).astype(np.float32)
    flux = np.empty(frames.shape[0] - 1, dtype=np.float32)
    previous = None
    for start in range(0, frames.shape[0], chunk):
        spectrum = np.abs(np.fft.rfft(frames[start:start + chunk] * window, axis=1))
        # Up to ~5.5 kHz at 11 kHz sampling; skip the DC bin.
        log_spec = np.log1p(100.0 * spectrum[:, 1:]).astype(np.float32)
        if previous is not None:
            log_spec = np.concatenate([previous, log_spec])
        diff = np.maximum(np.diff(log_spec, axis=0), 0.0).sum(axis=1)
        offset = start - 1 if previous is not None else 0
        flux[offset:offset + diff.size] = diff
        previous = log_spec[-1:]
    # Remove the slowly varying part (one-second moving average): only attacks remain.
    width = max(1, min(int(fps), flux.size))
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


def estimate(signal: np.ndarray, rate: int, preferred: tuple[float, float] = DEFAULT_RANGE) -> Tempo:
    envelope, fps = onset_envelope(signal, rate)
    if envelope.size < fps * 4 or not np.any(envelope > 0):
        return Tempo(0.0, 0.0)
    acf = _autocorrelation(envelope)
    low, high = preferred
    grid = MIN_BPM * 2 ** (np.arange(0, np.log2(MAX_BPM / MIN_BPM), 1 / 240))  # 0.3 % steps
    strength = np.maximum(_interp(acf, fps * 60.0 / grid), 0.0)
    peaks = np.flatnonzero((strength[1:-1] > strength[:-2]) & (strength[1:-1] >= strength[2:])) + 1
    allowed = peaks[(grid[peaks] >= low / 2) & (grid[peaks] <= high)]
    if allowed.size == 0:
        return Tempo(0.0, 0.0)
    # A periodic pulse repeats at every multiple of its period, so the slower readings (half,
    # a third of the tempo) are as strong as the true one: like a pitch detector, take the
    # fastest periodicity that is nearly as strong as the strongest one.
    top = strength[allowed].max()
    strong = allowed[strength[allowed] >= PULSE_THRESHOLD * top]
    choice = grid[strong.max()]
    while choice < low and choice * 2 <= high:  # below the range: count the double time
        choice *= 2
    bpm = _refine(acf, fps, choice)
    # Confidence: how strongly the onsets repeat at that period, and how clearly it stands
    # out from the other periodicities.
    chosen = float(np.interp(bpm, grid, strength))
    others = strength[allowed][np.abs(np.log2(grid[allowed] / bpm)) > 0.05]
    rival = float(others.max()) if others.size else 0.0
    margin = max(0.0, chosen - rival) / chosen if chosen > 0 else 0.0
    confidence = float(np.clip(0.5 * min(1.0, chosen / 0.5) + 0.5 * min(1.0, 4 * margin), 0, 1))
    return Tempo(round(bpm, 1), round(confidence, 3))


def _refine(acf: np.ndarray, fps: float, bpm: float) -> float:
    fine = bpm * (1 + np.linspace(-0.02, 0.02, 401))
    salience = _salience(acf, fps, fine, multiples=8)
    return float(fine[int(np.argmax(salience))])
