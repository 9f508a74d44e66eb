"""A damaged catalog is refused with a sentence, never replaced; doctor sees it; a full
disk inside SQLite is a full disk; a library moved to another folder keeps its catalog."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from music_pipeline.core.domain.errors import DiskFull
from music_pipeline.core.library.catalog import Catalog
from music_pipeline.core.library.damage import CatalogError, errors
from music_pipeline.core.library.steps import Library, register_target

from .audio import make_track


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "music_pipeline", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[:1500])
    elif how == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif how == "zero-header":
        path.write_bytes(bytes(100) + data[100:])


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory):
    """A folder with a library and a Dagster home after one song's run, and a copy of both as
    they were: each case restores them at the same place (the paths the catalog holds)."""
    base = tmp_path_factory.mktemp("damage")
    env = {**os.environ, "MUSIC_LIBRARY": str(base / "library"), "DAGSTER_HOME": str(base / "home")}
    song = make_track(base / "in" / "Artist - Song.flac", seconds=3, codec_args=["-c:a", "flac"])
    assert _cli(env, "run", str(song)).returncode == 0
    # everything in the catalog's main file, as after a clean shutdown
    with sqlite3.connect(base / "library" / "catalog.sqlite") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for name in ("library", "home", "in"):
        shutil.copytree(base / name, base / "as-run" / name)
    return base, env, song


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage", "zero-header"])
def test_a_damaged_catalog_is_refused_with_a_sentence_and_left_as_it_is(how, processed) -> None:
    tmp_path, env, song = processed
    for name in ("library", "home", "in"):  # as the song's run left them
        shutil.rmtree(tmp_path / name)
        shutil.copytree(tmp_path / "as-run" / name, tmp_path / name)
    catalog = tmp_path / "library" / "catalog.sqlite"
    files_before = sorted(p for p in (tmp_path / "library").rglob("*") if p.is_file() and "catalog" not in p.name)
    _damage(catalog, how)
    damaged = catalog.read_bytes()

    other = make_track(tmp_path / "in" / "Other - Song.flac", seconds=3, tonic="D", codec_args=["-c:a", "flac"])
    for args in (["run", str(other)], ["run", str(song)], ["dedup"], ["process", "all"]):
        proc = _cli(env, *args)
        assert proc.returncode != 0, args
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
        assert "is damaged" in proc.stdout + proc.stderr and "backup" in proc.stdout + proc.stderr, proc.stderr
    assert catalog.read_bytes() == damaged  # never replaced, never "repaired"
    after = sorted(p for p in (tmp_path / "library").rglob("*") if p.is_file() and "catalog" not in p.name)
    assert after == files_before  # no second copy of anything ("[key]" files beside unknown originals)

    doctor = _cli(env, "doctor")
    assert doctor.returncode == 1
    assert "catalog" in doctor.stdout and "damaged" in doctor.stdout
    assert "Everything is in place" not in doctor.stdout


def test_doctor_says_the_catalog_is_sound(tmp_path) -> None:
    env = {**os.environ, "MUSIC_LIBRARY": str(tmp_path / "library"), "DAGSTER_HOME": str(tmp_path / "home")}
    assert "not created yet" in _cli(env, "doctor").stdout
    song = make_track(tmp_path / "Artist - Song.flac", seconds=3, codec_args=["-c:a", "flac"])
    assert _cli(env, "run", str(song)).returncode == 0
    out = _cli(env, "doctor").stdout
    assert "sound, schema version" in out and "1 track(s)" in out


def test_a_full_disk_inside_sqlite_is_a_full_disk(tmp_path) -> None:
    path = tmp_path / "full.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 3")  # SQLite's own SQLITE_FULL, as on a full volume
    with pytest.raises(DiskFull, match="full"), errors(str(path)):
        conn.execute("INSERT INTO t VALUES (?)", (os.urandom(1 << 16),))
    conn.close()


def test_a_library_moved_to_another_folder_keeps_working(tmp_path) -> None:
    library = Library(tmp_path / "drive-a" / "Music")
    song = make_track(tmp_path / "Artist - Song.flac", seconds=3, codec_args=["-c:a", "flac"])
    key = register_target(library, str(song))[0].key
    library.fetch_raw(key)
    for fmt in ("ALAC", "AIFF", "WAV"):
        library.render(key, fmt)
    with sqlite3.connect(library.root / "catalog.sqlite") as conn:  # what is stored: relative paths
        assert all(not p.startswith("/") for (p,) in conn.execute("SELECT path FROM files"))
        assert not conn.execute("SELECT raw_path FROM tracks").fetchone()[0].startswith("/")

    shutil.move(tmp_path / "drive-a", tmp_path / "mounted-elsewhere")  # the drive, mounted at another point
    moved = Library(tmp_path / "mounted-elsewhere" / "Music")
    for fmt in ("ALAC", "AIFF", "WAV"):
        assert moved.verify(key, fmt) == []
        assert Path(moved.catalog.files.get(key, fmt).path).is_relative_to(moved.root)
    assert Path(moved.track(key).raw_path).exists()


def test_a_catalog_with_absolute_paths_from_before_is_converted_even_after_a_move(tmp_path) -> None:
    from music_pipeline.core.library.migrations import MIGRATIONS

    old_root = tmp_path / "old" / "Music"
    old_root.mkdir(parents=True)
    with sqlite3.connect(old_root / "catalog.sqlite") as conn:  # a version-5 catalog, absolute paths
        for migration in MIGRATIONS[:5]:
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 5")
        conn.execute("INSERT INTO tracks (key, source_kind, raw_path, created_at, updated_at) VALUES "
                     "('k', 'url', ?, 'now', 'now')", (f"{old_root}/_raw/k.flac",))
        conn.execute("INSERT INTO files (track_key, format, path, size, sha256, updated_at) VALUES "
                     "('k', 'ALAC', ?, 1, 'x', 'now')", (f"{old_root}/ALAC/A/A - S.m4a",))
    new_root = tmp_path / "new" / "Music"
    shutil.move(old_root, new_root)  # moved before upgrading
    catalog = Catalog(new_root / "catalog.sqlite")
    assert catalog.files.get("k", "ALAC").path == str(new_root / "ALAC/A/A - S.m4a")
    assert catalog.tracks.get("k").raw_path == str(new_root / "_raw/k.flac")


def test_an_unknown_track_is_still_a_catalog_error(tmp_path) -> None:
    with pytest.raises(CatalogError):
        Catalog(tmp_path / "c.sqlite").tracks.update("nope", title="x")


def test_upgrading_a_moved_library_with_set_aside_duplicates_is_the_same_every_time(tmp_path) -> None:
    """Migration 6 finds the old library folder from the originals' paths; a duplicate's
    original under duplicates/<group>/_raw/ is not a library folder (taking it for one, in
    whatever order a set gave, mapped the duplicate's file onto the keeper's: UNIQUE failed)."""
    from music_pipeline.core.library.migrations import MIGRATIONS

    old = tmp_path / "old" / "Music"
    rows = {"tracks": [("keeper", "done", f"{old}/_raw/keeper.flac"),
                       ("dup", "duplicate", f"{old}/duplicates/g1/_raw/dup.flac")],
            "files": [("keeper", "ALAC", f"{old}/ALAC/A/A - T.m4a"),
                      ("dup", "ALAC", f"{old}/duplicates/g1/ALAC/A/A - T.m4a")]}
    for seed in range(6):  # Python's set order follows PYTHONHASHSEED: several processes, several orders
        root = tmp_path / f"copy{seed}" / "Music"
        root.mkdir(parents=True)
        with sqlite3.connect(root / "catalog.sqlite") as conn:
            for migration in MIGRATIONS[:5]:
                conn.executescript(migration)
            conn.execute("PRAGMA user_version = 5")
            conn.executemany("INSERT INTO tracks (key, status, source_kind, raw_path, created_at, updated_at)"
                             " VALUES (?, ?, 'url', ?, 'now', 'now')", rows["tracks"])
            conn.executemany("INSERT INTO files (track_key, format, path, size, sha256, updated_at)"
                             " VALUES (?, ?, ?, 1, 'x', 'now')", rows["files"])
        code = ("import sys; from pathlib import Path; from music_pipeline.core.library.catalog import Catalog;"
                "c = Catalog(Path(sys.argv[1])); print(c.files.get('keeper', 'ALAC').path);"
                "print(c.files.get('dup', 'ALAC').path); print(c.tracks.get('dup').raw_path)")
        proc = subprocess.run([sys.executable, "-c", code, str(root / "catalog.sqlite")], capture_output=True,
                              text=True, env={**os.environ, "PYTHONHASHSEED": str(seed)})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [str(root / "ALAC/A/A"), "-", "T.m4a",
                                       str(root / "duplicates/g1/ALAC/A/A"), "-", "T.m4a",
                                       str(root / "duplicates/g1/_raw/dup.flac")]


def test_a_constraint_error_is_not_called_damage(tmp_path) -> None:
    """Only SQLite's corrupt / not-a-database answers mean a damaged file: a UNIQUE clash is a
    bug to report, not a reason to tell the user to restore a backup."""
    library = Library(tmp_path / "library")
    for url in ("https://www.youtube.com/watch?v=aaaaaaaaaaa", "https://www.youtube.com/watch?v=bbbbbbbbbbb"):
        register_target(library, url)
    path = library.root / "ALAC" / "x.m4a"
    library.catalog.files.record_file("youtube-aaaaaaaaaaa", "ALAC", path, size=1, sha256="x", duration_s=1.0,
                                codec="alac", sample_rate=44_100, bits=16)
    with pytest.raises(sqlite3.IntegrityError):
        library.catalog.files.record_file("youtube-bbbbbbbbbbb", "ALAC", path, size=1, sha256="x", duration_s=1.0,
                                    codec="alac", sample_rate=44_100, bits=16)
    assert library.catalog.check() == []
