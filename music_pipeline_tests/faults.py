"""Run the CLI and SIGKILL it at a chosen point: the fault-injection harness.

``python -m music_pipeline_tests.faults POINT -- ARGS...`` runs ``music-pipeline ARGS...``
in this process with a Python audit hook (PEP 578) that watches what the product does —
files opened, renamed, processes started, SQLite connections — and kills the process
with SIGKILL, the way the OOM killer or a pulled plug would, at POINT:

* ``download``: 0.5 s after the download's scratch file is first written;
* ``transcode``: once ffmpeg has written part of the ALAC file (it is still running);
* ``tagging``: when mutagen opens a half-written output to write its tags;
* ``renamed``: right after the ALAC file was renamed into place, before it is recorded;
* ``catalog``: on the catalog connection that records the AIFF file;
* ``index``: when the library index's temporary file is opened for writing.

Nothing of the product is replaced: the hook only decides when to pull the plug.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from music_pipeline.core.library.store import PART_MARK


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _later(seconds: float) -> None:
    threading.Timer(seconds, _kill).start()


def _when_written(path: str, size: int = 256 * 1024) -> None:
    """Kill once ``path`` (an output ffmpeg is writing) has ``size`` bytes."""
    while not os.path.exists(path) or os.path.getsize(path) < size:
        time.sleep(0.005)
    _kill()


class Trigger:
    """The audit hook: fires once, at the point it was made for."""

    def __init__(self, point: str) -> None:
        self.point = point
        self.armed = True
        self.after_rename = False
        self.aiff_renamed = False

    def __call__(self, event: str, args: tuple) -> None:
        if not self.armed:
            return
        point = self.point
        if self.after_rename:  # the very next thing the process does after the rename
            self.armed = False
            _kill()
        if event == "open" and args and isinstance(args[0], str | bytes):
            path = os.fsdecode(args[0])
            mode = args[1] if len(args) > 1 else "r"
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing = any(flag in mode for flag in "wa+") if isinstance(mode, str) \
                else bool(flags & (os.O_WRONLY | os.O_RDWR))  # os.open: no mode, only flags
            mode = mode if isinstance(mode, str) else ""
            if point == "download" and "/_raw/download-" in path and writing:
                self.armed = False
                _later(0.5)
            elif PART_MARK in path and ((point == "tagging" and "/ALAC/" in path and "+" in mode)
                                        or (point == "index" and "library_index" in path and writing)):
                self.armed = False
                _kill()
        elif event == "subprocess.Popen" and point == "transcode":
            argv = [os.fsdecode(a) for a in (args[1] or [])]
            if "ffmpeg" in " ".join(argv[:5]) and "alac" in argv:
                self.armed = False
                threading.Thread(target=_when_written, args=(argv[-1],), daemon=True).start()
        elif event == "os.rename" and len(args) >= 2:
            dest = os.fsdecode(args[1])
            if point == "renamed" and "/ALAC/" in dest and PART_MARK not in dest:
                self.after_rename = True
            elif point == "catalog" and "/AIFF/" in dest and PART_MARK not in dest:
                self.aiff_renamed = True
        elif event == "sqlite3.connect" and point == "catalog" and self.aiff_renamed:
            self.armed = False
            _kill()


def main(argv: list[str]) -> int:
    point, _, args = argv[0], argv[1], argv[2:]
    sys.addaudithook(Trigger(point))
    from music_pipeline.cli import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
