"""Fitting the beat grid a DJ mixes on to the onsets of a track.

A DJ grid is a line: beat ``k`` falls at ``t0 + k * period``, to the end of the track. Beat
trackers (librosa's, essentia's) place each beat where the local evidence is best, which
wobbles and sits late; a grid extrapolated from their tempo drifts off within a minute.
Here the line itself is fitted, from all the track's evidence at once:

1. Onsets: the peaks of the spectral-flux envelope the tempo estimate already computed (one
   envelope for both), placed between frames by parabolic interpolation, each weighted by
   its strength. Where they fit no grid (a choir, strings or an organ: notes that swell, with
   a tremolo the short frames take for onsets), the tonal onsets of longer frames are tried
   (SuperFlux, ``tempo.tonal_envelopes``) and kept where clearly more coherent; their tempo
   where clearly more confident.
2. Period and phase: the tempo estimate (which has chosen the octave a DJ expects) is
   refined by the comb that best lines up with every onset of the track: the magnitude of
   the onsets' Fourier sums at the beat rate and its first harmonics, searched on a fine
   grid around the estimate. Over a track of minutes its peak is a few hundredths of a BPM
   wide.
3. The line: the onsets that fall near a beat of that comb are numbered by their beat and
   the line ``t0 + k * period`` fitted to them by weighted least squares, with outliers
   (off-beats, fills) down-weighted and fitted again.
4. The attack: the spectral flux peaks where an onset is half inside the analysis window,
   so its timing depends on the sound. The grid is moved by the median distance from each
   beat to the steepest rise of the energy at the beat, measured on the signal itself in
   millisecond steps: the grid marks where the notes start. Notes that swell show no attack
   in the power: a line the tonal onsets found is timed by the short frames' onset strength
   averaged over its beats instead (the tremolo keeps no time with the beats and cancels out).
5. Steadiness: in every stretch of eight seconds the onsets must still sit on the line. If
   the tempo drifts or changes, the track is cut where its local tempo changes and each part
   gets a grid of its own when it is steady itself; otherwise the grid is flagged "needs a
   look" with a low confidence. Never a confident wrong grid.
6. Bars: beats per bar (4 or 3) and the downbeat come from where the bass hits and the
   harmony changes: both happen most on the first beat of a bar.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import tempo
from .beatgrid import Grid, Segment

HOP, N_FFT = 128, 512  # tempo.onset_envelope's frames
WINDOW_S = 8.0  # steadiness is judged over stretches this long
STEADY_S = 0.020  # a stretch whose onsets sit further than this from the line is off the grid
MIN_ONSETS = 16
MIN_COHERENCE = 0.12  # onsets this little more on the beats than chance carry no grid (noise)
HIT_S = 0.025  # an onset this close to a beat is on it
MIN_SEGMENT_S = 12.0
TONAL_BELOW = 0.4  # onsets less coherent than this: the tonal onsets are tried as well
TONAL_MARGIN = 1.25  # and replace the short frames' tempo or onsets only where a quarter more confident or coherent
TONAL_N_FFT, TONAL_LAG = 1024, 2  # tempo.tonal_envelopes' frames (93 ms) and comparison (2 hops back)
CLEARLY = 0.5  # standard deviations: a downbeat or a meter this much more marked than the others


def _lines(signal: np.ndarray, rate: int, evidence: _Evidence | None, duration: float,
           preferred: tuple[float, float]) -> tuple[list[_Line], bool] | None:
    """The grid's lines from the evidence (one, or one per tempo where the tempo changes) and
    whether the grid needs a look; None when the onsets are too incoherent to grid."""
    if evidence is None or evidence.fit.coherence < MIN_COHERENCE:
        return None
    strength, times, weights, fit, _ = evidence
    fit = _rephase(signal, rate, fit, strength, times, weights)
    if _steady(fit, times, weights, 0.0, duration, strength):
        return [fit], False
    parts = _split(strength, times, weights, duration, preferred)
    return (parts, False) if parts else ([fit], True)


def _onset_lag(rate: int) -> float:
    """Where in time frame 0 of :func:`tempo.onset_envelopes` stands."""
    return (N_FFT / 2 + HOP / 2) / rate


def estimate(signal: np.ndarray, rate: int, preferred: tuple[float, float] = tempo.DEFAULT_RANGE,
             envelopes: tuple[np.ndarray, np.ndarray, float] | None = None,
             beat: tempo.Tempo | None = None) -> Grid | None:
    """The track's grid, or None where there is no beat to grid (silence, noise, a drone).
    ``envelopes`` and ``beat``: the onset envelopes and tempo already computed for the track."""
    envelopes = envelopes if envelopes is not None else tempo.onset_envelopes(signal, rate, HOP, N_FFT)
    duration = signal.size / rate
    sources = [_onsets_of(envelopes, rate, preferred, beat)]
    evidence = _best(sources)
    lines = _lines(signal, rate, evidence, duration, preferred)
    if lines is None or evidence.fit.coherence < TONAL_BELOW and len(lines[0]) == 1:
        # notes that swell (choir, strings, organ) blur the short frames' onsets: try the tonal
        # ones (not where the short frames' onsets fit a tempo change, which blurs no onset)
        sources.append(_onsets_of(tempo.tonal_envelopes(signal, rate, HOP, TONAL_N_FFT, TONAL_LAG), rate,
                                  preferred, lag_s=(TONAL_N_FFT / 2 + (1 - TONAL_LAG / 2) * HOP) / rate))
        chosen = _best(sources)
        if chosen is not None and (evidence is None or (chosen.strength, chosen.beat) != (evidence.strength, evidence.beat)):
            evidence, lines = chosen, _lines(signal, rate, chosen, duration, preferred)
    if lines is None:
        return None
    segments, needs_look = lines
    strength, times, weights, _, beat = evidence
    timed = [_attack(signal, rate, s) for s in segments]
    if strength is not sources[0].strength:  # notes that swell show no attack in the power: the
        # tonal onsets' time is a long frame's, so the short frames' onset strength times them
        timed = [_flux_attack(sources[0].strength, s) if t is s else t for s, t in zip(segments, timed, strict=True)]
    segments = timed
    for index in range(1, len(segments)):
        _join(segments[index - 1], segments[index], times, weights)
    first = segments[0]  # the grid starts where the music does, though no onset was seen there
    start = _sound_start(signal, rate) - 0.015
    first.first_k = min(first.first_k, int(np.ceil((start - first.t0) / first.period - 1e-9)))
    per_bar, downbeat_k = _bars(signal, rate, segments[0])
    grid_segments = []
    for index, part in enumerate(segments):
        first_k = part.first_k
        if part.at(first_k) < -0.005:  # before the audio starts: the grid begins a beat later
            first_k += 1
        if index == 0:
            place = (first_k - downbeat_k) % per_bar + 1
        else:  # a later segment's bars: its own downbeat
            _, db = _bars(signal, rate, part)
            place = (first_k - db) % per_bar + 1
        # a first beat a few ms before the audio (within the estimate's error) is at its start
        grid_segments.append(Segment(round(max(0.0, part.t0 + first_k * part.period), 3), round(60.0 / part.period, 2), place))
    confidence = _confidence(segments, beat.confidence, needs_look)
    return Grid(tuple(grid_segments), per_bar, confidence, needs_look, round(duration, 3))


class _Onsets(NamedTuple):
    """The onsets of one pair of envelopes, and the tempo their envelope gives."""
    strength: _Strength
    times: np.ndarray
    weights: np.ndarray
    beat: tempo.Tempo


class _Evidence(NamedTuple):
    strength: _Strength
    times: np.ndarray
    weights: np.ndarray
    fit: _Line  # the grid line fitted to the onsets
    beat: tempo.Tempo  # the tempo estimate it was fitted from


def _onsets_of(envelopes: tuple[np.ndarray, np.ndarray, float], rate: int, preferred: tuple[float, float],
               beat: tempo.Tempo | None = None, lag_s: float | None = None) -> _Onsets:
    env, bass, fps = envelopes
    strength = _Strength(env, bass, fps, rate, lag_s)
    times, weights = onsets(env, fps, rate, strength.lag)
    return _Onsets(strength, times, weights, beat if beat is not None else tempo.from_envelope(env, fps, preferred))


def _best(sources: list[_Onsets]) -> _Evidence | None:
    """The grid line of the source whose onsets are the most coherent at the track's tempo.
    The first source (short frames: sharper timing, the bass placing the phase) is kept unless
    a later one is clearly better: its tempo where its tempo estimate is clearly more confident
    (coherence itself would prefer the eighths whenever they hold notes), its onsets where they
    are clearly more coherent at that tempo."""
    beat = None
    for source in sources:
        margin = 1.0 if beat is None else TONAL_MARGIN
        if source.beat.bpm and (beat is None or source.beat.confidence > margin * beat.confidence):
            beat = source.beat
    if beat is None:
        return None
    best = None
    for source in sources:
        if source.times.size < MIN_ONSETS:
            continue
        fit = _fit(source.times, source.weights, 60.0 / beat.bpm, source.strength)
        margin = 1.0 if best is None else TONAL_MARGIN
        if fit is not None and (best is None or fit.coherence > margin * best.fit.coherence):
            best = _Evidence(source.strength, source.times, source.weights, fit, beat)
    return best


def _sound_start(signal: np.ndarray, rate: int) -> float:
    """Where the audio first comes within 45 dB of its loudest 5 ms."""
    size = max(1, int(0.005 * rate))
    count = signal.size // size
    if not count:
        return 0.0
    energy = (signal[: count * size].astype(np.float64).reshape(count, size) ** 2).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** -4.5)
    return float(loud[0] * size / rate) if loud.size else 0.0


def _join(before: _Line, after: _Line, times: np.ndarray, weights: np.ndarray) -> None:
    """Place the change between two segments where the onsets stop fitting the first and
    start fitting the second (each segment was fitted on a stretch only roughly bounded)."""
    lo, hi = after.at(after.first_k) - 2 * WINDOW_S, before.at(before.last_k) + 2 * WINDOW_S
    inside = (times >= lo) & (times <= hi)
    t, w = times[inside], weights[inside]
    if t.size < 2:
        return
    near = 0.02

    def off(line: _Line) -> np.ndarray:
        k = np.round((t - line.t0) / line.period)
        return np.abs(t - line.at(k))

    only_a = (off(before) < near) & (off(after) >= near)
    only_b = (off(after) < near) & (off(before) >= near)
    # the cut that leaves the fewest (weighted) onsets on the wrong side
    wrong = [float(w[(t < c) & only_b].sum() + w[(t >= c) & only_a].sum()) for c in t]
    cut = float(t[int(np.argmin(wrong))])
    after.first_k = int(np.ceil((cut - near - after.t0) / after.period))
    before.last_k = int(np.ceil((after.at(after.first_k) - before.t0) / before.period)) - 1


def onsets(envelope: np.ndarray, fps: float, rate: int, lag_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(times in seconds, weights) of the envelope's clear peaks, between frames. ``lag_s``:
    where in time the envelope's frame 0 stands (default: :func:`tempo.onset_envelopes`')."""
    from scipy.ndimage import maximum_filter1d

    e = envelope.astype(np.float64)
    if e.size < 3:
        return np.zeros(0), np.zeros(0)
    local = maximum_filter1d(e, size=max(3, int(2 * fps)))  # loudest peak within about a second
    i = np.flatnonzero((e[1:-1] > e[:-2]) & (e[1:-1] >= e[2:]) & (e[1:-1] > 0.1 * local[1:-1])) + 1
    a, b, c = e[i - 1], e[i], e[i + 1]
    denom = a - 2 * b + c
    delta = np.where(denom < 0, 0.5 * (a - c) / np.where(denom < 0, denom, -1), 0.0)
    # flux[k] compares the frames starting at k and k + 1 hops: an attack there is at their centres' midpoint
    times = (i + np.clip(delta, -0.5, 0.5)) / fps + (_onset_lag(rate) if lag_s is None else lag_s)
    return times, np.sqrt(b)


class _Line:
    """A fitted grid line over a span: beat k at t0 + k * period."""

    def __init__(self, t0: float, period: float, coherence: float, first_k: int, last_k: int,
                 residual: float) -> None:
        self.t0, self.period, self.coherence = t0, period, coherence
        self.first_k, self.last_k, self.residual = first_k, last_k, residual

    def at(self, k: np.ndarray | int) -> np.ndarray | float:
        return self.t0 + np.asarray(k) * self.period


def _comb(times: np.ndarray, weights: np.ndarray, periods: np.ndarray, harmonics: int = 4) -> np.ndarray:
    """Complex Fourier sums of the onsets at each period's rate, summed in magnitude over
    the first harmonics (a sharper comb than the fundamental alone)."""
    total = np.zeros(periods.size)
    base = np.exp(-2j * np.pi * times[None, :] / periods[:, None])
    phase = base
    for h in range(1, harmonics + 1):
        if h > 1:
            phase = phase * base  # the h-th harmonic without another exp
        total += np.abs(phase @ weights) / h
    return total / (weights.sum() * sum(1 / h for h in range(1, harmonics + 1)))


class _Strength:
    """Where the beats are likeliest: the onset envelope plus twice the bass's (the kick and
    the bass line mark the beat; hi-hats and the off-beat chords of house mark the half)."""

    def __init__(self, env: np.ndarray, bass: np.ndarray, fps: float, rate: int, lag_s: float | None = None) -> None:
        self.fps, self.lag = fps, _onset_lag(rate) if lag_s is None else lag_s
        self.env = env / (env.mean() or 1.0) + 2 * bass / (bass.mean() or 1.0)

    def at(self, times: np.ndarray) -> np.ndarray:
        """The strength at these times (between frames, interpolated)."""
        return np.interp((np.asarray(times) - self.lag) * self.fps, np.arange(self.env.size), self.env,
                         left=0.0, right=0.0)

    def phase(self, period: float, lo: float, hi: float) -> float:
        """The phase (a beat time) of the grid of ``period`` that collects the most strength."""
        phases = np.arange(0.0, period, 0.002)
        score = self.at(phases[:, None] + np.arange(lo, hi, period)[None, :]).sum(axis=1)
        return float(phases[int(np.argmax(score))] + lo)


def _fit(times: np.ndarray, weights: np.ndarray, period: float, strength: _Strength,
         search: float = 0.012) -> _Line | None:
    span = float(times[-1] - times[0]) if times.size else 0.0
    if span <= 4 * period:
        return None
    # A comb's peak is about period**2 / span wide in period: step a quarter of that.
    step = max(period ** 2 / span / 4, period * 1e-5)
    candidates = period * (1 + np.arange(-search, search + 1e-12, step / period))
    score = _chunked_comb(times, weights, candidates)
    best = int(np.argmax(score))
    if 0 < best < score.size - 1:
        a, b, c = score[best - 1], score[best], score[best + 1]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
        period = float(candidates[best] + np.clip(shift, -0.5, 0.5) * (candidates[1] - candidates[0]))
    else:
        period = float(candidates[best])
    t0 = strength.phase(period, float(times[0]), float(times[-1]))
    line = _regress(times, weights, t0, period)
    if line is not None:
        line.coherence = _coherence(line, times, weights)
    return line


def _coherence(line: _Line, times: np.ndarray, weights: np.ndarray) -> float:
    """How much more of the onsets' weight falls on the grid's beats than chance would put
    there: 0 for onsets unrelated to it (noise), 1 when every onset is on a beat."""
    if not times.size:
        return 0.0
    k = np.round((times - line.t0) / line.period)
    hit = np.abs(times - (line.t0 + k * line.period)) < HIT_S
    chance = min(1.0, 2 * HIT_S / line.period)
    return float(max(0.0, (weights[hit].sum() / weights.sum() - chance) / (1 - chance)))


#: Where else the beat could be, in beats from the grid: the off-beat, and the swung or
#: triplet eighths and the sixteenths a bass line or a hi-hat may stress more than the beat.
SHIFTS = (0.0, 1 / 2, 1 / 3, 2 / 3, 1 / 4, 3 / 4)


def _rephase(signal: np.ndarray, rate: int, line: _Line, strength: _Strength, times: np.ndarray,
             weights: np.ndarray) -> _Line:
    """The line moved to the phase where the beats are, if that is not where it is. A beat
    is where the bass hits and where tonal notes start: the off-beats hold hi-hats and
    noise more than notes."""
    ks = np.arange(line.first_k, line.last_k + 1)
    if ks.size > 256:
        ks = ks[np.linspace(0, ks.size - 1, 256).astype(int)]
    if ks.size < 8:
        return line
    scores = np.array([(strength.at(line.at(ks) + shift * line.period).mean(),
                        _harmonic_onsets(signal, rate, line.at(ks) + shift * line.period).mean())
                       for shift in SHIFTS])
    total = (scores / np.maximum(scores.max(axis=0), 1e-12)).sum(axis=1)
    best = int(np.argmax(total))
    if best == 0 or total[best] < 1.05 * total[0]:
        return line
    moved = _regress(times, weights, line.t0 + SHIFTS[best] * line.period, line.period)
    if moved is None:
        return line
    moved.coherence = _coherence(moved, times, weights)
    return moved


def _harmonic_onsets(signal: np.ndarray, rate: int, at: np.ndarray, n_fft: int = 1024) -> np.ndarray:
    """Per time: how much tonal energy (80-2000 Hz) starts there, the rise of the spectrum
    of the 93 ms after it over the 93 ms before it."""
    centres = np.round(np.asarray(at) * rate).astype(int)
    keep = (centres - n_fft >= 0) & (centres + n_fft <= signal.size)
    out = np.zeros(centres.size)
    if not keep.any():
        return out
    window = np.hanning(n_fft).astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    band = (freqs >= 80) & (freqs < 2000)
    offsets = np.arange(n_fft)[None, :]
    after = np.abs(np.fft.rfft(signal[centres[keep][:, None] + offsets] * window, axis=1))[:, band]
    before = np.abs(np.fft.rfft(signal[centres[keep][:, None] - n_fft + offsets] * window, axis=1))[:, band]
    out[keep] = np.maximum(np.log1p(100 * after) - np.log1p(100 * before), 0).sum(axis=1)
    return out


def _chunked_comb(times: np.ndarray, weights: np.ndarray, periods: np.ndarray) -> np.ndarray:
    out = np.empty(periods.size)
    size = max(1, 2_000_000 // max(times.size, 1))
    for start in range(0, periods.size, size):
        out[start:start + size] = _comb(times, weights, periods[start:start + size])
    return out


def _regress(times: np.ndarray, weights: np.ndarray, t0: float, period: float) -> _Line | None:
    """Least squares of onset time on beat number, over the onsets near a beat; outliers
    down-weighted (Huber, 10 ms) and the fit repeated."""
    gate = min(0.07, period / 6)
    scale = 0.010
    for _ in range(4):
        k = np.round((times - t0) / period)
        resid = times - (t0 + k * period)
        near = np.abs(resid) < gate
        if near.sum() < MIN_ONSETS // 2:
            return None
        w = weights[near] * np.minimum(1.0, scale / np.maximum(np.abs(resid[near]), 1e-9))
        kk, tt = k[near], times[near]
        mk, mt = np.average(kk, weights=w), np.average(tt, weights=w)
        var = np.average((kk - mk) ** 2, weights=w)
        if var <= 0:
            return None
        period = float(np.average((kk - mk) * (tt - mt), weights=w) / var)
        t0 = float(mt - period * mk)
        gate = min(gate, max(0.035, 3 * scale))
    k = np.round((times - t0) / period)
    resid = times - (t0 + k * period)
    near = np.abs(resid) < gate
    spread = float(np.sqrt(np.average(resid[near] ** 2, weights=weights[near])))
    return _Line(t0, period, 0.0, int(k[near].min()), int(k[near].max()), spread)


def _steady(line: _Line, times: np.ndarray, weights: np.ndarray, begin: float, end: float,
            strength: _Strength | None = None) -> bool:
    """Every stretch of the track stays on the line. A stretch is off it when its onsets sit
    further than ``STEADY_S`` from their beats on the whole (drift), when they sit clearly on
    beats of another phase, or when they have left the grid for a tempo of their own (seen
    in the stretch's own tempo). A stretch whose onsets follow no beat at all (a breakdown, a
    rubato outro over a steady track) says nothing either way."""
    bad = total = 0
    for start in np.arange(begin, max(end - WINDOW_S / 2, begin + 1e-9), WINDOW_S / 2):
        inside = (times >= start) & (times < start + WINDOW_S)
        if inside.sum() < 6:
            continue
        t, w = times[inside], weights[inside]
        k = np.round((t - line.t0) / line.period)
        resid = t - (line.t0 + k * line.period)
        on = np.abs(resid) < min(0.07, line.period / 6)
        total += 1
        local = abs(_weighted_median(resid[on], w[on])) if on.sum() >= 3 else 0.0
        here = _coherence(line, t, w)
        if local > STEADY_S or strength is not None and (
                _off_phase(line, strength, start, start + WINDOW_S)
                or here < 0.3 * line.coherence and _other_tempo(strength, start, start + WINDOW_S, 60.0 / line.period)):
            bad += 1
    return total > 0 and bad <= max(1, 0.1 * total)


def _off_phase(line: _Line, strength: _Strength, begin: float, end: float) -> bool:
    """The stretch's beats are clearly elsewhere: the phase collecting the most beat strength
    (bass-weighted, as when the grid was placed) is not the line's, and collects far more."""
    shifts = np.arange(-line.period / 2, line.period / 2, 0.002)
    ks = np.arange(np.ceil((begin - line.t0) / line.period), np.floor((end - line.t0) / line.period) + 1)
    if ks.size < 4:
        return False
    score = strength.at(line.t0 + ks[None, :] * line.period + shifts[:, None]).sum(axis=1)
    best = int(np.argmax(score))
    here = float(score[np.argmin(np.abs(shifts))])
    return abs(shifts[best]) > 2 * HIT_S and score[best] > 1.5 * here


def _other_tempo(strength: _Strength, begin: float, end: float, bpm: float) -> bool:
    """The stretch's own tempo is not the line's, nor a simple ratio of it."""
    lo, hi = int(begin * strength.fps), int(end * strength.fps)
    local = tempo.from_envelope(strength.env[lo:hi], strength.fps, (bpm / 1.9, bpm * 1.9)).bpm
    if not local:
        return False
    ratio = local / bpm
    return min(abs(ratio / m - 1) for m in (0.5, 2 / 3, 1.0, 1.5, 2.0)) > 0.02


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def _split(strength: _Strength, times: np.ndarray, weights: np.ndarray, duration: float,
           preferred: tuple[float, float]) -> list[_Line] | None:
    """Segments of one tempo each, where the local tempo changes and each part holds a
    steady grid of its own; None when the evidence does not support that."""
    step, fps = WINDOW_S, strength.fps
    starts = np.arange(0.0, max(duration - 2 * step, 0.0) + 1e-9, step)
    local = []
    for start in starts:
        lo, hi = int(start * fps), int((start + 2 * step) * fps)
        local.append(tempo.from_envelope(strength.env[lo:hi], fps, preferred).bpm or np.nan)
    local = np.array(local)
    # runs of windows whose tempo agrees (within 1.5 %)
    runs: list[list[int]] = []
    for i, bpm in enumerate(local):
        if np.isnan(bpm):
            continue
        if runs and abs(bpm / np.nanmedian(local[runs[-1]]) - 1) < 0.015:
            runs[-1].append(i)
        else:
            runs.append([i])
    runs = [r for r in runs if (len(r) + 1) * step >= MIN_SEGMENT_S]
    if len(runs) < 2:
        return None
    lines = []
    bounds = [0.0] + [starts[r[0]] + step / 2 for r in runs[1:]] + [duration]
    for run, lo, hi in zip(runs, bounds[:-1], bounds[1:], strict=True):
        inside = (times >= lo) & (times < hi)
        line = _fit(times[inside], weights[inside], 60.0 / float(np.nanmedian(local[run])), strength, search=0.02)
        if line is None or not _steady(line, times[inside], weights[inside], lo, hi, strength):
            return None
        lines.append(line)
    return lines


def _attack(signal: np.ndarray, rate: int, line: _Line) -> _Line:
    """The line moved to where the notes start (the same line where no attack stands out). The
    signal's power around every beat is averaged, aligned on the grid: what is not on the beat
    averages out, and the profile shows the beat's attack, whose onset is where its level is
    halfway (in dB) from the level before it to its peak."""
    step = max(1, rate // 2000)  # half a millisecond
    before, after = min(0.06, 0.45 * line.period), min(0.06, 0.45 * line.period)
    offsets = np.arange(-int(before * rate), int(after * rate) + 1, step)
    ks = np.arange(line.first_k, line.last_k + 1)
    if ks.size > 600:  # plenty for an average
        ks = ks[np.linspace(0, ks.size - 1, 600).astype(int)]
    centres = np.round(line.at(ks) * rate).astype(int)
    centres = centres[(centres + offsets[0] >= 0) & (centres + offsets[-1] < signal.size)]
    if centres.size < 8:
        return line
    width = max(1, int(0.004 * rate))  # 4 ms: smooths a low kick's cycles, keeps its attack sharp
    cumulative = np.concatenate([[0.0], np.cumsum(signal.astype(np.float64) ** 2)])
    lo = np.clip(centres[:, None] + offsets[None, :] - width // 2, 0, signal.size)
    power = (cumulative[np.minimum(lo + width, signal.size)] - cumulative[lo]) / width
    level = 10 * np.log10(power.mean(axis=0) + 1e-12)
    times = offsets / rate
    base = float(np.median(level[times < -0.025])) if (times < -0.025).any() else float(level[0])
    window = (times > -0.03) & (times < 0.05)
    peak_i = int(np.flatnonzero(window)[np.argmax(level[window])])
    if level[peak_i] - base < 3.0:  # no attack stands out at the beats
        return line
    half = base + 0.5 * (level[peak_i] - base)
    below = np.flatnonzero(level[:peak_i] < half)
    if not below.size:
        return line
    i = int(below[-1])  # the last moment below halfway before the peak: the attack crosses there
    frac = (half - level[i]) / max(level[i + 1] - level[i], 1e-9)
    shift = float(times[i] + frac * (times[i + 1] - times[i]))
    return _Line(line.t0 + shift, line.period, line.coherence, line.first_k, line.last_k, line.residual)


def _flux_attack(strength: _Strength, line: _Line) -> _Line:
    """The line moved to where the short frames' onset strength peaks on average around its
    beats. One note's short-frame onsets drown in a choir's or a string section's tremolo,
    but the tremolo keeps no time with the beats: averaged over every beat it cancels out and
    the notes' own rise remains."""
    offsets = np.arange(-0.06, 0.0605, 0.001)
    if line.period <= 2 * offsets[-1]:
        return line
    ks = np.arange(line.first_k, line.last_k + 1)
    profile = strength.at(line.at(ks)[:, None] + offsets[None, :]).mean(axis=0)
    peak = int(np.argmax(profile))
    if profile[peak] < 1.5 * np.median(profile) or peak in (0, offsets.size - 1):
        return line  # no rise stands out (or it is at the window's edge): leave the line be
    return _Line(line.t0 + float(offsets[peak]), line.period, line.coherence, line.first_k, line.last_k,
                 line.residual)


def _bars(signal: np.ndarray, rate: int, line: _Line) -> tuple[int, int]:
    """(beats per bar, a beat number that is a downbeat), from beat-synchronous bass
    energy and harmonic change. Four beats to the bar unless three is clearly better; where
    nothing marks the bars, the music is taken to start on a downbeat."""
    ks = np.arange(line.first_k, line.last_k + 1)
    if ks.size < 8:
        return 4, line.first_k
    bass, change = _beat_features(signal, rate, line, ks)
    best: dict[int, tuple[float, int]] = {}
    for per_bar in (4, 3):
        scores = [_accent(bass, change, ks, per_bar, offset) for offset in range(per_bar)]
        offset = int(np.argmax(scores))
        best[per_bar] = (scores[offset], offset)
    per_bar = 3 if best[3][0] > max(best[4][0] + CLEARLY, 2 * CLEARLY) else 4
    score, offset = best[per_bar]
    if score < CLEARLY:  # no beat stands out as the bar's first
        return per_bar, line.first_k
    return per_bar, int(line.first_k + offset)


def _accent(bass: np.ndarray, change: np.ndarray, ks: np.ndarray, per_bar: int, offset: int) -> float:
    """How much more the beats at ``offset`` in bars of ``per_bar`` carry bass and change
    than the others, in standard deviations."""
    on = ((ks - ks[0]) % per_bar) == offset
    if on.sum() < 2 or (~on).sum() < 2:
        return -np.inf
    score = 0.0
    for feature in (bass, change):
        sd = feature.std() or 1.0
        score += (feature[on].mean() - feature[~on].mean()) / sd
    return float(score)


def _beat_features(signal: np.ndarray, rate: int, line: _Line, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per beat: how much the bass rises at the beat, and how much the spectrum of the beat
    differs from the beat before (a chord change)."""
    n_fft = 1024
    centres = np.round(line.at(ks) * rate).astype(int)
    keep = (centres - n_fft // 4 >= 0) & (centres + n_fft <= signal.size)
    bass = np.zeros(ks.size)
    change = np.zeros(ks.size)
    if keep.sum() < 2:
        return bass, change
    index = centres[keep][:, None] + np.arange(n_fft)[None, :]
    spectra = np.abs(np.fft.rfft(signal[index] * np.hanning(n_fft), axis=1))  # every beat at once
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    low, tonal = (freqs > 30) & (freqs < 150), (freqs >= 80) & (freqs < 2000)
    before = signal[centres[keep][:, None] - n_fft // 4 + np.arange(n_fft // 4)[None, :]]
    bass[keep] = (np.log1p(100 * spectra[:, low].sum(axis=1))
                  - np.log1p(100 * np.sqrt((before ** 2).mean(axis=1) + 1e-12) * low.sum()))
    tone = np.log1p(100 * spectra[:, tonal])
    steps = np.zeros(int(keep.sum()))
    steps[1:] = np.maximum(tone[1:] - tone[:-1], 0).sum(axis=1)
    change[keep] = steps
    return bass, change


def _confidence(lines: list[_Line], tempo_confidence: float, needs_look: bool) -> float:
    if needs_look:
        return round(min(0.3, 0.3 * tempo_confidence), 3)
    coherence = min(line.coherence for line in lines)
    tightness = max(0.0, 1 - max(line.residual for line in lines) / STEADY_S)
    return round(float(np.clip(0.4 * min(1.0, coherence / 0.5) + 0.4 * tightness + 0.2 * tempo_confidence, 0, 1)), 3)
