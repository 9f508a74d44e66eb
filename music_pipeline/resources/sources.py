"""Spotify and SoundCloud accounts as Dagster resources: configuration only, from the
environment (SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET, SPOTIFY_REDIRECT_URI,
SPOTIFY_TOKEN_CACHE, SOUNDCLOUD_USER). Unconfigured is a normal state: the sensors then
skip with a reason instead of failing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field

from ..core.domain.errors import TrackError
from ..core.sources.spotify.models import DEFAULT_REDIRECT_URI, NotConfigured, SpotifyConfig

if TYPE_CHECKING:
    from ..core.sources.spotify.client import SpotifyClient


class SpotifyResource(ConfigurableResource):
    """The user's Spotify account (authorisation-code flow; `music-pipeline spotify-login`
    writes the token cache that runs and sensors read)."""

    client_id: str = Field(default="", description="Spotify app client id (SPOTIFY_CLIENT_ID).")
    client_secret: str = Field(default="", description="Spotify app client secret (SPOTIFY_CLIENT_SECRET).")
    redirect_uri: str = Field(default=DEFAULT_REDIRECT_URI, description="Loopback redirect URI registered "
                                                                       "for the app (SPOTIFY_REDIRECT_URI).")
    token_cache: str = Field(default="", description="Token cache file (SPOTIFY_TOKEN_CACHE).")
    api_prefix: str | None = Field(default=None, description="Web API base URL (tests only).")
    accounts_url: str | None = Field(default=None, description="Accounts service URL (tests only).")

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def config(self) -> SpotifyConfig:
        if not self.configured:
            raise NotConfigured("Spotify is not configured.",
                                hint="Set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (a Spotify app at "
                                     "developer.spotify.com), then run `music-pipeline spotify-login`.")
        extra = {"token_cache": Path(self.token_cache).expanduser()} if self.token_cache else {}
        return SpotifyConfig(client_id=self.client_id, client_secret=self.client_secret,
                             redirect_uri=self.redirect_uri, api_prefix=self.api_prefix,
                             accounts_url=self.accounts_url, **extra)

    def client(self) -> SpotifyClient:
        from ..core.sources.spotify.client import SpotifyClient  # spotipy (and Redis) when used only

        return SpotifyClient(self.config())


class SoundCloudResource(ConfigurableResource):
    """The SoundCloud user whose likes and sets (playlists) are synced."""

    user: str = Field(default="", description="SoundCloud profile name, as in soundcloud.com/<user> "
                                              "(SOUNDCLOUD_USER).")

    @property
    def configured(self) -> bool:
        return bool(self.user)

    def require(self) -> str:
        if not self.user:
            raise TrackError("SoundCloud is not configured.", hint="Set SOUNDCLOUD_USER to your profile name.")
        return self.user
