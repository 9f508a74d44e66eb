"""The library folder as a Dagster resource."""


from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from ..core.domain.paths import DEFAULT_TEMPLATE, Layout
from ..core.library import playlists
from ..core.library.steps import Library


class LibraryResource(ConfigurableResource):
    """Where the library lives and how it is laid out.

    ``root`` defaults to $MUSIC_LIBRARY (else ./library): see ``definitions.py``.
    """

    root: str = Field(description="Library root folder (from MUSIC_LIBRARY).")
    path_template: str = Field(default=DEFAULT_TEMPLATE,
                               description="Path of each output under the root, beets-style "
                                           "($format $artist $title $album $key $bpm $camelot).")
    alac_template: str | None = Field(default=None, description="Overrides path_template for ALAC.")
    aiff_template: str | None = Field(default=None, description="Overrides path_template for AIFF.")
    wav_template: str | None = Field(default=None, description="Overrides path_template for WAV.")
    key_notation: str = Field(default="classic",
                              description="Key tag notation: classic (F#m), canonical (F# minor), "
                                          "camelot (11A) or open_key (4m).")
    catalog_url: str | None = Field(default=None,
                                    description="The catalog on PostgreSQL (MUSIC_CATALOG_URL, a SQLAlchemy URL "
                                                "such as postgresql+psycopg2://user:password@host/db) when several "
                                                "machines share the library; unset: catalog.sqlite in the library "
                                                "folder.")
    wav_backup_dir: str | None = Field(default=None,
                                       description="When set (WAV_BACKUP_DIR), every WAV is copied there too.")

    playlist_mode: str = Field(default="symlink",
                               description="Playlist folders: symlink, hardlink, copy, or off (M3U8 only "
                                           "needs symlink/hardlink/copy too).")
    playlist_template: str = Field(default=playlists.DEFAULT_TEMPLATE,
                                   description="Where a playlist's entries go under <library>/<format>/.")

    def get(self) -> Library:
        root = Path(self.root).expanduser().resolve()
        overrides = {fmt: text for fmt, text in (("ALAC", self.alac_template), ("AIFF", self.aiff_template),
                                                 ("WAV", self.wav_template)) if text}
        layout = Layout(root, default=self.path_template, templates=overrides)
        return Library(root, layout, key_notation=self.key_notation, catalog_url=self.catalog_url,
                       wav_backup_dir=Path(self.wav_backup_dir) if self.wav_backup_dir else None)
