"""How tracks are analysed, as a Dagster resource."""

from dagster import ConfigurableResource
from pydantic import Field

from ..core.audio import analysis, tempo, tonality


class AnalysisResource(ConfigurableResource):
    """The preferred BPM range (octave decisions) and the key profile."""

    min_bpm: float = Field(default=tempo.DEFAULT_RANGE[0], description="Preferred tempo range, low end.")
    max_bpm: float = Field(default=tempo.DEFAULT_RANGE[1], description="Preferred tempo range, high end.")
    key_profile: str = Field(default=tonality.DEFAULT_PROFILE,
                             description=f"Key profile: {', '.join(tonality.PROFILES)}.")

    def settings(self) -> analysis.Settings:
        if self.key_profile not in tonality.PROFILES:
            raise ValueError(f"key_profile must be one of {', '.join(tonality.PROFILES)}")
        return analysis.Settings(bpm_range=(self.min_bpm, self.max_bpm), key_profile=self.key_profile,
                                 fingerprint=False)
