"""One decode per track, every feature from it.

ffmpeg decodes the file once. Its filter graph splits the decoded audio in two: the
full-rate, all-channel branch goes through the EBU R128 meter (integrated loudness,
loudness range, true peak, as the standard defines them on the original channels), the
other is downmixed to mono and resampled to ``RATE`` and streamed to us as float32. That
one signal serves tempo, key and the Chromaprint fingerprint (11 025 Hz is Chromaprint's
own working rate). Memory stays bounded: 10 minutes of audio are 26 MB here.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import fingerprint as fp
from . import media, tempo, tonality
from .errors import MediaToolError, NotAudio

RATE = 11_025
REPLAYGAIN_REFERENCE_LUFS = -18.0  # ReplayGain 2.0


@dataclass(frozen=True)
class Settings:
    """How to analyse: the preferred BPM range and the key profile."""

    bpm_range: tuple[float, float] = tempo.DEFAULT_RANGE
    key_profile: str = tonality.DEFAULT_PROFILE
    fingerprint: bool = True


@dataclass
class Decoded:
    signal: np.ndarray  # mono float32 at RATE
    lufs: float | None
    loudness_range_lu: float | None
    true_peak_db: float | None

    @property
    def duration_s(self) -> float:
        return self.signal.size / RATE

    def save(self, path: Path) -> None:
        """Store beside the raw file so the next step need not decode again."""
        levels = [np.nan if v is None else v for v in (self.lufs, self.loudness_range_lu, self.true_peak_db)]
        with open(path, "wb") as handle:
            np.savez(handle, signal=self.signal, levels=np.array(levels, dtype=np.float64))

    @classmethod
    def load(cls, path: Path) -> Decoded:
        with np.load(path) as data:
            lufs, lra, peak = (None if np.isnan(v) else float(v) for v in data["levels"])
            return cls(data["signal"].astype(np.float32, copy=False), lufs, lra, peak)


@dataclass(frozen=True)
class Features:
    duration_s: float
    bpm: float
    bpm_confidence: float
    key: str  # canonical, "F# minor"
    key_short: str  # classic, "F#m"
    camelot: str
    open_key: str
    key_confidence: float
    lufs: float | None
    loudness_range_lu: float | None
    true_peak_db: float | None
    replaygain_track_gain_db: float | None
    replaygain_track_peak: float | None
    fingerprint: str | None = None
    fingerprint_duration_s: float | None = None
    elapsed_s: float = field(default=0.0, compare=False)

    def as_dict(self) -> dict:
        return asdict(self)


_SUMMARY = {
    "lufs": re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-inf)\s*LUFS"),
    "lra": re.compile(r"Loudness range:\s*LRA:\s*(-?[\d.]+)\s*LU"),
    "true_peak_db": re.compile(r"True peak:\s*Peak:\s*(-?[\d.]+|-inf)\s*dBFS"),
}


def decode(path: Path) -> Decoded:
    """Decode ``path`` once: the analysis signal and the EBU R128 measurements."""
    graph = ("[0:a:0]asplit=2[meter][analysis];[meter]ebur128=peak=true,anullsink;"
             f"[analysis]aresample={RATE},aformat=sample_fmts=flt:channel_layouts=mono[out]")
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-filter_complex", graph,
           "-map", "[out]", "-f", "f32le", "pipe:1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False)
    except FileNotFoundError as err:
        raise MediaToolError("ffmpeg is not installed.", hint="Run `music-pipeline doctor`.") from err
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        media.raise_for_stderr(stderr, "decoding for analysis", Path(path))
    signal = np.frombuffer(proc.stdout, dtype=np.float32)
    if signal.size < RATE // 2:
        raise NotAudio(f"{Path(path).name} holds less than half a second of audio to analyse.")
    summary = stderr[stderr.rfind("Summary:"):]
    values: dict[str, float | None] = {}
    for name, pattern in _SUMMARY.items():
        match = pattern.search(summary)
        values[name] = None if not match or match.group(1) == "-inf" else float(match.group(1))
    return Decoded(signal, values["lufs"], values["lra"], values["true_peak_db"])


def replaygain(lufs: float | None, true_peak_db: float | None) -> tuple[float | None, float | None]:
    """ReplayGain 2.0 track gain (dB to reach -18 LUFS) and peak (linear)."""
    gain = round(REPLAYGAIN_REFERENCE_LUFS - lufs, 2) if lufs is not None else None
    peak = round(10 ** (true_peak_db / 20), 6) if true_peak_db is not None else None
    return gain, peak


def features_of(decoded: Decoded, settings: Settings | None = None) -> Features:
    """Tempo, key, loudness and fingerprint of an already decoded track."""
    settings = settings or Settings()
    started = time.perf_counter()
    signal = decoded.signal
    beat = tempo.estimate(signal, RATE, settings.bpm_range)
    tonal = tonality.estimate(signal, RATE, settings.key_profile)
    print_ = fp.fingerprint_float(signal, RATE) if settings.fingerprint else None
    gain, peak = replaygain(decoded.lufs, decoded.true_peak_db)
    return Features(
        duration_s=round(decoded.duration_s, 3),
        bpm=beat.bpm,
        bpm_confidence=beat.confidence,
        key=tonal.key.name,
        key_short=tonal.key.short,
        camelot=tonal.key.camelot,
        open_key=tonal.key.open_key,
        key_confidence=tonal.confidence,
        lufs=decoded.lufs,
        loudness_range_lu=decoded.loudness_range_lu,
        true_peak_db=decoded.true_peak_db,
        replaygain_track_gain_db=gain,
        replaygain_track_peak=peak,
        fingerprint=print_.fingerprint if print_ else None,
        fingerprint_duration_s=print_.duration_s if print_ else None,
        elapsed_s=round(time.perf_counter() - started, 4),
    )


def analyse(path: Path, settings: Settings | None = None) -> Features:
    """Decode once and compute every feature; ``elapsed_s`` covers decoding and analysis."""
    started = time.perf_counter()
    result = features_of(decode(path), settings)
    return Features(**{**result.as_dict(), "elapsed_s": round(time.perf_counter() - started, 4)})
