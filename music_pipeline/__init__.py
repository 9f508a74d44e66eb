"""music_pipeline: a Dagster code location that keeps a music library in sync with what its owner likes."""

__version__ = "0.1.0"
