"""One decode per track, every feature from it.

The file is decoded once, in blocks: in-process by libsndfile where it can (WAV, AIFF,
FLAC, Ogg, MP3: no process to start), else by ffmpeg through a pipe. Each block goes to
the EBU R128 meter at its full rate and channel count (loudness and true peak are defined
on the original channels), and, downmixed to mono, through a streaming soxr resampler to
``RATE``. That one signal serves tempo, key and the Chromaprint fingerprint (11 025 Hz is
Chromaprint's own working rate). Each block also feeds the long-term spectrum at full
rate, whose band limit tells a lossless file of lossy audio (``bandlimit``). Memory stays
bounded: only one block is held at full rate, and ten minutes at the analysis rate are 26 MB.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..domain.errors import MediaToolError, NotAudio, TrackError
from . import bandlimit, cues, gridfit, loudness, media, tempo, tonality
from . import fingerprint as fp
from .beatgrid import Cue, Grid

RATE = 11_025
REPLAYGAIN_REFERENCE_LUFS = -18.0  # ReplayGain 2.0
SILENCE_DB = 60.0  # 50 ms this far below the loudest 50 ms are silence (ffmpeg's silencedetect: -60 dB)
SILENCE_WINDOW = RATE // 20
DECODER_VERSION = 3  # bump when the decode or the meter changes: cached decodes are redone


@dataclass(frozen=True)
class Settings:
    """How to analyse: the preferred BPM range and the key profile."""

    bpm_range: tuple[float, float] = tempo.DEFAULT_RANGE
    key_profile: str = tonality.DEFAULT_PROFILE
    fingerprint: bool = True
    grid: bool = True  # the beat grid and cues (off: tempo to a tenth only, as before the grid)


@dataclass
class Decoded:
    signal: np.ndarray  # mono float32 at RATE
    lufs: float | None
    loudness_range_lu: float | None
    true_peak_db: float | None
    cutoff_hz: float | None = None  # the spectrum's band limit (``bandlimit``), None when it has none
    lossless: bool | None = None  # the decoded stream's kind, when the decoder said (libsndfile does)

    @property
    def duration_s(self) -> float:
        return self.signal.size / RATE

    def silence(self) -> tuple[float, float]:
        """Seconds of silence at the start and at the end. Relative to the loudest moment, so
        a quieter copy of the same audio measures the same; copies that differ only in
        silence are not missing anything (``dedup``)."""
        count = self.signal.size // SILENCE_WINDOW
        if not count:
            return 0.0, 0.0
        windows = self.signal[: count * SILENCE_WINDOW].reshape(count, SILENCE_WINDOW).astype(np.float64)
        energy = (windows ** 2).mean(axis=1)
        audible = np.flatnonzero(energy > energy.max() * 10 ** (-SILENCE_DB / 10))
        if not audible.size:
            return round(self.duration_s, 3), 0.0
        lead = float(audible[0] * SILENCE_WINDOW / RATE)
        trail = self.duration_s - float((audible[-1] + 1) * SILENCE_WINDOW / RATE)
        return round(lead, 3), round(max(trail, 0.0), 3)

    def save(self, path: Path, source_id: str) -> None:
        """Store beside the raw file so the next step need not decode again; ``source_id``
        names the exact audio (and decoder version) it came from."""
        levels = [np.nan if v is None else v
                  for v in (self.lufs, self.loudness_range_lu, self.true_peak_db, self.cutoff_hz)]
        with open(path, "wb") as handle:
            np.savez(handle, signal=self.signal, levels=np.array(levels, dtype=np.float64),
                     source=np.array(f"{DECODER_VERSION}:{source_id}"))

    @classmethod
    def load(cls, path: Path, source_id: str) -> Decoded | None:
        """The cached decode, or None when it is missing, damaged or of other audio."""
        try:
            with np.load(path) as data:
                if str(data["source"]) != f"{DECODER_VERSION}:{source_id}":
                    return None
                lufs, lra, peak, cutoff = (None if np.isnan(v) else float(v) for v in data["levels"])
                return cls(data["signal"].astype(np.float32, copy=False), lufs, lra, peak, cutoff)
        except Exception:  # a damaged or foreign cache is only a lost shortcut
            return None


@dataclass(frozen=True)
class Features:
    duration_s: float
    bpm: float | None  # None for silence
    bpm_confidence: float
    key: str | None  # canonical, "F# minor"; None for silence
    key_short: str | None  # classic, "F#m"
    camelot: str | None
    open_key: str | None
    key_confidence: float
    lufs: float | None
    loudness_range_lu: float | None
    true_peak_db: float | None
    replaygain_track_gain_db: float | None
    replaygain_track_peak: float | None
    fingerprint: str | None = None
    fingerprint_duration_s: float | None = None
    cutoff_hz: float | None = None  # where a lossy encoder's lowpass cut the spectrum, if anywhere
    lossy_origin: bool | None = None  # a lossless file whose audio has that cut; None for lossy files
    grid: Grid | None = None  # None: no beat to grid (silence, noise, a drone)
    cues: tuple[Cue, ...] = ()
    elapsed_s: float = field(default=0.0, compare=False)

    def as_dict(self) -> dict:
        """Plain values (JSON): the grid as ``Grid.as_dict``, each cue as a dict."""
        out = asdict(self)
        out["grid"] = self.grid.as_dict() if self.grid else None
        out["cues"] = [{"start_s": c.start_s, "name": c.name, "number": c.number, "colour": list(c.colour)}
                       for c in self.cues]
        return out


BLOCK_FRAMES = 1 << 16  # ~1.5 s at 44.1 kHz: what is in memory at full rate at any time


#: Formats libsndfile decodes exactly. MP3 is left to ffmpeg: libsndfile trusts the length
#: a VBR file without a Xing header seems to have and stops early.
SOUNDFILE_FORMATS = {"WAV", "WAVEX", "RF64", "W64", "AIFF", "FLAC", "OGG", "CAF"}


#: libsndfile's lossy subtypes; the others (PCM, float, FLAC, ALAC) are lossless.
LOSSY_SUBTYPES = {"VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "G721_32", "G723_24",
                  "G723_40", "GSM610", "IMA_ADPCM", "MS_ADPCM", "VOX_ADPCM", "NMS_ADPCM_16", "NMS_ADPCM_24",
                  "NMS_ADPCM_32"}


def _soundfile_blocks(path: Path):
    """(rate, channels, blocks, lossless) read in-process by libsndfile."""
    import soundfile

    info = soundfile.info(str(path))  # raises for formats libsndfile does not read
    if info.format not in SOUNDFILE_FORMATS:
        raise ValueError(f"{info.format} is decoded by ffmpeg")
    blocks = soundfile.blocks(str(path), blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True)
    return info.samplerate, info.channels, blocks, info.subtype not in LOSSY_SUBTYPES


def _ffmpeg_blocks(path: Path):
    """(rate, channels, blocks, None: kind unknown) decoded by ffmpeg (MP3, AAC, Opus, WMA, video containers...) as
    a float WAV stream on a pipe, at the file's own rate and channel count. ffmpeg's messages
    go to a file, not a pipe: a damaged file can print megabytes of them, and a full stderr
    pipe nobody reads would stall ffmpeg and us with it."""
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish(), whatever happens
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-c:a", "pcm_f32le",
           "-f", "wav", "pipe:1"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
    except FileNotFoundError as err:
        errors.close()
        raise MediaToolError("ffmpeg is not installed.", hint="Run `music-pipeline doctor`.") from err
    assert proc.stdout is not None

    def finish(raise_errors: bool) -> None:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        errors.seek(0)
        stderr = errors.read()[-20000:].decode("utf-8", "replace")
        errors.close()
        if raise_errors and code not in (0, -9):
            media.raise_for_stderr(stderr or "Invalid data found when processing input",
                                   "decoding for analysis", Path(path))

    try:
        rate, channels = _read_wav_header(proc.stdout, Path(path))
    except BaseException:
        finish(raise_errors=True)
        raise

    def blocks():
        frame_bytes = 4 * channels
        completed = False
        try:
            while data := proc.stdout.read(BLOCK_FRAMES * frame_bytes):
                usable = len(data) - len(data) % frame_bytes
                yield np.frombuffer(data[:usable], dtype="<f4").reshape(-1, channels)
            completed = True
        finally:
            finish(raise_errors=completed)

    return rate, channels, blocks(), None


def _read_wav_header(stream, path: Path) -> tuple[int, int]:
    header = stream.read(12)
    if len(header) < 12 or header[:4] != b"RIFF":
        raise NotAudio(f"{path.name} decodes to no audio.")
    rate = channels = 0
    while True:
        chunk = stream.read(8)
        if len(chunk) < 8:
            raise NotAudio(f"{path.name} decodes to no audio.")
        size = int.from_bytes(chunk[4:8], "little")
        if chunk[:4] == b"data":
            return rate, channels
        body = stream.read(size + (size & 1))
        if chunk[:4] == b"fmt ":
            channels = int.from_bytes(body[2:4], "little")
            rate = int.from_bytes(body[4:8], "little")


def decode(path: Path, *, loudness: bool = True) -> Decoded:
    """Decode ``path`` once, streaming: the analysis signal, the band limit and the EBU R128
    measurements. ``loudness=False`` leaves out the meter (a third of the time), for a
    caller that only compares copies (``dedup``): loudness and true peak are then None."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise NotAudio(f"{path.name} is missing or empty.")
    try:
        source = _soundfile_blocks(path)
    except Exception:  # libsndfile does not know the format: ffmpeg knows (nearly) all
        return _decode_from(path, _ffmpeg_blocks(path), loudness)
    try:
        return _decode_from(path, source, loudness)
    except NotAudio:
        # libsndfile gives up on damage mid-stream; ffmpeg decodes what can be decoded.
        return _decode_from(path, _ffmpeg_blocks(path), loudness)


def _decode_from(path: Path, source, measure_loudness: bool = True) -> Decoded:
    import soxr

    rate, channels, blocks, lossless = source
    if not rate or not channels:
        raise NotAudio(f"{path.name} has no audio stream.")
    meter = loudness.Meter(rate, channels) if measure_loudness else None
    spectrum = bandlimit.Spectrum(rate)
    resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32", quality="HQ")
    parts = []
    try:
        for block in blocks:
            planar = np.ascontiguousarray(block.T)  # (channels, frames): fast per-channel work
            if meter is not None:
                meter.feed(planar)
            spectrum.feed(planar)
            mono = planar[0] if channels == 1 else planar.mean(axis=0, dtype=np.float32)
            parts.append(resampler.resample_chunk(mono))
    except RuntimeError as err:  # libsndfile's error for a damaged file
        raise NotAudio(f"{path.name} could not be decoded: {err}") from err
    parts.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    signal = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if signal.size < RATE // 2:
        raise NotAudio(f"{path.name} holds less than half a second of audio to analyse.")
    lufs, lra, true_peak = meter.result() if meter is not None else (None, None, None)
    return Decoded(signal, lufs, lra, true_peak, spectrum.cutoff_hz(), lossless)


def replaygain(lufs: float | None, true_peak_db: float | None) -> tuple[float | None, float | None]:
    """ReplayGain 2.0 track gain (dB to reach -18 LUFS) and peak (linear)."""
    gain = round(REPLAYGAIN_REFERENCE_LUFS - lufs, 2) if lufs is not None else None
    peak = round(10 ** (true_peak_db / 20), 6) if true_peak_db is not None else None
    return gain, peak


def features_of(decoded: Decoded, settings: Settings | None = None, lossless: bool | None = None) -> Features:
    """Tempo, key, loudness, band limit and fingerprint of an already decoded track;
    ``lossless`` (the file's kind) when the decode did not say."""
    settings = settings or Settings()
    started = time.perf_counter()
    signal = decoded.signal
    silent = decoded.lufs is None  # nothing above the -70 LUFS gate: no tempo, no key
    envelopes = tempo.onset_envelopes(signal, RATE, gridfit.HOP, gridfit.N_FFT)  # one for tempo and grid
    beat = tempo.from_envelope(envelopes[0], envelopes[2], settings.bpm_range)
    grid = None if silent or not settings.grid else gridfit.estimate(signal, RATE, settings.bpm_range, envelopes,
                                                                      beat)
    # the grid's tempo is the exact one (to 0.01) unless it needs a look
    bpm = grid.bpm if grid is not None and not grid.needs_look else beat.bpm
    tonal = tonality.estimate(signal, RATE, settings.key_profile)
    print_ = None
    if settings.fingerprint:
        try:
            print_ = fp.fingerprint_float(signal, RATE)
        except TrackError:  # no libchromaprint, or too short: the other features still stand
            print_ = None
    gain, peak = replaygain(decoded.lufs, decoded.true_peak_db)
    return Features(
        duration_s=round(decoded.duration_s, 3),
        bpm=None if silent or not bpm else bpm,
        bpm_confidence=0.0 if silent else beat.confidence,
        key=None if silent else tonal.key.name,
        key_short=None if silent else tonal.key.short,
        camelot=None if silent else tonal.key.camelot,
        open_key=None if silent else tonal.key.open_key,
        key_confidence=0.0 if silent else tonal.confidence,
        lufs=decoded.lufs,
        loudness_range_lu=decoded.loudness_range_lu,
        true_peak_db=decoded.true_peak_db,
        replaygain_track_gain_db=gain,
        replaygain_track_peak=peak,
        fingerprint=print_.fingerprint if print_ else None,
        fingerprint_duration_s=print_.duration_s if print_ else None,
        cutoff_hz=decoded.cutoff_hz,
        lossy_origin=bandlimit.lossy_origin(decoded.lossless if lossless is None else lossless, decoded.cutoff_hz),
        grid=grid,
        cues=cues.find(signal, RATE, grid),
        elapsed_s=round(time.perf_counter() - started, 4),
    )


def analyse(path: Path, settings: Settings | None = None) -> Features:
    """Decode once and compute every feature; ``elapsed_s`` covers decoding and analysis."""
    started = time.perf_counter()
    decoded = decode(path)
    lossless = decoded.lossless if decoded.lossless is not None else media.probe(path).lossless
    result = features_of(decoded, settings, lossless)
    return dataclasses.replace(result, elapsed_s=round(time.perf_counter() - started, 4))
