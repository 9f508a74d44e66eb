"""Audio analysis on signals whose tempo and key are known by construction, the key
notations, and the `music-pipeline analyze` contract."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from music_pipeline.core.audio import analysis
from music_pipeline.core.domain.keys import ALL_KEYS, Key

from .audio import click_track, cross_rhythm, make_track, scale, write

CAMELOT = {  # the published wheel
    "C major": "8B", "G major": "9B", "D major": "10B", "A major": "11B", "E major": "12B", "B major": "1B",
    "F# major": "2B", "Db major": "3B", "Ab major": "4B", "Eb major": "5B", "Bb major": "6B", "F major": "7B",
    "A minor": "8A", "E minor": "9A", "B minor": "10A", "F# minor": "11A", "C# minor": "12A", "G# minor": "1A",
    "Eb minor": "2A", "Bb minor": "3A", "F minor": "4A", "C minor": "5A", "G minor": "6A", "D minor": "7A",
}
OPEN_KEY = {  # Open Key: Camelot turned so that C major is 1d and A minor 1m
    name: f"{(int(code[:-1]) - 8) % 12 + 1}{'m' if code[-1] == 'A' else 'd'}" for name, code in CAMELOT.items()
}


def test_all_24_keys_in_every_notation() -> None:
    assert len({k.name for k in ALL_KEYS}) == 24
    for key in ALL_KEYS:
        assert key.camelot == CAMELOT[key.name], key.name
        assert key.open_key == OPEN_KEY[key.name], key.name
        for spelling in (key.name, key.short, key.camelot, key.open_key):
            assert Key.parse(spelling) == key, spelling
    assert Key.parse("F# minor").open_key == "4m" and Key.parse("C major").open_key == "1d"


@pytest.mark.parametrize("text, expected", [
    ("Gbm", "F# minor"), ("a", "A minor"), ("a:minor", "A minor"), ("C:maj", "C major"),
    ("B-flat major", "Bb major"), ("A#m", "Bb minor"), ("Db", "Db major"), ("C#", "Db major"),
])
def test_key_spellings(text: str, expected: str) -> None:
    assert Key.parse(text).name == expected


@pytest.mark.parametrize("bpm", [75, 90, 100, 124, 128, 140, 150, 165, 174, 178])
def test_click_tracks_keep_their_tempo(tmp_path: Path, bpm: float) -> None:
    path = write(tmp_path / f"click{bpm}.flac", click_track(30, bpm), 44_100, ["-c:a", "flac"])
    result = analysis.analyse(path)
    assert abs(result.bpm - bpm) <= 0.01 * bpm, result.bpm  # no half or double tempo
    assert result.bpm_confidence > 0.3


@pytest.mark.parametrize("bpm", [86.5, 120.0, 126.3, 172.0])
def test_songs_with_drums_and_chords(tmp_path: Path, bpm: float) -> None:
    path = make_track(tmp_path / "song.flac", seconds=40, bpm=bpm, codec_args=["-c:a", "flac"])
    result = analysis.analyse(path)
    assert abs(result.bpm - bpm) <= 0.005 * bpm + 0.1, result.bpm  # to a tenth, near enough


@pytest.mark.parametrize("bpm", [62, 66])
def test_slow_click_tracks_just_below_the_range_are_not_doubled(tmp_path: Path, bpm: float) -> None:
    """The range is a soft preference: nothing happens at double time, so there is no double."""
    path = write(tmp_path / f"click{bpm}.flac", click_track(30, bpm), 44_100, ["-c:a", "flac"])
    assert abs(analysis.analyse(path).bpm - bpm) <= 0.01 * bpm


@pytest.mark.parametrize("bpm", [120, 150, 174])
def test_a_3_3_2_figure_does_not_move_the_beat(tmp_path: Path, bpm: float) -> None:
    """Kicks every one and a half beats: neither 2/3 of the tempo nor half of it."""
    path = write(tmp_path / f"loop{bpm}.flac", cross_rhythm(30, bpm), 44_100, ["-c:a", "flac"])
    assert abs(analysis.analyse(path).bpm - bpm) <= 0.01 * bpm


def test_preferred_range_decides_between_octaves(tmp_path: Path) -> None:
    path = write(tmp_path / "click.flac", click_track(30, 90), 44_100, ["-c:a", "flac"])
    assert abs(analysis.analyse(path).bpm - 90) < 1
    fast = analysis.analyse(path, analysis.Settings(bpm_range=(150, 230)))
    assert abs(fast.bpm - 180) < 2


@pytest.mark.parametrize("tonic, minor, bpm", [
    ("C", False, 120), ("A", True, 120), ("F#", True, 124), ("Bb", False, 90), ("E", False, 140),
    ("G", True, 128), ("Db", False, 100), ("C#", True, 120), ("C", False, 174), ("D", True, 170)])
def test_chord_progressions_give_their_key(tmp_path: Path, tonic: str, minor: bool, bpm: int) -> None:
    """Drums included: the kick (at 55 Hz, an A) must not pull the key."""
    path = make_track(tmp_path / "prog.flac", seconds=30, bpm=bpm, tonic=tonic, minor=minor,
                      codec_args=["-c:a", "flac"])
    result = analysis.analyse(path)
    assert Key.parse(result.key) == Key.parse(f"{tonic} {'minor' if minor else 'major'}"), result.key
    assert result.camelot == Key.parse(result.key).camelot and result.open_key == Key.parse(result.key).open_key


@pytest.mark.parametrize("tonic, minor", [("D", False), ("Eb", False), ("B", True), ("F", True)])
def test_scales_give_their_key(tmp_path: Path, tonic: str, minor: bool) -> None:
    path = write(tmp_path / "scale.flac", scale(tonic, minor), 44_100, ["-c:a", "flac"])
    result = analysis.analyse(path)
    assert Key.parse(result.key) == Key.parse(f"{tonic} {'minor' if minor else 'major'}"), result.key


def test_key_survives_detuning(tmp_path: Path) -> None:
    """A record pressed 40 cents sharp is still in its key."""
    base = make_track(tmp_path / "a.flac", seconds=20, tonic="A", minor=True, codec_args=["-c:a", "flac"])
    sharp = tmp_path / "sharp.flac"
    factor = 2 ** (40 / 1200)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(base), "-af",
                    f"asetrate={44_100 * factor:.0f},aresample=44100,atempo={1 / factor:.6f}", str(sharp)], check=True)
    assert analysis.analyse(sharp).key == "A minor"


def test_loudness_true_peak_and_replaygain(tmp_path: Path) -> None:
    """A 1 kHz sine at -20 dBFS in both channels measures -20 LUFS (BS.1770), peaks at -20 dBTP,
    and needs +2 dB to reach ReplayGain 2.0's -18 LUFS."""
    rate = 48_000
    t = np.arange(rate * 10) / rate
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    path = write(tmp_path / "sine.wav", np.stack([tone, tone], axis=1), rate, ["-c:a", "pcm_s24le"])
    result = analysis.analyse(path)
    assert result.lufs == pytest.approx(-20.0, abs=0.3)
    assert result.true_peak_db == pytest.approx(-20.0, abs=0.3)
    assert result.replaygain_track_gain_db == pytest.approx(2.0, abs=0.3)
    assert result.replaygain_track_peak == pytest.approx(0.1, abs=0.005)
    assert result.loudness_range_lu is not None and result.loudness_range_lu < 1


def test_one_decode_feeds_a_fingerprint_identical_to_chromaprints_own(tmp_path: Path) -> None:
    import acoustid

    from music_pipeline.core.audio import fingerprint

    path = make_track(tmp_path / "fp.flac", seconds=20, codec_args=["-c:a", "flac"])
    shared = analysis.analyse(path)
    alone = fingerprint.fingerprint_file(path)
    assert shared.fingerprint_duration_s == pytest.approx(20.0, abs=0.05)
    assert acoustid.compare_fingerprints((20, shared.fingerprint.encode()), (20, alone.fingerprint.encode())) > 0.95


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "music_pipeline", "analyze", *args], capture_output=True,
                          text=True, timeout=300)


def test_analyze_json_contract_with_a_corrupt_file_in_the_batch(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    make_track(folder / "one.flac", seconds=15, bpm=128, tonic="F#", codec_args=["-c:a", "flac"])
    make_track(folder / "sub" / "two.mp3", seconds=15, bpm=100, tonic="C", minor=False,
               codec_args=["-c:a", "libmp3lame"])
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (folder / "notes.txt").write_text("not audio, not picked up from a folder")
    proc = _cli("--json", "--jobs", "2", str(folder))
    assert proc.returncode == 1, proc.stderr  # one file failed
    records = {Path(r["path"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(records) == {"one.flac", "two.mp3", "broken.wav"}
    assert set(records["broken.wav"]) == {"path", "error"} and "broken.wav" in records["broken.wav"]["error"]
    for name in ("one.flac", "two.mp3"):
        record = records[name]
        for field in ("path", "bpm", "bpm_confidence", "key", "camelot", "open_key", "key_confidence", "lufs",
                      "true_peak_db", "duration_s", "elapsed_s"):
            assert field in record, field
        assert isinstance(record["bpm"], float) and 0 <= record["key_confidence"] <= 1
        assert record["key"].endswith((" major", " minor")) and record["elapsed_s"] > 0
        assert abs(record["duration_s"] - 15) < 0.1
    assert records["one.flac"]["key"] == "F# minor" and abs(records["one.flac"]["bpm"] - 128) < 1
    assert records["two.mp3"]["key"] == "C major" and abs(records["two.mp3"]["bpm"] - 100) < 1


def test_analyze_human_output_and_success_exit_code(tmp_path: Path) -> None:
    path = make_track(tmp_path / "ok.flac", seconds=31, bpm=124, codec_args=["-c:a", "flac"])  # one whole i-iv-V-i
    proc = _cli(str(path))
    assert proc.returncode == 0
    assert "124.00 BPM" in proc.stdout and "beat 1 at 0.000 s" in proc.stdout and "A minor" in proc.stdout and "8A" in proc.stdout


def test_memory_stays_bounded_for_a_ten_minute_track(tmp_path: Path) -> None:
    path = tmp_path / "long.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=220:d=600:sample_rate=44100",
                    "-ac", "2", "-c:a", "flac", str(path)], check=True)
    # The child's own high-water mark (VmHWM), not ru_maxrss: Linux carries that over from the
    # parent across fork and exec, so it would count this test process's memory too.
    code = ("import re; from pathlib import Path; from music_pipeline.core.audio import analysis;"
            f"analysis.analyse(Path({str(path)!r}));"
            "print(re.search(r'VmHWM:\\s*(\\d+)', Path('/proc/self/status').read_text()).group(1))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    peak_mb = int(out.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mb < 400, peak_mb


def _ffmpeg_r128(path: Path) -> tuple[float, float, float]:
    import re

    err = subprocess.run(["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-af", "ebur128=peak=true",
                          "-f", "null", "-"], capture_output=True, text=True).stderr
    summary = err[err.rfind("Summary:"):]
    return tuple(float(re.search(pattern, summary).group(1)) for pattern in (
        r"I:\s*(-?[\d.]+) LUFS", r"LRA:\s*(-?[\d.]+) LU", r"Peak:\s*(-?[\d.]+) dBFS"))


@pytest.mark.parametrize("rate, codec", [(44_100, "flac"), (48_000, "pcm_s24le"), (96_000, "flac")])
def test_loudness_agrees_with_ffmpegs_ebur128_meter(tmp_path: Path, rate: int, codec: str) -> None:
    """Our in-process BS.1770 meter against an independent implementation, on music with a
    quiet intro (so gating and loudness range matter)."""
    music = make_track(tmp_path / "m.flac", seconds=30, rate=rate, codec_args=["-c:a", "flac"])
    path = tmp_path / f"test.{'wav' if codec.startswith('pcm') else 'flac'}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(music), "-af",
                    "volume='if(lt(t,8),0.1,1)':eval=frame", "-c:a", codec, str(path)], check=True)
    lufs, lra, peak = _ffmpeg_r128(path)
    result = analysis.analyse(path)
    assert result.lufs == pytest.approx(lufs, abs=0.25)
    assert result.loudness_range_lu == pytest.approx(lra, abs=0.6)
    assert result.true_peak_db == pytest.approx(peak, abs=0.3)


def test_true_peak_finds_the_peak_between_samples(tmp_path: Path) -> None:
    """A sine at a quarter of the sample rate, 45° out of phase: every sample sits at 0.707 of
    the wave's real peak, 3 dB below it. The true peak must say so."""
    rate = 48_000
    n = np.arange(rate * 5)
    wave = (0.5 * np.sin(2 * np.pi * n / 4 + np.pi / 4)).astype(np.float32)
    path = write(tmp_path / "isp.wav", np.stack([wave, wave], axis=1), rate, ["-c:a", "pcm_f32le"])
    result = analysis.analyse(path)
    sample_peak_db = 20 * np.log10(np.abs(wave).max())
    assert sample_peak_db == pytest.approx(-9.03, abs=0.05)
    assert result.true_peak_db == pytest.approx(-6.02, abs=0.3)


def test_silence_has_no_tempo_or_key(tmp_path: Path) -> None:
    path = write(tmp_path / "silence.wav", np.zeros((44_100 * 5, 2), dtype=np.float32), 44_100, ["-c:a", "pcm_s16le"])
    result = analysis.analyse(path)
    assert result.bpm is None and result.key is None and result.camelot is None and result.lufs is None


def test_a_short_sample_is_analysed_not_crashed(tmp_path: Path) -> None:
    path = make_track(tmp_path / "short.wav", seconds=0.8, codec_args=["-c:a", "pcm_s16le"])
    result = analysis.analyse(path)
    assert result.duration_s == pytest.approx(0.8, abs=0.02) and result.lufs is not None


def test_vbr_mp3_without_xing_header_is_decoded_to_its_end(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).standard_normal((44_100 * 25, 2)) * 0.3
    signal = np.concatenate([np.zeros((44_100 * 5, 2)), noise]).astype(np.float32)
    path = write(tmp_path / "vbr.mp3", signal, 44_100, ["-c:a", "libmp3lame", "-q:a", "0", "-write_xing", "0"])
    assert analysis.analyse(path).duration_s == pytest.approx(30.0, abs=0.1)


def test_damage_in_the_middle_of_a_flac_falls_back_to_ffmpeg(tmp_path: Path) -> None:
    path = make_track(tmp_path / "whole.flac", seconds=30, codec_args=["-c:a", "flac"])
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = bytes(4000)  # a scratch in the middle
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(bytes(data))
    result = analysis.analyse(damaged)
    assert result.duration_s > 25 and result.key == "A minor"


def test_a_badly_corrupt_aac_gives_an_error_or_a_result_but_never_hangs(tmp_path: Path) -> None:
    """Thousands of decoder errors must not fill a pipe and stall the batch."""
    path = make_track(tmp_path / "clean.m4a", seconds=60, codec_args=["-c:a", "aac", "-b:a", "128k"])
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(2)
    for offset in rng.integers(4096, len(data) - 16, size=3000):
        data[offset:offset + 8] = rng.integers(0, 256, size=8, dtype=np.uint8).tobytes()
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "music_pipeline", "analyze", "--json", str(broken)],
                          capture_output=True, text=True, timeout=120)
    record = json.loads(proc.stdout.splitlines()[-1])
    assert record["path"] == str(broken) and ("error" in record or record["duration_s"] > 0)


def test_true_peak_at_a_block_boundary_and_at_the_very_end(tmp_path: Path) -> None:
    from music_pipeline.core.audio.loudness import Meter

    rate = 48_000
    for centre in (analysis.BLOCK_FRAMES - 3, rate * 2 - 4):  # across a block edge; the last samples
        x = np.zeros(rate * 2 + 100, dtype=np.float32)
        n = np.arange(-40, 41)
        x[centre - 40:centre + 41] = 0.5 * np.sinc(n - 0.5) * np.hanning(81)  # peak between two samples
        x = x[: rate * 2]
        whole, blocks = Meter(rate, 1), Meter(rate, 1)
        whole.feed(x[None, :])
        for start in range(0, x.size, analysis.BLOCK_FRAMES):
            blocks.feed(x[None, start:start + analysis.BLOCK_FRAMES])
        assert blocks.result()[2] == pytest.approx(whole.result()[2], abs=0.05)
        assert blocks.result()[2] > 20 * np.log10(np.abs(x).max()) + 0.5  # it really is between samples


def test_the_band_limit_a_lossy_encoder_leaves_marks_a_lossless_file_of_lossy_origin(tmp_path: Path) -> None:
    """The fake-FLAC check, in the one decode: a FLAC or WAV decoded from an Ogg or MP3 keeps
    the encoder's lowpass; a true lossless file, and one resampled by soxr (whose anti-alias
    filter sits at 21 kHz), are not flagged."""
    from .dedup_audio import bright, transform

    master = write(tmp_path / "master.flac", bright(4, 30.0), codec_args=["-c:a", "flac"])
    studio = write(tmp_path / "studio48k.flac", bright(5, 30.0), rate=48_000, codec_args=["-c:a", "flac"])
    ogg = transform(master, tmp_path / "lossy.ogg", "-c:a", "libvorbis", "-q:a", "2")
    mp3 = transform(master, tmp_path / "lossy.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    results = {path.name: analysis.analyse(path) for path in (
        master, ogg, mp3,
        transform(ogg, tmp_path / "from_ogg.flac", "-c:a", "flac"),
        transform(ogg, tmp_path / "from_ogg_24.flac", "-af", "volume=-6dB", "-c:a", "flac", "-sample_fmt", "s32",
                  cut_s=3.0),
        transform(mp3, tmp_path / "from_mp3.wav", "-c:a", "pcm_s24le"),
        transform(studio, tmp_path / "cd.flac", "-af", "aresample=resampler=soxr", "-ar", "44100", "-c:a", "flac"),
    )}
    assert results["master.flac"].cutoff_hz is None and results["master.flac"].lossy_origin is False
    cd = results["cd.flac"]
    assert cd.lossy_origin is False and (cd.cutoff_hz is None or cd.cutoff_hz > 20_500)
    for lossy in ("lossy.ogg", "lossy.mp3"):  # a lossy file is not "of lossy origin": it is lossy
        assert 14_000 < results[lossy].cutoff_hz < 19_000 and results[lossy].lossy_origin is None
    for name, origin in (("from_ogg.flac", "lossy.ogg"), ("from_ogg_24.flac", "lossy.ogg"),
                         ("from_mp3.wav", "lossy.mp3")):
        assert results[name].lossy_origin is True, name
        assert results[name].cutoff_hz == pytest.approx(results[origin].cutoff_hz, abs=300), name

    decoded = analysis.decode(tmp_path / "from_ogg.flac")  # the hand-over cache keeps the band limit
    decoded.save(tmp_path / "cache.npz", "x")
    assert analysis.Decoded.load(tmp_path / "cache.npz", "x").cutoff_hz == decoded.cutoff_hz

    proc = _cli("--json", str(tmp_path / "from_ogg.flac"), str(master))
    records = {Path(r["path"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert records["from_ogg.flac"]["lossy_origin"] is True and records["from_ogg.flac"]["cutoff_hz"] > 14_000
    assert records["master.flac"]["lossy_origin"] is False and records["master.flac"]["cutoff_hz"] is None
