"""The DJ exports' settings as a Dagster resource (DJ_EXPORT_FORMAT, DJ_LIBRARY_ROOT, DJ_EXPORT_DIR)."""

from dagster import ConfigurableResource
from pydantic import Field

from ..core.sinks.dj import DEFAULT_FORMAT, EXPORT_DIR, DjSettings


class DjResource(ConfigurableResource):
    """How the library is exported for rekordbox and Traktor."""

    format: str = Field(default=DEFAULT_FORMAT, description="Which file each export names: AIFF, ALAC or WAV "
                                                            "(DJ_EXPORT_FORMAT).")
    library_root: str = Field(default="", description="The library folder as the DJ's computer names it, e.g. "
                                                      "/Volumes/VIBES or E:\\ (DJ_LIBRARY_ROOT; unset: as here).")
    export_dir: str = Field(default="", description=f"Where the exports go (DJ_EXPORT_DIR; unset: "
                                                    f"<library>/{EXPORT_DIR}).")

    def settings(self) -> DjSettings:
        return DjSettings(self.format.upper(), self.library_root or None, self.export_dir or None)
