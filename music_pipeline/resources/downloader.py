"""yt-dlp settings as a Dagster resource."""


from dagster import ConfigurableResource
from pydantic import Field

from ..core.sources.ytdlp import DownloadOptions


class DownloaderResource(ConfigurableResource):
    """How yt-dlp downloads: format selection, timeouts, politeness, cookies and proxy."""

    format: str = Field(default="bestaudio/best", description="yt-dlp format selector.")
    socket_timeout: float = Field(default=30.0, description="Seconds before a stalled connection fails.")
    retries: int = Field(default=3, description="yt-dlp retries per download and fragment.")
    rate_limit: int | None = Field(default=None, description="Bytes per second, to be polite to sources.")
    cookies_file: str | None = Field(default=None, description="Netscape cookies file for logged-in sources.")
    proxy: str | None = Field(default=None, description="Proxy URL, e.g. for geo-blocked sources.")

    def options(self) -> DownloadOptions:
        return DownloadOptions(format=self.format, socket_timeout=self.socket_timeout, retries=self.retries,
                               rate_limit=self.rate_limit, cookies_file=self.cookies_file, proxy=self.proxy)
