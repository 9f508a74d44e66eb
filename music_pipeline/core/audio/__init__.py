"""Audio in and out: one decode, features (loudness, tempo, key), fingerprints, ffmpeg, tags."""
