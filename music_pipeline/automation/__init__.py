"""Jobs, sensors and schedules: when the graph runs."""

from .jobs import process_track_job
from .sensors import inbox_sensor

__all__ = ["inbox_sensor", "process_track_job"]
