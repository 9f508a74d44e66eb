"""Where tracks come from: the yt-dlp adapter, downloads, listings, matching, inbox, Spotify."""
