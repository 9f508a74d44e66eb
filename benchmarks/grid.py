#!/usr/bin/env python3
"""Beat-grid benchmark: our grid against librosa and essentia, in the same run, on the labelled
files of the development corpus (labels: ``benchmarks/grid_labels.json``, see ``grid_labels.py``).

    pip install mir_eval        # the benchmark's own need (the package does not depend on it)
    python benchmarks/grid.py [--methods ours,librosa,essentia] [--only hydrogen|openmsx|chorales]
                              [--limit N] [--jobs 1] [--json out.json] [--cpu N]

Needs the corpus built (``bash ../shared/corpus/build.sh``; ``WITH_BASELINES=1`` for essentia's
venv) and, for the three changing-tempo tunes the corpus does not render,
``~/.cache/music-pipeline-corpus/.venv/bin/python benchmarks/grid_labels.py --from-json --render-extra``.

Methods
-------
* ``ours``: the grid ``analysis.features_of`` gives (``gridfit.estimate`` on the analysis signal,
  preferred range 70-180 BPM), from ``analysis.decode(path)``. Timed against the same analysis
  without the grid (``Settings(grid=False)``: what the pipeline computed before the grid), decode
  included: the ratio (decode + features with grid) / (decode + features without).
* ``librosa``: ``librosa.load(path, sr=22050, mono=True)`` + ``librosa.beat.beat_track`` (beats in
  seconds, bpm = its tempo), in this process (librosa is a dependency of the package).
* ``essentia``: ``RhythmExtractor2013(method='multifeature')`` (bpm, beat ticks) in the corpus's
  baseline venv, one subprocess for all files (``_grid_essentia.py``).
  For both baselines the "whole grid" is their first beat + their BPM extrapolated; they give no
  downbeats (n/a).

Metrics (per file, then per group: every steady file, steady files per source, the chorales rendered
with piano (the other GM programs - organ, strings, choir - take 70-140 ms to reach -6 dB of a note's
peak, so their attacks sound well after the note-on the labels hold), the changing ones, and the
phase test: the OpenMSX copies cut by 3 s, whose first beat is not at 0)
------------------------------------------------------------------------------------------------
* Accuracy1 is also printed for the steady files whose label lies in the preferred range 70-180:
  39 of the 191 lie outside (37 chorales at 60-69 BPM, careless_perc_redfarn at 64, flying_scotsman
  at 200), and an estimator that honours the range reads them an octave off.
* BPM error: |est - ref| after moving est by octaves (x 2^k) to the nearest of ref - octave errors
  are what Accuracy1 counts; median and the share <= 0.02 BPM. Changing files: ref = the tempo that
  lasts longest. Accuracy1: |est - ref| <= 4 % of ref, no octave folding.
* Beat F-measure at +-20 ms: ``mir_eval.beat.f_measure(trim(ref), trim(est), 0.02)`` after
  ``mir_eval.beat.trim_beats`` (drops the first 5 s), mean over files. The estimated beats are
  first clipped to the labelled span (first labelled beat - half a beat .. last + half a beat): the
  labels stop at the last attack (the renders ring on for seconds) and start at the first sound.
* Beat offset: each labelled beat to the nearest estimated beat (est - ref), per file the signed
  median and the median of |offset|; per group the median of those, in ms.
* Downbeat F-measure at +-70 ms on the downbeat times (no trim; same clipping), mean over files
  whose downbeats are not ``downbeat_doubtful`` (8 of the 194 files). Ours only.
* Whole grid: the share of steady files whose grid - first beat + k x 60/BPM for every integer k
  (for ours, ``grid.beats`` with its first segment extended back to the start and the beat just before it, as DJ software draws the line) - has a beat within 20 ms of every
  labelled beat from the first on, with BPM within 4 % (a grid at twice the tempo would otherwise
  pass). Per file also the worst deviation and where it first exceeds 20 ms.
* Time: median seconds per track of each method's own work (ours: the grid on the decoded signal;
  baselines: loading + beat tracking) and, ours, the median ratio (features_of + grid) / features_of.
* ``--methods labels`` scores the labels themselves as an estimate: a check of this harness (every
  figure perfect).

Every figure is printed next to its target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import grid_labels  # noqa: E402

BPM_RANGE = (70.0, 180.0)
BASELINE_PY = grid_labels.CACHE / ".venv-baselines" / "bin" / "python"
TARGETS = {"bpm_err_share": 0.90, "bpm_err": 0.02, "beat_f": 0.90, "offset_ms": 5.0, "downbeat_f": 0.90,
           "whole_grid": 0.90, "acc1": 0.95, "ratio": 1.3}
SOURCES = ("hydrogen", "openmsx", "chorales")


# --------------------------------------------------------------------------- our grid


def run_ours(path: Path) -> dict:
    """Our grid from the analysis the pipeline runs, timed against the same analysis without
    the grid (what the pipeline did before it): decode + features, each timed on its own."""
    from music_pipeline.core.audio import analysis

    started = time.perf_counter()
    decoded = analysis.decode(path)
    decode_s = time.perf_counter() - started
    started = time.perf_counter()
    analysis.features_of(decoded, analysis.Settings(bpm_range=BPM_RANGE, grid=False))
    before_s = time.perf_counter() - started
    started = time.perf_counter()
    features = analysis.features_of(decoded, analysis.Settings(bpm_range=BPM_RANGE))
    with_grid_s = time.perf_counter() - started
    grid = features.grid
    until = decoded.duration_s
    timing = {"time_s": with_grid_s - before_s, "features_s": before_s,
              "ratio": (decode_s + with_grid_s) / (decode_s + before_s)}
    if grid is None:
        return {"bpm": 0.0, "first_beat_s": 0.0, "beats": [], "places": [], "segments": [], "beats_per_bar": 4,
                "confidence": 0.0, "needs_look": True, "duration_s": until, **timing}
    # DJ software draws the grid before its first marker too: extend the first segment back to the
    # start, and to the beat just before it (a line a few ms early puts beat 1 at -0.008 s)
    first, period = grid.segments[0], 60.0 / grid.segments[0].bpm
    back, n = [], 1
    while (t := first.start_s - n * period) > -period / 2:
        back.append((t, (first.beat - 1 - n) % grid.beats_per_bar + 1))
        n += 1
    beats = back[::-1] + grid.beats(until)
    return {"bpm": float(grid.bpm), "first_beat_s": float(grid.first_beat_s),
            "beats": [round(t, 5) for t, _ in beats], "places": [p for _, p in beats],
            "segments": [[s.start_s, s.bpm, s.beat] for s in grid.segments], "beats_per_bar": grid.beats_per_bar,
            "confidence": grid.confidence, "needs_look": grid.needs_look, "duration_s": until, **timing}


def run_librosa(path: Path) -> dict:
    import librosa
    import numpy as np

    started = time.perf_counter()
    y, sr = librosa.load(path, sr=22050, mono=True)
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    elapsed = time.perf_counter() - started
    beats = [round(float(t), 5) for t in np.atleast_1d(beats)]
    return {"bpm": float(np.atleast_1d(tempo)[0]), "beats": beats, "first_beat_s": beats[0] if beats else None,
            "duration_s": y.size / sr, "time_s": elapsed}


def run_essentia(paths: list[Path]) -> dict[str, dict]:
    if not BASELINE_PY.exists():
        print(f"essentia: no baseline venv at {BASELINE_PY} (WITH_BASELINES=1 bash build.sh)", file=sys.stderr)
        return {}
    out = {}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(str(p) for p in paths) + "\n")
        listing = fh.name
    try:
        proc = subprocess.Popen([str(BASELINE_PY), str(HERE / "_grid_essentia.py"), "--filelist", listing],
                                stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        for line in proc.stdout:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if "error" not in row:
                row["time_s"] = row.pop("elapsed_s")
                row["first_beat_s"] = row["beats"][0] if row["beats"] else None
            out[row["path"]] = row
            print(f"  essentia {len(out)}/{len(paths)} {Path(row['path']).name}", file=sys.stderr, flush=True)
        proc.wait()
    finally:
        os.unlink(listing)
    return out


def run_labels(label: dict) -> dict:
    """The labels scored as an estimate: a check of the harness (every figure must be perfect)."""
    beats = grid_labels.beats(label)
    return {"bpm": label["bpm"], "first_beat_s": label["first_beat_s"], "beats": [t for t, _ in beats],
            "places": [p for _, p in beats], "segments": [[label["first_beat_s"], label["bpm"], 1]],
            "beats_per_bar": label["beats_per_bar"], "confidence": 1.0, "needs_look": False,
            "time_s": 0.0, "features_s": 1.0, "ratio": 1.0}


def _per_file(task: tuple[str, str]) -> tuple[str, str, dict]:
    method, path = task
    try:
        return method, path, (run_ours if method == "ours" else run_librosa)(Path(path))
    except Exception as err:  # a crash on one file is a miss, not the end of the run
        return method, path, {"error": repr(err)}


# --------------------------------------------------------------------------- scoring


def _nearest(sorted_est, values):
    import numpy as np

    est = np.asarray(sorted_est, dtype=float)
    values = np.asarray(values, dtype=float)
    if est.size == 0:
        return np.full(values.shape, np.inf)
    i = np.clip(np.searchsorted(est, values), 1, max(est.size - 1, 1))
    left, right = est[i - 1], est[np.minimum(i, est.size - 1)]
    return np.where(np.abs(values - left) <= np.abs(values - right), left, right) - values


def _fold(est: float, ref: float) -> tuple[float, float]:
    """est moved by octaves to the nearest of ref: (folded, factor)."""
    options = [(abs(est * 2.0 ** k - ref), est * 2.0 ** k, 2.0 ** k) for k in range(-3, 4)]
    _, folded, factor = min(options)
    return folded, factor


def score(label: dict, est: dict, method: str) -> dict:
    import mir_eval
    import numpy as np

    ref_beats = grid_labels.beats(label)
    ref = np.array([t for t, _ in ref_beats])
    ref_down = np.array([t for t, p in ref_beats if p == 1])
    period = 60.0 / label["bpm"]
    row = {"file": label["file"], "source": label["source"], "status": label["status"], "method": method,
           "ref_bpm": label["bpm"], "ref_first_beat_s": label["first_beat_s"],
           "downbeat_doubtful": bool(label.get("downbeat_doubtful"))}
    row.update({k: label[k] for k in ("variant", "program") if k in label})
    if "error" in est or not est.get("bpm"):
        row.update(error=est.get("error", "no tempo"), acc1=False, beat_f=0.0, whole_grid=False)
        return row
    bpm = est["bpm"]
    folded, factor = _fold(bpm, label["bpm"])
    lo, hi = ref[0] - period / 2, ref[-1] + period / 2
    beats = np.array(sorted(est["beats"]), dtype=float)
    clipped = beats[(beats >= lo) & (beats <= hi)]
    offsets = _nearest(beats, ref)
    row.update(
        est_bpm=round(bpm, 3), bpm_err=round(abs(folded - label["bpm"]), 4), octave=factor,
        acc1=abs(bpm - label["bpm"]) <= 0.04 * label["bpm"],
        beat_f=float(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(ref), mir_eval.beat.trim_beats(clipped),
                                             f_measure_threshold=0.02)),
        offset_ms=round(float(np.median(offsets)) * 1000, 2),
        abs_offset_ms=round(float(np.median(np.abs(offsets))) * 1000, 2),
        est_first_beat_s=est.get("first_beat_s"), time_s=round(est["time_s"], 4),
    )
    if method in ("ours", "labels"):
        places = np.array(est["places"])
        down = beats[places == 1] if places.size == beats.size else np.array([])
        down = down[(down >= lo) & (down <= hi)]
        if not label.get("downbeat_doubtful") and ref_down.size:
            row["downbeat_f"] = float(mir_eval.beat.f_measure(ref_down, down, f_measure_threshold=0.07))
        row.update(segments=len(est["segments"]), confidence=est["confidence"], needs_look=est["needs_look"],
                   features_s=round(est["features_s"], 4), ratio=round(est["ratio"], 3),
                   beats_per_bar=est["beats_per_bar"])
        grid = beats  # the grid as DJ software shows it
    else:
        first = est["first_beat_s"]
        step = 60.0 / bpm
        k = np.arange(np.floor((ref[0] - 1 - first) / step), np.ceil((ref[-1] + 1 - first) / step) + 1)
        grid = first + k * step
    if label["status"] == "steady":
        dev = np.abs(_nearest(grid, ref))
        over = np.flatnonzero(dev > 0.02)
        row.update(whole_grid=bool(not over.size and row["acc1"]), grid_max_ms=round(float(dev.max()) * 1000, 1),
                   grid_off_from_s=round(float(ref[over[0]]), 2) if over.size else None)
    row["est_beats"] = [round(float(t), 4) for t in beats]
    return row


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def aggregate(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    steady = [r for r in rows if r["status"] == "steady"]
    down = [r.get("downbeat_f") for r in rows if "downbeat_f" in r]
    return {
        "n": len(rows), "errors": len(rows) - len(ok),
        "bpm_err_median": _median([r.get("bpm_err") for r in ok]),
        "bpm_err_share": _mean([float(r.get("bpm_err", 1e9) <= TARGETS["bpm_err"]) for r in rows]),
        "acc1": _mean([float(r["acc1"]) for r in rows]),
        "acc1_in_range": _mean([float(r["acc1"]) for r in rows if BPM_RANGE[0] <= r["ref_bpm"] <= BPM_RANGE[1]]),
        "n_in_range": sum(BPM_RANGE[0] <= r["ref_bpm"] <= BPM_RANGE[1] for r in rows),
        "beat_f": _mean([r["beat_f"] for r in rows]),
        "offset_ms": _median([r.get("offset_ms") for r in ok]),
        "abs_offset_ms": _median([r.get("abs_offset_ms") for r in ok]),
        "downbeat_f": _mean(down), "downbeat_n": len(down),
        "whole_grid": _mean([float(r.get("whole_grid", False)) for r in steady]) if steady else None,
        "time_s": _median([r.get("time_s") for r in ok]),
        "ratio": _median([r.get("ratio") for r in ok]),
    }


def _fmt(value, spec: str = ".3f", none: str = "n/a") -> str:
    return none if value is None else format(value, spec)


def table(results: dict[str, list[dict]], names: dict[str, str]) -> tuple[str, dict]:
    main = [("steady, all", lambda r: r["status"] == "steady")]
    main += [(f"steady, {s}", lambda r, s=s: r["status"] == "steady" and r["source"] == s) for s in SOURCES]
    main += [("steady, chorales: piano", lambda r: r["status"] == "steady" and r.get("program") == 0),
             ("changing tempo", lambda r: r["status"] == "changing")]
    groups = [(name, lambda r, keep=keep: not r.get("variant") and keep(r)) for name, keep in main]
    groups += [("phase test: openmsx cut by 3 s", lambda r: bool(r.get("variant")))]
    head = ("| method | files | n | BPM err median | BPM err <= 0.02 | Accuracy1 | beat F @ 20 ms | offset median "
            "(signed / abs, ms) | downbeat F @ 70 ms (n) | whole grid within 20 ms | median s/track | "
            "(features_of + grid) / features_of |")
    lines = [head, "|" + " --- |" * 12,
             f"| target | steady | | | >= {TARGETS['bpm_err_share']:.2f} at <= 0.02 | >= {TARGETS['acc1']:.2f} | "
             f">= {TARGETS['beat_f']:.2f} | abs <= {TARGETS['offset_ms']:g} | >= {TARGETS['downbeat_f']:.2f} | "
             f">= {TARGETS['whole_grid']:.2f} | | <= {TARGETS['ratio']:g} |"]
    summary = {}
    for method, rows in results.items():
        for gname, keep in groups:
            sel = [r for r in rows if keep(r)]
            if not sel:
                continue
            a = aggregate(sel)
            summary[f"{method} / {gname}"] = a
            down = "n/a" if method not in ("ours", "labels") else f"{_fmt(a['downbeat_f'])} ({a['downbeat_n']})"
            grid = "n/a" if gname == "changing tempo" else _fmt(a["whole_grid"])
            lines.append(
                f"| {names[method]} | {gname} | {a['n']}{' (' + str(a['errors']) + ' failed)' if a['errors'] else ''} | "
                f"{_fmt(a['bpm_err_median'])} | {_fmt(a['bpm_err_share'])} | {_fmt(a['acc1'])} | {_fmt(a['beat_f'])} | "
                f"{_fmt(a['offset_ms'], '+.1f')} / {_fmt(a['abs_offset_ms'], '.1f')} | {down} | {grid} | "
                f"{_fmt(a['time_s'], '.3f')} | {_fmt(a['ratio'], '.2f') if method in ('ours', 'labels') else 'n/a'} |")
    return "\n".join(lines), summary


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, default=grid_labels.LABELS)
    parser.add_argument("--cache", type=Path, default=grid_labels.CACHE)
    parser.add_argument("--extra", type=Path, default=grid_labels.EXTRA,
                        help="where the changing-tempo renders are (grid_labels.py --render-extra)")
    parser.add_argument("--methods", default="ours,librosa,essentia")
    parser.add_argument("--only", choices=SOURCES, default=None)
    parser.add_argument("--limit", type=int, default=None, help="only the first N labelled files")
    parser.add_argument("--jobs", type=int, default=1, help="parallel files for ours/librosa (timings: use 1)")
    parser.add_argument("--cpu", type=int, default=None, help="pin this run (and essentia's process) to a core")
    parser.add_argument("--json", type=Path, default=None, help="per-file rows and the summary")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # mir_eval warns on every empty beat list
    try:
        import mir_eval  # noqa: F401
    except ImportError:
        print("needs mir_eval: pip install mir_eval", file=sys.stderr)
        return 2
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - {"ours", "librosa", "essentia", "labels"}
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}")
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    labels = [x for x in grid_labels.load(args.labels) if args.only in (None, x["source"])]
    todo, missing = [], []
    for label in labels:
        path = grid_labels.audio_path(label, args.cache, args.extra)
        (todo if path else missing).append((label, path))
    if missing:
        print(f"no audio for {len(missing)} labelled file(s), skipped: {[x['file'] for x, _ in missing][:6]}",
              file=sys.stderr)
    todo = todo[: args.limit] if args.limit else todo
    if not todo:
        print(f"nothing to run: is the corpus built in {args.cache}?", file=sys.stderr)
        return 2
    our_name = "gridfit (in analysis.features_of)"
    names = {"ours": f"ours ({our_name})", "labels": "labels (harness self-check)", "librosa": "librosa beat_track",
             "essentia": "essentia RhythmExtractor2013 multifeature"}
    print(f"{len(todo)} files, methods {methods}; ours = {our_name}", flush=True)
    estimates: dict[str, dict[str, dict]] = {m: {} for m in methods}
    started = time.time()
    if "essentia" in methods:
        estimates["essentia"] = run_essentia([p for _, p in todo])
    if "labels" in methods:
        estimates["labels"] = {str(p): run_labels(label) for label, p in todo}
    tasks = [(m, str(p)) for _, p in todo for m in methods if m in ("ours", "librosa")]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = pool.map(_per_file, tasks)
            for i, (method, path, est) in enumerate(results):
                estimates[method][path] = est
                print(f"  {method} {i + 1}/{len(tasks)} {Path(path).name}", file=sys.stderr, flush=True)
    else:
        for i, task in enumerate(tasks):
            method, path, est = _per_file(task)
            estimates[method][path] = est
            print(f"  {method} {i + 1}/{len(tasks)} {Path(path).name}", file=sys.stderr, flush=True)
    wall = time.time() - started
    rows: dict[str, list[dict]] = {}
    for method in methods:
        rows[method] = [score(label, estimates[method].get(str(path), {"error": "no answer"}), method)
                        for label, path in todo]
    text, summary = table(rows, names)
    print("\n" + text)
    print(f"\nwall {wall:.0f} s for {len(todo)} files; labels: {args.labels.name}; "
          f"downbeats scored on files not flagged downbeat_doubtful; whole grid on steady files only")
    for method in methods:
        a = summary.get(f"{method} / steady, all")
        if a:
            print(f"{method}: Accuracy1 {_fmt(a['acc1_in_range'])} on the {a['n_in_range']} steady files whose label "
                  f"lies in the preferred range {BPM_RANGE[0]:g}-{BPM_RANGE[1]:g} BPM")
    for method in methods:
        worst = sorted((r for r in rows[method] if r["status"] == "steady"), key=lambda r: r["beat_f"])[:5]
        print(f"{method}: lowest beat F: " + ", ".join(f"{Path(r['file']).stem} {r['beat_f']:.2f}" for r in worst))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"ours": our_name, "methods": methods, "targets": TARGETS,
                                         "summary": summary, "rows": [r for m in methods for r in rows[m]]},
                                        indent=1))
        print(f"per-file rows: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
