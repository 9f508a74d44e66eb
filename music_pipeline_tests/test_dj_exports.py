"""The rekordbox XML and Traktor NML exports, read back by readers we did not write.

rekordbox: pyrekordbox's ``RekordboxXml`` (MIT), with ElementTree for what it drops (cue
colours, exact number spellings). Traktor: traktor-nml-utils' NML model (GPL-3.0, a test-only
dependency), whose dataclasses were generated from an XML schema inferred from Traktor's own
collection.nml files; parsed strictly, so an element or attribute Traktor never writes, or a
value that does not convert to the type Traktor uses, fails the test. Every expected path and
URL below is spelled out by hand, never computed by the module under test.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from pyrekordbox import RekordboxXml
from pyrekordbox.rbxml import PositionMark, Tempo
from pyrekordbox.rbxml import Track as RbTrack
from traktor_nml_utils.models.collection import Entrytype, Nml, Nmltype
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig

from music_pipeline.core.audio.beatgrid import Cue, Grid, Segment
from music_pipeline.core.dj import rekordbox, traktor
from music_pipeline.core.dj.locations import RootMap
from music_pipeline.core.dj.model import DjFolder, DjLibrary, DjPlaylist, DjTrack

LOCAL = Path("/srv/music/library")
NFC = "NFC"


def nfc(text: str) -> str:
    return unicodedata.normalize(NFC, text)


# -- the library under test -------------------------------------------------------------------

def _track(key: str, rel: str, **fields) -> DjTrack:
    base = dict(title=f"Title {key}", artist=f"Artist {key}", duration_s=200.0)
    return DjTrack(key=key, path=LOCAL / rel, **(base | fields))


MAIN = _track(
    "sp-1", "Spotify/Artist One/Deep Cut.aiff", title="Deep Cut", artist="Artist One", duration_s=301.62,
    album="The Album", genre="Deep House", bpm=123.45, key_name="A minor", key_short="Am",
    size_bytes=53_123_456, bitrate_kbps=1411, sample_rate=44100, date_added="2024-06-09",
    comment="https://open.spotify.com/track/abc?si=***",
    grid=Grid((Segment(0.371, 123.45, 1), Segment(120.5, 124.0, 3)), beats_per_bar=4),
    cues=(Cue(0.371, "Start"), Cue(31.5, "Drop", 0, (230, 40, 40)), Cue(62.25, "Break", 7, (0, 128, 255))),
)
OFFBEAT = _track(  # the first beat is beat 2 of its bar: Traktor's marker moves to the downbeat
    "sc-2", "SoundCloud/offbeat.m4a", bpm=120.0, key_name="C major", key_short="C", bitrate_kbps=256,
    sample_rate=48000, size_bytes=8_000_000, date_added="2024-07-01",
    grid=Grid((Segment(1.0, 120.0, 2),)))
WAVE = _track("no-3", "Notion/wave.wav", duration_s=0.4, key_name="F# minor", key_short="F#m",
              size_bytes=70_000, date_added="2023-01-15")
FLAT = _track("in-4", "Inbox/flat.aiff", key_name="Bb major", key_short="Bb", bpm=99.0)

LIBRARY = DjLibrary(
    tracks=(MAIN, OFFBEAT, WAVE, FLAT),
    folders=(
        DjFolder("Spotify", (DjPlaylist("Warm-up", ("sp-1", "no-3", "sc-2")), DjPlaylist("Peak", ("in-4",)))),
        DjFolder("SoundCloud", (DjPlaylist("Likes", ("sc-2", "sp-1", "gone")),)),  # "gone" left the library
        DjFolder("Notion", ()),
    ),
)

# Names DJ libraries really meet, and a few no file system should: each must come back intact.
LONG_DIR = "Long " + "x" * 95
LONG_FILE = "y" * 100 + ".aiff"
HOSTILE = {
    "quotes": 'Inbox/Say "Hi" it\'s.aiff',
    "markup": "Inbox/<&> A & B.aiff",
    "url": "Inbox/#1 100% sure? a+b;c=d.aiff",
    "percent-escape": "Inbox/already %20 encoded %C3%A9.aiff",
    "emoji": "Inbox/Fire 🔥🎧 mix.m4a",
    "nfd": unicodedata.normalize("NFD", "Inbox/Beyoncé/Café Déjà Vu.aiff"),
    "cyrillic": "Inbox/Кино/Группа крови.aiff",
    "cjk": "Inbox/坂本龍一/戦場のメリークリスマス.wav",
    "arabic": "Inbox/فيروز.aiff",
    "device": "Inbox/CON/NUL.aiff",
    "long": f"Inbox/{LONG_DIR}/{LONG_FILE}",
}
HOSTILE_LIBRARY = DjLibrary(
    tracks=tuple(_track(key, rel, title=f'{key} <&> "{key}" 🔥\x01', artist="Ünïcödé & Co") for key, rel in
                 HOSTILE.items()),
    folders=(DjFolder('Inbox <&> "quoted"', (DjPlaylist("All 🔥 & more", tuple(HOSTILE)),)),),
)


# -- readers we did not write -----------------------------------------------------------------

def read_rekordbox(data: bytes, tmp_path: Path) -> RekordboxXml:
    path = tmp_path / "rekordbox.xml"
    path.write_bytes(data)
    return RekordboxXml(path)


STRICT = XmlParser(config=ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True,
                                       fail_on_converter_warnings=True))


def read_traktor(data: bytes) -> Nml:
    return STRICT.from_bytes(data, Nml)


def rb_path(location: str) -> str:
    """The path pyrekordbox decodes from a Location, with the leading "/" its decoder drops from
    a POSIX path (it strips ``file://localhost/`` whole)."""
    return location if re.match(r"^[A-Za-z]:", location) else "/" + location


def traktor_path(entry) -> tuple[str, str, str]:
    """(VOLUME, folders, FILE) from a parsed entry, DIR split on Traktor's "/:"."""
    folders = [name for name in entry.location.dir.split("/:") if name]
    return entry.location.volume, "/".join(folders), entry.location.file


# -- rekordbox --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rb_bytes() -> bytes:
    return rekordbox.render(LIBRARY, RootMap(LOCAL, None))


def test_rekordbox_collection_reads_back_through_pyrekordbox(rb_bytes: bytes, tmp_path: Path) -> None:
    xml = read_rekordbox(rb_bytes, tmp_path)
    assert xml.frmt_version == "1.0.0"
    assert xml.product_name == "music_pipeline"
    assert xml.num_tracks == 4 and len(xml.get_tracks()) == 4

    track = next(t for t in xml.get_tracks() if t.Name == "Deep Cut")
    assert track.TrackID > 0
    assert (track.Artist, track.Album, track.Genre) == ("Artist One", "The Album", "Deep House")
    assert track.Kind == "AIFF File"
    assert track.Size == 53_123_456
    assert track.TotalTime == 301
    assert track.DateAdded == "2024-06-09"
    assert track.BitRate == 1411 and track.SampleRate == 44100.0
    assert track.Comments == "https://open.spotify.com/track/abc?si=***"
    assert track.AverageBpm == 123.45
    assert track.Tonality == "Am"
    assert rb_path(track.Location) == "/srv/music/library/Spotify/Artist One/Deep Cut.aiff"

    kinds = {t.Name: t.Kind for t in xml.get_tracks()}
    assert kinds == {"Deep Cut": "AIFF File", "Title sc-2": "M4A File", "Title no-3": "WAV File",
                     "Title in-4": "AIFF File"}
    tonality = {t.Name: t.Tonality for t in xml.get_tracks()}
    assert tonality == {"Deep Cut": "Am", "Title sc-2": "C", "Title no-3": "F#m", "Title in-4": "Bb"}
    assert xml.get_track(TrackID=next(t.TrackID for t in xml.get_tracks() if t.Name == "Title no-3")).TotalTime == 1


def test_rekordbox_beat_grid_and_cues(rb_bytes: bytes, tmp_path: Path) -> None:
    xml = read_rekordbox(rb_bytes, tmp_path)
    track = next(t for t in xml.get_tracks() if t.Name == "Deep Cut")
    assert [(t.Inizio, t.Bpm, t.Metro, t.Battito) for t in track.tempos] == [
        (0.371, 123.45, "4/4", 1), (120.5, 124.0, "4/4", 3)]
    assert [(m.Name, m.Type, m.Start, m.Num) for m in track.marks] == [
        ("Start", "cue", 0.371, -1), ("Drop", "cue", 31.5, 0), ("Break", "cue", 62.25, 7)]

    # What pyrekordbox keeps as text or drops: the spellings rekordbox writes, and cue colours.
    element = ET.fromstring(rb_bytes).find(".//TRACK[@Name='Deep Cut']")
    assert [t.attrib for t in element.findall("TEMPO")] == [
        {"Inizio": "0.371", "Bpm": "123.45", "Metro": "4/4", "Battito": "1"},
        {"Inizio": "120.500", "Bpm": "124.00", "Metro": "4/4", "Battito": "3"}]
    assert element.get("AverageBpm") == "123.45"
    marks = element.findall("POSITION_MARK")
    assert [m.get("Start") for m in marks] == ["0.371", "31.500", "62.250"]
    assert "Red" not in marks[0].attrib  # the memory cue
    assert [(m.get("Red"), m.get("Green"), m.get("Blue")) for m in marks[1:]] == [
        ("230", "40", "40"), ("0", "128", "255")]
    assert all("End" not in m.attrib for m in marks)

    offbeat = ET.fromstring(rb_bytes).find(".//TRACK[@Name='Title sc-2']")
    assert [t.attrib for t in offbeat.findall("TEMPO")] == [
        {"Inizio": "1.000", "Bpm": "120.00", "Metro": "4/4", "Battito": "2"}]
    assert ET.fromstring(rb_bytes).find(".//TRACK[@Name='Title no-3']").findall("TEMPO") == []


def test_rekordbox_playlists_nest_in_a_folder_per_source(rb_bytes: bytes, tmp_path: Path) -> None:
    xml = read_rekordbox(rb_bytes, tmp_path)
    ids = {t.Name: t.TrackID for t in xml.get_tracks()}
    root = xml.root_playlist_folder
    assert root.name == "ROOT" and root.is_folder and root.count == 3
    folders = root.get_playlists()
    assert [(f.name, f.is_folder, f.count) for f in folders] == [("Spotify", True, 2), ("SoundCloud", True, 1),
                                                                 ("Notion", True, 0)]
    spotify = folders[0].get_playlists()
    assert [(p.name, p.is_playlist, p.key_type, p.entries) for p in spotify] == [
        ("Warm-up", True, "TrackID", 3), ("Peak", True, "TrackID", 1)]
    assert spotify[0].get_tracks() == [ids["Deep Cut"], ids["Title no-3"], ids["Title sc-2"]]
    assert spotify[1].get_tracks() == [ids["Title in-4"]]
    likes = folders[1].get_playlists()[0]
    assert likes.entries == 2 and likes.get_tracks() == [ids["Title sc-2"], ids["Deep Cut"]]  # "gone" left out
    assert xml.get_playlist("Spotify", "Peak").get_tracks() == [ids["Title in-4"]]


def test_rekordbox_shape_matches_what_pyrekordbox_knows(rb_bytes: bytes) -> None:
    """Every attribute is one rekordbox's format defines (as pyrekordbox lists them, plus the
    hot cue colours it does not model), the root's children are in rekordbox's order, and the
    file starts with rekordbox's own declaration."""
    assert rb_bytes.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<DJ_PLAYLISTS Version="1.0.0">')
    root = ET.fromstring(rb_bytes)
    assert [child.tag for child in root] == ["PRODUCT", "COLLECTION", "PLAYLISTS"]
    for track in root.iter("TRACK"):
        if "Key" in track.attrib:  # a playlist's member
            assert set(track.attrib) == {"Key"}
            continue
        assert set(track.attrib) <= set(RbTrack.ATTRIBS)
        assert {child.tag for child in track} <= {"TEMPO", "POSITION_MARK"}
    assert all(set(t.attrib) == set(Tempo.ATTRIBS) for t in root.iter("TEMPO"))
    assert all(set(m.attrib) <= set(PositionMark.ATTRIBS) | {"Red", "Green", "Blue"}
               for m in root.iter("POSITION_MARK"))
    for node in root.iter("NODE"):
        assert set(node.attrib) in ({"Type", "Name", "Count"}, {"Type", "Name", "KeyType", "Entries"})


def test_track_ids_are_stable_unique_and_settle_collisions_by_key() -> None:
    keys = [f"track-{i}" for i in range(2000)]
    ids = rekordbox.track_ids(keys)
    assert len(set(ids.values())) == 2000 and all(0 < i < 2**31 for i in ids.values())
    assert rekordbox.track_ids(reversed(keys)) == ids  # the order tracks come in changes nothing
    assert rekordbox.track_ids(["track-7"])["track-7"] == ids["track-7"]  # an id does not depend on the others

    # Every key hashing alike: still unique, and the same whichever order the keys came in.
    def clash(text: str) -> int:
        return 7 if "\x00" not in text else 100 + int(text.rsplit("\x00", 1)[1])

    forced = rekordbox.track_ids(["b", "a", "c"], hash_=clash)
    assert forced == {"a": 7, "b": 101, "c": 102}
    assert rekordbox.track_ids(["c", "a", "b"], hash_=clash) == forced


def test_rekordbox_refuses_two_tracks_with_one_key() -> None:
    with pytest.raises(ValueError, match="sp-1"):
        rekordbox.render(DjLibrary((MAIN, MAIN)), RootMap(LOCAL, None))
    with pytest.raises(ValueError, match="hot cue"):
        rekordbox.render(DjLibrary((dataclasses.replace(MAIN, cues=(Cue(1.0, "x", 8),)),)), RootMap(LOCAL, None))


# -- Traktor ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nml_bytes() -> bytes:
    return traktor.render(LIBRARY, RootMap(LOCAL, "/Volumes/VIBES"))


def _entries(nml: Nml) -> dict[str, Entrytype]:
    return {e.title: e for e in nml.collection.entry}


def test_traktor_collection_parses_strictly_with_traktors_own_shapes(nml_bytes: bytes) -> None:
    nml = read_traktor(nml_bytes)
    assert nml.version == 19
    assert (nml.head.company, nml.head.program) == ("www.native-instruments.com", "Traktor")
    assert nml.collection.entries == 4 and len(nml.collection.entry) == 4

    entry = _entries(nml)["Deep Cut"]
    assert entry.artist == "Artist One"
    assert entry.lock == 1
    assert datetime.fromisoformat(entry.lock_modification_time) == datetime(2024, 7, 1)  # the newest track's day
    assert (entry.location.volume, entry.location.dir, entry.location.file) == (
        "VIBES", "/:Spotify/:Artist One/:", "Deep Cut.aiff")
    assert entry.album.title == "The Album"
    info = entry.info
    assert (info.bitrate, info.genre, info.comment) == (1_411_000, "Deep House", "https://open.spotify.com/track/abc?si=***")
    assert (info.playtime, info.playtime_float) == (302, 301.62)
    assert info.import_date == "2024/6/9"
    assert info.filesize == 51_878  # KiB
    assert (entry.tempo.bpm, entry.tempo.bpm_quality) == (123.45, 100.0)
    assert _entries(nml)["Title no-3"].info.playtime == 1


@pytest.mark.parametrize("title, value", [("Deep Cut", 21), ("Title sc-2", 0), ("Title no-3", 18), ("Title in-4", 10)])
def test_traktor_musical_key(nml_bytes: bytes, title: str, value: int) -> None:
    """A minor 21, C major 0, F# minor 18, Bb major 10."""
    assert _entries(read_traktor(nml_bytes))[title].musical_key.value_attribute == value


@pytest.mark.parametrize("name, value", [("Gb minor", 18), ("A# major", 10), ("a minor", 21), ("Cb major", 11),
                                         ("B# minor", 12), ("D♭ major", 1)])
def test_traktor_musical_key_takes_any_spelling(name: str, value: int) -> None:
    library = DjLibrary((dataclasses.replace(FLAT, key_name=name, key_short=None),))
    assert read_traktor(traktor.render(library, RootMap(LOCAL, None))).collection.entry[0].musical_key.value_attribute == value


def test_traktor_grid_markers_and_cues(nml_bytes: bytes) -> None:
    entries = _entries(read_traktor(nml_bytes))
    cues = entries["Deep Cut"].cue_v2
    grid = [(c.name, c.type, round(c.start, 6), c.len, c.repeats, c.hotcue, c.grid.bpm) for c in cues if c.type == 4]
    beat = 60_000 / 124.0  # the second segment starts on beat 3: its marker sits two beats on
    assert grid == [("AutoGrid", 4, 371.0, 0.0, -1, -1, 123.45),
                    ("AutoGrid", 4, round(120_500 + 2 * beat, 6), 0.0, -1, -1, 124.0)]
    marks = [(c.name, c.type, c.start, c.hotcue, c.displ_order) for c in cues if c.type != 4]
    assert marks == [("Start", 0, 371.0, -1, 0), ("Drop", 0, 31_500.0, 0, 0), ("Break", 0, 62_250.0, 7, 0)]

    offbeat = [c for c in entries["Title sc-2"].cue_v2 if c.type == 4]
    assert [(c.start, c.grid.bpm) for c in offbeat] == [(2500.0, 120.0)]  # beat 2 at 1 s: 3 beats to the next 1
    assert entries["Title no-3"].cue_v2 == [] and entries["Title no-3"].tempo is None


def test_traktor_playlists_resolve_to_collection_entries(nml_bytes: bytes) -> None:
    nml = read_traktor(nml_bytes)
    by_key = {e.location.volume + e.location.dir + e.location.file: e.title for e in nml.collection.entry}
    root = nml.playlists.node
    assert (root.type, root.name, root.subnodes.count) == ("FOLDER", "$ROOT", 3)
    folders = root.subnodes.node
    assert [(f.type, f.name, f.subnodes.count) for f in folders] == [
        ("FOLDER", "Spotify", 2), ("FOLDER", "SoundCloud", 1), ("FOLDER", "Notion", 0)]

    def members(node) -> list[str]:
        assert node.type == "PLAYLIST" and node.playlist.type == "LIST"
        assert node.playlist.entries == len(node.playlist.entry)
        assert all(e.primarykey.type == "TRACK" for e in node.playlist.entry)
        return [by_key[e.primarykey.key] for e in node.playlist.entry]

    warmup, peak = folders[0].subnodes.node
    assert (warmup.name, members(warmup)) == ("Warm-up", ["Deep Cut", "Title no-3", "Title sc-2"])
    assert (peak.name, members(peak)) == ("Peak", ["Title in-4"])
    likes = folders[1].subnodes.node[0]
    assert members(likes) == ["Title sc-2", "Deep Cut"]  # "gone" left out
    assert warmup.playlist.entry[0].primarykey.key == "VIBES/:Spotify/:Artist One/:Deep Cut.aiff"
    uuids = [warmup.playlist.uuid, peak.playlist.uuid, likes.playlist.uuid]
    assert len(set(uuids)) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", u) for u in uuids)


def _field_order(cls) -> list[str]:
    return [f.metadata["name"] for f in dataclasses.fields(cls) if f.metadata.get("type") == "Element"]


def test_traktor_element_order_is_traktors(nml_bytes: bytes) -> None:
    """The order of the schema inferred from Traktor's files (the model's field order), which a
    strict parse does not check; and Traktor's own declaration and ``<X></X>`` empty elements."""
    assert nml_bytes.startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n<NML VERSION="19">')
    assert b"/>" not in nml_bytes
    root = ET.fromstring(nml_bytes)
    order = _field_order(Nmltype)
    tags = [child.tag for child in root]
    assert tags == sorted(tags, key=order.index) and set(tags) >= {"HEAD", "MUSICFOLDERS", "COLLECTION",
                                                                   "SETS", "PLAYLISTS", "INDEXING"}
    order = _field_order(Entrytype)
    for entry in root.iter("ENTRY"):
        tags = [child.tag for child in entry]
        assert tags == sorted(tags, key=order.index)


def test_traktor_stamp_without_any_date_is_fixed() -> None:
    gridded = dataclasses.replace(FLAT, date_added=None, grid=Grid((Segment(0.25, 120.0, 1),)))
    entry = read_traktor(traktor.render(DjLibrary((gridded,)), RootMap(LOCAL, None))).collection.entry[0]
    assert entry.lock == 1 and entry.lock_modification_time == "2000-01-01T00:00:00"
    assert entry.info.import_date is None


def test_traktor_locks_only_the_tracks_whose_grid_it_is_given() -> None:
    entry = read_traktor(traktor.render(DjLibrary((dataclasses.replace(FLAT, grid=None),)),
                                        RootMap(LOCAL, None))).collection.entry[0]
    assert entry.lock == 0 and entry.lock_modification_time is None  # Traktor analyses it itself


# -- hostile names, both formats ----------------------------------------------------------------

@pytest.mark.parametrize("dj_root, expect", [
    (None, lambda rel: "/srv/music/library/" + rel),
    ("/Volumes/VIBES", lambda rel: "/Volumes/VIBES/" + rel),
    ("E:\\", lambda rel: "E:/" + rel),
])
def test_hostile_names_round_trip_through_rekordbox(dj_root, expect, tmp_path: Path) -> None:
    data = rekordbox.render(HOSTILE_LIBRARY, RootMap(LOCAL, dj_root))
    xml = read_rekordbox(data, tmp_path)
    ids = {}
    for track in xml.get_tracks():
        key = track.Name.split(" ", 1)[0]
        assert track.Name == f'{key} <&> "{key}" 🔥'  # the control character could not be written
        assert track.Artist == "Ünïcödé & Co"
        assert rb_path(track.Location) == expect(nfc(HOSTILE[key]))
        ids[key] = track.TrackID
    assert set(ids) == set(HOSTILE)

    for location in (t.get("Location") for t in ET.fromstring(data).iter("TRACK") if t.get("Location")):
        assert location.startswith("file://localhost/") and not location.startswith("file://localhost//")
        assert re.fullmatch(r"file://localhost/([A-Z]:/)?[A-Za-z0-9._~/%-]*", location), location
    playlist = xml.get_playlist().get_playlists()[0].get_playlists()[0]
    assert xml.get_playlist().get_playlists()[0].name == 'Inbox <&> "quoted"'
    assert playlist.name == "All 🔥 & more" and playlist.get_tracks() == [ids[key] for key in HOSTILE]


def test_rekordbox_location_spellings() -> None:
    """The bytes of a few Locations, spelled out: UTF-8 of the NFC name, every reserved
    character escaped, one slash after localhost, a drive's colon kept."""
    posix, windows = RootMap(LOCAL, None), RootMap(LOCAL, "E:/Music")
    assert posix.location_url(Path("/Users/x/a b.aiff")) == "file://localhost/Users/x/a%20b.aiff"
    assert windows.location_url(LOCAL / "a.aiff") == "file://localhost/E:/Music/a.aiff"
    assert posix.location_url(LOCAL / HOSTILE["url"]) == (
        "file://localhost/srv/music/library/Inbox/%231%20100%25%20sure%3F%20a%2Bb%3Bc%3Dd.aiff")
    assert posix.location_url(LOCAL / HOSTILE["quotes"]).endswith("/Say%20%22Hi%22%20it%27s.aiff")
    assert posix.location_url(LOCAL / HOSTILE["markup"]).endswith("/%3C%26%3E%20A%20%26%20B.aiff")
    assert posix.location_url(LOCAL / HOSTILE["nfd"]).endswith("/Beyonc%C3%A9/Caf%C3%A9%20D%C3%A9j%C3%A0%20Vu.aiff")
    assert posix.location_url(LOCAL / HOSTILE["emoji"]).endswith("/Fire%20%F0%9F%94%A5%F0%9F%8E%A7%20mix.m4a")
    assert posix.location_url(LOCAL / HOSTILE["percent-escape"]).endswith("/already%20%2520%20encoded%20%25C3%25A9.aiff")


@pytest.mark.parametrize("dj_root, volume, prefix", [
    (None, "Macintosh HD", "/srv/music/library/"),
    ("/Volumes/VIBES", "VIBES", ""),
    ("E:\\", "E:", ""),
])
def test_hostile_names_round_trip_through_traktor(dj_root, volume, prefix) -> None:
    nml = read_traktor(traktor.render(HOSTILE_LIBRARY, RootMap(LOCAL, dj_root)))
    entries = {e.title.split(" ", 1)[0]: e for e in nml.collection.entry}
    assert set(entries) == set(HOSTILE)
    for key, entry in entries.items():
        got_volume, folders, file = traktor_path(entry)
        assert got_volume == entry.location.volumeid == volume
        assert (folders + "/" + file) == (prefix + nfc(HOSTILE[key])).lstrip("/")
        assert entry.location.dir.startswith("/:") and entry.location.dir.endswith("/:")
        assert entry.title == f'{key} <&> "{key}" 🔥'
    long = entries["long"]
    assert (long.location.file, long.location.dir.split("/:")[-2]) == (LONG_FILE, LONG_DIR)
    assert len(f"E:\\Inbox\\{LONG_DIR}\\{LONG_FILE}") >= 210 and len(prefix + HOSTILE["long"]) >= 210
    keys = [e.primarykey.key for e in nml.playlists.node.subnodes.node[0].subnodes.node[0].playlist.entry]
    assert keys == [entries[k].location.volume + entries[k].location.dir + entries[k].location.file for k in HOSTILE]


# -- DJ_LIBRARY_ROOT --------------------------------------------------------------------------

FILE = LOCAL / "Spotify" / "Artist" / "Song (Mix).aiff"


@pytest.mark.parametrize("setting, location, dj_path, volume, directory", [
    (None, "file://localhost/srv/music/library/Spotify/Artist/Song%20%28Mix%29.aiff",
     "/srv/music/library/Spotify/Artist/Song (Mix).aiff", "Macintosh HD", "/:srv/:music/:library/:Spotify/:Artist/:"),
    ("/Volumes/VIBES", "file://localhost/Volumes/VIBES/Spotify/Artist/Song%20%28Mix%29.aiff",
     "/Volumes/VIBES/Spotify/Artist/Song (Mix).aiff", "VIBES", "/:Spotify/:Artist/:"),
    ("/Volumes/VIBES/", "file://localhost/Volumes/VIBES/Spotify/Artist/Song%20%28Mix%29.aiff",
     "/Volumes/VIBES/Spotify/Artist/Song (Mix).aiff", "VIBES", "/:Spotify/:Artist/:"),
    ("/Volumes/VIBES/DJ", "file://localhost/Volumes/VIBES/DJ/Spotify/Artist/Song%20%28Mix%29.aiff",
     "/Volumes/VIBES/DJ/Spotify/Artist/Song (Mix).aiff", "VIBES", "/:DJ/:Spotify/:Artist/:"),
    ("E:\\", "file://localhost/E:/Spotify/Artist/Song%20%28Mix%29.aiff",
     "E:\\Spotify\\Artist\\Song (Mix).aiff", "E:", "/:Spotify/:Artist/:"),
    ("e:", "file://localhost/E:/Spotify/Artist/Song%20%28Mix%29.aiff",
     "E:\\Spotify\\Artist\\Song (Mix).aiff", "E:", "/:Spotify/:Artist/:"),
    ("E:/Music", "file://localhost/E:/Music/Spotify/Artist/Song%20%28Mix%29.aiff",
     "E:\\Music\\Spotify\\Artist\\Song (Mix).aiff", "E:", "/:Music/:Spotify/:Artist/:"),
    ("E:\\Music\\DJ\\", "file://localhost/E:/Music/DJ/Spotify/Artist/Song%20%28Mix%29.aiff",
     "E:\\Music\\DJ\\Spotify\\Artist\\Song (Mix).aiff", "E:", "/:Music/:DJ/:Spotify/:Artist/:"),
    ("/Users/dj/Music", "file://localhost/Users/dj/Music/Spotify/Artist/Song%20%28Mix%29.aiff",
     "/Users/dj/Music/Spotify/Artist/Song (Mix).aiff", "Macintosh HD", "/:Users/:dj/:Music/:Spotify/:Artist/:"),
])
def test_dj_library_root(setting, location, dj_path, volume, directory, tmp_path: Path) -> None:
    roots = RootMap.from_env(LOCAL, {} if setting is None else {"DJ_LIBRARY_ROOT": setting})
    assert roots.location_url(FILE) == location
    assert roots.dj_path(FILE) == dj_path

    track = dataclasses.replace(FLAT, path=FILE)
    data = rekordbox.render(DjLibrary((track,)), roots)
    assert ET.fromstring(data).find(".//TRACK").get("Location") == location
    assert rb_path(read_rekordbox(data, tmp_path).get_tracks()[0].Location) == dj_path.replace("\\", "/")

    entry = read_traktor(traktor.render(DjLibrary((track,)), roots)).collection.entry[0]
    assert (entry.location.volume, entry.location.dir, entry.location.file) == (volume, directory, "Song (Mix).aiff")


def test_dj_library_root_unset_or_empty_names_files_as_here() -> None:
    for environ in ({}, {"DJ_LIBRARY_ROOT": ""}, {"DJ_LIBRARY_ROOT": "  "}):
        assert RootMap.from_env(LOCAL, environ).dj_root is None
    assert RootMap(LOCAL, None).location_url(Path("/elsewhere/a.aiff")) == "file://localhost/elsewhere/a.aiff"
    here = RootMap(LOCAL, None).traktor_location(Path("/Users/x/Music/a.mp3"))
    assert here.primary_key == "Macintosh HD/:Users/:x/:Music/:a.mp3"


@pytest.mark.parametrize("setting", ["Music", "VIBES/DJ", "\\\\nas\\music", "//nas/music"])
def test_dj_library_root_must_be_absolute(setting: str) -> None:
    with pytest.raises(ValueError):
        RootMap(LOCAL, setting)


def test_a_file_outside_the_library_has_no_name_on_the_djs_machine() -> None:
    with pytest.raises(ValueError, match="not under the library root"):
        RootMap(LOCAL, "/Volumes/VIBES").location_url(Path("/tmp/a.aiff"))


# -- determinism ------------------------------------------------------------------------------

@pytest.mark.parametrize("render", [rekordbox.render, traktor.render])
@pytest.mark.parametrize("library", [LIBRARY, HOSTILE_LIBRARY])
def test_same_library_same_bytes(render, library: DjLibrary) -> None:
    roots = RootMap(LOCAL, "E:\\")
    first = render(library, roots)
    rebuilt = DjLibrary(tuple(dataclasses.replace(t) for t in library.tracks), tuple(library.folders))
    assert render(rebuilt, RootMap(Path(str(LOCAL)), "E:\\")) == first
    assert first.decode("utf-8")  # UTF-8 throughout


def test_a_track_keeps_its_id_and_a_playlist_its_uuid_as_the_library_grows() -> None:
    grown = DjLibrary(LIBRARY.tracks + (_track("new-5", "Inbox/new.aiff"),), LIBRARY.folders)
    roots = RootMap(LOCAL, None)
    ids = {t.get("Name"): t.get("TrackID") for t in ET.fromstring(rekordbox.render(LIBRARY, roots)).iter("TRACK")
           if t.get("Name")}
    grown_ids = {t.get("Name"): t.get("TrackID") for t in ET.fromstring(rekordbox.render(grown, roots)).iter("TRACK")
                 if t.get("Name")}
    assert {name: grown_ids[name] for name in ids} == ids
    uuids = [p.get("UUID") for p in ET.fromstring(traktor.render(LIBRARY, roots)).iter("PLAYLIST")]
    assert [p.get("UUID") for p in ET.fromstring(traktor.render(grown, roots)).iter("PLAYLIST")] == uuids


def test_write_replaces_the_file_whole(tmp_path: Path) -> None:
    roots = RootMap(LOCAL, "/Volumes/VIBES")
    dest = tmp_path / "exports" / "rekordbox.xml"
    dest.parent.mkdir()
    dest.write_text("an older export")
    from music_pipeline.core.sinks.dj import export  # the one writer of both exports

    assert export(LIBRARY, rekordbox.render, roots, dest).action == "written"
    assert RekordboxXml(dest).num_tracks == 4
    nml = tmp_path / "exports" / "collection.nml"
    export(LIBRARY, traktor.render, roots, nml)
    assert len(STRICT.from_path(nml, Nml).collection.entry) == 4
    assert sorted(p.name for p in dest.parent.iterdir()) == [  # their manifests beside them; no partial left
        ".collection.nml.music-pipeline.json", ".rekordbox.xml.music-pipeline.json", "collection.nml", "rekordbox.xml"]


def test_a_key_no_notation_reads_is_left_out() -> None:
    track = dataclasses.replace(FLAT, key_name="not a key", key_short=None)
    assert ET.fromstring(rekordbox.render(DjLibrary((track,)), RootMap(LOCAL, None))).find(
        ".//TRACK").get("Tonality") == ""
    assert read_traktor(traktor.render(DjLibrary((track,)), RootMap(LOCAL, None))).collection.entry[0].musical_key is None
