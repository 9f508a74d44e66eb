"""The library folder and the per-track steps that fill it.

Each step reads what earlier steps stored in the catalog, writes its files atomically
and records the result, so every step can run (and re-run) on its own: that is what lets
the Dagster layer be one thin asset per step. Layout of ``<root>``::

    catalog.sqlite           the catalog (source of truth)
    library_index.csv/.parquet
    inbox/                   drop files or .txt lists of URLs here
    inbox/imported/          inbox files after a successful import (never deleted)
    _raw/<key>.<ext>         the original audio as downloaded or imported
    _raw/<key>.cover.jpg     its cover art, when it has any
    _raw/<key>.decoded.npz   the decoded analysis signal, between the fingerprint and analysis steps
    ALAC/ AIFF/ WAV/         the outputs, by path template
    _trash/<date>/           files the pipeline replaced, kept instead of deleted
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..audio import analysis, bandlimit, beatgrid, media, tagging
from ..audio import fingerprint as fp
from ..audio.tagging import read_source_tags
from ..dj import serato
from ..domain import normalize
from ..domain.errors import DiskFull, NotAudio, NotRegistered, TrackError
from ..domain.identity import (
    Resolver,
    TrackSource,
    file_sha256,
    looks_like_url,
    normalise_isrc,
    redact_url,
    source_for,
)
from ..domain.lifecycle import Status
from ..domain.paths import FORMATS, Layout
from ..sources.download import Downloaded, download, scratch_dir, scratch_leftovers
from ..sources.inbox import imported_path
from ..sources.ytdlp import DownloadOptions
from . import playlists
from .catalog import CATALOG_FILE, Catalog
from .rows import Track
from .store import atomic_target, clean_partials, copy_atomic, disk_errors, move_to_trash

UNKNOWN_ARTIST = "Unknown Artist"
KEY_NOTATIONS = ("classic", "canonical", "camelot", "open_key")
DURATION_TOLERANCE_S = 0.05


@dataclass
class FileResult:
    """One written output, as reported to the UI and the catalog."""

    fmt: str
    path: Path
    size: int
    sha256: str
    codec: str
    sample_rate: int
    bits: int | None
    duration_s: float
    backup: Path | None = None
    replaced: list[Path] = field(default_factory=list)


class Library:
    """A library folder: its layout, its catalog and the steps that write into it."""

    def __init__(self, root: Path, layout: Layout | None = None, key_notation: str = "classic",
                 wav_backup_dir: Path | None = None, catalog_url: str | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.catalog_url = catalog_url or None  # PostgreSQL when several machines share the library
        self.layout = layout or Layout(self.root)
        if key_notation not in KEY_NOTATIONS:
            raise ValueError(f"key_notation must be one of {', '.join(KEY_NOTATIONS)}")
        self.key_notation = key_notation
        self.wav_backup_dir = Path(wav_backup_dir).expanduser() if wav_backup_dir else None
        self._catalog: Catalog | None = None

    # -- places -------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.root / CATALOG_FILE, url=self.catalog_url)
        return self._catalog

    def has_catalog(self) -> bool:
        """Whether this library has a catalog yet, without creating one (a library folder on an
        unmounted volume has none; a catalog on PostgreSQL is always there to ask)."""
        return bool(self.catalog_url) or (self.root / CATALOG_FILE).is_file()

    @property
    def raw_dir(self) -> Path:
        return self.root / "_raw"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    def track(self, key: str) -> Track:
        row = self.catalog.tracks.get(key)
        if row is None:
            raise NotRegistered(
                f"Track {key} is not in the catalog at {self.root}.",
                hint="Register it with `music-pipeline add URL_OR_FILE` (or drop it in the inbox) first.",
            )
        return row

    def register(self, source: TrackSource, original: str | None = None) -> bool:
        """Record ``source`` in the catalog (True when new). Callers that take tracks from
        outside ask :meth:`known_as` first: the one rule for a URL the library already has."""
        return self.catalog.tracks.register(source, original=original)

    def known_as(self, source: TrackSource, isrc: str | None = None) -> str | None:
        """The catalogued track ``source`` already is under another key, or None. A track the
        catalog has under its own key is itself (its status says what happens to it); else a
        URL (any form it was seen in) or an ISRC the library holds names the owner, followed
        from a duplicate to its keeper. Every way in (``add``, ``run``, the inbox, the sensors,
        the Notion queue) applies this rule, so one recording never becomes two tracks."""
        if self.catalog.tracks.get(source.key) is not None:
            return None
        owner = self.catalog.tracks.find_source(urls=[source.url] if source.url else [], isrc=isrc)
        return owner if owner != source.key else None

    def ensure_registered(self, key: str, target: str | None = None, resolve: Resolver | None = None) -> Track:
        """The track's row; registers ``target`` first when the catalog does not know ``key``
        (a run sent by `music-pipeline add` from another machine or folder carries it)."""
        if self.catalog.tracks.get(key) is None and target:
            source, row = register_target(self, target, resolve)
            if source.key != key:
                raise NotRegistered(f"{target} is track {source.key}, not {key}.")
            if row.key != key:
                raise NotRegistered(f"{redact_url(target)} is already in the library as {row.key}; "
                                    f"{key} was not registered.",
                                    hint=f"Its files are those of {row.key}: `music-pipeline process` it, or "
                                         f"pin a different source.")
        return self.track(key)

    # -- step 1: raw audio --------------------------------------------------------------

    def fetch_raw(self, key: str, options: DownloadOptions | None = None,
                  log: Callable[[str], None] | None = None, force: bool = False, url: str | None = None) -> Track:
        """Download or import the track's original audio into ``_raw/``; returns the row.

        An existing raw file whose checksum the catalog recorded is reused unless
        ``force``: re-materialising must not re-download what is already here. ``url``
        downloads from elsewhere than the source (a Spotify track's matched upload); the
        catalog's metadata from the source then wins over the upload's.
        """
        row = self.track(key)
        self.clean_leftovers(key)
        existing = Path(row.raw_path) if row.raw_path else None
        if not force and existing and existing.exists() and row.raw_sha256 == file_sha256(existing):
            return row
        with scratch_dir(self.raw_dir, key) as scratch:
            if row.source_kind == "file":
                source = Path(row.source_path or "")
                if not source.is_file():
                    raise NotAudio(f"{source} is gone; it was moved or deleted before it could be imported.")
                fetched = Downloaded(path=source, info={})
                meta = {}
            else:
                fetched = download(url or row.source_url, Path(scratch), options, log=log)
                meta = fetched.metadata
            info = media.validate_source(fetched.path)
            generic = row.source_kind == "file" or (meta.get("extractor") or "").lower() == "generic"
            name = fetched.path.stem if row.source_kind == "file" else (meta.get("title") or key)
            meta = merge_metadata(meta, read_source_tags(fetched.path, info.tags), name, generic)
            if url:  # a stand-in upload: keep what the source (Spotify) said the track is
                meta = {k: v for k, v in meta.items() if not getattr(row, k, None)}
            ext = fetched.path.suffix.lower() or f".{info.codec}"
            raw_path = self.raw_dir / f"{key}{ext}"
            copy_atomic(fetched.path, raw_path, owner=key)
            cover = self._save_cover(key, fetched)
        if existing and existing != raw_path and existing.exists():
            move_to_trash(existing, self.root)
        self.catalog.tracks.update(
            key, raw_path=str(raw_path), raw_codec=info.codec, raw_sample_rate=info.sample_rate,
            raw_bits=info.bits, raw_channels=info.channels, raw_lossless=int(info.lossless),
            raw_sha256=file_sha256(raw_path), duration_s=info.duration_s,
            raw_bitrate_kbps=round(info.bitrate / 1000 if info.bitrate
                                   else raw_path.stat().st_size * 8 / 1000 / max(info.duration_s, 1e-3), 1),
            cover_path=str(cover) if cover else None,
            name_key=name_key(meta.get("artist") or row.artist, meta.get("title") or row.title), **meta,
        )
        if row.source_kind == "file":
            self._file_away(key, Path(row.source_path))
        return self.track(key)

    def clean_leftovers(self, key: str) -> list[Path]:
        """Remove what an earlier attempt of ``key`` left when it was killed: half-written
        files (``.part``) in ``_raw`` and in its output folders, the download's scratch
        folder, the decoded signal handed between two steps. The first step calls this, so
        a re-run starts clean; nothing finished, and nothing of another track, is touched."""
        removed: list[Path] = [*scratch_leftovers(self.raw_dir, key)]
        for folder in removed:
            shutil.rmtree(folder, ignore_errors=True)
        cache = self.decoded_cache(key)
        if cache.exists():
            cache.unlink(missing_ok=True)
            removed.append(cache)
        clean_partials(self.raw_dir, owner=key)
        row = self.catalog.tracks.get(key)
        if row is not None:
            for fmt in FORMATS:
                for folder in {p.parent for p in self.target_names(row, fmt)}:
                    clean_partials(folder, owner=key)
        return removed

    def _file_away(self, key: str, source: Path) -> None:
        """Move an imported inbox file to ``inbox/imported/`` so the inbox shows what is left."""
        dest = imported_path(self.inbox, source)
        if dest is None or not source.exists():
            return
        if dest.exists():
            dest = dest.with_name(f"{dest.stem} ({key}){dest.suffix}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(dest))
        self.catalog.tracks.update(key, source_path=str(dest))

    def _save_cover(self, key: str, fetched: Downloaded) -> Path | None:
        cover = self.raw_dir / f"{key}.cover.jpg"
        try:
            with atomic_target(cover, owner=key) as tmp:
                ok = (fetched.thumbnail is not None and media.image_to_jpeg(fetched.thumbnail, tmp)) \
                    or media.extract_cover(fetched.path, tmp)
                if not ok:
                    raise _NoCover
        except _NoCover:
            return None
        return cover

    def raw(self, key: str) -> tuple[Track, Path]:
        row = self.track(key)
        path = Path(row.raw_path) if row.raw_path else None
        if path is None or not path.exists():
            raise TrackError(f"The raw audio of {key} is missing.", hint="Materialise raw_audio for this track first.")
        return row, path

    # -- step 2: fingerprint and analysis, from one decode -----------------------------------
    #
    # The fingerprint comes first (so a duplicate can be caught before any further work);
    # it decodes the track once and leaves the decoded signal and loudness beside the raw
    # file for the analysis, which removes it when done.

    def decoded_cache(self, key: str) -> Path:
        """Where the fingerprint step leaves the decoded signal for the analysis step."""
        return self.raw_dir / f"{key}.decoded.npz"

    def decoded(self, key: str) -> analysis.Decoded:
        """The track decoded for analysis: from the cache the fingerprint step left, or anew."""
        row, raw_path = self.raw(key)
        cache = self.decoded_cache(key)
        source_id = row.raw_sha256 or ""
        cached = analysis.Decoded.load(cache, source_id) if cache.exists() else None
        if cached is not None:
            return cached
        decoded = analysis.decode(raw_path)
        with atomic_target(cache, owner=key) as tmp, disk_errors(cache):
            decoded.save(tmp, source_id)
        return decoded

    def fingerprint(self, key: str) -> fp.Fingerprint:
        """The fingerprint, and what the dedup check right after it needs from the same decode:
        the band limit (is a lossless original of lossy origin?) and the silence at either end."""
        decoded = self.decoded(key)
        result = fp.fingerprint_float(decoded.signal, analysis.RATE)
        lead, trail = decoded.silence()
        self.catalog.tracks.update(key, fingerprint=result.fingerprint, fingerprint_duration_s=result.duration_s,
                            cutoff_hz=decoded.cutoff_hz, leading_silence_s=lead, trailing_silence_s=trail,
                            lossy_origin=self._lossy_origin(key, decoded.cutoff_hz))
        return result

    def _lossy_origin(self, key: str, cutoff_hz: float | None) -> int | None:
        origin = bandlimit.lossy_origin(bool(self.track(key).raw_lossless), cutoff_hz)
        return None if origin is None else int(origin)

    def analyse(self, key: str, settings: analysis.Settings | None = None) -> analysis.Features:
        settings = settings or analysis.Settings(fingerprint=False)
        try:
            result = analysis.features_of(self.decoded(key), settings, bool(self.track(key).raw_lossless))
        finally:  # the decoded signal is only a hand-over between two steps: never leave it
            self.decoded_cache(key).unlink(missing_ok=True)
        self.catalog.tracks.update(
            key, bpm=result.bpm, bpm_confidence=result.bpm_confidence, key_name=result.key,
            key_short=result.key_short, camelot=result.camelot, open_key=result.open_key,
            key_confidence=result.key_confidence, lufs=result.lufs, loudness_range_lu=result.loudness_range_lu,
            true_peak_db=result.true_peak_db, replaygain_track_gain_db=result.replaygain_track_gain_db,
            replaygain_track_peak=result.replaygain_track_peak, cutoff_hz=result.cutoff_hz,
            lossy_origin=None if result.lossy_origin is None else int(result.lossy_origin),
            **grid_fields(result),
        )
        return result

    # -- step 3: outputs ----------------------------------------------------------------

    def target_names(self, row: Track, fmt: str) -> tuple[Path, Path]:
        """Where ``fmt`` of this track goes: its plain name, and the ``[key]``-suffixed one
        it takes when a different song (or a file the catalog does not know) has the plain one."""
        fields = {"artist": row.artist or UNKNOWN_ARTIST, "title": row.title or row.key,
                  "album": row.album, "key": row.key, "bpm": row.bpm, "camelot": row.camelot}
        return self.layout.path_for(fmt, fields), self.layout.path_for(fmt, fields, suffix=f"[{row.key}]")

    def target_path(self, row: Track, fmt: str, *, suffixed: bool = False) -> Path:
        """Where ``fmt`` of this track is to be written, reserved in the catalog so no other
        run picks the same name before the file is there."""
        plain, with_key = self.target_names(row, fmt)
        candidates = [with_key] if suffixed else [plain, with_key]
        # The suffixed name carries the key: whatever is there is this track's own leftover.
        return self.catalog.files.reserve_path(row.key, fmt, candidates, free=self._free) \
            or self.catalog.files.reserve_path(row.key, fmt, [with_key], free=lambda _: True) or with_key

    def step_aside(self, key: str, path: Path) -> Path | None:
        """Rename ``key``'s output at ``path`` to its ``[key]``-suffixed name, freeing the
        plain name for a file that comes back (undoing a dedup group)."""
        record = next((f for f in self.catalog.files.all([key]) if Path(f.path) == Path(path)), None)
        if record is None:
            return None
        target = self.target_path(self.track(key), record.format, suffixed=True)
        if target.exists():
            return None
        os.rename(path, target)
        self.catalog.files.move_file(Path(path), target)
        return target

    def _adopt(self, key: str, fmt: str, orphan: Path, written: Path) -> bool:
        """Move ``written`` onto ``orphan``, a file no track owns at this track's plain name,
        when it holds the same audio: this track's own output from an attempt killed
        between putting it in place and recording it. Never two copies of one track."""
        if not orphan.is_file() or self.catalog.files.path_owner(orphan) is not None:
            return False
        try:
            same = media.audio_md5(orphan) == media.audio_md5(written)
        except TrackError:  # not audio ffmpeg reads: not ours
            return False
        if not same or self.catalog.files.reserve_path(key, fmt, [orphan], free=lambda _: True) is None:
            return False
        move_to_trash(orphan, self.root)  # same audio, but its tags may be someone's edits: kept, reversibly
        os.replace(written, orphan)
        return True

    @staticmethod
    def _free(path: Path) -> bool:
        """Whether nothing is on disk at ``path``. Compared case-insensitively, as on exFAT
        and macOS volumes where "ABBA" and "Abba" are one file."""
        if not path.parent.is_dir():
            return True
        name = unicodedata.normalize("NFC", path.name).casefold()  # HFS+ lists names decomposed
        return not any(unicodedata.normalize("NFC", entry.name).casefold() == name
                       for entry in path.parent.iterdir())

    def tags_for(self, row: Track) -> tagging.Tags:
        cover = Path(row.cover_path).read_bytes() if row.cover_path and Path(row.cover_path).exists() else None
        key = {"classic": row.key_short, "canonical": row.key_name,
               "camelot": row.camelot, "open_key": row.open_key}[self.key_notation]
        return tagging.Tags(
            title=row.title or row.key, artist=row.artist or UNKNOWN_ARTIST,
            album=row.album, bpm=row.bpm, key=key, isrc=row.isrc,
            source_url=redact_url(row.webpage_url or row.source_url or "") or None, cover=cover,
            replaygain_gain_db=row.replaygain_track_gain_db, replaygain_peak=row.replaygain_track_peak,
        )

    @staticmethod
    def _dj_frames(path: Path, row: Track) -> None:
        """The beat grid and cues where DJ software reads them in the file: Serato's frames
        (ID3 GEOB in AIFF and WAV, freeform atoms in ALAC), which also stop Serato re-gridding."""
        grid, cues = beatgrid.from_catalog(row.grid, row.cues)
        if grid is not None and not grid.needs_look:  # a grid to be looked at is not locked in
            serato.write(path, grid, cues, atomic=False)

    def render(self, key: str, fmt: str) -> FileResult:
        """Transcode, tag and place one output format of a track; idempotent."""
        row, raw_path = self.raw(key)
        info = media.probe(raw_path)
        target = media.target_for(info)
        plain, with_key = self.target_names(row, fmt)
        for folder in {plain.parent, with_key.parent}:  # what a killed attempt of this track left
            clean_partials(folder, owner=key)
        path = self.target_path(row, fmt)
        with atomic_target(path, owner=key) as tmp, disk_errors(path):
            media.transcode(raw_path, tmp, fmt, info, target)
            tagging.write_tags(tmp, fmt, self.tags_for(row))
            self._dj_frames(tmp, row)
        if path != plain and self._adopt(key, fmt, plain, path):
            path = plain
        out = media.probe(path)
        result = FileResult(fmt=fmt, path=path, size=path.stat().st_size, sha256=file_sha256(path),
                            codec=out.codec, sample_rate=out.sample_rate, bits=out.bits, duration_s=out.duration_s)
        previous = self.catalog.files.get(key, fmt)
        if previous and Path(previous.path) != path and Path(previous.path).exists():
            result.replaced.append(move_to_trash(Path(previous.path), self.root))
        self.catalog.files.record_file(key, fmt, path, size=result.size, sha256=result.sha256,
                                 duration_s=result.duration_s, codec=result.codec,
                                 sample_rate=result.sample_rate, bits=result.bits)
        if fmt == "WAV" and self.wav_backup_dir is not None:
            result.backup = self._back_up(key, path)
        return result

    def _back_up(self, key: str, path: Path) -> Path:
        """Copy a WAV to the backup volume; a folder that cannot be made or written (an
        unmounted volume, a path through a file) is said as that, naming the setting."""
        assert self.wav_backup_dir is not None
        try:
            return copy_atomic(path, self.wav_backup_dir / path.relative_to(self.root), owner=key)
        except DiskFull:
            raise
        except (OSError, TrackError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else getattr(err, "message", str(err))
            raise TrackError(f"The WAV backup folder {self.wav_backup_dir} (WAV_BACKUP_DIR) cannot be written: "
                             f"{why.rstrip('.')}.", hint="Mount the backup volume or create the folder, or unset "
                             "WAV_BACKUP_DIR; the WAV itself is in the library.") from err

    def after_merge(self, key: str) -> None:
        """Bring a finished keeper's files in line with its row after a dedup merge or undo:
        new tags (an ISRC or a cover filled in from a duplicate) and, once the old copy has
        moved away, the plain file name instead of a ``[key]``-suffixed one."""
        row = self.track(key)
        if row.status != Status.DONE:
            return
        tags = self.tags_for(row)
        for record in self.catalog.files.all([key]):
            path, fmt = Path(record.path), record.format
            if not path.exists():
                continue
            target = self.target_path(row, fmt)
            if target != path and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(path, target)
                path = target
            with atomic_target(path, owner=key) as tmp, disk_errors(path):
                shutil.copyfile(path, tmp)
                tagging.write_tags(tmp, fmt, tags)  # keeps Serato's frames: cues a DJ set there stay
                if not serato.present(tmp):
                    self._dj_frames(tmp, row)
            self.catalog.files.record_file(key, fmt, path, size=path.stat().st_size, sha256=file_sha256(path),
                                     duration_s=record.duration_s, codec=record.codec,
                                     sample_rate=record.sample_rate, bits=record.bits)

    def playlists(self, rows: dict[str, Track] | None = None, records: list | None = None) -> list[playlists.Playlist]:
        """The catalog's playlists with their finished tracks' files, in playlist order (a
        duplicate counts as its keeper); ``rows`` and ``records``: the tracks and files, when
        the caller has read them already."""
        files: dict[str, dict[str, Path]] = {}
        for record in self.catalog.files.all() if records is None else records:  # each table read once
            files.setdefault(record.track_key, {})[record.format] = Path(record.path)
        rows = {row.key: row for row in self.catalog.tracks.all()} if rows is None else rows
        members_of = self.catalog.playlists.members()

        def keeper(key: str) -> Track | None:  # a duplicate counts as its keeper (chains followed)
            seen = {key}
            while (row := rows.get(key)) is not None and row.duplicate_of and row.duplicate_of not in seen:
                key = row.duplicate_of
                seen.add(key)
            return rows.get(key)

        result = []
        for record in self.catalog.playlists.all():
            members = []
            for key in members_of.get(record.id, []):
                row = keeper(key)
                if row is None or row.status != Status.DONE:
                    continue
                members.append(playlists.PlaylistTrack(
                    key=row.key, artist=row.artist or UNKNOWN_ARTIST, title=row.title or row.key,
                    duration_s=row.duration_s, files=files.get(row.key, {})))
            result.append(playlists.Playlist(id=record.id, name=record.name, tracks=tuple(members)))
        return result

    def missing_parts(self, key: str) -> list[str]:
        """What a track still lacks before it can be called done."""
        row = self.track(key)
        problems = [f"no {fmt} file" for fmt in FORMATS
                    if not (record := self.catalog.files.get(key, fmt)) or not Path(record.path).exists()]
        if row.bpm_confidence is None:  # set by every analysis, even of silence
            problems.append("no audio features")
        if not row.fingerprint:
            problems.append("no fingerprint")
        return problems

    def verify(self, key: str, fmt: str) -> list[str]:
        """What is wrong with a track's output (empty when it is sound): the asset check."""
        row = self.track(key)
        record = self.catalog.files.get(key, fmt)
        if record is None:
            return [f"no {fmt} file is recorded for {key}"]
        path = Path(record.path)
        if not path.exists():
            return [f"{path} is missing"]
        problems: list[str] = []
        try:
            played = media.decoded_duration(path)
        except TrackError as err:
            return [f"{path.name} does not decode: {err}"]
        expected = row.duration_s
        if expected and abs(played - expected) > DURATION_TOLERANCE_S:
            problems.append(f"duration {played:.3f} s differs from the source's {expected:.3f} s")
        found = tagging.read_tags(path, fmt)
        wanted = self.tags_for(row)
        for name in ("title", "artist", "bpm", "key", "source_url"):
            value = getattr(wanted, name)
            if value and not found.get(name):
                problems.append(f"tag {name} is missing")
        if wanted.replaygain_gain_db is not None and not found.get("replaygain_track_gain"):
            problems.append("ReplayGain tags are missing")
        if wanted.cover and not found.get("cover_bytes"):
            problems.append("cover art is missing")
        if fmt == "WAV" and media.wav_format_tag(path) != 1:
            problems.append("WAV header is not plain WAVE_FORMAT_PCM")
        if record.sha256 != file_sha256(path):
            problems.append("file changed since it was written (checksum differs)")
        return problems


class _NoCover(Exception):
    """Raised inside atomic_target to discard an empty cover file."""


def name_key(artist: str | None, title: str | None) -> str | None:
    """The normalised artist + title + version key duplicates are looked up by."""
    name = normalize.parse(artist, title)
    return name.key if name.key and name.artists else None


def display_name(row: Track) -> str:
    """"Artist - Title" for messages; the title alone when no artist is known (a file named
    without one), never "None - Title"."""
    title = row.title or row.key or "?"
    return f"{row.artist} - {title}" if row.artist else title


def merge_metadata(extracted: dict, embedded: dict, name: str, generic: bool) -> dict:
    """Combine site metadata, embedded tags and the file name into the catalog's fields.

    For a site with a real extractor its metadata wins. For a local file or a plain link
    (whose "title" is only the file name) the file's own tags do, then the name read as
    "Artist - Title".
    """
    merged = dict(extracted)
    if merged.get("isrc"):
        merged["isrc"] = normalise_isrc(merged["isrc"])
    if not generic:
        for field_name in ("title", "artist", "album", "isrc"):
            merged[field_name] = extracted.get(field_name) or embedded.get(field_name)
        return {k: v for k, v in merged.items() if v is not None}
    from_name: dict[str, str] = {"title": name.strip()}
    if " - " in name:
        artist, title = name.split(" - ", 1)
        from_name = {"artist": artist.strip(), "title": title.strip()}
    for field_name in ("title", "artist", "album", "isrc"):
        merged[field_name] = embedded.get(field_name) or from_name.get(field_name)
    merged.setdefault("artist", None)
    if not merged.get("artist") and extracted.get("artist"):
        merged["artist"] = extracted["artist"]
    return {k: v for k, v in merged.items() if v is not None}


#: Free space a library needs for one more track: a five-minute 24-bit track is about 90 MB as
#: WAV, as much as AIFF, two thirds of that as ALAC, besides its original.
ROOM_FOR_A_TRACK = 200 * 1024 * 1024


def free_bytes(path: Path) -> int:
    path = Path(path)
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def is_writable(path: Path) -> bool:
    """Whether ``path`` (or the folder it would be created in) can be written."""
    path = Path(path)
    while not path.exists():
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK)


def register_target(library: Library, target: str, resolve: Resolver | None = None) -> tuple[TrackSource, Track]:
    """Register a URL or file (``add``, ``run``, ``sync``, the inbox, a run carrying its
    target) in the catalog; returns its source and the catalogued track's row: the track the
    library already has it as (:meth:`Library.known_as`: its ``key`` then differs from the
    source's), or the one registered now.

    Registering is cheap and offline for everything but SoundCloud permalinks; it is what
    makes a track appear as a partition before any download starts.
    """
    source = source_for(target, resolve)
    owner = library.known_as(source)
    if owner is not None:
        return source, library.track(owner)
    library.register(source, original=target if looks_like_url(target) else None)
    return source, library.track(source.key)


def grid_fields(result: analysis.Features) -> dict[str, object]:
    """The catalog's grid columns from an analysis (all None without a grid)."""
    grid = result.grid
    return {
        "grid": grid.as_dict() if grid else None,
        "cues": [c.as_row() for c in result.cues],
        "first_beat_s": grid.first_beat_s if grid else None,
        "downbeat_s": round(grid.downbeat_s, 3) if grid else None,
        "beats_per_bar": grid.beats_per_bar if grid else None,
        "grid_confidence": grid.confidence if grid else None,
        "grid_needs_look": int(grid.needs_look) if grid else None,
    }
