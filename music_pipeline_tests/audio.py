"""Test audio with known properties, generated with numpy and written by ffmpeg.

The music is simple but real: a kick on every beat at a given tempo under a chord
progression in a given key, so tempo and key estimators have something honest to find.

Within a test session a file is encoded once per set of parameters (the ``audio_cache``
fixture points :data:`CACHE` at a session folder) and copied to where each test asks for it:
no two tests share a file, so a test may change its copy freely.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

#: The session's folder of encoded files (set by conftest's ``audio_cache`` fixture; None: no cache).
CACHE: Path | None = None


def _cached(path: Path, key: object, encode) -> Path:
    """``path`` as a copy of the cached encoding named by ``key``, made by ``encode(target)`` once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if CACHE is None:
        encode(path)
        return path
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]
    cached = CACHE / f"{digest}{path.suffix}"  # the container follows the extension
    if not cached.exists():
        partial = cached.with_name(f"{cached.stem}.{os.getpid()}.part{path.suffix}")  # workers may race
        encode(partial)
        partial.replace(cached)
    shutil.copyfile(cached, path)
    return path

NOTE = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6,
        "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11}


def _freq(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def song(seconds: float = 8.0, bpm: float = 120.0, tonic: str = "A", minor: bool = True,
         rate: int = 44_100, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A kick on every beat plus a i-iv-v-i (or I-IV-V-I) progression; float32 (frames, channels)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros(n, dtype=np.float64)
    beat = 60.0 / bpm
    # Kick: a short decaying 55 Hz thump with a click, on every beat.
    kick_len = int(0.12 * rate)
    kt = np.arange(kick_len) / rate
    kick = np.sin(2 * np.pi * 55 * kt * (1 + 2 * np.exp(-kt * 40))) * np.exp(-kt * 25)
    for start in np.arange(0, seconds, beat):
        i = int(start * rate)
        out[i:i + kick_len] += 0.8 * kick[: max(0, min(kick_len, n - i))]
    # Hi-hat noise bursts on off-beats make onsets unmistakable.
    hat_len = int(0.03 * rate)
    for start in np.arange(beat / 2, seconds, beat):
        i = int(start * rate)
        burst = rng.standard_normal(hat_len) * np.exp(-np.arange(hat_len) / rate * 150) * 0.15
        out[i:i + hat_len] += burst[: max(0, min(hat_len, n - i))]
    # Chords: two bars each, root position triads over a bass note.
    root = 48 + NOTE[tonic]  # tonic between C3 and B3
    third = 3 if minor else 4
    progression = [0, 5, 7, 0]
    bar = 4 * beat
    for index, start in enumerate(np.arange(0, seconds, 2 * bar)):
        degree = progression[index % len(progression)]
        chord_third = third if degree != 7 else 4  # harmonic minor dominant
        i0, i1 = int(start * rate), min(n, int((start + 2 * bar) * rate))
        seg = t[i0:i1] - start
        env = np.minimum(1, seg * 20) * np.exp(-seg * 0.3)
        for interval, gain in ((0, 0.25), (chord_third, 0.2), (7, 0.2), (-12, 0.3)):
            f = _freq(root + degree + interval)
            out[i0:i1] += gain * env * (np.sin(2 * np.pi * f * seg) + 0.3 * np.sin(4 * np.pi * f * seg))
    out /= max(1e-9, np.abs(out).max()) / 0.7
    return np.repeat(out[:, None], channels, axis=1).astype(np.float32)


def choir(seconds: float, bpm: float, rate: int = 44_100, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Four voices, a new chord on every beat, legato, no percussion: each note swells in
    (half its level after 170 ms) while the one before it fades out, and each voice's vibrato
    (5-7.5 Hz) moves its level as well as its pitch, as a sampled choir's does: between the
    notes the sound pulses a dozen times a second, off the beat. float32 (frames, channels)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n, dtype=np.float64)
    beat = 60.0 / bpm
    chords = [(0, 4, 7, 12), (5, 9, 12, 17), (7, 11, 14, 19), (9, 12, 16, 21), (2, 5, 9, 14), (4, 7, 11, 16)]
    previous = -1
    for start in np.arange(0, seconds, beat):
        choice = int(rng.integers(len(chords) - 1))
        choice += choice >= previous  # never the same chord twice: every beat changes the harmony
        previous = choice
        i0, i1 = int(start * rate), min(n, int((start + beat + 0.2) * rate))  # overlaps the next swell
        seg = np.arange(i1 - i0) / rate
        env = (1 - np.exp(-seg / 0.24)) * np.clip((beat + 0.2 - seg) / 0.2, 0, 1)
        for voice, interval in enumerate(chords[choice]):
            f = _freq(48 + interval + 12 * (voice > 1))
            wobble = np.sin(2 * np.pi * rng.uniform(5.0, 7.5) * seg + rng.uniform(0, 2 * np.pi))
            phase = 2 * np.pi * f * (seg + np.cumsum(0.01 * wobble) / rate)
            out[i0:i1] += 0.2 * env * (1 + 0.5 * wobble) * (np.sin(phase) + 0.4 * np.sin(2 * phase)
                                                             + 0.2 * np.sin(3 * phase))
    out /= max(1e-9, np.abs(out).max()) / 0.7
    return np.repeat(out[:, None], channels, axis=1).astype(np.float32)


def write(path: Path, signal: np.ndarray, rate: int = 44_100, codec_args: list[str] | None = None,
          metadata: dict[str, str] | None = None) -> Path:
    """Encode ``signal`` with ffmpeg; the container follows ``path``'s extension."""
    data = np.ascontiguousarray(signal, dtype=np.float32)
    key = ["write", hashlib.sha256(data.tobytes()).hexdigest(), data.shape, rate, codec_args, metadata]
    return _cached(path, key, lambda target: _encode(target, data, rate, codec_args, metadata))


def _encode(path: Path, signal: np.ndarray, rate: int, codec_args: list[str] | None,
            metadata: dict[str, str] | None) -> None:
    channels = signal.shape[1] if signal.ndim == 2 else 1
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0"]
    for name, value in (metadata or {}).items():
        cmd += ["-metadata", f"{name}={value}"]
    cmd += [*(codec_args or []), str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(signal, dtype=np.float32).tobytes(), check=True)


def make_track(path: Path, seconds: float = 8.0, bpm: float = 120.0, tonic: str = "A", minor: bool = True,
               rate: int = 44_100, codec_args: list[str] | None = None, metadata: dict[str, str] | None = None,
               seed: int = 0) -> Path:
    """A :func:`song` encoded to ``path`` (by parameters: the song is not even computed when cached)."""
    key = ["song", seconds, bpm, tonic, minor, rate, seed, codec_args, metadata]
    return _cached(path, key, lambda target: _encode(target, song(seconds, bpm, tonic, minor, rate, seed=seed),
                                                     rate, codec_args, metadata))


def click_track(seconds: float, bpm: float, rate: int = 44_100, accent_every: int = 4) -> np.ndarray:
    """Clicks on every beat (accented on the first of each bar): the plainest tempo test."""
    n = int(seconds * rate)
    out = np.zeros(n)
    length = int(0.02 * rate)
    t = np.arange(length) / rate
    click = np.sin(2 * np.pi * 1500 * t) * np.exp(-t * 300)
    for index, start in enumerate(np.arange(0, seconds, 60.0 / bpm)):
        i = int(start * rate)
        gain = 1.0 if index % accent_every == 0 else 0.6
        out[i:i + length] += gain * click[: max(0, min(length, n - i))]
    return np.repeat((0.8 * out / np.abs(out).max())[:, None], 2, axis=1).astype(np.float32)


def scale(tonic: str, minor: bool, seconds: float = 12.0, rate: int = 44_100) -> np.ndarray:
    """The scale (harmonic minor for minor keys) up and down over a tonic drone, piano-like tones."""
    steps = [0, 2, 3, 5, 7, 8, 11, 12] if minor else [0, 2, 4, 5, 7, 9, 11, 12]
    melody = steps + steps[-2::-1]
    n = int(seconds * rate)
    out = np.zeros(n)
    base = 60 + NOTE[tonic]
    note_len = seconds / len(melody)
    t_note = np.arange(int(note_len * rate)) / rate
    env = np.minimum(1, t_note * 50) * np.exp(-t_note * 2)
    for index, step in enumerate(melody):
        f = _freq(base + step)
        i = int(index * note_len * rate)
        tone = sum(np.sin(2 * np.pi * f * k * t_note) / k ** 1.5 for k in range(1, 6))
        out[i:i + t_note.size] += (env * tone)[: max(0, min(t_note.size, n - i))]
    t = np.arange(n) / rate
    third = 3 if minor else 4
    for interval in (-12, -12 + third, -12 + 7):  # the tonic triad, sustained low
        out += 0.15 * np.sin(2 * np.pi * _freq(base + interval) * t)
    out /= np.abs(out).max() / 0.7
    return np.repeat(out[:, None], 2, axis=1).astype(np.float32)


def cross_rhythm(seconds: float, bpm: float, rate: int = 44_100, seed: int = 0) -> np.ndarray:
    """A 3+3+2 drum figure: kicks on eighths 1, 4 and 7 of each bar, hi-hats accented on beats 2
    and 4 and quiet on the other eighths. The kicks repeat every one and a half beats, a
    periodicity that is not the beat."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    kick_len, hat_len = int(0.12 * rate), int(0.03 * rate)
    kt = np.arange(kick_len) / rate
    kick = np.sin(2 * np.pi * 55 * kt * (1 + 2 * np.exp(-kt * 40))) * np.exp(-kt * 25)
    for index, start in enumerate(np.arange(0, seconds, 30.0 / bpm)):
        i, eighth = int(start * rate), index % 8
        if eighth in (0, 3, 6):
            out[i:i + kick_len] += 0.8 * kick[: max(0, min(kick_len, n - i))]
        hat = rng.standard_normal(hat_len) * np.exp(-np.arange(hat_len) / rate * 150)
        out[i:i + hat_len] += (0.3 if eighth in (2, 6) else 0.05) * hat[: max(0, min(hat_len, n - i))]
    return np.repeat((0.7 * out / np.abs(out).max())[:, None], 2, axis=1).astype(np.float32)


def sections(parts: list[tuple[int, str]], bpm: float = 126.0, rate: int = 44_100, seed: int = 0) -> np.ndarray:
    """A dance track built from sections of whole bars, each ``(bars, kind)``: "intro" (kick
    and hats), "drop" (kick, hats, bass and chords, loud), "break" (chords alone, soft),
    "outro" (kick alone). Every section starts on a downbeat; float32 (frames, 2)."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    total = sum(bars for bars, _ in parts) * 4 * beat
    n = int(total * rate)
    out = np.zeros(n)
    kick_t = np.arange(int(0.15 * rate)) / rate
    kick = np.sin(2 * np.pi * 50 * kick_t * (1 + 2 * np.exp(-kick_t * 40))) * np.exp(-kick_t * 22)
    kick *= np.minimum(1, (kick_t[-1] - kick_t) * 200)  # faded out, no click at its end
    hat_len = int(0.03 * rate)
    start = 0.0
    for bars, kind in parts:
        length = bars * 4 * beat
        for b in range(bars * 4):
            t = start + b * beat
            i = int(t * rate)
            if kind in ("intro", "drop", "outro"):
                seg = kick[: max(0, min(kick.size, n - i))]
                out[i:i + seg.size] += 0.9 * seg
            if kind in ("intro", "drop"):
                j = int((t + beat / 2) * rate)
                burst = rng.standard_normal(hat_len) * np.exp(-np.arange(hat_len) / rate * 150) * 0.2
                out[j:j + hat_len] += burst[: max(0, min(hat_len, n - j))]
        if kind in ("drop", "break"):
            i0, i1 = int(start * rate), min(n, int((start + length) * rate))
            tt = np.arange(i1 - i0) / rate
            gain = 0.5 if kind == "drop" else 0.12
            for f in (220.0, 277.2, 329.6, 110.0):
                out[i0:i1] += gain * np.sin(2 * np.pi * f * tt) * np.minimum(1, tt * 50)
        start += length
    out /= np.abs(out).max() / 0.8
    return np.repeat(out[:, None], 2, axis=1).astype(np.float32)
