"""Chromaprint fingerprints through pyacoustid's binding to libchromaprint.

The audio is decoded by ffmpeg (any format it reads, not only what audioread knows) and
fed to Chromaprint as 16-bit PCM; the first ``MAX_SECONDS`` are enough to identify a
recording, as with fpcalc's default.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import acoustid

from ..domain.errors import MediaToolError, NotAudio
from . import media

MAX_SECONDS = 120
FP_RATE = 11_025  # Chromaprint's internal rate: decoding straight to it saves a resampling


@dataclass(frozen=True)
class Fingerprint:
    fingerprint: str  # compressed, base64 (the form AcoustID and fpcalc use)
    duration_s: float  # how much audio the fingerprint covers


def fingerprint_pcm(pcm: bytes, rate: int, channels: int = 1, max_seconds: int = MAX_SECONDS) -> Fingerprint:
    if not acoustid.have_chromaprint:
        raise MediaToolError("libchromaprint is not installed.", hint="Run `music-pipeline doctor`.")
    frames = len(pcm) // (2 * channels)
    if frames < rate:  # Chromaprint needs a few seconds to say anything
        raise NotAudio("too little audio to fingerprint (under one second).")
    try:
        value = acoustid.fingerprint(rate, channels, iter([pcm]), maxlength=max_seconds)
    except acoustid.FingerprintGenerationError as err:
        raise MediaToolError(f"Chromaprint could not fingerprint the audio: {err}") from err
    text = value.decode("ascii") if isinstance(value, bytes) else str(value)
    return Fingerprint(text, round(min(frames / rate, max_seconds), 3))


def fingerprint_float(signal, rate: int, max_seconds: int = MAX_SECONDS) -> Fingerprint:
    """Fingerprint an already decoded mono float signal (shared with the analysis)."""
    import numpy as np

    head = signal[: rate * max_seconds]
    pcm = (np.clip(head, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return fingerprint_pcm(pcm, rate, 1, max_seconds)


def fingerprint_file(path: Path, max_seconds: int = MAX_SECONDS) -> Fingerprint:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-t", str(max_seconds),
           "-ac", "1", "-ar", str(FP_RATE), "-f", "s16le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        media.raise_for_stderr(proc.stderr.decode("utf-8", "replace"), "decoding for the fingerprint", Path(path))
    return fingerprint_pcm(proc.stdout, FP_RATE, 1, max_seconds)
