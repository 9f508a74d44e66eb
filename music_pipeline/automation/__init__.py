"""Jobs, sensors and schedules: when the graph runs."""

from .jobs import library_index_job, process_track_job
from .sensors import inbox_sensor, library_automation_sensor

__all__ = ["inbox_sensor", "library_automation_sensor", "library_index_job", "process_track_job"]
