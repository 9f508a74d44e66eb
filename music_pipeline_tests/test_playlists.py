"""Playlist folders and m3u8 files, on real files, symlinks, hardlinks and copies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from music_pipeline.core.library import playlists as pl
from music_pipeline.core.library.playlists import Playlist, PlaylistTrack
from music_pipeline.core.library.store import PART_MARK


def _track(root: Path, key: str, artist: str, title: str, duration: float | None = 200.0,
           formats: tuple[str, ...] = ("ALAC",)) -> PlaylistTrack:
    files = {}
    for fmt in formats:
        ext = {"ALAC": "m4a", "AIFF": "aiff", "WAV": "wav"}[fmt]
        path = root / fmt / artist / f"{artist} - {title}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"audio of {key} in {fmt}".encode())
        files[fmt] = path
    return PlaylistTrack(key=key, artist=artist, title=title, duration_s=duration, files=files)


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    return tmp_path / "library"


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name != pl.MANIFEST_NAME}


def test_symlinks_added_then_removed(lib: Path) -> None:
    a = _track(lib, "youtube-aaaaaaaaaaa", "Kasbo", "Midnight Drive", 215.4)
    b = _track(lib, "soundcloud-1", "Yunomi", "東京ナイト", 188.0)
    report = pl.sync_folder(lib, Playlist("sc-set-1", "Warmup", (a, b)), "ALAC")
    folder = lib / "ALAC" / "Playlists" / "Warmup"
    assert report.folder == folder
    assert _names(folder) == {"Kasbo - Midnight Drive.m4a", "Yunomi - 東京ナイト.m4a"}
    link = folder / "Kasbo - Midnight Drive.m4a"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert os.readlink(link) == "../../Kasbo/Kasbo - Midnight Drive.m4a"
    assert link.read_bytes() == a.files["ALAC"].read_bytes()
    assert sorted(report.added) == sorted(folder / n for n in _names(folder))

    again = pl.sync_folder(lib, Playlist("sc-set-1", "Warmup", (b,)), "ALAC")
    assert again.removed == [link] and again.added == [] and again.kept == [folder / "Yunomi - 東京ナイト.m4a"]
    assert _names(folder) == {"Yunomi - 東京ナイト.m4a"}
    assert a.files["ALAC"].read_bytes() == b"audio of youtube-aaaaaaaaaaa in ALAC"  # library file intact


def test_user_files_untouched_and_name_clash_gets_suffix(lib: Path) -> None:
    a = _track(lib, "k1", "Kasbo", "Midnight Drive")
    folder = lib / "ALAC" / "Playlists" / "Warmup"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("my cue points")
    (folder / "Kasbo - Midnight Drive.m4a").write_bytes(b"my own edit")
    pl.sync_folder(lib, Playlist("p", "Warmup", (a,)), "ALAC")
    assert (folder / "Kasbo - Midnight Drive (2).m4a").is_symlink()
    assert (folder / "Kasbo - Midnight Drive.m4a").read_bytes() == b"my own edit"

    report = pl.remove_playlist(lib, "p", "ALAC")
    assert report.removed == [folder / "Kasbo - Midnight Drive (2).m4a"]
    assert _names(folder) == {"notes.txt", "Kasbo - Midnight Drive.m4a"}  # folder stays: not empty
    assert not (folder / pl.MANIFEST_NAME).exists()


def test_replaced_link_is_the_users(lib: Path) -> None:
    a = _track(lib, "k1", "Kasbo", "Midnight Drive")
    pl.sync_folder(lib, Playlist("p", "Warmup", (a,)), "ALAC")
    link = lib / "ALAC" / "Playlists" / "Warmup" / "Kasbo - Midnight Drive.m4a"
    link.unlink()
    link.write_bytes(b"user put a file here")
    report = pl.sync_folder(lib, Playlist("p", "Warmup", ()), "ALAC")
    assert report.removed == [] and link.read_bytes() == b"user put a file here"


def test_same_artist_and_title_get_distinct_stable_names(lib: Path) -> None:
    a = _track(lib, "youtube-aaaaaaaaaaa", "Daft Punk", "One More Time")
    b = PlaylistTrack("soundcloud-9", "Daft Punk", "One More Time", 320.0,
                      {"ALAC": _track(lib, "x", "Daft Punk", "One More Time (SC)").files["ALAC"]})
    pl.sync_folder(lib, Playlist("p", "Mix", (a, b)), "ALAC")
    folder = lib / "ALAC" / "Playlists" / "Mix"
    assert _names(folder) == {"Daft Punk - One More Time.m4a", "Daft Punk - One More Time (2).m4a"}
    assert os.readlink(folder / "Daft Punk - One More Time (2).m4a").endswith("One More Time (SC).m4a")
    pl.sync_folder(lib, Playlist("p", "Mix", (b,)), "ALAC")  # the (2) does not move
    assert _names(folder) == {"Daft Punk - One More Time (2).m4a"}


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
def test_hardlink_and_copy_modes(lib: Path, mode: str) -> None:
    a = _track(lib, "k1", "Kasbo", "Midnight Drive")
    b = _track(lib, "k2", "Yunomi", "Ocean")
    pl.sync_folder(lib, Playlist("p", "Warmup", (a, b)), "ALAC", mode=mode)
    folder = lib / "ALAC" / "Playlists" / "Warmup"
    made = folder / "Kasbo - Midnight Drive.m4a"
    assert not made.is_symlink() and made.read_bytes() == a.files["ALAC"].read_bytes()
    assert made.samefile(a.files["ALAC"]) == (mode == "hardlink")
    assert not [p for p in folder.iterdir() if PART_MARK in p.name]
    report = pl.sync_folder(lib, Playlist("p", "Warmup", (b,)), "ALAC", mode=mode)
    assert report.removed == [made] and not made.exists()
    assert a.files["ALAC"].read_bytes() == b"audio of k1 in ALAC"


def test_copy_is_atomic_when_interrupted(lib: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _track(lib, "k1", "Kasbo", "Midnight Drive")

    def broken_copy(src, dst, *args, **kwargs):
        Path(dst).write_bytes(b"half")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(shutil, "copyfile", broken_copy)
    with pytest.raises(OSError):
        pl.sync_folder(lib, Playlist("p", "Warmup", (a,)), "ALAC", mode="copy")
    folder = lib / "ALAC" / "Playlists" / "Warmup"
    assert _names(folder) == set()  # neither the final name nor a partial file
    monkeypatch.undo()
    report = pl.sync_folder(lib, Playlist("p", "Warmup", (a,)), "ALAC", mode="copy")
    assert report.added == [folder / "Kasbo - Midnight Drive.m4a"]


def test_stale_copy_is_refreshed(lib: Path) -> None:
    a = _track(lib, "k1", "Kasbo", "Midnight Drive")
    pl.sync_folder(lib, Playlist("p", "W", (a,)), "ALAC", mode="copy")
    a.files["ALAC"].write_bytes(b"re-tagged audio, longer")
    report = pl.sync_folder(lib, Playlist("p", "W", (a,)), "ALAC", mode="copy")
    copy = lib / "ALAC" / "Playlists" / "W" / "Kasbo - Midnight Drive.m4a"
    assert report.added == [copy] and copy.read_bytes() == b"re-tagged audio, longer"


def test_hardlink_follows_a_library_file_rewritten_atomically(lib: Path) -> None:
    """The pipeline rewrites files by writing a new one and renaming it over (a new inode):
    our hardlink then holds the old audio. It is refreshed under the same name, not taken
    for a user's file and doubled with a "(2)"."""
    a = _track(lib, "k1", "Kasbo", "Midnight Drive")
    pl.sync_folder(lib, Playlist("p", "W", (a,)), "ALAC", mode="hardlink")
    fresh = a.files["ALAC"].with_name(".rewrite.tmp")
    fresh.write_bytes(b"re-tagged audio")
    os.replace(fresh, a.files["ALAC"])
    report = pl.sync_folder(lib, Playlist("p", "W", (a,)), "ALAC", mode="hardlink")
    link = lib / "ALAC" / "Playlists" / "W" / "Kasbo - Midnight Drive.m4a"
    assert report.added == [link] and _names(link.parent) == {link.name}
    assert link.samefile(a.files["ALAC"]) and link.read_bytes() == b"re-tagged audio"
    pl.sync_folder(lib, Playlist("p", "W", ()), "ALAC", mode="hardlink")  # the track leaves
    assert _names(link.parent) == set() and a.files["ALAC"].exists()


def test_m3u8_exact_content(lib: Path) -> None:
    a = _track(lib, "k1", "Kasbo", "Midnight Drive", 215.4)
    b = _track(lib, "k2", "Yunomi", "東京ナイト", None)
    wav_only = _track(lib, "k3", "Energy 52", "Café del Mar", 600.0, formats=("WAV",))
    playlist = Playlist("p", "Warmup", (a, wav_only, b))
    dest = pl.write_m3u8(playlist, "ALAC", lib / "Playlists" / "Warmup (ALAC).m3u8")
    assert dest.read_bytes().decode("utf-8") == (
        "#EXTM3U\n"
        "#PLAYLIST:Warmup\n"
        "#EXTINF:215,Kasbo - Midnight Drive\n"
        "../ALAC/Kasbo/Kasbo - Midnight Drive.m4a\n"
        "#EXTINF:-1,Yunomi - 東京ナイト\n"
        "../ALAC/Yunomi/Yunomi - 東京ナイト.m4a\n"
    )
    assert not [p for p in dest.parent.iterdir() if PART_MARK in p.name]


def test_export_all_then_track_leaves_and_playlist_deleted(lib: Path) -> None:
    a = _track(lib, "k1", "Kasbo", "Midnight Drive", 215.0, formats=("ALAC", "WAV"))
    b = _track(lib, "k2", "Beyoncé", "Déjà Vu", 240.0, formats=("ALAC", "WAV"))
    playlist = Playlist("spotify-37i9", "Peak: Time/Floor", (a, b))
    reports = pl.export_all(lib, [playlist], ["ALAC", "WAV"], "symlink")
    assert [r.folder for r in reports] == [lib / "ALAC" / "Playlists" / "Peak - Time-Floor",
                                           lib / "WAV" / "Playlists" / "Peak - Time-Floor"]
    m3u8 = lib / "Playlists" / "Peak - Time-Floor (WAV).m3u8"
    assert reports[1].m3u8 == m3u8
    assert "../WAV/Beyoncé/Beyoncé - Déjà Vu.wav\n" in m3u8.read_text(encoding="utf-8")
    assert (reports[1].folder / "Beyoncé - Déjà Vu.wav").is_symlink()

    pl.export_all(lib, [Playlist("spotify-37i9", "Peak: Time/Floor", (b,))], ["WAV"], "symlink")
    text = m3u8.read_text(encoding="utf-8")
    assert "Kasbo" not in text and "Déjà Vu" in text
    assert _names(reports[1].folder) == {"Beyoncé - Déjà Vu.wav"}

    removed = pl.remove_playlist(lib, "spotify-37i9", "WAV")
    assert m3u8 in removed.removed and not m3u8.exists()
    assert not reports[1].folder.exists()
    assert (lib / "Playlists" / "Peak - Time-Floor (ALAC).m3u8").exists()  # other format untouched
    assert a.files["WAV"].exists() and b.files["WAV"].exists()


def test_renamed_playlist_moves_and_same_name_playlists_stay_apart(lib: Path) -> None:
    a = _track(lib, "k1", "Kasbo", "Midnight Drive")
    b = _track(lib, "k2", "Yunomi", "Ocean")
    pl.export_all(lib, [Playlist("sc-1", "Peak: Time", (a,)), Playlist("sp-2", "Peak - Time", (b,))],
                  ["ALAC"])
    base = lib / "ALAC" / "Playlists"
    assert _names(base / "Peak - Time") == {"Kasbo - Midnight Drive.m4a"}
    assert _names(base / "Peak - Time (2)") == {"Yunomi - Ocean.m4a"}
    pl.export_all(lib, [Playlist("sc-1", "Closing", (a,)), Playlist("sp-2", "Peak - Time", (b,))], ["ALAC"])
    assert not (base / "Peak - Time").exists() and _names(base / "Closing") == {"Kasbo - Midnight Drive.m4a"}
    assert _names(base / "Peak - Time (2)") == {"Yunomi - Ocean.m4a"}  # keeps its name
    assert not (lib / "Playlists" / "Peak - Time (ALAC).m3u8").exists()
    assert (lib / "Playlists" / "Closing (ALAC).m3u8").exists()


def test_template_with_position_and_validation(lib: Path) -> None:
    a = _track(lib, "k1", "Kasbo", "Midnight Drive")
    b = _track(lib, "k2", "Yunomi", "Ocean")
    pl.sync_folder(lib, Playlist("p", "W", (b, a)), "ALAC", template="Sets/$playlist/$position $artist - $title")
    assert _names(lib / "ALAC" / "Sets" / "W") == {"01 Yunomi - Ocean.m4a", "02 Kasbo - Midnight Drive.m4a"}
    for bad in ("$playlist/$artist", "$artist/$playlist/$title", "Playlists/$title", "P/$playlist/$bpm $title"):
        with pytest.raises(pl.TemplateError):
            pl.sync_folder(lib, Playlist("p", "W", (a,)), "ALAC", template=bad)
