"""What hostile use found (issue 18, point 7): each test failed before its fix."""

from __future__ import annotations

import pytest

from .audio import make_track
from .test_bad_input import assert_failed_cleanly

# -- a file cut short: no format is exempt from the truncation check -------------------------


@pytest.mark.parametrize("suffix, codec", [
    (".mp3", ["-c:a", "libmp3lame", "-q:a", "2"]),  # a Xing header still says the full length
    (".mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]),  # CBR: LAME's Info header, the same promise
    (".flac", ["-c:a", "flac"]),
    (".wav", ["-c:a", "pcm_s16le"]),
    (".m4a", ["-c:a", "aac", "-movflags", "+faststart"]),  # the moov (the length) before the cut
])
def test_a_file_cut_in_half_is_refused_whatever_its_format(process, library, tmp_path, suffix, codec) -> None:
    whole = make_track(tmp_path / f"whole{suffix}", seconds=20, codec_args=codec)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # what `head -c` leaves
    key, result = process(str(cut))
    assert_failed_cleanly(result, library, key, "raw_audio", f"cut{suffix} is truncated")
    if suffix == ".mp3":  # the new verdict never refuses the whole file (the others: test_bad_input)
        _, retry = process(str(whole))
        assert retry.success
