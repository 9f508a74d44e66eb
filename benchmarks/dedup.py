#!/usr/bin/env python3
"""Dedup benchmark: fingerprint grouping accuracy on the development corpus, and how grouping
scales to 100,000 tracks against the all-pairs comparison, in the same run.

    python benchmarks/dedup.py [--cache DIR] [--sizes 1000,10000,100000] [--budget 600]

1. Accuracy: the corpus's ``score.py fingerprint`` runs ``music-pipeline dedup --json`` on
   its 169 files (precision and recall over the 594 labelled pairs), then the corpus's plain
   Chromaprint baseline (fpcalc + all-pairs pyacoustid scoring) the same way.
2. Scale: N synthetic fingerprints made from the corpus's real ones. Each distinct track is
   spliced from three segments of different real fingerprints, each scrambled by its own
   32-bit mask (which keeps Chromaprint's item statistics and makes it match nothing else);
   10 % of the tracks get a planted near-duplicate (shifted by up to 40 items, trimmed, 30 %
   of its items with one or two bits flipped, as a re-encode does), and 2 % a planted
   look-alike sharing a quarter of its items (a sample or a medley: must not match).
   ``dedup.find_groups`` (what the library pass and the CLI run) is timed and checked against the planted truth (in a fresh process,
   for its peak memory); the all-pairs comparison (pyacoustid's scoring, vectorised as in
   the corpus's chromaprint baseline) is run in full where it fits in ``--budget`` seconds
   and extrapolated from a timed sample beyond.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORPUS = (REPO.parent / "shared" / "corpus").resolve()
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(CORPUS / "baselines"))


# -- 1. accuracy on the corpus ---------------------------------------------------------------


def corpus_accuracy(cache: Path, out: Path) -> dict[str, dict]:
    results = {}
    baseline = cache / ".venv-baselines" / "bin" / "python"
    commands = {
        "music-pipeline dedup": f"{sys.executable} -m music_pipeline dedup --json {{files}}",
        "chromaprint baseline (all pairs)": f"{baseline if baseline.exists() else sys.executable} "
                                            f"{CORPUS / 'baselines' / 'chromaprint_baseline.py'} --impl numpy {{files}}",
    }
    for name, command in commands.items():
        result = out / f"{len(results)}.json"
        print(f"\n== {name}: {command}", flush=True)
        subprocess.run([sys.executable, str(CORPUS / "score.py"), "fingerprint", "--cache", str(cache),
                        "--cmd", command, "--json", str(result), "--log", str(out / f"{len(results)}.stderr")],
                       check=True, env={**os.environ, "MUSIC_LIBRARY": str(out / "library")})
        results[name] = json.loads(result.read_text())
    return results


def real_fingerprints(cache: Path) -> list[np.ndarray]:
    """The raw fingerprints of the corpus's distinct recordings (originals, covers, stems)."""
    import csv

    from music_pipeline.core.audio.fingerprint import fingerprint_file
    from music_pipeline.core.domain import fpindex

    rows = list(csv.DictReader((CORPUS / "files.csv").read_text().splitlines()))
    distinct = [r["file"] for r in rows if r["recipe"] in ("midi", "midistem", "copy", "hydrogen", "chorale")]
    prints = []
    for name in distinct:
        path = cache / name
        if path.exists():
            prints.append(fpindex.decode(fingerprint_file(path).fingerprint))
    return [p for p in prints if p.size >= 200]


# -- 2. scale ----------------------------------------------------------------------------------------


def synthetic(real: list[np.ndarray], n: int, seed: int = 1) -> tuple[list[np.ndarray], set[tuple[int, int]]]:
    """``n`` fingerprints with planted near-duplicates (returned as the truth) and look-alikes."""
    rng = np.random.default_rng(seed)

    def spliced() -> np.ndarray:
        parts = []
        for _segment in range(3):
            base = real[int(rng.integers(len(real)))]
            length = int(rng.integers(200, 400))
            start = int(rng.integers(0, max(1, base.size - length)))
            parts.append(base[start:start + length] ^ np.uint32(rng.integers(1, 2**32, dtype=np.uint64)))
        return np.concatenate(parts)[:950]

    tracks: list[np.ndarray] = []
    truth: set[tuple[int, int]] = set()
    distinct = int(n / 1.12)
    for _ in range(distinct):
        tracks.append(spliced())
    while len(tracks) < n:
        original = int(rng.integers(distinct))
        source = tracks[original]
        if rng.random() < 0.85:  # a re-encoded, shifted, trimmed copy
            copy = source[int(rng.integers(0, 40)):source.size - int(rng.integers(0, 60))].copy()
            flips = rng.random(copy.size) < 0.3
            bits = rng.integers(0, 32, size=(int(flips.sum()), 2)).astype(np.uint32)
            copy[flips] ^= (np.uint32(1) << bits[:, 0]) | np.where(rng.random(bits.shape[0]) < 0.5,
                                                                    np.uint32(1) << bits[:, 1], np.uint32(0))
            truth.add((original, len(tracks)))
        else:  # a look-alike as long as the original, a quarter of it taken from the original
            other = spliced()
            while other.size < source.size:
                other = np.concatenate([other, spliced()])
            quarter = source.size // 4
            copy = np.concatenate([source[:quarter], other[quarter:source.size]])
        tracks.append(copy)
    return tracks, truth


def transitive(pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """All pairs inside the components the pairs form (two copies of one original match too)."""
    groups: dict[int, set[int]] = {}
    for a, b in pairs:
        merged = groups.get(a, {a}) | groups.get(b, {b})
        for member in merged:
            groups[member] = merged
    return {(a, b) for members in {id(g): g for g in groups.values()}.values()
            for a in members for b in members if a < b}


def run_group(path: str) -> None:
    """In a fresh process: group the fingerprints in ``path``; print time and peak memory."""
    from music_pipeline.core.domain import dedup

    data = np.load(path, allow_pickle=True)
    items = [dedup.Item(id=str(i), fingerprint=f) for i, f in enumerate(data["tracks"])]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    groups = dedup.find_groups(items)  # what the dedup_groups asset and `music-pipeline dedup` run
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    found = {(a, b) for g in groups for a in map(int, g.members) for b in map(int, g.members) if a < b}
    print(json.dumps({"seconds": elapsed, "peak_mb": peak / 1024, "loaded_mb": before / 1024,
                      "pairs": sorted(found)}))


def all_pairs(tracks: list[np.ndarray], budget_s: float, threshold: float = 0.5) -> tuple[float, bool, int]:
    """Seconds for the all-pairs comparison (measured, or extrapolated from a sample)."""
    from chromaprint_baseline import match_numpy

    n = len(tracks)
    total = n * (n - 1) // 2
    rng = np.random.default_rng(0)
    sample = 300
    started = time.perf_counter()
    for _ in range(sample):
        i, j = rng.choice(n, 2, replace=False)
        match_numpy(tracks[i], tracks[j])
    per_pair = (time.perf_counter() - started) / sample
    if per_pair * total > budget_s:
        return per_pair * total, False, 0
    started = time.perf_counter()
    matched = 0
    for i in range(n):
        for j in range(i + 1, n):
            matched += match_numpy(tracks[i], tracks[j]) >= threshold
    return time.perf_counter() - started, True, matched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("CORPUS_DIR", Path.home() / ".cache/music-pipeline-corpus")))
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds the all-pairs run may take per N")
    parser.add_argument("--skip-corpus", action="store_true")
    args = parser.parse_args()
    if not (args.cache / "pairs.csv").exists() and not (CORPUS / "pairs.csv").exists():
        print("the development corpus is not built: bash ../shared/corpus/build.sh", file=sys.stderr)
        return 2
    if not shutil.which("fpcalc"):
        print("fpcalc is missing: music-pipeline doctor --install", file=sys.stderr)
        return 2
    out = Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    rows = []
    if not args.skip_corpus:
        rows = list(corpus_accuracy(args.cache, out).items())
    real = real_fingerprints(args.cache)
    print(f"\n{len(real)} real fingerprints from the corpus as material", flush=True)
    scale = []
    for n in [int(s) for s in args.sizes.split(",")]:
        tracks, truth = synthetic(real, n)
        truth = transitive(truth)
        path = out / f"fp{n}.npz"
        np.savez(path, tracks=np.array(tracks, dtype=object))
        proc = subprocess.run([sys.executable, __file__, "--group", str(path)], capture_output=True, text=True,
                              check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        found = {tuple(p) for p in result["pairs"]}
        precision = len(found & truth) / len(found) if found else 1.0
        recall = len(found & truth) / len(truth) if truth else 1.0
        brute_s, measured, _ = all_pairs(tracks, args.budget)
        scale.append((n, result["seconds"], result["peak_mb"], precision, recall, len(truth), brute_s, measured))
        print(f"N={n}: grouped in {result['seconds']:.1f} s (peak {result['peak_mb']:.0f} MB), precision "
              f"{precision:.4f} recall {recall:.4f} over {len(truth)} planted pairs; all pairs "
              f"{'took' if measured else 'would take'} {brute_s:.0f} s", flush=True)
    print("\n| command | precision | recall | same merged | stem merged | cover merged | different merged | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, data in rows:
        merged = {k: f"{v['merged']}/{v['of']}" for k, v in data["merged_by_relation"].items()}
        print(f"| {name} | {data['precision']:.3f} | {data['recall']:.3f} | {merged.get('same')} "
              f"| {merged.get('stem')} | {merged.get('cover')} | {merged.get('different')} | {data['wall_s']:.1f} |")
    print("\n| N | index + align s | peak MB | precision | recall | planted pairs | all-pairs s | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, seconds, peak, precision, recall, planted, brute_s, measured in scale:
        brute = f"{brute_s:.0f}" if measured else f"~{brute_s:.0f} (extrapolated, {brute_s / 86400:.1f} days)"
        print(f"| {n:,} | {seconds:.1f} | {peak:.0f} | {precision:.4f} | {recall:.4f} | {planted} | {brute} "
              f"| {brute_s / max(seconds, 1e-9):,.0f}x |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--group":
        run_group(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
