#!/usr/bin/env python3
"""Analysis benchmark: accuracy and speed of `music-pipeline analyze` against the naive librosa
baseline, in the same run, on the development corpus (../shared/corpus).

    python benchmarks/analysis.py [--cache DIR] [--cpu N] [--limit N]

Both commands are scored by the corpus's own score.py (tempo Accuracy1/Accuracy2, key MIREX
weighted score, speed), one after the other, each as one single-threaded process pinned to
the same core (``--cpu``, default 0) so the ratio between them means something on a shared,
noisy machine. Ours does the full analysis (tempo, key, EBU R128 loudness and true peak,
Chromaprint fingerprint, from one decode); the baseline does tempo and key only. Also
measures our peak memory on a generated 10-minute track. Needs the corpus built
(`bash ../shared/corpus/build.sh`); the baseline runs with this venv's librosa, or the
corpus's baseline venv when it exists.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = (REPO.parent / "shared" / "corpus").resolve()
SINGLE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def score(name: str, command: str, cache: Path, cpu: int | None, out: Path, limit: int | None) -> dict:
    result = out / f"{name}.json"
    cmd = [sys.executable, str(CORPUS / "score.py"), "tempo-key", "--cache", str(cache), "--cmd", command,
           "--json", str(result), "--log", str(out / f"{name}.stderr")]
    if limit:
        cmd += ["--limit", str(limit)]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    print(f"\n== {name}: {command}", flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, **SINGLE_THREAD})
    return json.loads(result.read_text())


def peak_memory_mb(minutes: float = 10.0) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.flac"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"anoisesrc=d={minutes * 60}:c=pink:a=0.2:r=44100", "-ac", "2", "-c:a", "flac", str(path)],
                       check=True)
        code = ("import resource; from pathlib import Path; from music_pipeline.core.audio import analysis;"
                f"analysis.analyse(Path({str(path)!r}));"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, **SINGLE_THREAD})
        return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("CORPUS_DIR", Path.home() / ".cache/music-pipeline-corpus")))
    parser.add_argument("--cpu", type=int, default=0, help="core to pin both runs to (-1: no pinning)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N files (smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="keep score.py's results here")
    args = parser.parse_args()
    if not (args.cache / "labels.csv").exists():
        print(f"The corpus is not built in {args.cache}: run `bash {CORPUS}/build.sh` first.", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="analysis-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    cpu = None if args.cpu < 0 else args.cpu
    baseline_py = args.cache / ".venv-baselines" / "bin" / "python"
    baseline_py = baseline_py if baseline_py.exists() else Path(sys.executable)
    ours = score("music_pipeline", f"{sys.executable} -m music_pipeline analyze --json --jobs 1 {{files}}",
                 args.cache, cpu, out, args.limit)
    naive = score("naive_librosa", f"{baseline_py} {CORPUS / 'baselines' / 'librosa_baseline.py'} {{files}}",
                  args.cache, cpu, out, args.limit)
    memory = peak_memory_mb()

    def row(name: str, r: dict) -> str:
        t, k, s = r.get("tempo", {}), r.get("key", {}), r["speed"]
        return (f"| {name} | {t.get('accuracy1', float('nan')):.3f} | {t.get('accuracy2', float('nan')):.3f} | "
                f"{k.get('mirex', float('nan')):.3f} | {k.get('exact', float('nan')):.3f} | "
                f"{s['median_s_per_track']:.3f} | {s['median_track_x_realtime']:.0f}x | {s['x_realtime']:.0f}x |")

    print("\n| command | tempo Accuracy1 | tempo Accuracy2 | key MIREX | key exact | median s/track "
          "| median x realtime | overall x realtime |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(row("music-pipeline analyze (tempo, key, loudness, fingerprint)", ours))
    print(row("naive librosa baseline (tempo, key)", naive))
    ratio = naive["speed"]["median_s_per_track"] / ours["speed"]["median_s_per_track"]
    print(f"\nspeed: ours takes {1 / ratio:.2f}x the baseline's median time per track ({ratio:.2f}x faster); "
          f"target: at most 0.5x")
    print(f"key categories, ours: {ours.get('key', {}).get('categories')}")
    print(f"peak memory analysing a 10-minute track: {memory:.0f} MB (target: under 400 MB)")
    print(f"full results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
