"""The code location: `dagster dev -w workspace.yaml` loads ``defs`` from here."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from .assets import ALL_ASSETS, CHECKS
from .automation import (
    CHANGE_JOBS,
    JOBS,
    SCHEDULES,
    SOURCE_SENSORS,
    inbox_sensor,
    library_automation_sensor,
    library_index_job,
    mirror_track_job,
    notion_queue,
    process_track_job,
    verify_track_job,
)
from .resources import build_resources

defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=CHECKS,
    jobs=[process_track_job, verify_track_job, mirror_track_job, library_index_job, *JOBS, *CHANGE_JOBS],
    sensors=[inbox_sensor, library_automation_sensor, notion_queue, *SOURCE_SENSORS],
    schedules=SCHEDULES,
    resources=build_resources(),
    # Runs the automation sensor requests (library_index, playlist_exports) and the UI's
    # Materialize of library-wide assets: one process, not one per step.
    executor=in_process_executor,
)
