"""Music for duplicate detection: a seeded tune, its real transformations and its look-alikes.

``tune(seed)`` is a melody, chords, bass and a kick drum, all drawn from the seed, so two
seeds are two songs. ``rerender(seed)`` plays the same notes at the same tempo as another
"band" would (other instruments and register, hats and snare, human timing): the same
composition, a different recording. ``stem(seed)`` is the melody of ``tune(seed)`` alone.
``bright(seed)`` is ``tune(seed)`` with hi-hats whose noise reaches Nyquist, as cymbals and
air give recorded music: a lossy encoder's lowpass shows in its spectrum.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

RATE = 44_100
SCALE = [0, 2, 3, 5, 7, 8, 10]


def _score(seed: int) -> tuple[float, int, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    beat = 60.0 / float(100 + rng.integers(0, 40))
    root = 57 + int(rng.integers(0, 7))
    return beat, root, rng.integers(0, 7, size=64), rng.integers(0, 14, size=512), rng.choice([0.5, 1, 1, 2], size=512)


def _freq(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


class _Track:
    def __init__(self, seconds: float) -> None:
        self.n = int(seconds * RATE)
        self.out = np.zeros(self.n)

    def add(self, start_s: float, sig: np.ndarray) -> None:
        i = max(0, int(start_s * RATE))
        self.out[i:i + sig.size] += sig[: max(0, min(sig.size, self.n - i))]

    def stereo(self) -> np.ndarray:
        out = self.out / (np.abs(self.out).max() / 0.7)
        return np.repeat(out[:, None], 2, axis=1).astype(np.float32)


def _plucked(f: float, length: float, amp: float) -> np.ndarray:
    t = np.arange(int(length * RATE)) / RATE
    return amp * np.minimum(1, t * 80) * np.exp(-t * 3) * sum(np.sin(2 * np.pi * f * k * t) / k ** 2 for k in range(1, 4))


def _pad(f: float, length: float, amp: float) -> np.ndarray:
    t = np.arange(int(length * RATE)) / RATE
    env = np.minimum(1, t * 6) * np.minimum(1, (length - t) * 6)
    return amp * env * (np.sin(2 * np.pi * f * t) + 0.5 * np.sin(2 * np.pi * 2 * f * t + 1))


def tune(seed: int, seconds: float = 40.0, melody: bool = True, band: bool = True) -> np.ndarray:
    beat, root, chords, notes, lengths = _score(seed)
    track = _Track(seconds)
    if melody:
        pos, k = 0.0, 0
        while pos < seconds:
            step = notes[k]
            track.add(pos, _plucked(_freq(root + 12 + SCALE[step % 7] + 12 * (step // 7)), lengths[k] * beat, 0.3))
            pos, k = pos + lengths[k] * beat, k + 1
    if band:
        for bar, start in enumerate(np.arange(0, seconds, 4 * beat)):
            chord = chords[bar % 64]
            for interval in (0, 2, 4):
                track.add(start, _plucked(_freq(root + SCALE[(chord + interval) % 7]), 4 * beat, 0.15))
            track.add(start, _plucked(_freq(root - 24 + SCALE[chord]), 4 * beat, 0.3))
        kt = np.arange(int(0.1 * RATE)) / RATE
        kick = np.sin(2 * np.pi * 55 * kt * (1 + 2 * np.exp(-kt * 40))) * np.exp(-kt * 25)
        for start in np.arange(0, seconds, beat):
            track.add(start, 0.6 * kick)
    return track.stereo()


def stem(seed: int, seconds: float = 40.0) -> np.ndarray:
    return tune(seed, seconds, melody=True, band=False)


def rerender(seed: int, seconds: float = 40.0) -> np.ndarray:
    beat, root, chords, notes, lengths = _score(seed)
    human = np.random.default_rng(seed + 1000)
    track = _Track(seconds)
    pos, k = 0.0, 0
    while pos < seconds:
        step = notes[k]
        track.add(pos + human.normal(0, 0.015),
                  _pad(_freq(root + 24 + SCALE[step % 7] + 12 * (step // 7)), lengths[k] * beat, 0.3))
        pos, k = pos + lengths[k] * beat, k + 1
    for bar, start in enumerate(np.arange(0, seconds, 4 * beat)):
        for interval in (0, 2, 4):
            track.add(start, _pad(_freq(root + 12 + SCALE[(chords[bar % 64] + interval) % 7]), 4 * beat, 0.12))
    hat = int(0.03 * RATE)
    for start in np.arange(0, seconds, beat / 2):
        track.add(start, human.standard_normal(hat) * np.exp(-np.arange(hat) / RATE * 150) * 0.2)
    snare = int(0.12 * RATE)
    for start in np.arange(beat, seconds, 2 * beat):
        track.add(start, human.standard_normal(snare) * np.exp(-np.arange(snare) / RATE * 30) * 0.4)
    return track.stereo()


def bright(seed: int, seconds: float = 40.0) -> np.ndarray:
    rng = np.random.default_rng(seed + 2000)
    beat, *_ = _score(seed)
    track = _Track(seconds)
    track.out = tune(seed, seconds)[:, 0].astype(np.float64)
    hat = int(0.06 * RATE)
    for index, start in enumerate(np.arange(0, seconds, beat / 4)):
        gain = 0.3 if index % 2 else 0.15
        track.add(start, gain * rng.standard_normal(hat) * np.exp(-np.arange(hat) / RATE * 50))
    return track.stereo()


def transform(source: Path, dest: Path, *args: str, cut_s: float = 0.0) -> Path:
    """ffmpeg ``source`` to ``dest`` with output arguments (codec, gain, rate), the first
    ``cut_s`` seconds cut off."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", str(cut_s), "-i", str(source), *args, str(dest)],
                   check=True)
    return dest
