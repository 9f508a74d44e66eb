"""The band limit a lossy encoder leaves: how a lossless file holding lossy audio is told apart.

An MP3, AAC, Vorbis or Opus encoder drops everything above the lowpass frequency its bitrate
can afford (about 16 kHz at 128 kb/s, 20 kHz at the top). Its output's long-term spectrum falls
by tens of dB within a kHz there and stays down up to Nyquist; a FLAC or WAV decoded from it
keeps that cliff. This is the usual fake-FLAC check. Recorded and mixed music rolls off
gradually instead, or carries noise up to Nyquist.

``Spectrum`` is fed the decode's full-rate blocks (``analysis`` decodes once); ``cutoff_hz``
finds the cliff: the edge where the median level of the kHz below stands ``CLIFF_DB`` over
every band above, after at most ``TRANSITION_HZ`` of filter slope; the cutoff reported is the
last band within ``IN_BAND_DB`` of that passband.

A cliff above ``LOSSY_MAX_HZ`` is not taken as a lossy encoder's. The highest lowpasses of
lossy encoders, LAME at 320 kb/s and Opus, measure 20.0–20.2 kHz (on the development corpus's
Hydrogen drum kits and FluidSynth renders, and on noise); but lossless renders through the
FluidR3 soundfont roll off at 20.5–20.7 kHz, and resamplers put their anti-alias filter at
21.1–21.2 kHz (soxr, 48 ↔ 44.1 kHz). Lower down, the corpus's 128 kb/s MP3s and AACs measure
16.0–17.3 kHz with cliffs 31–75 dB deep, while none of its 235 lossless files (renders, drum
kits, chorales, stems) has a cliff deeper than 18 dB below 19.5 kHz. Not told apart: encodes that keep the whole band (Vorbis q5 and up at 20.7 kHz
and beyond, MP3 V0, AAC 256 kb/s), and a file resampled from a lower rate (its cliff is at its
old Nyquist, or beyond its own).
"""

from __future__ import annotations

import numpy as np

FRAME = 4096  # ~10.8 Hz bins at 44.1 kHz
BAND_HZ = 100  # the level curve's resolution
PASS_HZ = 1000  # the passband just below a candidate edge: its median level
TRANSITION_HZ = 1000  # room for the encoder's filter slope (AAC's takes about a kHz)
MIN_STOP_HZ = 500  # a cliff needs at least this much stopband above it to be seen
CLIFF_DB = 25.0  # passband over every band above: lossy cliffs measure 31–85 dB, lossless slopes under 18
SEARCH_FROM_HZ = 10_000  # below, a steep synth filter over digital silence could pass for a cliff
LOSSY_MAX_HZ = 20_300  # above, a cliff may be a soundfont's, a resampler's or a converter's filter
IN_BAND_DB = 10.0  # the cutoff reported: the last band within this of the passband


class Spectrum:
    """The long-term power spectrum of a decode, accumulated block by block."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.power = np.zeros(FRAME // 2 + 1)
        self.frames = 0
        self._window = np.hanning(FRAME).astype(np.float32)

    def feed(self, planar: np.ndarray) -> None:
        """Add a (channels, frames) block. Whole frames only: the decode's blocks are a
        multiple of ``FRAME``, so only the file's last few milliseconds are left out. Each
        channel counts on its own (a mono mix would cancel out-of-phase highs)."""
        usable = planar.shape[1] // FRAME * FRAME
        if not usable:
            return
        frames = planar[:, :usable].reshape(planar.shape[0], -1, FRAME)
        spectra = np.fft.rfft(frames * self._window, axis=-1)
        self.power += (spectra.real ** 2 + spectra.imag ** 2).sum(axis=(0, 1))
        self.frames += frames.shape[0] * frames.shape[1]

    def cutoff_hz(self) -> float | None:
        """Where the spectrum falls off a cliff and stays down, or None when it has none."""
        if not self.frames:
            return None
        return find_cutoff(self.power / self.frames, self.rate)


def find_cutoff(power: np.ndarray, rate: int) -> float | None:
    """The cliff in an averaged ``FRAME``-point power spectrum (see the module's doc)."""
    freqs = np.fft.rfftfreq(FRAME, 1 / rate)
    edges = np.arange(0.0, rate / 2, BAND_HZ)
    starts = np.searchsorted(freqs, edges)
    counts = np.diff(np.r_[starts, power.size])
    levels = 10 * np.log10(np.add.reduceat(power, starts) / counts + 1e-30)[:-1]  # the last band is partial
    below, transition, stop = PASS_HZ // BAND_HZ, TRANSITION_HZ // BAND_HZ, MIN_STOP_HZ // BAND_HZ
    first, last = max(below, SEARCH_FROM_HZ // BAND_HZ), levels.size - transition - stop
    if last < first:
        return None
    above = np.maximum.accumulate(levels[::-1])[::-1]  # above[k]: the loudest band from k up
    passband = np.array([np.median(levels[k - below:k]) for k in range(first, last + 1)])
    depth = passband - above[first + transition:last + transition + 1]
    best = int(depth.argmax())
    if depth[best] < CLIFF_DB:
        return None
    edge = first + best
    in_band = np.flatnonzero(levels[edge - below:edge + transition] >= passband[best] - IN_BAND_DB)
    return float(edges[edge - below + in_band[-1]] + BAND_HZ)


def lossy_origin(lossless: bool | None, cutoff_hz: float | None) -> bool | None:
    """Whether a lossless file holds audio a lossy encoder band-limited; None for a lossy file
    (or one of unknown kind), where the question does not arise."""
    if not lossless:
        return None
    return cutoff_hz is not None and cutoff_hz <= LOSSY_MAX_HZ
