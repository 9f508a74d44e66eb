"""Probing, validating and transcoding audio with ffmpeg/ffprobe.

Output rules (what DJ software and players expect):
- lossless sources keep their sample rate and bit depth (16 or 24 bits; 8-bit becomes 16,
  32-bit and float become 24); lossy sources become 16-bit at their own rate;
- nothing exceeds 48 kHz: 88.2/176.4 kHz go to 44.1 kHz, 96/192 kHz to 48 kHz;
- WAV carries the plain WAVE_FORMAT_PCM header: ffmpeg writes WAVE_FORMAT_EXTENSIBLE for
  24-bit or multichannel audio, which Pioneer/rekordbox reject, so the WAV container is
  written here from ffmpeg's raw PCM with the standard library's ``wave`` module.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import wave
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..domain.errors import DiskFull, MediaToolError, NotAudio

LOSSLESS_CODECS = {
    "flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd", "shorten", "tak", "als", "mp4als",
}
MAX_RATE = 48_000
EXACT_LENGTH_FORMATS = {"flac", "mov", "ogg", "matroska", "aiff", "wav", "caf", "wv", "ape"}


@dataclass(frozen=True)
class AudioInfo:
    """What ffprobe says about the first audio stream of a file."""

    codec: str
    sample_rate: int
    channels: int
    bits: int | None  # None for lossy codecs, which have no bit depth
    duration_s: float
    bitrate: int | None
    lossless: bool
    format_name: str
    has_cover: bool
    #: The container's and the audio stream's tags as ffprobe reports them, names in lower
    #: case: what mutagen cannot read (a WAV's RIFF INFO chunk) is often here.
    tags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Target:
    """The sample rate and bit depth every output of one source is written at."""

    sample_rate: int
    bits: int


#: util-linux's setpriv (Linux): a tool started through it is killed when the thread that
#: started it dies. Without it an ffmpeg writing a file (not a pipe, which would break)
#: goes on writing hundreds of megabytes after its run was killed.
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def dies_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` started so that it dies with this process (where the system can do that)."""
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *cmd] if _SETPRIV else cmd


def _run(cmd: list[str], what: str, timeout: float | None = None, input_path: Path | None = None) -> subprocess.CompletedProcess:
    if shutil.which(cmd[0]) is None:
        raise MediaToolError(
            f"{cmd[0]} is not installed.", hint="Run `music-pipeline doctor` to see how to install it."
        )
    try:
        proc = subprocess.run(dies_with_parent(cmd), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise MediaToolError(f"{what} took longer than {timeout:.0f} s and was stopped.") from err
    if proc.returncode != 0:
        raise_for_stderr(proc.stderr.decode("utf-8", "replace"), what, input_path)
    return proc


def raise_for_stderr(stderr: str, what: str, input_path: Path | None = None) -> None:
    """Translate an ffmpeg/ffprobe failure into the error a user can act on."""
    lines = [re.sub(r"^\[[\w:]+ @ 0x[0-9a-f]+\]\s*", "", line.strip()) for line in stderr.splitlines() if line.strip()]
    tail = "; ".join(lines[-3:]) or "no error output"
    name = input_path.name if input_path else "the input"
    if "No space left on device" in stderr or "Disk quota exceeded" in stderr:
        raise DiskFull(
            f"The disk filled up during {what}.",
            hint="Free some space in the library folder and retry; nothing partial was kept.",
        )
    unreadable = ("Invalid data found when processing input", "could not find codec parameters",
                  "misdetection possible", "Failed to read frame size", "matches no streams",
                  "does not contain any stream", "Error while decoding")
    if any(marker.lower() in stderr.lower() for marker in unreadable):
        raise NotAudio(f"{name} is not an audio file ffmpeg can read ({tail}).")
    raise MediaToolError(f"{what} failed: {tail}")


#: What ffprobe said about the files this process probed last, by the file's identity (device,
#: inode, size, modification and change times to the nanosecond): a track's source is probed by
#: its check, then again by each of its three outputs' steps, and each ffprobe costs about 0.1
#: CPU-s, more than the rest of a short step. Any write or rename changes the identity.
_PROBED: OrderedDict[tuple, AudioInfo] = OrderedDict()
_PROBED_MAX = 64
_PROBED_LOCK = threading.Lock()


def probe(path: Path) -> AudioInfo:
    """Describe the audio of ``path``; raise NotAudio for anything that is not audio."""
    path = Path(path)
    if not path.is_file():
        raise NotAudio(f"{path} does not exist.")
    st = path.stat()
    if st.st_size == 0:
        raise NotAudio(f"{path.name} is empty (0 bytes).", hint="Copy or download it again.")
    identity = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _PROBED_LOCK:
        if (known := _PROBED.get(identity)) is not None:
            _PROBED.move_to_end(identity)
            return replace(known, tags=dict(known.tags))
    info = _probe(path)
    with _PROBED_LOCK:
        _PROBED[identity] = replace(info, tags=dict(info.tags))
        while len(_PROBED) > _PROBED_MAX:
            _PROBED.popitem(last=False)
    return info


def _probe(path: Path) -> AudioInfo:
    try:
        proc = _run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
            f"reading {path.name}",
            timeout=120,
            input_path=path,
        )
    except MediaToolError as err:
        if shutil.which("ffprobe") is None:
            raise
        # ffprobe only fails on input it cannot parse: that is a bad file, not a broken tool.
        detail = err.message.split("failed: ", 1)[-1]
        raise NotAudio(f"{path.name} is not an audio file ffmpeg can read ({detail}).") from err
    data = json.loads(proc.stdout or b"{}")
    streams = data.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        raise NotAudio(f"{path.name} contains no audio stream; it is not an audio file.")
    stream = audio[0]
    fmt = data.get("format", {})
    codec = stream.get("codec_name", "unknown")
    duration = _float(stream.get("duration")) or _float(fmt.get("duration"))
    if not duration or duration <= 0:
        raise NotAudio(f"{path.name} has no playable duration; it is truncated or corrupt.")
    lossless = codec.startswith("pcm_") or codec in LOSSLESS_CODECS
    return AudioInfo(
        codec=codec,
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
        bits=_bits(stream) if lossless else None,
        duration_s=round(duration, 4),
        bitrate=int(_float(stream.get("bit_rate")) or _float(fmt.get("bit_rate")) or 0) or None,
        lossless=lossless,
        format_name=fmt.get("format_name", ""),
        has_cover=any(s.get("disposition", {}).get("attached_pic") for s in streams),
        tags=_tags(fmt, stream),
    )


def _tags(fmt: dict, stream: dict) -> dict[str, str]:
    """Container tags first (RIFF INFO, ID3, MP4), then the stream's (Ogg/Opus comments)."""
    tags: dict[str, str] = {}
    for source in (fmt.get("tags") or {}, stream.get("tags") or {}):
        for name, value in source.items():
            text = str(value).strip()
            if text:
                tags.setdefault(name.lower(), text)
    return tags


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _bits(stream: dict) -> int:
    for name in ("bits_per_raw_sample", "bits_per_sample"):
        value = int(stream.get(name) or 0)
        if value:
            return value
    match = re.search(r"(\d+)", stream.get("sample_fmt", ""))
    return int(match.group(1)) if match else 16


_TIME = re.compile(r"time=\s*(\d+):(\d+):(\d+(?:\.\d+)?)")


def decoded_duration(path: Path) -> float:
    """Decode the whole first audio stream and return how long it really plays.

    Headers lie about truncated files (a WAV cut short still declares its full length),
    so the only reliable check is to decode everything; ffmpeg does this at hundreds of
    times real time.
    """
    proc = _run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-stats", "-i", str(path),
         "-map", "0:a:0", "-f", "null", "-"],
        f"decoding {Path(path).name}",
        timeout=600,
        input_path=Path(path),
    )
    times = _TIME.findall(proc.stderr.decode("utf-8", "replace"))
    if not times:
        raise NotAudio(f"{Path(path).name} decodes to no audio at all.")
    hours, minutes, seconds = times[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def chunk_shortfall(path: Path) -> int:
    """Bytes a WAV or AIFF file's audio chunk declares beyond the end of the file.

    ffmpeg quietly plays a cut-short WAV/AIFF to wherever it ends and reports that as its
    duration, so truncation is only visible by comparing the chunk header with the file
    size. Streaming writers mark an unknown size with 0 or 0xFFFFFFFF: not a shortfall.
    """
    size = Path(path).stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            order, wanted = "little", b"data"
        elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            order, wanted = "big", b"SSND"
        else:
            return 0
        while chunk := handle.read(8):
            if len(chunk) < 8:
                return 0
            length = int.from_bytes(chunk[4:8], order)
            if chunk[:4] == wanted:
                if length in (0, 0xFFFFFFFF):
                    return 0
                return max(0, handle.tell() + length - size)
            handle.seek(length + (length & 1), 1)
    return 0


def mp3_counts_its_frames(path: Path) -> bool:
    """Whether an MP3's first frame is a Xing, Info (LAME's CBR twin) or VBRI header: these
    state the frame count, so the length ffprobe reports is a promise a cut file breaks (and
    not a guess from the bitrate)."""
    with open(path, "rb") as handle:
        head = handle.read(10)
        start = 0
        if head[:3] == b"ID3" and len(head) == 10:  # skip the tag: its size is four 7-bit bytes
            start = 10 + sum((byte & 0x7F) << (7 * (3 - i)) for i, byte in enumerate(head[6:10]))
            start += 10 if head[5] & 0x10 else 0  # a footer
        handle.seek(start)
        data = handle.read(64 * 1024)
    for offset in range(len(data) - 1):  # the first frame sync: eleven set bits
        if data[offset] == 0xFF and data[offset + 1] & 0xE0 == 0xE0:
            frame = data[offset: offset + 64]  # the side information is at most 32 bytes
            return any(marker in frame for marker in (b"Xing", b"Info", b"VBRI"))
    return False


def validate_source(path: Path) -> AudioInfo:
    """Probe and fully decode an incoming file; reject empty, non-audio or truncated input."""
    info = probe(path)
    missing = chunk_shortfall(path)
    if missing:
        raise NotAudio(
            f"{Path(path).name} is truncated: its header announces {missing:,} more bytes of audio "
            "than the file holds.",
            hint="Download or copy it again.",
        )
    played = decoded_duration(path)
    if played < 0.5:
        raise NotAudio(f"{Path(path).name} holds less than half a second of audio.")
    # A header that promises more than the data holds means the file was cut short, for
    # containers whose header states the exact length (FLAC's STREAMINFO, MP4's moov, Ogg
    # granules, an MP3's Xing/Info/VBRI frame count). An MP3 without one has only a bitrate
    # guess: no verdict there.
    container = info.format_name.split(",")[0]
    exact = container in EXACT_LENGTH_FORMATS or (container == "mp3" and mp3_counts_its_frames(path))
    if exact and info.duration_s - played > max(1.0, 0.02 * info.duration_s):
        raise NotAudio(
            f"{Path(path).name} is truncated: its header says {info.duration_s:.1f} s "
            f"but only {played:.1f} s of audio decode.",
            hint="Download or copy it again.",
        )
    if abs(info.duration_s - played) > 0.05:
        info = AudioInfo(**{**info.as_dict(), "duration_s": round(played, 4)})
    return info


def target_for(info: AudioInfo) -> Target:
    rate = info.sample_rate or 44_100
    if rate > MAX_RATE:
        rate = 48_000 if rate % 48_000 == 0 else 44_100
    if not info.lossless:
        return Target(rate, 16)
    return Target(rate, 16 if (info.bits or 16) <= 16 else 24)


def _common_input(src: Path) -> list[str]:
    return ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src), "-map", "0:a:0",
            "-map_metadata", "-1", "-vn", "-sn", "-dn"]


def _resample(info: AudioInfo, target: Target) -> list[str]:
    if info.sample_rate == target.sample_rate:
        return []
    # soxr keeps the resampled audio transparent; duration is preserved to the sample.
    return ["-af", "aresample=resampler=soxr:precision=28", "-ar", str(target.sample_rate)]


def transcode(src: Path, dest: Path, fmt: str, info: AudioInfo, target: Target) -> None:
    """Write ``src`` as ``fmt`` (ALAC, AIFF or WAV) to ``dest`` (normally a temp path)."""
    if fmt == "WAV":
        _write_wav(src, dest, info, target)
        return
    if fmt == "ALAC":
        codec = ["-c:a", "alac", "-sample_fmt", "s16p" if target.bits == 16 else "s32p"]
        if target.bits == 24:
            codec += ["-bits_per_raw_sample", "24"]
        container = ["-f", "ipod", "-movflags", "+faststart"]
    elif fmt == "AIFF":
        codec = ["-c:a", "pcm_s16be" if target.bits == 16 else "pcm_s24be"]
        container = ["-f", "aiff", "-write_id3v2", "1"]
    else:
        raise ValueError(f"unknown format {fmt}")
    _run([*_common_input(src), *_resample(info, target), *codec, *container, str(dest)],
         f"transcoding to {fmt}", timeout=1800, input_path=src)


def _write_wav(src: Path, dest: Path, info: AudioInfo, target: Target) -> None:
    """ffmpeg decodes to raw little-endian PCM; ``wave`` writes the WAVE_FORMAT_PCM header."""
    sample_fmt = "s16le" if target.bits == 16 else "s24le"
    channels = max(1, info.channels)
    cmd = [*_common_input(src), *_resample(info, target), "-c:a", f"pcm_{sample_fmt}",
           "-ac", str(channels), "-f", sample_fmt, "pipe:1"]
    if shutil.which("ffmpeg") is None:
        _run(cmd, "transcoding to WAV")  # raises the "not installed" error
    proc = subprocess.Popen(dies_with_parent(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with wave.open(str(dest), "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(target.bits // 8)
            out.setframerate(target.sample_rate)
            assert proc.stdout is not None
            while block := proc.stdout.read(1 << 20):
                out.writeframesraw(block)
    except BaseException:
        # Whatever stopped us (a full disk, a terminated run), ffmpeg must not be left
        # blocked on a pipe nobody reads.
        proc.kill()
        raise
    finally:
        stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        proc.wait()
    if proc.returncode != 0:
        raise_for_stderr(stderr, "transcoding to WAV", src)


def audio_md5(path: Path) -> str:
    """The MD5 of the decoded audio: equal for two files holding the same samples, whatever
    their tags or container say."""
    proc = _run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0", "-f", "md5", "-"],
                "comparing audio", timeout=600, input_path=path)
    return proc.stdout.decode().strip().removeprefix("MD5=")


def wav_format_tag(path: Path) -> int:
    """The wFormatTag of a WAV's fmt chunk: 1 is PCM, 0xFFFE is WAVE_FORMAT_EXTENSIBLE."""
    with open(path, "rb") as handle:
        header = handle.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise NotAudio(f"{Path(path).name} is not a RIFF/WAVE file.")
        while chunk := handle.read(8):
            if len(chunk) < 8:
                break
            size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"fmt ":
                return int.from_bytes(handle.read(2), "little")
            handle.seek(size + (size & 1), 1)
    raise NotAudio(f"{Path(path).name} has no fmt chunk.")


def extract_cover(src: Path, dest: Path) -> bool:
    """Write the source's embedded picture (if any) as JPEG to ``dest``; True when written."""
    try:
        _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-map", "0:v:0", "-frames:v", "1",
              "-c:v", "mjpeg", "-f", "image2", str(dest)], "extracting cover art", timeout=60, input_path=src)
    except (MediaToolError, NotAudio):
        return False
    return dest.exists() and dest.stat().st_size > 0


def image_to_jpeg(src: Path, dest: Path, max_size: int = 1200) -> bool:
    """Convert a thumbnail (YouTube serves WebP) to a JPEG players can show."""
    scale = f"scale='min({max_size},iw)':-2"
    try:
        _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-frames:v", "1", "-vf", scale,
              "-c:v", "mjpeg", "-q:v", "3", "-f", "image2", str(dest)], "converting the thumbnail", timeout=60)
    except (MediaToolError, NotAudio):
        return False
    return dest.exists() and dest.stat().st_size > 0
