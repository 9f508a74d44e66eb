"""The catalog's current schema, as SQLAlchemy tables: a new catalog (SQLite or PostgreSQL)
is created from these in one step. An older SQLite catalog gets here through the numbered
migrations in ``migrations.py`` instead; a test holds the two to the same tables, columns and
indexes.

Types are chosen for both databases: sizes, terms and track numbers are 64-bit (a
Chromaprint term is an unsigned 32-bit value and a WAV may pass 2 GiB), decimals are double
precision, booleans are 0/1 integers, JSON is text, timestamps are ISO text (they sort).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

Text, Float, BigInt = sa.Text, sa.Float(precision=53), sa.BigInteger


def _columns(*names: str, type_=Text) -> list[sa.Column]:
    return [sa.Column(name, type_) for name in names]


tracks = sa.Table(
    "tracks", metadata,
    sa.Column("key", Text, primary_key=True),
    sa.Column("status", Text, nullable=False, server_default="queued"),
    sa.Column("source_kind", Text, nullable=False),
    *_columns("source_url", "source_path"),
    sa.Column("source_urls", Text, nullable=False, server_default="[]"),
    *_columns("title", "artist", "album", "isrc", "webpage_url", "thumbnail_url", "extractor"),
    sa.Column("source_duration_s", Float),
    *_columns("raw_path", "raw_codec"),
    *_columns("raw_sample_rate", "raw_bits", "raw_channels", "raw_lossless", type_=BigInt),
    *_columns("raw_sha256", "cover_path"),
    *_columns("duration_s", "bpm", type_=Float),
    *_columns("key_name", "key_short", "camelot", "open_key"),
    *_columns("key_confidence", "lufs", "loudness_range_lu", "true_peak_db", type_=Float),
    sa.Column("fingerprint", Text),
    sa.Column("fingerprint_duration_s", Float),
    *_columns("error", "error_step", "error_reason"),
    sa.Column("created_at", Text, nullable=False),
    sa.Column("updated_at", Text, nullable=False),
    sa.Column("processed_at", Text),
    # 2
    *_columns("bpm_confidence", "replaygain_track_gain_db", "replaygain_track_peak", type_=Float),
    # 3
    sa.Column("raw_bitrate_kbps", Float),
    *_columns("duplicate_of", "dedup_group"),
    sa.Column("fingerprint_indexed", BigInt, nullable=False, server_default="0"),
    sa.Column("name_key", Text),
    # 4
    *_columns("artists", "release_date"),
    sa.Column("track_number", BigInt),
    *_columns("artwork_url", "spotify_url", "genres", "match_url"),
    sa.Column("match_score", Float),
    sa.Column("match", Text),
    sa.Column("match_pinned", BigInt, nullable=False, server_default="0"),
    sa.Column("discovered_from", Text),
    # 7
    sa.Column("cutoff_hz", Float),
    sa.Column("lossy_origin", BigInt),
    *_columns("leading_silence_s", "trailing_silence_s", type_=Float),
    # 9
    sa.Column("seq", BigInt),
    # 10
    *_columns("grid", "cues"),
    *_columns("first_beat_s", "downbeat_s", type_=Float),
    sa.Column("beats_per_bar", BigInt),
    sa.Column("grid_confidence", Float),
    sa.Column("grid_needs_look", BigInt),
    sa.Index("tracks_status", "status"),
    sa.Index("tracks_name_key", "name_key"),
    sa.Index("tracks_isrc", "isrc"),
    sa.Index("tracks_seq", "seq"),
)

files = sa.Table(
    "files", metadata,
    sa.Column("track_key", Text, sa.ForeignKey("tracks.key"), primary_key=True),
    sa.Column("format", Text, primary_key=True),
    sa.Column("path", Text, nullable=False, unique=True),
    sa.Column("size", BigInt, nullable=False),
    sa.Column("sha256", Text, nullable=False),
    sa.Column("duration_s", Float),
    sa.Column("codec", Text),
    *_columns("sample_rate", "bits", type_=BigInt),
    sa.Column("updated_at", Text, nullable=False),
)
sa.Index("files_path_lower", sa.func.lower(files.c.path))

track_urls = sa.Table(
    "track_urls", metadata,
    sa.Column("url", Text, primary_key=True),
    sa.Column("track_key", Text, sa.ForeignKey("tracks.key"), primary_key=True),
)

fingerprint_terms = sa.Table(
    "fingerprint_terms", metadata,
    sa.Column("term", BigInt, primary_key=True, autoincrement=False),
    sa.Column("track_key", Text, sa.ForeignKey("tracks.key"), primary_key=True),
    sa.Index("fingerprint_terms_track", "track_key"),
)

dedup_groups = sa.Table(
    "dedup_groups", metadata,
    sa.Column("id", Text, primary_key=True),
    *[sa.Column(name, Text, nullable=False) for name in ("keeper", "members", "state", "rule", "reason",
                                                         "evidence")],
    sa.Column("previous", Text, nullable=False, server_default="{}"),
    sa.Column("moves", Text, nullable=False, server_default="[]"),
    sa.Column("created_at", Text, nullable=False),
    sa.Column("updated_at", Text, nullable=False),
)

playlists = sa.Table(
    "playlists", metadata,
    sa.Column("id", Text, primary_key=True),
    sa.Column("source", Text, nullable=False),
    sa.Column("name", Text, nullable=False),
    *_columns("url", "snapshot", "removed_at"),
    sa.Column("updated_at", Text, nullable=False),
)

playlist_tracks = sa.Table(
    "playlist_tracks", metadata,
    sa.Column("playlist_id", Text, sa.ForeignKey("playlists.id"), primary_key=True),
    sa.Column("track_key", Text, sa.ForeignKey("tracks.key"), primary_key=True),
    sa.Column("position", BigInt, nullable=False),
    sa.Column("added_at", Text),
    sa.Index("playlist_tracks_track", "track_key"),
)

path_reservations = sa.Table(
    "path_reservations", metadata,
    sa.Column("fold", Text, nullable=False, unique=True),  # the path relative to the library, NFC, case-folded
    sa.Column("track_key", Text, sa.ForeignKey("tracks.key"), primary_key=True),
    sa.Column("format", Text, primary_key=True),
    sa.Column("created_at", Text, nullable=False),
)

mirrors = sa.Table(
    "mirrors", metadata,
    sa.Column("track_key", Text, sa.ForeignKey("tracks.key"), primary_key=True),
    sa.Column("sink", Text, primary_key=True),
    sa.Column("remote_id", Text, nullable=False),
    sa.Column("written", Text, nullable=False, server_default="{}"),
    sa.Column("status", Text),
    sa.Column("synced_at", Text, nullable=False),
    sa.Index("mirrors_remote", "sink", "remote_id"),
)

mirror_merges = sa.Table(
    "mirror_merges", metadata,
    sa.Column("sink", Text, primary_key=True),
    sa.Column("remote_id", Text, primary_key=True),
    sa.Column("track_key", Text, nullable=False),
    sa.Column("keeper_remote_id", Text, nullable=False),
    sa.Column("added", Text, nullable=False, server_default="{}"),
    sa.Column("merged_at", Text, nullable=False),
)
