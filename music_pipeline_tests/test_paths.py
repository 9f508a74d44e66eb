"""Library layout: names safe on macOS, Windows and Linux; templates stay inside the library."""

from pathlib import Path

import pytest

from music_pipeline.core.domain.paths import Layout, TemplateError, is_within, sanitize_component


@pytest.mark.parametrize("raw, expected", [
    ("Daft Punk", "Daft Punk"),
    ("AC/DC", "AC-DC"),
    ("What?", "What"),
    ('Say "Hi"', "Say 'Hi'"),
    ("Title: Subtitle", "Title - Subtitle"),
    ("a\x00b\x1fc\x7fd", "a b c d"),
    ("   spaced   out   ", "spaced out"),
    ("trailing dots...", "trailing dots"),
    ("..", "Unknown"),
    ("../../etc/passwd", "-..-etc-passwd"),
    (".hidden", "hidden"),
    ("", "Unknown"),
    (None, "Unknown"),
    ("CON", "CON_"),
    ("nul.txt", "nul_.txt"),  # "nul.txt_" would still be NUL with an extension
    ("com1", "com1_"),
    ("Björk", "Björk"),
    ("坂本龍一", "坂本龍一"),
    ("Sigur Ro\u0301s", "Sigur Rós"),  # NFD input becomes NFC
    ("<|>*", "-"),
    ("?*", "Unknown"),
])
def test_sanitize_component(raw, expected) -> None:
    assert sanitize_component(raw) == expected


def test_long_names_are_cut_on_character_boundaries() -> None:
    name = sanitize_component("é" * 300)
    assert len(name.encode("utf-8")) <= 200
    assert set(name) == {"é"}


def test_default_layout(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    path = layout.path_for("ALAC", {"artist": "Aphex Twin", "title": "Xtal"})
    assert path == tmp_path / "ALAC" / "Aphex Twin" / "Aphex Twin - Xtal.m4a"
    assert layout.path_for("WAV", {"artist": "A", "title": "B"}).suffix == ".wav"
    assert layout.path_for("AIFF", {"artist": "A", "title": "B"}).suffix == ".aiff"


@pytest.mark.parametrize("title", ["../../../../tmp/evil", "..", "/etc/passwd", "..\\..\\x", "C:\\Windows\\x"])
def test_titles_cannot_escape_the_library(tmp_path: Path, title: str) -> None:
    layout = Layout(tmp_path / "lib")
    path = layout.path_for("WAV", {"artist": "../..", "title": title})
    assert is_within(path, tmp_path / "lib")
    assert path.parent.parent.parent == tmp_path / "lib"


def test_reserved_windows_names_in_every_component(tmp_path: Path) -> None:
    path = Layout(tmp_path).path_for("WAV", {"artist": "CON", "title": "AUX"})
    assert path.parent.name == "CON_"
    assert path.name == "CON_ - AUX_.wav"


def test_custom_templates_per_format(tmp_path: Path) -> None:
    layout = Layout(tmp_path, default="$format/$artist/$title", templates={"WAV": "DJ/$camelot $bpm - $title"})
    assert layout.path_for("ALAC", {"artist": "A", "title": "T"}) == tmp_path / "ALAC" / "A" / "T.m4a"
    wav = layout.path_for("WAV", {"artist": "A", "title": "T", "camelot": "8A", "bpm": 126.0})
    assert wav == tmp_path / "DJ" / "8A 126 - T.wav"


@pytest.mark.parametrize("template, message", [
    ("$format/$artist", "needs \\$title"),
    ("$format/$genre/$title", "unknown field"),
    ("/abs/$title", "relative"),
])
def test_bad_templates_are_refused_up_front(tmp_path: Path, template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        Layout(tmp_path, default=template)


def test_name_clash_suffix(tmp_path: Path) -> None:
    path = Layout(tmp_path).path_for("AIFF", {"artist": "A", "title": "T"}, suffix="[file-abc]")
    assert path.name == "A - T [file-abc].aiff"


WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"{kind}{n}" for kind in ("com", "lpt") for n in "0123456789¹²³")}


def is_windows_device(name: str) -> bool:
    """Windows' own rule, written independently of the code under test: the part before
    the first dot, trailing spaces dropped, compared case-insensitively."""
    return name.split(".", 1)[0].rstrip(" ").casefold() in WINDOWS_DEVICES


@pytest.mark.parametrize("raw", ["NUL.txt", "nul.TXT", "Nul .mp3", "com1", "COM1.flac", "cOm9.tar.gz", "LPT3 ",
                                 "aux..", "prn . x", "COM¹", "lpt³.wav", "Con"])
def test_device_names_in_any_case_and_with_any_extension_are_made_safe(tmp_path: Path, raw: str) -> None:
    assert is_windows_device(raw)  # the test's own rule agrees these are devices
    safe = sanitize_component(raw)
    assert not is_windows_device(safe)
    assert safe.split(".", 1)[0].rstrip(" _").casefold() == raw.split(".", 1)[0].rstrip(" ").casefold()
    # ...and as a whole file or folder name, whatever the template puts around it
    layout = Layout(tmp_path, default="$format/$artist/$title")
    path = layout.path_for("WAV", {"artist": raw, "title": raw})
    assert not is_windows_device(path.name) and not is_windows_device(path.parent.name)


@pytest.mark.parametrize("fmt", ["ALAC", "AIFF", "WAV"])
def test_a_device_name_left_by_a_cut_is_made_safe(tmp_path: Path, fmt: str) -> None:
    """A long title cut to fit ends wherever the limit falls, even on "com1.<...>"."""
    layout = Layout(tmp_path, default="$format/$artist/$title")
    path = layout.path_for(fmt, {"artist": "A", "title": "com1." + "x" * 300})
    assert not is_windows_device(path.name)
    assert len(path.relative_to(tmp_path).as_posix()) <= 220


def windows_chars(text: str) -> int:
    """What Windows counts against its path limit: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


LONG = {"artist": "The Extraordinarily Long Named Philharmonic Orchestra " * 5,
        "album": "Collected Works, Remastered and Expanded Deluxe Edition " * 5,
        "title": "Extended Remix " * 20}


@pytest.mark.parametrize("template", ["$format/$artist/$artist - $title", "$format/$artist/$album/$title",
                                      "$format/$artist/$album/$artist - $album - $title"])
@pytest.mark.parametrize("suffix", ["", "[file-0123456789abcdef]", "[generic-" + "k" * 80 + "]"])
@pytest.mark.parametrize("fields", [LONG, {**LONG, "artist": "😀" * 150, "title": "坂本龍一 " * 60}],
                         ids=["latin", "emoji-cjk"])
def test_long_names_fit_in_220_characters_keeping_suffix_and_extension(tmp_path: Path, template: str,
                                                                       suffix: str, fields: dict) -> None:
    layout = Layout(tmp_path, default=template)
    for fmt, ext in (("ALAC", ".m4a"), ("AIFF", ".aiff"), ("WAV", ".wav")):
        path = layout.path_for(fmt, fields, suffix=suffix)
        relative = path.relative_to(tmp_path).as_posix()
        assert windows_chars(relative) <= 220, relative
        assert all(len(part.encode()) <= 200 for part in relative.split("/"))
        assert path.name.endswith(f"{' ' + suffix if suffix else ''}{ext}")
        assert relative.startswith(f"{fmt}/")


def test_long_names_cut_the_file_name_first_and_keep_folders_shared(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    short = layout.path_for("ALAC", {"artist": "Aphex Twin", "title": LONG["title"]})
    assert short.parent == tmp_path / "ALAC" / "Aphex Twin"  # only the file name gave way
    one = layout.path_for("ALAC", {"artist": LONG["artist"], "title": "Xtal"})
    two = layout.path_for("ALAC", {"artist": LONG["artist"], "title": LONG["title"]})
    assert one.parent == two.parent  # one folder per artist, however long the titles
    assert one.name.endswith(" - Xtal.m4a")
    # a long artist does not crowd the title out of the name
    assert "Extended Remix" in two.name and two.name.startswith("The Extraordinarily")


def test_a_playlist_of_long_names_fits_in_220_characters(tmp_path: Path) -> None:
    from music_pipeline.core.library import playlists as pl

    root = tmp_path / "library"
    tracks = []
    for n in range(2):  # the same long name twice: the second link takes " (2)"
        path = Layout(root).path_for("AIFF", LONG, suffix=f"[file-{n:016d}]")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"audio")
        tracks.append(pl.PlaylistTrack(key=f"file-{n:016d}", artist=LONG["artist"], title=LONG["title"],
                                       duration_s=1.0, files={"AIFF": path}))
    playlist = pl.Playlist("sc-set-1", "Late Night Drive Through The City " * 8, tuple(tracks))
    (report,) = pl.export_all(root, [playlist], ["AIFF"])
    assert len(report.added) == 2 and report.m3u8 is not None
    assert sum(p.name.endswith(" (2).aiff") for p in report.added) == 1
    for path in [*report.added, report.m3u8, report.folder / pl.MANIFEST_NAME]:
        assert windows_chars(path.relative_to(root).as_posix()) <= 220, path
    assert pl.remove_playlist(root, playlist.name, "AIFF").removed  # found by its (cut) name too
