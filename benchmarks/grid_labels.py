#!/usr/bin/env python3
"""Beat-grid labels for the development corpus (../shared/corpus), from the symbolic sources only.

    ~/.cache/music-pipeline-corpus/.venv/bin/python benchmarks/grid_labels.py            # -> benchmarks/grid_labels.json
    ~/.cache/music-pipeline-corpus/.venv/bin/python benchmarks/grid_labels.py --check    # + the plausibility checks
    ~/.cache/music-pipeline-corpus/.venv/bin/python benchmarks/grid_labels.py --render-extra

Deriving the labels needs ``mido`` and ``music21`` (the corpus's own venv has both, at the versions
the corpus was built with); reading them (``load``, ``beats``, ``beat_times``, ``downbeat_times``)
needs only the standard library, so ``benchmarks/grid.py`` imports this module from the project's venv.
No label comes from an audio analyser: the audio is only read by ``--check``, to confirm where the
renderers put time zero and how long the renders are.

What is labelled
================

Every tempo-task file of ``tempo.csv`` (7 Hydrogen songs, 22 OpenMSX tunes), every chorale of
``key.csv`` (162), and the three OpenMSX tunes the corpus leaves out for their tempo changes
(``be_sharp_bw_redfarn``, ``chuggachugga``, ``midnight_snow_run``), labelled ``changing``. The corpus
does not render those three (they are not in ``files.csv``); ``--render-extra`` renders them exactly
as ``build.sh`` renders a ``midi`` row (``fluidsynth -q -ni -g 0.8 -r 44100 -F out FluidR3_GM.sf2 mid``)
into ``~/.cache/music-pipeline-grid-extra/openttd/`` (``$GRID_EXTRA_DIR``), outside the corpus.

And a test of the first beat: 190 of those 194 files start on a beat at 0.000 s, so a grid anchored
at 0 gets their phase for free. The 22 OpenMSX copies ``fp/openttd/*.trim.flac`` the corpus cut for
its fingerprint task (``ffmpeg -ss 3`` on the FLAC, -6 dB) get the original's labels 3 s earlier
(``variant``: ``trimmed 3 s``, ``trim_s``); their first beats fall at 0-0.75 s (12 of 22 off 0).
``--check`` finds each cut sample-exact (correlating the copy with its original).

Per file (``grid_labels.json``): ``tempo_map`` ``[[position, bpm], ...]`` (position in beats from the
render's time zero; the tempo holds until the next entry), ``first_beat`` (the position of the first
labelled beat), ``n_beats`` (labelled beats are ``first_beat + k``, k = 0..n_beats-1, turned into
seconds through the tempo map), ``bars`` ``[[k, beats_per_bar], ...]`` (beat k is a downbeat and bars
of that many beats follow until the next entry; one entry unless the meter changes or a bar is
irregular), ``time_signature``, ``status`` (``steady``: one tempo; ``changing``), ``duration_s`` (the
end of the music: the MIDI file's end / the song's last column / the chorale's last note-off), and
``notes``. ``beats(label)``
expands a label into every (time, place in bar).

Rules
=====

Time zero. Both renderers start the file at the source's time zero, with no lead-in:

* fluidsynth's file renderer (``-F``, the player in fast-render mode) starts the MIDI file at sample 0
  and dispatches events at its 64-sample block boundaries, so a note sounds 0-1.5 ms after its MIDI
  time, plus its sample's own attack. Checked (``--check``): the first sample above -60 dB of the
  loudest lies 1.3-3.5 ms (median 2.0) after the first note-on in the OpenMSX renders and 1.9-2.9 ms
  (median 2.2) in the 162 chorales, for files whose first note is at tick 0 as for the ones starting
  later (moo_redfarn 1.500 s, train_filled_with_cash 0.667 s, tttheme2 2.250 s); exceptions are
  instruments that fade in (chemistry_lab's organ: 508 ms, relax_song's pad: 11 ms). Labels stay at
  the MIDI times: no offset is added, so an onset-exact estimator reads about +2 ms.
* ``h2cli -s song -o out.wav`` exports from tick 0 of the song at 44.1 kHz. Checked likewise: songs
  whose first note is on tick 0 sound within 1 ms, GM_kit_demo2 (first note on tick 96) at 1.088 s
  for a nominal 1.091 s (humanize).
* Lengths: every render is at least as long as the music (Hydrogen: the song's columns, within
  -0.01 s; OpenMSX: the MIDI's end, renders ring on 0-27 s; chorales: the last note's end). The
  chorale MIDI that ``prepare_midi.py`` wrote has the label's tempo, its first note on tick 0, its
  last note-off at the label's end and its last note-on on (or just after) the last labelled beat:
  checked for all 162.

Tempo and beat unit.

* Hydrogen: ``<bpm>`` of the ``.h2song`` (quarter notes; Hydrogen counts 48 ticks per quarter).
  The demo songs have no tempo timeline (``<BPMTimeLine/>`` empty): steady. Swing moves only off-beat
  16ths; Hydrogen's humanize moves every note by a Gaussian of sigma ``0.3 x humanize_time x 2000``
  frames (``AudioEngine::nMaxTimeHumanize``), i.e. 0-4.2 ms at 44.1 kHz: noted per song, not labelled.
* OpenMSX: the MIDI tempo map (every ``set_tempo``, all tracks merged; duplicates of one value at one
  tick are one entry); the beat is the MIDI quarter note, as in ``tempo.csv``. Steady when one value.
* Chorales: the render tempo ``bpm`` of ``files.csv``'s param (prepare_midi.py puts one
  ``MetronomeMark(number=bpm)`` at the start; music21 writes it as quarter = bpm), also recomputed
  from the corpus rule ``60 + int(sha1(basename)[:8], 16) % 61``. Played straight: steady. music21's
  MIDI writer plays repeats out (``midi.translate.prepareStreamForMidi`` calls ``expandRepeats``):
  69 of the 162 renders are longer than the written score, so the labels come from the score with
  its repeats expanded too. The beat is the quarter note, except in compound meter (x/8 with 6, 9 or
  12: bwv248.23-2 in 12/8) where it is the dotted quarter (bpm / 1.5): quarter beats would cut across
  its pulse. 3/2 (bwv123.6, the end of bwv27.6) keeps the quarter as beat (6 per bar), an octave of
  the half-note beat.

First beat. The first beat at or after the first note-on (a note up to 1/8 beat early counts for
its beat): 0 when the music starts on tick 0; a pickup that begins on a beat starts the labels on
that beat (moo_redfarn: beat 3 of bar 1, 1.5 s; train_filled_with_cash: beat 1, 0.667 s;
GM_kit_demo2: beat 2, 1.091 s; tttheme2: beat 4, 2.264 s, its first notes 12 ticks early). The beats
before it are silent, so no analysis could place them.

Last beat. The last beat at or before the last note-on (same 1/8-beat tolerance): after the final
attack there is nothing left to place a beat on (the renders ring on 2-27 s past the end of the MIDI).
A tied continuation is no attack (a chorale's final chord tied over the bar line, bwv374, ends the
labels where the chord starts).

Downbeats and bars.

* Hydrogen: one pattern column is one bar, from tick 0 (every demo pattern is 192 ticks: 4/4).
* OpenMSX: the MIDI bar grid: bars from tick 0 per ``time_signature`` (quarters per bar =
  numerator x 4 / denominator; 5/4, 3/4, 6/4 and 4/4 occur), 4/4 when the file has none (SMF default:
  modern_motion, train_filled_with_cash). Checked symbolically: the velocity of on-beat kick and crash
  hits and bass notes (below C3) summed per place in bar; where beat 1 carries less than 80 % of the
  strongest place, the downbeat is flagged ``downbeat_doubtful`` and left out of downbeat scoring
  (slow_neasy_redfarn: beat 4 strongest; train_filled_with_cash, no time signature: beat 2).
* Chorales: the measures of the MusicXML score (first part). Every measure starts a bar except an
  anacrusis (a first measure shorter than its bar: the pickup, so the first downbeat is not at 0 but
  at the pickup's length - 1 beat in 111 of the 162) and the second half of a split bar (a measure
  following a short one when the two together fit in one bar: the chorales split bars at repeat signs
  and line ends). A meter change starts bars of its new length (bwv27.6, bwv362, bwv41.6). Bars whose
  length disagrees with the time signature in force (a 1-beat bar, a 10-beat measure, a 3-beat bar
  where a repeat goes back to a start without pickup: 6 chorales) are kept as the score has them
  (``bars`` then has several entries) but flagged ``downbeat_doubtful``.

Changing tempo. Beat times integrate the tempo map exactly (MIDI semantics: a tempo holds from its
tick on); ``bpm`` is the tempo that lasts longest in seconds.

Timing. ``quantized`` is false when the MIDI notes near a beat sit off it by more than 1 ms in median:
tttheme2 is a played performance (its drums run ~10-17 ms ahead of the MIDI grid); its labels are
the MIDI grid.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = HERE / "grid_labels.json"
CORPUS_SRC = (HERE.parents[1] / "shared" / "corpus").resolve()
if not CORPUS_SRC.exists():  # a worktree elsewhere: the shared corpus by its usual place
    CORPUS_SRC = Path("/work/shared/corpus")
CACHE = Path(os.environ.get("CORPUS_DIR", Path.home() / ".cache/music-pipeline-corpus"))
EXTRA = Path(os.environ.get("GRID_EXTRA_DIR", Path.home() / ".cache/music-pipeline-grid-extra"))
OPENMSX = Path("/usr/share/games/openttd/baseset/openmsx")
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
CHANGING = ("be_sharp_bw_redfarn", "chuggachugga", "midnight_snow_run")
TOLERANCE = 1 / 8  # beats: a note this early still counts for its beat
HYDROGEN_TICKS = 48  # per quarter note
HUMANIZE_FRAMES = 2000  # Hydrogen's AudioEngine::nMaxTimeHumanize; sigma = 0.3 x value x this


# --------------------------------------------------------------------------- reading labels


def load(path: Path = LABELS) -> list[dict]:
    return json.loads(Path(path).read_text())["files"]


def seconds_at(tempo_map: list, position: float) -> float:
    """Seconds from time zero to ``position`` (in beats) under a piecewise-constant tempo map."""
    t = 0.0
    for i, (start, bpm) in enumerate(tempo_map):
        end = tempo_map[i + 1][0] if i + 1 < len(tempo_map) else math.inf
        if position <= start:
            break
        t += (min(position, end) - start) * 60.0 / bpm
    return t


def beats(label: dict) -> list[tuple[float, int]]:
    """Every labelled beat of a file: (seconds from the render's start, place in bar 1..n)."""
    bars = label["bars"]
    keys = [k for k, _ in bars]
    out = []
    for k in range(label["n_beats"]):
        i = max(0, bisect.bisect_right(keys, k) - 1)
        k0, n = bars[i]
        out.append((seconds_at(label["tempo_map"], label["first_beat"] + k), (k - k0) % n + 1))
    return out


def beat_times(label: dict) -> list[float]:
    return [t for t, _ in beats(label)]


def downbeat_times(label: dict) -> list[float]:
    return [t for t, place in beats(label) if place == 1]


def audio_path(label: dict, cache: Path = CACHE, extra: Path = EXTRA) -> Path | None:
    """The render: in the corpus cache, else (the changing-tempo tunes) in the extra folder."""
    for root in (cache, extra):
        path = Path(root) / label["file"]
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


# --------------------------------------------------------------------------- deriving labels


def _rows(name: str) -> list[dict]:
    with open(CORPUS_SRC / name, newline="") as fh:
        return list(csv.DictReader(fh))


def _stem(file: str) -> str:
    return os.path.splitext(os.path.basename(file))[0]


def _first_last_beat(onsets: list[float], phase: float = 0.0) -> tuple[float, float]:
    """First beat at/after the first onset, last beat at/before the last (positions in beats;
    beats sit at ``phase + integer``)."""
    first = phase + math.ceil(min(onsets) - phase - TOLERANCE)
    last = phase + math.floor(max(onsets) - phase + TOLERANCE)
    return (int(first) if first == int(first) else first), (int(last) if last == int(last) else last)


def _bars_from_downbeats(downbeats: list[float], first: float, n_beats: int) -> tuple[list, list[str]]:
    """[[k, beats_per_bar], ...] from downbeat positions (beats); k relative to the first labelled beat,
    the first entry's k in [0, beats_per_bar)."""
    notes = []
    ks = [d - first for d in downbeats]
    if any(abs(k - round(k)) > 1e-6 for k in ks):
        notes.append("a downbeat falls between beats")
    ks = sorted({round(k) for k in ks})
    runs: list[list[int]] = []
    for a, b in zip(ks, ks[1:], strict=False):
        if not runs or runs[-1][1] != b - a:
            runs.append([a, b - a])
    if not runs:  # a single bar
        runs = [[ks[0], n_beats]]
    # the first entry covers the beats before it too (a pickup): move its k into [0, n)
    k0, n = runs[0]
    runs[0] = [k0 % n, n]
    if len(runs) > 1 and runs[1][0] <= runs[0][0]:
        runs = runs[1:]
    # drop entries that start after the last labelled beat
    runs = [r for i, r in enumerate(runs) if i == 0 or r[0] < n_beats]
    return runs, notes


def _main_bpm(tempo_map: list, end_pos: float) -> float:
    spans: dict[float, float] = {}
    for i, (start, bpm) in enumerate(tempo_map):
        end = tempo_map[i + 1][0] if i + 1 < len(tempo_map) else max(end_pos, start)
        spans[bpm] = spans.get(bpm, 0.0) + (end - start) * 60.0 / bpm
    return max(spans, key=spans.get)


def _finish(label: dict, onsets: list[float], downbeats: list[float], phase: float = 0.0) -> dict:
    first, last = _first_last_beat(onsets, phase)
    n_beats = int(round(last - first)) + 1
    bars, notes = _bars_from_downbeats(downbeats, first, n_beats)
    tm = label["tempo_map"]
    label.update(
        status="steady" if len({b for _, b in tm}) == 1 else "changing",
        bpm=_main_bpm(tm, last),
        first_beat=first, n_beats=n_beats, bars=bars,
        beats_per_bar=bars[0][1],
        first_beat_s=round(seconds_at(tm, first), 6),
        first_downbeat_s=round(seconds_at(tm, first + bars[0][0]), 6),
        last_beat_s=round(seconds_at(tm, last), 6),
    )
    label["notes"] = label.get("notes", []) + notes
    if len(bars) > 1:
        label["notes"].append("bars of several lengths: " + ", ".join(f"from beat {k}: {n}" for k, n in bars))
    return label


def hydrogen(row: dict) -> dict:
    import xml.etree.ElementTree as ET

    root = ET.parse(row["origin"]).getroot()
    bpm = float(root.findtext("bpm"))
    if root.find("BPMTimeLine") is not None and len(root.find("BPMTimeLine")):
        raise SystemExit(f"{row['origin']}: has a tempo timeline; not handled")
    patterns = {p.findtext("name"): p for p in root.find("patternList")}
    virtual = {}
    for v in root.find("virtualPatternList") or []:
        virtual[v.findtext("name")] = [x.text for x in v.findall("virtual")]
    onsets, downbeats, tick = [], [], 0
    for group in root.find("patternSequence"):
        names = [p.text for p in group.findall("patternID")]
        names += [v for n in names for v in virtual.get(n, [])]
        size = max(int(patterns[n].findtext("size")) for n in names)
        downbeats.append(tick / HYDROGEN_TICKS)
        for n in names:
            for note in patterns[n].iter("note"):
                onsets.append((tick + int(note.findtext("position"))) / HYDROGEN_TICKS)
        tick += size
    sizes = {int(p.findtext("size")) for p in patterns.values()}
    denominators = {p.findtext("denominator") for p in patterns.values()}
    humanize = float(root.findtext("humanize_time") or 0)
    sigma_ms = 0.3 * humanize * HUMANIZE_FRAMES / 44.1
    label = {
        "file": row["file"], "source": "hydrogen", "origin": row["origin"],
        "tempo_map": [[0, bpm]], "beat_unit": "quarter",
        "time_signature": "/".join([str(max(sizes) // HYDROGEN_TICKS), *sorted(denominators)]),
        "duration_s": round(tick / HYDROGEN_TICKS * 60 / bpm, 6), "quantized": True,
        "notes": [f"humanize_time {humanize:g}: every note jitters with sigma {sigma_ms:.1f} ms",
                  f"swing {float(root.findtext('swing_factor') or 0):g} (off-beat 16ths only)"],
    }
    return _finish(label, onsets, downbeats)


def _midi_events(path: Path):
    import mido

    mid = mido.MidiFile(path)
    tpb = mid.ticks_per_beat
    tempos, sigs, notes, end = {}, [], [], 0
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempos.setdefault(tick, set()).add(round(mido.tempo2bpm(msg.tempo), 3))
            elif msg.type == "time_signature":
                sigs.append((tick, msg.numerator, msg.denominator))
            elif msg.type == "note_on" and msg.velocity > 0:
                notes.append((tick, msg.channel, msg.note, msg.velocity))
        end = max(end, tick)
    if any(len(v) > 1 for v in tempos.values()):
        raise SystemExit(f"{path}: two tempi at one tick")
    tempo_map = []
    for tick in sorted(tempos):
        bpm = next(iter(tempos[tick]))
        if not tempo_map or tempo_map[-1][1] != bpm:
            tempo_map.append([tick / tpb, bpm])
    if not tempo_map or tempo_map[0][0] != 0:
        tempo_map.insert(0, [0, 120.0])  # the SMF default
    return mid, tpb, tempo_map, sorted(set(sigs)), sorted(notes), end


def openmsx(file: str, origin: Path) -> dict:
    mid, tpb, tempo_map, sigs, notes, end = _midi_events(origin)
    onsets = [t / tpb for t, *_ in notes]
    # the bar grid: bars from tick 0, a time signature starts a bar where it stands
    sig_at = {t: (n, d) for t, n, d in sigs} or {0: (4, 4)}
    if 0 not in sig_at:
        sig_at[0] = (4, 4)
    changes = sorted(sig_at)
    downbeats, pos, ts_names = [], 0.0, []
    end_pos = end / tpb
    for i, t in enumerate(changes):
        n, d = sig_at[t]
        per_bar = n * 4 / d
        ts_names.append(f"{n}/{d}")
        stop = changes[i + 1] / tpb if i + 1 < len(changes) else end_pos + per_bar
        pos = t / tpb
        while pos < stop - 1e-9:
            downbeats.append(pos)
            pos += per_bar
    ts_names = list(dict.fromkeys(ts_names))
    label = {
        "file": file, "source": "openmsx", "origin": str(origin),
        "tempo_map": tempo_map, "beat_unit": "quarter",
        "time_signature": ",".join(ts_names) + ("" if sigs else " (none in the file: SMF default)"),
        "duration_s": round(mid.length, 6), "notes": [],
    }
    _finish(label, onsets, downbeats)
    # symbolic checks: timing of the notes near beats, and the accents per place in bar
    devs = []
    for t, *_ in notes:
        b = t / tpb
        if abs(b - round(b)) <= TOLERANCE:
            devs.append(seconds_at(tempo_map, b) - seconds_at(tempo_map, round(b)))
    devs.sort()
    med = devs[len(devs) // 2] * 1000 if devs else 0.0
    mad = sorted(abs(d) for d in devs)[len(devs) // 2] * 1000 if devs else 0.0
    label["quantized"] = mad <= 1.0
    if not label["quantized"]:
        label["notes"].append(f"not quantized: notes near a beat sit {med:+.1f} ms off it in median "
                              f"(median |dev| {mad:.1f} ms)")
    bpb = label["beats_per_bar"]
    places = [0.0] * bpb
    for t, ch, note, vel in notes:
        b = t / tpb
        if abs(b - round(b)) < 1 / 16 and ((ch == 9 and note in (35, 36, 49, 57)) or (ch != 9 and note < 48)):
            k = round(b) - label["first_beat"]
            places[(k - label["bars"][0][0]) % bpb] += vel
    if max(places) > 0:
        share = [p / max(places) for p in places]
        label["accent_by_place"] = [round(s, 2) for s in share]
        if share[0] < 0.8 and len(label["bars"]) == 1:
            label["downbeat_doubtful"] = True
            label["notes"].append(f"downbeat doubtful: beat 1 carries {share[0]:.0%} of the strongest place's "
                                  f"accents (kick, crash, bass), place {share.index(1.0) + 1} is strongest")
    return label


def _bach_paths() -> dict[str, str]:
    from music21 import corpus

    return {os.path.basename(str(p)): str(p) for p in corpus.getComposer("bach")}


def chorale(row: dict, paths: dict[str, str]) -> dict:
    from music21 import converter, meter

    kv = dict(x.split("=", 1) for x in row["param"].split(";"))
    bpm_q = int(kv["bpm"])
    sha = hashlib.sha1(os.path.basename(row["origin"]).encode()).hexdigest()
    if bpm_q != 60 + int(sha[:8], 16) % 61:
        raise SystemExit(f"{row['file']}: bpm {bpm_q} is not the corpus's hash rule")
    score = converter.parse(paths[os.path.basename(row["origin"])])
    repeats = score.expandRepeats()  # as music21's MIDI writer does (midi.translate.prepareStreamForMidi)
    expanded = repeats.highestTime != score.highestTime
    score = repeats
    measures = list(score.parts[0].getElementsByClass("Measure"))
    sigs = [ts for m in measures for ts in m.getElementsByClass(meter.TimeSignature)]
    compound = sigs[0].denominator == 8 and sigs[0].numerator in (6, 9, 12)
    unit = 1.5 if compound else 1.0  # quarters per beat
    downbeats, bar_of, previous = [], {}, None
    for i, m in enumerate(measures):
        length, bar = float(m.duration.quarterLength), float(m.barDuration.quarterLength)
        anacrusis = i == 0 and length < bar - 1e-9
        continuation = (previous is not None and previous[0] < previous[1] - 1e-9 and length < bar - 1e-9
                        and previous[0] + length <= max(bar, previous[1]) + 1e-9)
        if not anacrusis and not continuation:
            downbeats.append(float(m.offset) / unit)
            bar_of[downbeats[-1]] = bar / unit
        previous = None if continuation else (length, bar)
    odd = [(a, b - a, bar_of[a]) for a, b in zip(downbeats, downbeats[1:], strict=False)
           if abs(b - a - bar_of[a]) > 1e-9]
    sounding = [n for n in score.recurse().notes if n.duration.quarterLength > 0]
    # a tied continuation is no new attack (the MIDI holds the note on): only starts of sounds count
    onsets = sorted({float(n.getOffsetInHierarchy(score)) / unit for n in sounding
                     if not (n.tie is not None and n.tie.type in ("stop", "continue"))})
    sound_end = max(float(n.getOffsetInHierarchy(score) + n.duration.quarterLength) for n in sounding)
    phase = downbeats[0] % 1.0
    pickup = float(measures[0].duration.quarterLength) if float(measures[0].duration.quarterLength) < float(
        measures[0].barDuration.quarterLength) - 1e-9 else 0.0
    label = {
        "file": row["file"], "source": "chorales", "origin": row["origin"],
        "tempo_map": [[0, round(bpm_q / unit, 3)]],
        "beat_unit": "dotted quarter" if compound else "quarter",
        "time_signature": ",".join(dict.fromkeys(ts.ratioString for ts in sigs)),
        "duration_s": round(sound_end * 60 / bpm_q, 6), "quantized": True,
        "render_bpm_quarter": bpm_q, "program": int(kv["program"]),
        "notes": [f"pickup of {pickup:g} quarter(s)"] if pickup else [],
    }
    if expanded:
        label["notes"].append("repeats played out (music21's MIDI writer expands them)")
    if compound:
        label["notes"].append(f"compound meter: the beat is the dotted quarter, quarter = {bpm_q}")
    if odd:
        label["downbeat_doubtful"] = True
        odd_text = ", ".join(f"{n:g} beats at beat {a:g} for {want:g}" for a, n, want in odd)
        label["notes"].append(f"downbeat doubtful: the score has bars of other lengths than its time signature's "
                              f"({odd_text})")
    return _finish(label, onsets, downbeats, phase)


def trimmed(label: dict, row: dict) -> dict:
    """The label of a copy whose first ``trim`` seconds were cut (files.csv ``trimgain``): the same beats,
    ``trim`` seconds earlier, minus those cut off. Steady tempo only."""
    shift = float(dict(x.split("=", 1) for x in row["param"].split(";"))["trim"])
    (_, bpm), = label["tempo_map"]
    times = beat_times(label)
    skip = next(k for k, t in enumerate(times) if t >= shift - 1e-9)
    first = label["first_beat"] + skip - shift * bpm / 60.0
    bars = [[k - skip, n] for k, n in label["bars"]]
    keep = [b for b in bars if b[0] > 0]
    before = [b for b in bars if b[0] <= 0][-1:]
    bars = [[before[0][0] % before[0][1], before[0][1]]] + keep if before else keep
    new = {**label, "file": row["file"], "variant": f"trimmed {shift:g} s", "trim_s": shift, "origin": row["origin"],
           "tempo_map": [[0, bpm]], "first_beat": round(first, 9), "n_beats": label["n_beats"] - skip, "bars": bars,
           "duration_s": round(label["duration_s"] - shift, 6), "in_corpus": True,
           "notes": [f"{row['origin']} without its first {shift:g} s (files.csv: {row['param']})"]
           + [n for n in label["notes"] if not n.startswith("downbeat doubtful")]
           + [n for n in label["notes"] if n.startswith("downbeat doubtful")]}
    new.update(first_beat_s=round(seconds_at(new["tempo_map"], first), 6),
               first_downbeat_s=round(seconds_at(new["tempo_map"], first + bars[0][0]), 6),
               last_beat_s=round(seconds_at(new["tempo_map"], first + new["n_beats"] - 1), 6))
    return new


def derive() -> list[dict]:
    labels = []
    manifest = {r["file"]: r for r in _rows("files.csv")}
    for r in _rows("tempo.csv"):
        row = manifest[r["file"]]
        if row["recipe"] == "hydrogen":
            labels.append(hydrogen(row))
        else:
            labels.append(openmsx(r["file"], Path(row["origin"])))
        if abs(labels[-1]["bpm"] - float(r["bpm"])) > 1e-6:
            raise SystemExit(f"{r['file']}: derived {labels[-1]['bpm']} BPM, tempo.csv says {r['bpm']}")
    by_file = {x["file"]: x for x in labels}
    for row in manifest.values():  # the phase test: OpenMSX copies with their first 3 s cut
        if row["recipe"] == "trimgain" and by_file.get(row["origin"], {}).get("status") == "steady":
            labels.append(trimmed(by_file[row["origin"]], row))
    for name in CHANGING:
        label = openmsx(f"openttd/{name}.flac", OPENMSX / f"{name}.mid")
        label["in_corpus"] = label["file"] in manifest
        labels.append(label)
    paths = _bach_paths()
    for r in _rows("key.csv"):
        labels.append(chorale(manifest[r["file"]], paths))
    for label in labels:
        label.setdefault("in_corpus", True)
    return labels


def write(labels: list[dict], path: Path = LABELS) -> None:
    order = ["file", "source", "variant", "trim_s", "status", "bpm", "tempo_map", "beat_unit", "time_signature", "beats_per_bar",
             "first_beat", "first_beat_s", "bars", "first_downbeat_s", "n_beats", "last_beat_s", "duration_s",
             "quantized", "downbeat_doubtful", "accent_by_place", "in_corpus", "origin", "render_bpm_quarter",
             "program", "notes"]
    rows = [{k: label[k] for k in order if k in label} for label in labels]
    body = ",\n".join("    " + json.dumps(r, separators=(", ", ": ")) for r in rows)
    path.write_text('{"version": 1, "rules": "benchmarks/grid_labels.py docstring", "files": [\n' + body + "\n]}\n")


def summary(labels: list[dict]) -> None:
    print(f"{'file':40s} {'status':8s} {'bpm':>8s} {'TS':6s} {'first':>7s} {'downbeat':>8s} {'beats':>5s} "
          f"{'last':>7s} {'end':>7s}  notes")
    for x in labels:
        print(f"{x['file']:40s} {x['status']:8s} {x['bpm']:8.3f} {x['time_signature'][:6]:6s} {x['first_beat_s']:7.3f} "
              f"{x['first_downbeat_s']:8.3f} {x['n_beats']:5d} {x['last_beat_s']:7.2f} {x['duration_s']:7.2f}  "
              + "; ".join(x["notes"])[:150])
    by = {}
    for x in labels:
        key = (x["source"], x["status"])
        by[key] = by.get(key, 0) + 1
    print("\n" + ", ".join(f"{s} {st}: {n}" for (s, st), n in sorted(by.items())))
    pickups = sum(x["first_downbeat_s"] > x["first_beat_s"] for x in labels)
    irregular = sum(len(x["bars"]) > 1 for x in labels)
    doubtful = sum(bool(x.get("downbeat_doubtful")) for x in labels)
    unquantized = sum(not x["quantized"] for x in labels)
    print(f"pickups (first downbeat after the first beat): {pickups}; irregular bars: {irregular}; "
          f"downbeat doubtful: {doubtful}; not quantized: {unquantized}; "
          f"not in the corpus: {[x['file'] for x in labels if not x['in_corpus']]}")


# --------------------------------------------------------------------------- checks


def _decode_peak_envelope(path: Path, signed: bool = False, seconds: float | None = None):
    import numpy as np

    limit = ["-t", str(seconds)] if seconds else []
    raw = subprocess.run(["ffmpeg", "-v", "error", *limit, "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", "44100",
                          "-"], capture_output=True, check=True).stdout
    y = np.frombuffer(raw, dtype=np.float32)
    return (y if signed else np.abs(y)), 44100


def check(labels: list[dict]) -> int:
    """Plausibility without an analyser: the first audible sample of each render against the first
    note's time, render length against the music's end, chorale labels against the MIDI the corpus
    prepared from the same score."""
    import mido
    import numpy as np

    problems = 0
    print(f"\n{'file':40s} {'1st note':>8s} {'audible':>8s} {'lag ms':>7s} {'render':>8s} {'- end':>6s}  check")
    for x in labels:
        path = audio_path(x)
        tm = x["tempo_map"]
        if x.get("variant"):  # a cut copy: find the cut in the audio against its original
            cut, rate = _decode_peak_envelope(path, signed=True, seconds=8)
            orig, _ = _decode_peak_envelope(audio_path({"file": x["origin"]}), signed=True, seconds=14)
            start = int(round(x["trim_s"] * rate))
            span, lags = cut[rate: 6 * rate], range(-rate // 50, rate // 50 + 1)
            best = max(lags, key=lambda lag: float(np.dot(span, orig[start + rate + lag: start + 6 * rate + lag])))
            print(f"{x['file']:40s} cut found {best / rate * 1000:+.2f} ms from the nominal "
                  f"{start / rate:g} s  {'ok' if abs(best) <= 1 else 'CUT NOT WHERE THE LABEL SAYS'}")
            problems += abs(best) > 1
            continue
        if x["source"] == "hydrogen":
            import xml.etree.ElementTree as ET

            root = ET.parse(x["origin"]).getroot()
            pats = {p.findtext("name"): p for p in root.find("patternList")}
            first_group = [p.text for p in root.find("patternSequence")[0].findall("patternID")]
            first_note = min(int(n.findtext("position")) for g in first_group for n in pats[g].iter("note"))
            first_note_s = seconds_at(tm, first_note / HYDROGEN_TICKS)
        else:
            midi = Path(x["origin"]) if x["source"] == "openmsx" else CACHE / ".work" / "midi" / (
                _stem(x["file"]) + ".chorale.mid")
            mid = mido.MidiFile(midi)
            t, first_note_s = 0.0, None
            for msg in mid:
                t += msg.time
                if msg.type == "note_on" and msg.velocity > 0:
                    first_note_s = t
                    break
            if x["source"] == "chorales":  # the prepared MIDI against the score-derived label
                tempi = {round(mido.tempo2bpm(m.tempo), 3) for tr in mid.tracks for m in tr if m.type == "set_tempo"}
                want = {float(x["render_bpm_quarter"])}
                last_on, last_off, t = 0.0, 0.0, 0.0
                for msg in mid:
                    t += msg.time
                    if msg.type == "note_on" and msg.velocity > 0:
                        last_on = t
                    elif msg.type in ("note_on", "note_off"):
                        last_off = t
                period = 60 / x["bpm"]
                if tempi != want or abs(last_off - x["duration_s"]) > 0.01:
                    print(f"  MISMATCH {x['file']}: MIDI tempi {tempi} vs {want}, last note-off {last_off:.3f} vs "
                          f"{x['duration_s']:.3f}")
                    problems += 1
                if not -1e-3 <= last_on - x["last_beat_s"] < period - TOLERANCE * period:
                    print(f"  MISMATCH {x['file']}: last note-on {last_on:.3f} s, last beat {x['last_beat_s']:.3f}")
                    problems += 1
        if path is None:
            print(f"{x['file']:40s} {first_note_s:8.3f}  (no audio)")
            continue
        env, rate = _decode_peak_envelope(path)
        audible = int(np.argmax(env > env.max() * 10 ** (-60 / 20))) / rate
        render = env.size / rate
        lag_ms = (audible - first_note_s) * 1000
        verdict = []
        if not -5 <= lag_ms <= 5:
            verdict.append("first sound not at the first note" + (" (slow attack)" if lag_ms > 5 else ""))
        if render < x["duration_s"] - 0.05 or render > x["duration_s"] + 30:
            verdict.append("render length")
        if x["first_beat_s"] > first_note_s + 1e-6 + TOLERANCE * 60 / x["bpm"]:
            verdict.append("first beat after the first note")
        problems += "render length" in verdict
        print(f"{x['file']:40s} {first_note_s:8.3f} {audible:8.3f} {lag_ms:7.1f} {render:8.2f} "
              f"{render - x['duration_s']:+6.2f}  {'; '.join(verdict) or 'ok'}")
    print(f"\n{problems} problem(s)")
    return problems


def render_extra(labels: list[dict]) -> None:
    """Render the changing-tempo tunes the corpus leaves out, as build.sh renders a midi row."""
    for x in labels:
        if x["in_corpus"] or audio_path(x) is not None:
            continue
        out = EXTRA / x["file"]
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(".part-" + out.name)
        subprocess.run(["timeout", "900", "fluidsynth", "-q", "-ni", "-g", "0.8", "-r", "44100", "-F", str(tmp),
                        SOUNDFONT, x["origin"]], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tmp.replace(out)
        print(f"rendered {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=LABELS)
    parser.add_argument("--from-json", action="store_true", help="do not derive again: read --out")
    parser.add_argument("--check", action="store_true", help="plausibility checks against the renders")
    parser.add_argument("--render-extra", action="store_true",
                        help=f"render the changing-tempo tunes the corpus lacks into {EXTRA}")
    args = parser.parse_args()
    if args.from_json:
        labels = load(args.out)
    else:
        labels = derive()
        write(labels, args.out)
        print(f"wrote {len(labels)} labels to {args.out}")
    summary(labels)
    if args.render_extra:
        render_extra(labels)
    if args.check:
        return 1 if check(labels) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
