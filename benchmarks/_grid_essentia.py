#!/usr/bin/env python3
"""Essentia beat baseline for ``benchmarks/grid.py``; runs in the corpus's baseline venv
(``~/.cache/music-pipeline-corpus/.venv-baselines/bin/python``, which has essentia), like the
corpus's ``baselines/essentia_baseline.py``.

usage: _grid_essentia.py --filelist LIST
  audio: MonoLoader(sampleRate=44100)
  beats: RhythmExtractor2013(method='multifeature') -> bpm, beat ticks (seconds)
Prints one JSON line per file: {"path", "bpm", "beats", "confidence", "elapsed_s"} (or "error");
sequential, one process. elapsed_s covers loading and the rhythm extractor.
"""

import json
import sys
import time
from pathlib import Path

import essentia

essentia.log.infoActive = False
essentia.log.warningActive = False
import essentia.standard as es  # noqa: E402

RHYTHM = es.RhythmExtractor2013(method="multifeature")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--filelist"]:
        files = [line.strip() for line in Path(argv[1]).read_text().splitlines() if line.strip()]
    else:
        files = argv
    for path in files:
        started = time.perf_counter()
        try:
            audio = es.MonoLoader(filename=path, sampleRate=44100)()
            bpm, ticks, confidence, _, _ = RHYTHM(audio)
            out = {"path": path, "bpm": float(bpm), "beats": [round(float(t), 5) for t in ticks],
                   "confidence": float(confidence)}
        except Exception as err:  # keep going: grid.py scores a missing answer as a miss
            out = {"path": path, "error": repr(err)}
        out["elapsed_s"] = round(time.perf_counter() - started, 4)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
