"""Spotify Web API access (models, auth and the client, apart): the DJ's likes, playlists and what is playing now.

A thin layer over spotipy that turns its dicts into frozen dataclasses and its failures into
``TrackError``s a user can act on. Why it is more than ``spotipy.Spotify(...)``:

* Dagster sensors and runs must never block on a prompt. spotipy falls back to an interactive
  login (``input()``) when the token cache is missing or lacks a scope; here that raises
  ``NotLoggedIn`` instead, and the one interactive step is ``login()``, run once from the CLI.
* ``login()`` works headless: it prints the URL (open it on any device) and waits on the
  redirect URI's loopback port for the answer, checking ``state`` against forged redirects.
* The token cache is shared by several processes: it is written atomically (temp file +
  rename) with mode 0600 from the start, so a reader never sees half a file and no other
  user can ever read the refresh token.
* spotipy's own retry loop sleeps up to minutes on 429 inside a sensor tick; it is off. A 429
  becomes ``RateLimited(retry_after)`` and the caller decides (a sensor skips the tick).
* A 401 although the token looked valid (revoked or clock skew) gets one forced refresh and
  one retry before giving up with ``NotLoggedIn``.
* Secrets (client secret, tokens, auth codes) are redacted from spotipy's debug logs and never
  put into messages or reprs.

API facts as of 2025/2026 this relies on: audio features are gone, ``genres`` and
``popularity`` are often absent, playlist items live at ``/playlists/{id}/items`` with the
track under ``item`` (formerly ``track``), and most paged endpoints allow at most 50 per page.
"""
