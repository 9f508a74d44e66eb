"""Tempo estimation with metrical-level handling.

1. Onset strength: log-compressed spectral flux of short frames (a drum hit or a note
   onset raises energy across many bins at once), high-passed so slow swells do not count,
   then smoothed over about a frame (12 ms): a beat period rarely falls on a whole number of
   frames, and without the smoothing a pulse's autocorrelation peak is missed by up to half
   its height at some periods, which made a fast pulse look weaker than its half time.
2. Periodicities: the peaks of the autocorrelation of the onset envelope between 30 and
   320 BPM, from the bar down to the subdivisions of the beat.
3. Metrical consistency: bar, beat and subdivisions divide one another by whole numbers,
   so each periodicity is credited with the strength of every other one related to it by a
   ratio of 1 to 8 (closer ratios count more, as in Dixon's BeatRoot tempo induction). A
   cross-rhythm, such as the 3+3+2 figure that repeats every one and a half beats, relates to
   few of the others and loses to the beat it cuts across.
4. Metrical level: the classic mistake is a tempo at half or double the felt beat, since
   those levels are equally consistent. Ellis's (2007) tempo prior decides between them: a
   log-Gaussian 1.4 octaves wide centred on 120 BPM (moved into the preferred range if the
   range excludes it), falling off faster outside the preferred range (default 70-180 BPM).
   Then, like a pitch detector taking the fundamental, the reading climbs to a faster level
   (double or triple) inside the range while that level keeps 3/4 of the strength: a steady
   pulse is as strong at twice its period as at its period, so near-equals mean the faster
   level is the pulse (drum & bass at 174, not 87).
5. Range: a reading far outside the preferred range moves by octaves into it; an octave-
   shifted reading that is not a periodicity of its own gets half the evidence, so this
   happens only where the prior outweighs it (a 90 BPM click asked for 150-230 reads 180; a
   64 BPM tune just below the default range stays at 64).
6. Precision: the winner is refined on a fine grid using periods up to eight beats long,
   which pins the BPM to a tenth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RANGE = (70.0, 180.0)
MIN_BPM, MAX_BPM = 30.0, 320.0  # periodicities considered: a bar of a slow tune to a fast subdivision
PRIOR_CENTRE = 120.0  # BPM: the most common tapping rate, the centre of the tempo prior
PRIOR_WIDTH = 1.4  # octaves: standard deviation of the log-Gaussian tempo prior (Ellis 2007)
OUTSIDE_WIDTH = 0.5  # octaves: the prior's extra fall-off outside the preferred range
RATIO_TOLERANCE = 0.03  # two periods relate by a whole ratio if within 3 % of it
CLIMB_THRESHOLD = 0.75  # "nearly as strong": a faster level keeping 3/4 of the chosen one's strength


@dataclass(frozen=True)
class Tempo:
    bpm: float
    confidence: float  # 0..1: how clearly one periodicity stands out


def onset_envelope(signal: np.ndarray, rate: int, hop: int = 128, n_fft: int = 512,
                   chunk: int = 4096) -> tuple[np.ndarray, float]:
    """Spectral-flux onset strength; returns (envelope, frames per second)."""
    envelope, _, fps = onset_envelopes(signal, rate, hop, n_fft, chunk)
    return envelope, fps


def onset_envelopes(signal: np.ndarray, rate: int, hop: int = 128, n_fft: int = 512, chunk: int = 4096,
                    bass_hz: float = 150.0) -> tuple[np.ndarray, np.ndarray, float]:
    """(onset strength, the same below ``bass_hz``, frames per second): the bass's onsets are
    the kick's and the bass line's, which say where a beat is rather than an off-beat.

    Frames are transformed ``chunk`` at a time so memory stays small for long tracks."""
    fps = rate / hop
    if signal.size < n_fft:
        return np.zeros(1, dtype=np.float32), np.zeros(1, dtype=np.float32), fps
    from scipy.fft import rfft  # imported where analysis runs; vectorised across frames (2-3x numpy's)
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop]
    window = np.hanning(n_fft).astype(np.float32)
    bass_bins = max(1, int(bass_hz * n_fft / rate))  # of the bins after DC
    flux = np.empty(frames.shape[0] - 1, dtype=np.float32)
    bass = np.empty_like(flux)
    previous = None
    for start in range(0, frames.shape[0], chunk):
        spectrum = np.abs(rfft(frames[start:start + chunk] * window, axis=1))
        # Up to ~5.5 kHz at 11 kHz sampling; skip the DC bin.
        log_spec = np.log1p(100.0 * spectrum[:, 1:]).astype(np.float32)
        if previous is not None:
            log_spec = np.concatenate([previous, log_spec])
        rise = np.maximum(np.diff(log_spec, axis=0), 0.0)
        offset = start - 1 if previous is not None else 0
        flux[offset:offset + rise.shape[0]] = rise.sum(axis=1)
        bass[offset:offset + rise.shape[0]] = rise[:, :bass_bins].sum(axis=1)
        previous = log_spec[-1:]
    return _attacks(flux, fps), _attacks(bass, fps), fps


def tonal_envelopes(signal: np.ndarray, rate: int, hop: int = 128, n_fft: int = 1024, lag: int = 2,
                    chunk: int = 4096, bass_hz: float = 150.0) -> tuple[np.ndarray, np.ndarray, float]:
    """Like :func:`onset_envelopes`, for notes that swell rather than strike (choir, strings,
    organ): SuperFlux (Böck and Widmer 2013). Longer frames on a log-frequency filterbank
    (24 bands an octave), each compared with the frame ``lag`` hops before it after a maximum
    filter across three bands: a vibrato moving a partial by a band no longer counts as a new
    note, while a note change still does. Index k is the rise into frame k + 1, as there."""
    fps = rate / hop
    if signal.size < n_fft + lag * hop:
        return np.zeros(1, dtype=np.float32), np.zeros(1, dtype=np.float32), fps
    from scipy.fft import rfft
    from scipy.ndimage import maximum_filter1d

    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    edges = 55.0 * 2 ** (np.arange(0, np.log2(min(5000.0, rate / 2) / 55.0) * 24) / 24)
    band = np.digitize(freqs, edges) - 1  # -1 below the lowest edge, len(edges) - 1 above the top
    used = np.unique(band[(band >= 0) & (band < edges.size - 1)])
    bank = (band[:, None] == used[None, :]).astype(np.float32)
    bank /= bank.sum(axis=0)
    bass_bands = int((edges[used] < bass_hz).sum())
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop]
    window = np.hanning(n_fft).astype(np.float32)
    bands = np.empty((frames.shape[0], used.size), dtype=np.float32)
    for start in range(0, frames.shape[0], chunk):
        spectrum = np.abs(rfft(frames[start:start + chunk] * window, axis=1))
        bands[start:start + chunk] = np.log1p(100.0 * spectrum @ bank)
    reference = maximum_filter1d(bands, size=3, axis=1)
    rise = np.maximum(bands[lag:] - reference[:-lag], 0.0)
    pad = np.zeros(lag - 1, dtype=np.float32)  # rise[j] is into frame j + lag: index it j + lag - 1
    flux = np.concatenate([pad, rise.sum(axis=1)])
    bass = np.concatenate([pad, rise[:, :bass_bands].sum(axis=1)])
    return _attacks(flux, fps), _attacks(bass, fps), fps


def _attacks(flux: np.ndarray, fps: float) -> np.ndarray:
    """Remove the slowly varying part (one-second moving average): only attacks remain."""
    width = max(1, min(int(fps), flux.size))
    local = np.convolve(flux, np.ones(width, dtype=np.float32) / width, mode="same")
    return np.maximum(flux - local, 0.0).astype(np.float32)


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
    return from_envelope(*onset_envelope(signal, rate), preferred)


def from_envelope(envelope: np.ndarray, fps: float, preferred: tuple[float, float] = DEFAULT_RANGE) -> Tempo:
    """The tempo of an :func:`onset_envelope` (the beat grid shares one with the tempo)."""
    if envelope.size < fps * 4 or not np.any(envelope > 0):
        return Tempo(0.0, 0.0)
    # Smoothing by a frame keeps a peak at a fractional lag from falling between two samples.
    from scipy.ndimage import gaussian_filter1d  # imported where analysis runs

    acf = _autocorrelation(gaussian_filter1d(envelope, 1.0))
    grid = MIN_BPM * 2 ** (np.arange(0, np.log2(MAX_BPM / MIN_BPM), 1 / 240))  # 0.3 % steps
    strength = np.maximum(_interp(acf, fps * 60.0 / grid), 0.0)
    peaks = np.flatnonzero((strength[1:-1] > strength[:-2]) & (strength[1:-1] >= strength[2:])) + 1
    if peaks.size == 0:
        return Tempo(0.0, 0.0)
    tempi, heights = grid[peaks], strength[peaks]
    # Metrical consistency: each periodicity gathers the strength of those a whole ratio away.
    ratio = tempi[None, :] / tempi[:, None]
    ratio = np.maximum(ratio, 1 / ratio)
    whole = np.round(ratio)
    related = (np.abs(ratio - whole) <= RATIO_TOLERANCE * ratio) & (whole <= 8)
    weight = np.where(whole <= 4, 6 - whole, 1.0)
    consistency = (related * weight * heights[None, :]).sum(axis=1)
    low, high = preferred
    best = int(np.argmax(consistency * _prior(tempi, low, high)))
    # A pulse is as strong at twice its period as at its period: on a near tie, the faster
    # related level (double or triple) inside the range is the pulse.
    while True:
        faster = np.flatnonzero(related[best] & (tempi > 1.9 * tempi[best]) & (tempi < 3.1 * tempi[best])
                                & (tempi <= high) & (heights >= CLIMB_THRESHOLD * heights[best]))
        if faster.size == 0:
            break
        best = int(faster[np.argmax(tempi[faster])])
    # Far outside the range, an octave shift (credited half the evidence) wins on the prior.
    choice, support = tempi[best], consistency[best] * _prior(tempi[best], low, high)
    for octave in (-2, -1, 1, 2):
        shifted = tempi[best] * 2.0 ** octave
        if 0.5 * consistency[best] * _prior(shifted, low, high) > support:
            choice, support = shifted, 0.5 * consistency[best] * _prior(shifted, low, high)
    bpm = _refine(acf, fps, float(choice))
    # Confidence: how strongly the onsets repeat at that period, and how clearly it stands
    # out from the other periodicities near the range.
    chosen = float(np.interp(bpm, grid, strength))
    near = (tempi >= low / 2) & (tempi <= high) & (np.abs(np.log2(tempi / bpm)) > 0.05)
    rival = float(heights[near].max()) if near.any() else 0.0
    margin = max(0.0, chosen - rival) / chosen if chosen > 0 else 0.0
    confidence = float(np.clip(0.5 * min(1.0, chosen / 0.5) + 0.5 * min(1.0, 4 * margin), 0, 1))
    return Tempo(round(bpm, 1), round(confidence, 3))


def _prior(bpm: np.ndarray | float, low: float, high: float) -> np.ndarray | float:
    """Log-Gaussian around 120 BPM (or the nearest end of the range), falling off faster outside it."""
    octaves = np.log2(bpm)
    centre = np.log2(min(max(PRIOR_CENTRE, low), high))
    outside = np.maximum(0.0, np.log2(low) - octaves) + np.maximum(0.0, octaves - np.log2(high))
    return np.exp(-0.5 * ((octaves - centre) / PRIOR_WIDTH) ** 2 - 0.5 * (outside / OUTSIDE_WIDTH) ** 2)


def _refine(acf: np.ndarray, fps: float, bpm: float) -> float:
    fine = bpm * (1 + np.linspace(-0.02, 0.02, 401))
    salience = _salience(acf, fps, fine, multiples=8)
    return float(fine[int(np.argmax(salience))])
