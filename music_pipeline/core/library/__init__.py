"""The library on disk: the catalog, the store (atomic writes, trash), the per-track steps, exports, playlists and duplicates."""
