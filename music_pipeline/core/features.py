"""Audio features DJs sort by: tempo, key (canonical, Camelot, Open Key) and loudness.

The signal is decoded once by ffmpeg to mono float32 at ``ANALYSIS_RATE`` (streamed
through a pipe, no temporary WAV) and shared by tempo and key. Loudness needs the
full-rate, multichannel signal (EBU R128 K-weighting and true peak), so ffmpeg's
``ebur128`` filter measures it.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import media
from .errors import NotAudio

ANALYSIS_RATE = 22_050
PITCHES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]

# Temperley (2001, "The Cognition of Basic Musical Structures") key profiles: better than
# Krumhansl-Kessler on popular music, where the tonic and fifth dominate.
_MAJOR_PROFILE = np.array([5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0])
_MINOR_PROFILE = np.array([5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0])


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, 0 = C
    minor: bool

    @property
    def name(self) -> str:
        """Canonical spelling: "F# minor", "Bb major" (flats for majors except F#, sharps for minors)."""
        names = _MINOR_NAMES if self.minor else PITCHES
        return f"{names[self.tonic]} {'minor' if self.minor else 'major'}"

    @property
    def short(self) -> str:
        """ID3 TKEY notation: "F#m", "Bb"."""
        names = _MINOR_NAMES if self.minor else PITCHES
        return names[self.tonic] + ("m" if self.minor else "")

    @property
    def camelot(self) -> str:
        """Camelot wheel: 8B = C major, 8A = A minor, one step per fifth."""
        major_tonic = (self.tonic + 3) % 12 if self.minor else self.tonic
        number = (8 + 7 * major_tonic - 1) % 12 + 1
        return f"{number}{'A' if self.minor else 'B'}"

    @property
    def open_key(self) -> str:
        """Open Key notation: 1d = C major, 1m = A minor, one step per fifth."""
        major_tonic = (self.tonic + 3) % 12 if self.minor else self.tonic
        number = (7 * major_tonic) % 12 + 1
        return f"{number}{'m' if self.minor else 'd'}"

    @classmethod
    def parse(cls, text: str) -> Key:
        """Parse "F# minor", "Bbm", "A" or Camelot/Open Key notation ("8A", "1d")."""
        raw = text.strip()
        for key in ALL_KEYS:
            if raw.lower() in (key.name.lower(), key.short.lower(), key.camelot.lower(), key.open_key.lower()):
                return key
        body = raw.replace("♯", "#").replace("♭", "b")
        minor = body.lower().endswith(("minor", "min", "m")) and not body.lower().endswith("major")
        root = body.split()[0] if " " in body else body.rstrip("mM").removesuffix("in").removesuffix("inor")
        enharmonic = {"C#": "Db", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb", "Cb": "B", "Fb": "E", "E#": "F", "B#": "C"}
        root = root[:1].upper() + root[1:]
        root = enharmonic.get(root, root)
        if root not in PITCHES:
            raise ValueError(f"not a key: {text!r}")
        return cls(PITCHES.index(root), minor)


ALL_KEYS = [Key(tonic, minor) for minor in (False, True) for tonic in range(12)]


@dataclass(frozen=True)
class Features:
    duration_s: float
    bpm: float
    key: str
    key_short: str
    camelot: str
    open_key: str
    key_confidence: float
    lufs: float | None
    loudness_range_lu: float | None
    true_peak_db: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def decode_mono(path: Path, rate: int = ANALYSIS_RATE) -> np.ndarray:
    """Decode to mono float32 at ``rate`` through an ffmpeg pipe."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
           "-ar", str(rate), "-f", "f32le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        media.raise_for_stderr(proc.stderr.decode("utf-8", "replace"), "decoding for analysis", Path(path))
    signal = np.frombuffer(proc.stdout, dtype=np.float32)
    if signal.size < rate // 2:
        raise NotAudio(f"{Path(path).name} holds less than half a second of audio to analyse.")
    return signal


def estimate_tempo(signal: np.ndarray, rate: int = ANALYSIS_RATE) -> float:
    """BPM to one decimal (first version: librosa's tracker; accuracy work is its own issue)."""
    import librosa

    onset = librosa.onset.onset_strength(y=signal, sr=rate)
    tempo = librosa.feature.tempo(onset_envelope=onset, sr=rate, aggregate=np.median)
    return round(float(np.atleast_1d(tempo)[0]), 1)


def estimate_key(signal: np.ndarray, rate: int = ANALYSIS_RATE) -> tuple[Key, float]:
    """Best-correlating of 24 rotated key profiles against the mean chroma; (key, confidence)."""
    import librosa

    chroma = librosa.feature.chroma_cqt(y=signal, sr=rate)
    profile = chroma.mean(axis=1)
    if not np.any(profile > 0):
        return Key(0, False), 0.0
    scores = []
    for key in ALL_KEYS:
        template = np.roll(_MINOR_PROFILE if key.minor else _MAJOR_PROFILE, key.tonic)
        scores.append(float(np.corrcoef(profile, template)[0, 1]))
    order = np.argsort(scores)[::-1]
    best, runner_up = scores[order[0]], scores[order[1]]
    confidence = max(0.0, min(1.0, (best - runner_up) * 5 + max(best, 0) * 0.5))
    return ALL_KEYS[int(order[0])], round(confidence, 3)


def analyse(path: Path) -> Features:
    """Every feature of one file."""
    signal = decode_mono(path)
    key, confidence = estimate_key(signal)
    level = media.loudness(path)
    return Features(
        duration_s=round(signal.size / ANALYSIS_RATE, 3),
        bpm=estimate_tempo(signal),
        key=key.name,
        key_short=key.short,
        camelot=key.camelot,
        open_key=key.open_key,
        key_confidence=confidence,
        lufs=level["lufs"],
        loudness_range_lu=level["lra"],
        true_peak_db=level["true_peak_db"],
    )
