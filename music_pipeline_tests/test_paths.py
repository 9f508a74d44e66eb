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
    ("nul.txt", "nul.txt_"),
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
