"""Analysing many local files in parallel, one process per core.

Each worker analyses whole files (decode + features), so the work splits cleanly across
cores (the numeric work inside is single-threaded). Results arrive as they finish; a file that cannot be analysed yields
an error record and the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path

from ..domain.errors import TrackError
from ..sources.inbox import AUDIO_EXTENSIONS
from . import analysis


def expand(targets: Iterable[str]) -> list[str]:
    """Files as given, and the audio files inside folders (recursively, sorted)."""
    files: list[str] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            files.extend(str(p) for p in sorted(path.rglob("*"))
                         if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))
        else:
            files.append(target)
    return files


def analyse_record(path: str, settings: analysis.Settings | None = None) -> dict:
    """The JSON record of one file: its features, or {"path", "error"}."""
    try:
        features = analysis.analyse(Path(path), settings or analysis.Settings())
    except TrackError as err:
        return {"path": path, "error": str(err)}
    except Exception as err:  # one broken file must not stop a batch of thousands
        return {"path": path, "error": f"{type(err).__name__}: {err}"}
    record = {"path": path, **features.as_dict()}
    return record


def run(files: list[str], jobs: int, settings: analysis.Settings | None = None,
        on_done: Callable[[int, int], None] | None = None) -> Iterator[dict]:
    """Analyse ``files`` with ``jobs`` processes, yielding records as they complete."""
    return map_files(partial(analyse_record, settings=settings), files, jobs, on_done)


def map_files(worker: Callable[[str], dict], files: list[str], jobs: int,
              on_done: Callable[[int, int], None] | None = None) -> Iterator[dict]:
    """``worker(path)`` for every file in ``jobs`` processes, yielding records as they
    complete; ``worker`` must return a record and never raise (see ``analyse_record``)."""
    total = len(files)
    if jobs <= 1 or total <= 1:
        for done, path in enumerate(files, 1):
            record = worker(path)
            if on_done:
                on_done(done, total)
            yield record
        return
    pool = ProcessPoolExecutor(max_workers=min(jobs, total))
    try:
        futures = {pool.submit(worker, path): path for path in files}
        for done, future in enumerate(as_completed(futures), 1):
            if on_done:
                on_done(done, total)
            try:
                yield future.result()
            except BrokenProcessPool:  # a worker died (out of memory, a crash in a decoder)
                yield {"path": futures[future], "error": "the worker process died on this file "
                                                         "(out of memory, or a decoder crashed)"}
    finally:
        # Stopped early (Ctrl-C, `| head`): do not wait for the files nobody will read.
        pool.shutdown(wait=False, cancel_futures=True)
