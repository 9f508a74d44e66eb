"""Where tracks come from, as assets upstream of ``raw_audio``: the lineage starts at the
source. They are external (Dagster does not materialise them): each source's sensor
reports an observation on every tick (tracks seen, new, the cursor, errors)."""

from dagster import AssetKey, AssetObservation, AssetSpec, MetadataValue

GROUP = "sources"


def _spec(name: str, description: str, kinds: set[str]) -> AssetSpec:
    return AssetSpec(key=AssetKey(["sources", name]), group_name=GROUP, description=description, kinds=kinds)


SOURCES = {
    "inbox": _spec("inbox", "Audio files and .txt URL lists dropped into <library>/inbox (inbox_sensor).",
                   {"folder"}),
    "spotify_likes": _spec("spotify_likes", "The Spotify account's liked tracks (spotify_liked sensor).",
                           {"spotify"}),
    "spotify_playlists": _spec("spotify_playlists", "The Spotify account's playlists (spotify_playlists sensor).",
                               {"spotify"}),
    "spotify_now_playing": _spec("spotify_now_playing", "The track playing on Spotify (spotify_now_playing "
                                                        "sensor, stopped by default).", {"spotify"}),
    "soundcloud_likes": _spec("soundcloud_likes", "The SoundCloud user's likes (soundcloud_likes sensor).",
                              {"soundcloud"}),
    "soundcloud_sets": _spec("soundcloud_sets", "The SoundCloud user's sets (soundcloud_playlists sensor).",
                             {"soundcloud"}),
    "notion_queue": _spec("notion_queue", "Pages queued in the Notion tracks database: a source URL and no status "
                                          "yet (notion_queue sensor).", {"notion"}),
}
SOURCE_ASSETS = list(SOURCES.values())


def observation(source: str, *, seen: int, new: int, cursor: str | None = None, errors: list[str] | None = None,
                notes: list[str] | None = None) -> AssetObservation:
    """What a sensor tick saw of its source, for the source asset's page."""
    metadata: dict = {"tracks_seen": seen, "new_tracks": new, "errors": len(errors or [])}
    if cursor:
        metadata["cursor"] = MetadataValue.text(cursor[:2000])
    if errors:
        metadata["error_messages"] = MetadataValue.md("\n".join(f"- {e}" for e in errors[:50]))
    if notes:
        metadata["notes"] = MetadataValue.md("\n".join(f"- {n}" for n in notes[:50]))
    return AssetObservation(asset_key=SOURCES[source].key, metadata=metadata)
