"""Key estimation: a harmonic pitch-class profile matched against key profiles.

The chroma is built from spectral peaks rather than all bins (HPCP, Gómez 2006): noise and
drums spread over every bin, tones make peaks. Each peak adds to its pitch class and, more
weakly, to the pitch classes of the notes it could be an overtone of (an octave, a twelfth,
two octaves below): without that, the strong third harmonic of every note pulls the
estimate a fifth up, the usual dominant/subdominant confusion. The tuning reference is
estimated from the peaks themselves, so a record a quarter-tone sharp is read correctly.

A second profile counts the bass notes alone (the lowest clear peak of each frame), which
separates a minor key from its relative major; both are matched against 24 rotated key
profiles by correlation, the bass at half weight. Profiles: Temperley
(2005), Krumhansl-Kessler (1982), and Faraldo et al.'s "edma", derived from electronic
dance music (ISMIR 2016); the default is configurable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..domain.keys import ALL_KEYS, Key

PROFILES: dict[str, tuple[list[float], list[float]]] = {
    "temperley": ([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400],
                  [0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330]),
    "krumhansl": ([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88],
                  [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
    "edma": ([0.16519551, 0.04749026, 0.08293076, 0.06687112, 0.09994645, 0.09274123, 0.05294487,
              0.13159476, 0.05218986, 0.07443653, 0.06940723, 0.0642515],
             [0.17235348, 0.05336489, 0.0761009, 0.10043649, 0.05621498, 0.08527853, 0.0497915,
              0.13451001, 0.07458916, 0.05003023, 0.09187879, 0.05545106]),
}
DEFAULT_PROFILE = "temperley"

N_FFT = 4096
HOP = 2048
F_MIN, F_MAX = 60.0, 3500.0
BINS_PER_SEMITONE = 3
HARMONICS = (1, 2, 3, 4)
HARMONIC_DECAY = 0.6
WEIGHT_POWER = 2.0  # peak energy
PEAK_FLOOR = 10 ** (-60 / 20)  # peaks more than 60 dB below the frame's loudest are noise
# Bass notes from B1 to C4. Below ~60 Hz sit the kick drum's fundamental (an 808 at 45-55 Hz
# would otherwise vote in every frame of a dance track) and little else that names a key.
BASS_MIN, BASS_MAX = 60.0, 260.0
BASS_FLOOR = 10 ** (-30 / 20)  # a bass note must be within 30 dB of the frame's loudest peak
BASS_WEIGHT = 0.5  # the bass profile counts half as much as the harmonic one
# Bass lines rest on the tonic more than on anything else: matched against Krumhansl-Kessler,
# whose tonic clearly leads the dominant (in Temperley's minor profile the dominant leads,
# which would read a i-iv-V-i bass as the key of iv).
BASS_PROFILE = "krumhansl"


@dataclass(frozen=True)
class KeyEstimate:
    key: Key
    confidence: float  # 0..1
    chroma: tuple[float, ...]  # the 12-bin profile, C first, max 1


def _peaks(signal: np.ndarray, rate: int, chunk: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame index, frequency Hz, magnitude relative to its frame's loudest peak) of every
    frame's spectral peaks, in frame then frequency order; frames are transformed ``chunk`` at
    a time to keep memory small."""
    if signal.size < N_FFT:
        signal = np.pad(signal, (0, N_FFT - signal.size))
    frames = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP]
    window = np.hanning(N_FFT).astype(np.float32)
    frame_ids, freqs, mags = [], [], []
    for start in range(0, frames.shape[0], chunk):
        spec = np.abs(np.fft.rfft(frames[start:start + chunk] * window, axis=1))
        lo, hi = int(BASS_MIN * N_FFT / rate), min(spec.shape[1] - 2, int(F_MAX * N_FFT / rate))
        mid = spec[:, lo:hi]
        left, right = spec[:, lo - 1:hi - 1], spec[:, lo + 1:hi + 1]
        frame_max = spec.max(axis=1, keepdims=True) + 1e-12
        is_peak = (mid > left) & (mid >= right) & (mid > frame_max * PEAK_FLOOR)
        f_idx, b_idx = np.nonzero(is_peak)
        if f_idx.size == 0:
            continue
        # Parabolic interpolation on log magnitude for the true peak frequency.
        a = np.log(left[f_idx, b_idx] + 1e-12)
        b = np.log(mid[f_idx, b_idx] + 1e-12)
        c = np.log(right[f_idx, b_idx] + 1e-12)
        denom = a - 2 * b + c
        offset = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / denom, 0.0)
        frame_ids.append(start + f_idx)
        freqs.append((lo + b_idx + offset) * rate / N_FFT)
        # Each frame weighs the same (its loudest peak is 1): a loud chorus does not outvote a verse.
        mags.append(mid[f_idx, b_idx] / frame_max[f_idx, 0])
    if not freqs:
        return np.zeros(0, dtype=int), np.zeros(0), np.zeros(0)
    return np.concatenate(frame_ids), np.concatenate(freqs), np.concatenate(mags)


def _tuning(pitch: np.ndarray, weight: np.ndarray) -> float:
    """Deviation from A440 in semitones (-0.5..0.5), a circular mean of peak pitches."""
    angle = 2 * np.pi * (pitch - np.round(pitch))
    z = np.sum(weight * np.exp(1j * angle))
    return float(np.angle(z) / (2 * np.pi)) if abs(z) > 0 else 0.0


def _fold(pitch: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Pitch-class histogram (36 bins, cos² spread, folded to 12; C first)."""
    bins = 12 * BINS_PER_SEMITONE
    profile = np.zeros(bins)
    position = (pitch * BINS_PER_SEMITONE) % bins
    for shift in (-1, 0, 1):  # spread over neighbouring bins with a cos² window
        target = np.floor(position).astype(int) + shift
        distance = np.abs(position - target) / BINS_PER_SEMITONE  # in semitones
        w = np.where(distance < 2 / 3, np.cos(np.pi / 2 * distance / (2 / 3)) ** 2, 0.0)
        profile += np.bincount(target % bins, weights=weight * w, minlength=bins)
    # Fold the 36 bins to 12: each semitone's centre bin plus its two neighbours.
    return np.roll(profile, BINS_PER_SEMITONE // 2).reshape(12, BINS_PER_SEMITONE).sum(axis=1)


def _normalised(values: np.ndarray) -> np.ndarray:
    return values / values.max() if values.max() > 0 else values


def chromas(signal: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(harmonic pitch-class profile, bass pitch-class profile), 12 bins each, C first, max 1.

    The bass profile counts, in each frame, the lowest clear peak below ``BASS_MAX``: the
    bass line carries the chord roots, and tonal music dwells on its tonic and dominant,
    which is what tells a minor key from its relative major (A minor from C major)."""
    frame, freq, magnitude = _peaks(signal, rate)
    if freq.size == 0:
        return np.zeros(12), np.zeros(12)
    pitch = 12 * np.log2(freq / 440.0) + 69  # MIDI pitch, fractional
    weight = magnitude ** WEIGHT_POWER
    pitch = pitch - _tuning(pitch, weight)
    upper = freq >= F_MIN
    harmonic = np.zeros(12)
    for h, gain in zip(HARMONICS, HARMONIC_DECAY ** np.arange(len(HARMONICS)), strict=True):
        # Count the peak also for the note it would be harmonic h of.
        harmonic += gain * _fold(pitch[upper] - 12 * np.log2(h), weight[upper])
    low = (freq < BASS_MAX) & (magnitude >= BASS_FLOOR)
    _, first = np.unique(frame[low], return_index=True)  # peaks come sorted: first = lowest
    bass = _fold(pitch[low][first], weight[low][first])
    return _normalised(harmonic), _normalised(bass)


def _correlations(values: np.ndarray, major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    if not np.any(values > 0) or np.allclose(values, values[0]):
        return np.zeros(len(ALL_KEYS))
    return np.array([np.corrcoef(values, np.roll(minor if k.minor else major, k.tonic))[0, 1] for k in ALL_KEYS])


def estimate(signal: np.ndarray, rate: int, profile: str = DEFAULT_PROFILE) -> KeyEstimate:
    pcp, bass = chromas(signal, rate)
    if not np.any(pcp > 0):
        return KeyEstimate(Key(0, False), 0.0, tuple(pcp))
    major, minor = (np.asarray(p, dtype=float) for p in PROFILES[profile])
    bass_major, bass_minor = (np.asarray(p, dtype=float) for p in PROFILES[BASS_PROFILE])
    scores = (_correlations(pcp, major, minor)
              + BASS_WEIGHT * _correlations(bass, bass_major, bass_minor)) / (1 + BASS_WEIGHT)
    order = np.argsort(scores)[::-1]
    best, second = scores[order[0]], scores[order[1]]
    confidence = float(np.clip(max(best, 0.0) * min(1.0, (best - second) * 10), 0.0, 1.0))
    return KeyEstimate(ALL_KEYS[int(order[0])], round(confidence, 3), tuple(np.round(pcp, 4)))
