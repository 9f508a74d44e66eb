"""`music-pipeline mirror` as a user runs it (a separate process, a persistent DAGSTER_HOME)
against the Eagle fake: what it says and its exit code when Eagle imports, refuses, or is closed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from music_pipeline.core.library import mirrors
from music_pipeline.core.library.steps import Library
from music_pipeline.core.sources import eagle

from .fakes.eagle import FakeEagle
from .test_eagle import add_done

TOKEN = "eagle-cli-secret-token-77"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FakeEagle]:
    with FakeEagle(tmp_path / "Eagle.library", token=TOKEN) as fake:
        yield fake


def mirror(app: FakeEagle, library: Library, tmp_path: Path, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTION_", "EAGLE_", "TRACKS_DB"))}
    env.update(MUSIC_LIBRARY=str(library.root), DAGSTER_HOME=str(tmp_path / "home"), EAGLE_API_BASE=app.url,
               EAGLE_TOKEN=token)
    return subprocess.run([sys.executable, "-m", "music_pipeline", "mirror", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def lines_of(proc: subprocess.CompletedProcess, keys: list[str]) -> dict[str, str]:
    return {k: next(line for line in proc.stdout.splitlines() if k in line and line.startswith("[")) for k in keys}


def test_mirror_imports_with_the_token_in_the_url_several_tracks_at_once(app, library, tmp_path) -> None:
    keys = [add_done(library, n) for n in range(1, 4)]

    proc = mirror(app, library, tmp_path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    items = {eagle.key_of(i): i["id"] for i in app.items()}
    assert set(items) == set(keys)
    for key, line in lines_of(proc, keys).items():
        assert f"Eagle item {items[key]}" in line and "skipped: Notion is not configured" in line
    assert app.calls("/api/item/addFromPaths") == 1 and app.calls("/api/item/addFromPath") == 0
    assert all(r.token_given and not r.token_in_body for r in app.requests)
    assert TOKEN not in proc.stdout + proc.stderr


def test_mirror_fails_and_names_the_error_when_eagle_refuses(app, library, tmp_path) -> None:
    old, new = add_done(library, 1), add_done(library, 2)
    stale_id = mirrors.sync_eagle(library, eagle.EagleClient(app.url, token=TOKEN), old).item_id
    library.catalog.tracks.update(old, bpm=131.0)  # something to write

    proc = mirror(app, library, tmp_path, token="not-the-token-at-all")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    for line in lines_of(proc, [old, new]).values():
        assert "Eagle rejected the API token" in line and "EAGLE_TOKEN" in line, proc.stdout
        assert stale_id not in line
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "not-the-token-at-all" not in proc.stdout + proc.stderr

    app.fail_next(20, status=500, path="/api/item/addFromPaths")  # Eagle answers, and fails the import
    app.fail_next(20, status=500, path="/api/item/addFromPath")
    proc = mirror(app, library, tmp_path, new)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "HTTP 500" in lines_of(proc, [new])[new] and "Traceback" not in proc.stdout + proc.stderr


def test_mirror_says_skipped_when_eagle_is_closed(app, library, tmp_path) -> None:
    key = add_done(library, 1)
    item_id = mirrors.sync_eagle(library, eagle.EagleClient(app.url, token=TOKEN), key).item_id
    app.stop()

    proc = mirror(app, library, tmp_path)

    line = lines_of(proc, [key])[key]
    assert f"skipped: Eagle not reachable at {app.url}" in line and item_id not in line, proc.stdout
    assert not line.split("]", 1)[1].strip().startswith("ok")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # Eagle not running is not a failure
    assert "Traceback" not in proc.stdout + proc.stderr
