"""Jobs, sensors and schedules: when the graph runs."""

from .bulk import process_tracks
from .changes import CHANGE_JOBS
from .jobs import library_index_job, mirror_track_job, process_track_job, verify_track_job
from .mirrors import notion_queue
from .sensors import inbox_sensor, library_automation_sensor
from .sources import JOBS, SCHEDULES, SOURCE_SENSORS

__all__ = ["CHANGE_JOBS", "JOBS", "SCHEDULES", "SOURCE_SENSORS", "inbox_sensor", "library_automation_sensor", "library_index_job", "mirror_track_job", "notion_queue",
           "process_track_job", "process_tracks", "verify_track_job"]
