"""Several processes at once: two same-named songs, two first uses of a catalog.

Real processes (multiprocessing's spawn, like Dagster's run workers), a real catalog, real
ffmpeg: what is checked is what a user would find on disk afterwards.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from music_pipeline.core.audio import media
from music_pipeline.core.domain.identity import source_for
from music_pipeline.core.domain.paths import FORMATS
from music_pipeline.core.library.steps import Library, register_target

from .audio import make_track


def _render_all(root: str, key: str, barrier) -> None:
    library = Library(Path(root))
    library.catalog.tracks.mark_running(key)  # as each step of a run does
    barrier.wait()  # both processes decide where to write at the same moment
    for fmt in FORMATS:
        library.render(key, fmt)


def _in_parallel(target, args_list: list[tuple]) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args_list))
    procs = [ctx.Process(target=target, args=(*args, barrier)) for args in args_list]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0, f"a worker failed with exit code {proc.exitcode}"


def test_two_different_songs_with_the_same_name_in_parallel_keep_their_own_audio(tmp_path: Path) -> None:
    library = Library(tmp_path / "library")
    tags = {"artist": "Same Artist", "title": "Same Title"}
    short = make_track(tmp_path / "one" / "song.flac", seconds=20, tonic="A", metadata=tags,
                       codec_args=["-c:a", "flac"])
    long = make_track(tmp_path / "two" / "song.flac", seconds=31, tonic="D", metadata=tags, seed=3,
                      codec_args=["-c:a", "flac"])
    keys = []
    for path in (short, long):
        key = register_target(library, str(path))[0].key
        library.fetch_raw(key)
        keys.append(key)

    _in_parallel(_render_all, [(str(library.root), key) for key in keys])

    for fmt in FORMATS:
        paths = set()
        for key in keys:
            record = library.catalog.files.get(key, fmt)
            path = Path(record.path)
            paths.add(path)
            # each track's catalogued file holds that track's audio, not the other song's
            assert abs(media.decoded_duration(path) - library.track(key).duration_s) < 0.1, (fmt, key)
            assert library.verify(key, fmt) == []
        assert len(paths) == 2, f"both songs were written to one {fmt} path"
        stems = sorted(p.stem for p in paths)  # one keeps the plain name, the other is told apart by its key
        assert stems[0].endswith("Same Title") and any(stems[1].endswith(f"[{key}]") for key in keys), stems
    leftovers = [p for p in library.root.rglob(".*part*")]
    assert leftovers == []


def _export(root: str, tracks: list, rounds: int, barrier) -> None:
    from music_pipeline.core.library import playlists

    barrier.wait()
    for _ in range(rounds):
        playlists.export_all(Path(root), [playlists.Playlist("p", "Mix", tuple(tracks))], ["ALAC"])


def test_two_playlist_exports_at_once_choose_distinct_names_and_keep_their_bookkeeping(tmp_path: Path) -> None:
    from music_pipeline.core.library import playlists

    root = tmp_path / "library"
    tracks = []
    for n in range(24):  # 24 different recordings, all called "Artist - Song"
        path = root / "ALAC" / f"folder {n}" / "Artist - Song.m4a"
        path.parent.mkdir(parents=True)
        path.write_bytes(f"audio {n}".encode())
        tracks.append(playlists.PlaylistTrack(f"key-{n}", "Artist", "Song", 200.0, {"ALAC": path}))

    _in_parallel(_export, [(str(root), tracks[:16], 4), (str(root), tracks[8:], 4)])
    playlists.export_all(root, [playlists.Playlist("p", "Mix", tuple(tracks))], ["ALAC"])

    folder = root / "ALAC" / "Playlists" / "Mix"
    links = {p.name: Path(os.readlink(p)).parent.name for p in folder.iterdir() if p.is_symlink()}
    assert sorted(links.values()) == sorted(f"folder {n}" for n in range(24))  # each recording once
    manifest = json.loads((folder / playlists.MANIFEST_NAME).read_text())
    assert sorted(e["name"] for e in manifest["entries"].values()) == sorted(links)
    assert [p.name for p in folder.iterdir() if not p.is_symlink() and p.name != playlists.MANIFEST_NAME] == []


def test_two_first_runs_on_a_fresh_dagster_home_both_work(tmp_path: Path) -> None:
    """Dagster's SQLite storages create their tables on first use; two processes doing it at
    once failed with "table secondary_indexes already exists" (about one time in three)."""
    for attempt in range(4):
        env = {**os.environ, "MUSIC_LIBRARY": str(tmp_path / f"library{attempt}"),
               "DAGSTER_HOME": str(tmp_path / f"home{attempt}")}
        procs = [subprocess.Popen([sys.executable, "-m", "music_pipeline", "process", "all"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
        assert all("nothing to process" in out for out in outputs), outputs


def _open_catalog(path: str, barrier) -> None:
    from music_pipeline.core.library.catalog import Catalog

    barrier.wait()
    Catalog(Path(path)).tracks.register(source_for(f"https://www.youtube.com/watch?v={os.getpid():011d}"))


def test_processes_opening_a_new_catalog_at_once_share_one(tmp_path: Path) -> None:
    from music_pipeline.core.library.catalog import Catalog
    from music_pipeline.core.library.migrations import SCHEMA_VERSION

    for attempt in range(3):
        path = tmp_path / f"library{attempt}" / "catalog.sqlite"
        _in_parallel(_open_catalog, [(str(path),) for _ in range(4)])
        catalog = Catalog(path)
        assert catalog.schema_version == SCHEMA_VERSION
        assert len(catalog.tracks.all()) == 4  # every process wrote into the one catalog
        assert [p.name for p in path.parent.iterdir() if ".new-" in p.name] == []  # no half-made catalog left


def test_a_tracks_cleanup_leaves_a_longer_keys_half_written_file_alone(tmp_path: Path) -> None:
    from music_pipeline.core.library.store import PART_MARK, clean_partials

    mine = tmp_path / f".Song{PART_MARK}bandcamp-intro-0123abcd.flac"
    theirs = tmp_path / f".Song{PART_MARK}bandcamp-intro-2-4567cdef.flac"  # another track, still writing
    for path in (mine, theirs):
        path.write_bytes(b"half")
    assert clean_partials(tmp_path, owner="bandcamp-intro") == 1
    assert not mine.exists() and theirs.exists()


def test_a_name_written_decomposed_is_taken(tmp_path: Path) -> None:
    """macOS (HFS+) lists names decomposed (NFD); the library writes them composed (NFC): the
    user's "Beyoncé - Halo.m4a" must count as taken, not be overwritten."""
    import unicodedata

    (tmp_path / unicodedata.normalize("NFD", "Beyoncé - Halo.m4a")).write_bytes(b"the user's own")
    assert not Library._free(tmp_path / unicodedata.normalize("NFC", "Beyoncé - Halo.m4a"))


def test_names_differing_only_in_non_ascii_case_are_one_name(tmp_path: Path) -> None:
    """exFAT and macOS volumes take "Ébène.m4a" and "ébène.m4a" for one file: a name reserved
    for one song is taken for the other too, even before either is on disk."""
    library = Library(tmp_path / "library")
    keys = []
    for url in ("https://www.youtube.com/watch?v=aaaaaaaaaaa", "https://www.youtube.com/watch?v=bbbbbbbbbbb"):
        key = register_target(library, url)[0].key
        library.catalog.tracks.mark_running(key)
        keys.append(key)
    first = library.catalog.files.reserve_path(keys[0], "ALAC", [library.root / "ALAC" / "Ébène.m4a"], free=lambda _: True)
    second = library.catalog.files.reserve_path(keys[1], "ALAC", [library.root / "ALAC" / "ébène.m4a"], free=lambda _: True)
    assert first is not None and second is None
