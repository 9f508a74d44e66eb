"""Discovery: what the sources list (Spotify likes and playlists, SoundCloud likes and sets,
YouTube playlists) becomes in the catalog, and where a Spotify track's audio comes from.

Plain Python shared by the sensors, the nightly sync and `music-pipeline sync`:

* ``Found`` is one listed track with the metadata the source gave; ``register`` puts a
  batch in the catalog before anything is downloaded. A source whose canonical URL or ISRC
  is already catalogued is skipped (it costs nothing), but its playlist membership is
  still recorded on the track the library has.
* ``download_url`` decides what to download for a Spotify track (its audio is DRM-protected):
  a pinned URL, an earlier match, or a new search scored by ``matching``. Below the
  threshold the track is marked ``needs_review`` with its candidates instead of
  downloading a wrong version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain.errors import Reason, TrackError
from ..domain.identity import canonical_url, normalise_isrc, source_for
from ..library.rows import Track
from ..library.steps import Library, display_name, name_key
from . import matching
from .listings import Entry, Listing
from .spotify.models import SpotifyPlaylist, SpotifyTrack

if TYPE_CHECKING:
    from .spotify.client import SpotifyClient

LIKED_SPOTIFY = ("spotify-liked", "Liked Songs (Spotify)")


class NeedsReview(TrackError):
    """No candidate is a confident match: a human picks one (`music-pipeline pin`)."""

    reason = Reason.NEEDS_REVIEW


@dataclass(frozen=True)
class Found:
    url: str  # canonical source URL (what the track key derives from)
    metadata: dict = field(default_factory=dict)  # catalog columns the source knows
    added_at: str | None = None
    unavailable: str | None = None  # "drm: ..." when the source already says it cannot be fetched

    @property
    def isrc(self) -> str | None:
        return self.metadata.get("isrc")


@dataclass
class Registration:
    keys: list[str] = field(default_factory=list)  # every listed track's key, in order (for playlists)
    new: list[str] = field(default_factory=list)  # registered now, to be processed
    skipped: list[str] = field(default_factory=list)  # "url: reason" lines for the log
    deferred: int = 0  # new tracks left for the next time (over the limit)


def from_spotify(track: SpotifyTrack) -> Found:
    return Found(url=track.url, added_at=track.added_at, metadata=spotify_metadata(track))


def spotify_metadata(track: SpotifyTrack) -> dict:
    return {
        "title": track.name, "artist": ", ".join(track.artists), "artists": list(track.artists),
        "album": track.album, "isrc": normalise_isrc(track.isrc) if track.isrc else None,
        "source_duration_s": track.duration_s, "release_date": track.release_date,
        "track_number": track.track_number, "artwork_url": track.artwork_url, "thumbnail_url": track.artwork_url,
        "spotify_url": track.url, "genres": list(track.genres) if track.genres else None,
    }


def from_entry(entry: Entry) -> Found:
    return Found(url=entry.url, unavailable=entry.unavailable,
                 metadata={"title": entry.title, "artist": entry.artist, "source_duration_s": entry.duration_s})


def register(library: Library, found: Iterable[Found], origin: str, limit: int | None = None,
             resolve: Callable[[str], tuple[str, str]] | None = None) -> Registration:
    """Put listed tracks in the catalog; at most ``limit`` new ones (the rest next time)."""
    catalog = library.catalog
    result = Registration()
    for item in found:
        try:
            source = source_for(item.url, resolve)
        except TrackError as err:
            result.skipped.append(f"{item.url}: {err}")
            continue
        existing = catalog.tracks.get(source.key)
        if existing is None:
            owner = library.known_as(source, isrc=item.isrc)
            if owner is not None:  # the library has this recording already, from another source
                result.keys.append(owner)
                result.skipped.append(f"{item.url}: already in the library as {owner}")
                continue
            if limit is not None and len(result.new) >= limit:
                result.deferred += 1
                continue
            library.register(source)
            result.new.append(source.key)
        result.keys.append(source.key)
        fields = {k: v for k, v in item.metadata.items() if v is not None}
        row = existing or library.track(source.key)
        fields = {k: v for k, v in fields.items() if not getattr(row, k, None) or source.key.startswith("spotify-")}
        if fields.get("title") or fields.get("artist"):
            fields["name_key"] = name_key(fields.get("artist") or row.artist,
                                          fields.get("title") or row.title)
        fields["discovered_from"] = row.discovered_from or origin
        catalog.tracks.update(source.key, **fields)
        if item.unavailable:  # failed only while no run has touched it; then it is no new work
            message = f"{item.url} cannot be downloaded ({item.unavailable})."
            reason = Reason.of(item.unavailable.split(":", 1)[0])
            if catalog.tracks.mark_unavailable(source.key, "discovery", message, reason) and source.key in result.new:
                result.new.remove(source.key)
    return result


def register_playlist(library: Library, playlist_id: str, source: str, name: str, url: str | None,
                      snapshot: str | None, registration: Registration, complete: bool,
                      added_at: dict[str, str] | None = None, start: int = 0,
                      prepend: bool = False) -> tuple[list[str], list[str]]:
    """Record a playlist and its members; only a complete listing removes members that left."""
    library.catalog.playlists.save(playlist_id, source, name, url, snapshot)
    return library.catalog.playlists.set_tracks(playlist_id, registration.keys, added_at, partial=not complete,
                                               start=start, prepend=prepend)


def spotify_playlist_id(playlist: SpotifyPlaylist) -> str:
    return f"spotify-playlist-{playlist.id}"


def expand_collection(library: Library, url: str, options=None) -> Registration:
    """A playlist URL (YouTube playlist, SoundCloud set or likes) given by hand or in the
    inbox: its tracks are registered and it becomes one of the library's playlists."""
    from .listings import list_collection

    listing = list_collection(url, options)
    registration = register(library, listing_found(listing), f"url:{listing.title}")
    register_playlist(library, listing.key, listing.key.split("-", 1)[0], listing.title, listing.url, None,
                      registration, complete=True)
    return registration


def listing_found(listing: Listing) -> list[Found]:
    return [from_entry(e) for e in listing.entries]


# -- what to download for a Spotify track ------------------------------------------------------


def wanted(row: Track) -> matching.Wanted:
    artists = tuple(row.artists) if isinstance(row.artists, list) else \
        tuple(a.strip() for a in (row.artist or "").split(",") if a.strip())
    return matching.Wanted(title=row.title or "", artists=artists,
                           duration_s=float(row.source_duration_s or 0.0), isrc=row.isrc,
                           album=row.album)


def download_url(library: Library, key: str, client: Callable[[], SpotifyClient] | None,
                 search: Callable[[str], list[matching.Candidate]] = matching.search) -> str:
    """The URL to download for a Spotify track: pinned, matched before, or matched now."""
    catalog = library.catalog
    row = library.track(key)
    if row.match_url:
        return row.match_url
    if not row.title:  # added by URL: ask Spotify what it is
        if client is None:
            raise TrackError(f"{key} is a Spotify track: its audio is DRM-protected and has to be matched to "
                             "another source, which needs its title and artist from Spotify.",
                             hint="Log in with `music-pipeline spotify-login` (SPOTIFY_CLIENT_ID/SECRET set), or "
                                  f"give a source by hand: `music-pipeline pin {key} URL`.")
        track = client().track(key.removeprefix("spotify-"))
        meta = {k: v for k, v in spotify_metadata(track).items() if v is not None}
        catalog.tracks.update(key, name_key=name_key(meta.get("artist"), meta.get("title")), **meta)
        row = library.track(key)
    result = matching.match(wanted(row), search)
    best = result.best
    catalog.tracks.update(key, match=result.as_dict(), match_score=best.score if best else None,
                   match_url=None if result.needs_review or best is None else best.candidate.url)
    if result.needs_review or best is None:
        options = "; ".join(f"{s.candidate.title} ({s.score:.2f}) {s.candidate.url}"
                            for s in ([best] if best else []) + list(result.runners_up)[:3])
        raise NeedsReview(f"No confident match for {display_name(row)}: "
                          f"{result.review_reason or 'nothing found'}. Candidates: {options or 'none'}.",
                          hint=f"Pick one: `music-pipeline pin {key} URL`.")
    return best.candidate.url


def pin_source(library: Library, key: str, url: str) -> str:
    """The URL ``pin`` would record for ``key`` (canonical), or the reason it cannot: asked
    before the run that pins it, so a bad URL is one sentence and nothing runs."""
    from ..domain.identity import is_collection, spotify_id

    library.track(key)  # an unknown track says so
    if spotify_id(url):
        raise TrackError(f"{url} is a Spotify link: its audio is DRM-protected, so it cannot be the source.",
                         hint="Pin a YouTube, SoundCloud or direct link to the same recording.")
    if is_collection(url):
        raise TrackError(f"{url} is a playlist, not one track.", hint="Pin the link of the one upload you want.")
    return canonical_url(url)


def pin(library: Library, key: str, url: str) -> Track:
    """Fix a track's source by hand (a Spotify match, or any track's download URL). The
    track goes back to the queue; one already downloaded is downloaded again from there."""
    chosen = pin_source(library, key, url)
    row = library.track(key)
    match = row.match if isinstance(row.match, dict) else {}
    match = {**match, "pinned": chosen, "needs_review": False}
    library.catalog.tracks.update(key, match_url=chosen, match_pinned=1, match_score=None, match=match)
    library.catalog.tracks.requeue(key)
    return library.track(key)


# -- discovery passes (one sensor tick, or the nightly sync with no limit) ------------------------


@dataclass
class Pass:
    """What one discovery pass found, and the cursor to keep for the next one."""

    new: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    seen: int = 0  # tracks listed by the source in this pass


def spotify_likes(library: Library, client: SpotifyClient, cursor: dict, max_items: int | None) -> Pass:
    """Liked tracks, newest first. The first sync pages through the whole list
    ``max_items`` at a time (the cursor keeps the offset); afterwards each pass reads only
    what was liked since the newest like seen. ``max_items=None`` lists everything and also
    drops unliked tracks from the "Liked" playlist."""
    result = Pass(cursor=dict(cursor))
    found: list[SpotifyTrack] = []
    full = max_items is None
    incremental = not full and bool(cursor.get("complete"))
    first_offset = 0 if full or incremental else int(cursor.get("offset", 0))
    if not incremental:
        offset = first_offset
        while max_items is None or len(found) < max_items:
            page = client.liked(offset)
            if offset == 0 and page.items and page.items[0].added_at:
                result.cursor["newest"] = max(result.cursor.get("newest") or "", page.items[0].added_at)
            found += page.items
            if page.next_offset is None:
                result.cursor.update(complete=True, offset=0)
                break
            offset = page.next_offset
            result.cursor["offset"] = offset
    else:
        newest, offset = cursor.get("newest") or "", 0
        while True:
            page = client.liked(offset)
            fresh = [t for t in page.items if (t.added_at or "") > newest]
            found += fresh
            # No cap here: stopping early would move "newest" past likes never read.
            if len(fresh) < len(page.items) or page.next_offset is None:
                break
            offset = page.next_offset
        if found and found[0].added_at:
            result.cursor["newest"] = max(newest, found[0].added_at)
    registration = register(library, [from_spotify(t) for t in found], "spotify:liked")
    playlist_id, name = LIKED_SPOTIFY
    register_playlist(library, playlist_id, "spotify", name, "https://open.spotify.com/collection/tracks", None,
                      registration, complete=full, added_at={t.key: t.added_at for t in found if t.added_at},
                      start=first_offset, prepend=incremental)
    result.new, result.notes, result.seen = registration.new, registration.skipped, len(registration.keys)
    return result


def spotify_playlists(library: Library, client: SpotifyClient, cursor: dict, max_new: int | None,
                      budget_s: float | None = None) -> Pass:
    """The user's playlists: each one whose snapshot changed is listed in full; its new
    tracks are registered (at most ``max_new`` per pass, the rest next time) and its
    membership replaced, so a track that left the playlist leaves its folder and M3U8."""
    result = Pass(cursor={"snapshots": dict(cursor.get("snapshots") or {})})
    snapshots = result.cursor["snapshots"]
    current = client.playlists()
    started = time.monotonic()
    for playlist in current:
        if snapshots.get(playlist.id) == playlist.snapshot_id and playlist.snapshot_id:
            continue
        if budget_s is not None and time.monotonic() - started > budget_s:
            result.notes.append(f"time is up for this pass; {playlist.name} and the rest next time")
            break
        found: list[SpotifyTrack] = []
        offset: int | None = 0
        try:
            while offset is not None:
                page = client.playlist_items(playlist.id, offset)
                found += page.items
                offset = page.next_offset
        except TrackError as err:  # a 429 or an outage mid-way: keep what this pass already registered
            if not result.new and not result.notes:
                raise
            result.notes.append(f"{playlist.name}: {err}; the rest next time")
            break
        budget = None if max_new is None else max(0, max_new - len(result.new))
        registration = register(library, [from_spotify(t) for t in found], f"spotify:playlist:{playlist.name}",
                                limit=budget)
        complete = registration.deferred == 0
        register_playlist(library, spotify_playlist_id(playlist), "spotify", playlist.name, playlist.url,
                          playlist.snapshot_id, registration, complete=complete,
                          added_at={t.key: t.added_at for t in found if t.added_at})
        result.new += registration.new
        result.notes += registration.skipped
        result.seen += len(registration.keys)
        if complete:
            snapshots[playlist.id] = playlist.snapshot_id
        else:
            result.notes.append(f"{playlist.name}: {registration.deferred} more track(s) next time")
            break
    for gone in set(snapshots) - {p.id for p in current}:  # deleted or unfollowed upstream
        library.catalog.playlists.remove(f"spotify-playlist-{gone}")
        del snapshots[gone]
        result.notes.append(f"playlist {gone} is gone from the account; its folder and M3U8 go too")
    return result


def spotify_now_playing(library: Library, client: SpotifyClient) -> Pass:
    track = client.now_playing()
    if track is None:
        return Pass(notes=["nothing playing"])
    registration = register(library, [from_spotify(track)], "spotify:now-playing")
    return Pass(new=registration.new, notes=registration.skipped, seen=len(registration.keys))


def collection_pass(library: Library, listings: Iterable[Listing], origin: str, max_new: int | None,
                    cursor: dict | None = None, prune: bool = False, complete: bool = True) -> Pass:
    """SoundCloud likes or sets, YouTube playlists: register new tracks and memberships.
    With ``prune`` (``listings`` is every set of the account), a set listed before and
    missing now was deleted upstream: its playlist goes (its tracks' files stay)."""
    before = set((cursor or {}).get("listed", []))
    result = Pass(cursor={"listed": sorted(before)})
    seen = []
    for listing in listings:
        seen.append(listing.key)
        budget = None if max_new is None else max(0, max_new - len(result.new))
        registration = register(library, listing_found(listing), f"{origin}:{listing.title}", limit=budget)
        register_playlist(library, listing.key, origin.split(":")[0], listing.title, listing.url, None,
                          registration, complete=complete and registration.deferred == 0)
        result.new += registration.new
        result.notes += registration.skipped
        result.seen += len(registration.keys)
        if registration.deferred:
            result.notes.append(f"{listing.title}: {registration.deferred} more track(s) next time")
    if prune and (seen or not before):  # an empty answer after a full one is a glitch, not a purge
        for gone in before - set(seen):
            library.catalog.playlists.remove(gone)
            result.notes.append(f"{gone} is gone upstream; its folder and M3U8 go too")
        result.cursor["listed"] = sorted(seen)
    else:
        result.cursor["listed"] = sorted(before | set(seen))
    return result


def soundcloud_likes(library: Library, user: str, options, cursor: dict, max_new: int | None) -> Pass:
    """A SoundCloud user's likes. Until every like is in, the whole list is read (``max_new``
    new ones registered per pass); afterwards the newest ``max_new`` are enough to see what
    is new (likes are newest first). ``max_new=None`` reads and registers everything."""
    from .listings import list_collection, soundcloud_likes_url

    first = max_new if cursor.get("complete") and max_new else None
    listing = list_collection(soundcloud_likes_url(user), options, first=first)
    result = collection_pass(library, [listing], "soundcloud:likes", max_new, cursor, complete=first is None)
    result.cursor["complete"] = bool(cursor.get("complete")) or not any(
        "more track(s) next time" in note for note in result.notes)
    return result


def soundcloud_sets(library: Library, user: str, options, cursor: dict, max_new: int | None,
                    prune: bool = True) -> Pass:
    """A SoundCloud user's sets, each a playlist; a set gone upstream goes here too."""
    from .listings import list_soundcloud_sets

    return collection_pass(library, list_soundcloud_sets(user, options), "soundcloud:sets", max_new, cursor,
                           prune=prune)


def sync_everything(library: Library, spotify: Callable[[], SpotifyClient] | None, soundcloud_user: str | None,
                    options, log: Callable[[str], None]) -> list[str]:
    """Every configured source in full (no per-tick limit), one source down not stopping
    the others; returns the new keys. What the nightly sync does before processing."""
    passes: list[tuple[str, Callable[[], Pass]]] = []
    if spotify is not None:
        passes += [("Spotify likes", lambda: spotify_likes(library, spotify(), {}, None)),
                   ("Spotify playlists", lambda: spotify_playlists(library, spotify(), {}, None))]
    if soundcloud_user:
        passes += [("SoundCloud likes", lambda: soundcloud_likes(library, soundcloud_user, options, {}, None)),
                   ("SoundCloud sets", lambda: soundcloud_sets(library, soundcloud_user, options, {}, None,
                                                               prune=False))]
    new: list[str] = []
    for name, work in passes:
        try:
            result = work()
        except TrackError as err:
            log(f"{name}: {err}")
            continue
        new += result.new
        log(f"{name}: {len(result.new)} new track(s)")
    return list(dict.fromkeys(new))
