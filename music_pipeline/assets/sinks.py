"""Every registered sink as an asset (``core.sinks``): a track sink is a per-track asset
downstream of the catalog (``notion_records``, ``eagle_records``); a library sink is a
library-wide asset refreshed by the automation after tracks finish, and hourly
(``rekordbox_export``, ``traktor_export``). The sinks decide what to write; this module only
turns their reports into Dagster's: materialisations, observations of what was skipped and
why, log lines, and failures the run can retry."""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetObservation,
    AssetsDefinition,
    AutomationCondition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ..core.domain.errors import TrackError
from ..core.sinks import FilePath, Link, Markdown, Registration, Report, registered
from .tracks import GROUP, catalog, tracks


def metadata(report: Report) -> dict:
    """The report's metadata as Dagster's values."""
    out = {}
    for name, value in report.metadata.items():
        if isinstance(value, Link):
            value = MetadataValue.url(str(value))
        elif isinstance(value, Markdown):
            value = MetadataValue.md(str(value))
        elif isinstance(value, FilePath):
            value = MetadataValue.path(str(value))
        out[name] = value
    return out


def _log(context: AssetExecutionContext, report: Report, prefix: str) -> None:
    for line in report.errors:
        context.log.error(prefix + line)
    for line in report.warnings:
        context.log.warning(prefix + line)
    for line in report.notes:
        context.log.info(prefix + line)


def _build(context: AssetExecutionContext, registration: Registration):
    return registration.build(*(getattr(context.resources, name) for name in registration.resources))


def track_sink_asset(registration: Registration) -> AssetsDefinition:
    name = registration.name.capitalize()

    @asset(name=registration.asset, partitions_def=tracks, group_name=GROUP, deps=[catalog],
           kinds={registration.kind}, output_required=False, description=registration.description,
           required_resource_keys={"library", *registration.resources})
    def _track_sink(context: AssetExecutionContext) -> Iterator[MaterializeResult]:
        key = context.partition_key
        sink = _build(context, registration)
        try:
            report = sink.write_track(context.resources.library.get(), key)
        except TrackError as err:
            raise Failure(description=f"{name} sync of {key} failed: {err}", metadata={"track": key},
                          allow_retries=err.reason.retryable) from err
        _log(context, report, f"{key}: ")
        if report.skipped:  # nothing written: said on the asset, the track is unaffected
            if not report.errors:
                context.log.info(f"{key}: {report.skipped}")
            # "misconfigured": the service refused us (a bad token): `mirror` counts the track failed
            said = {"skipped": report.skipped, **({"misconfigured": True} if report.errors else {})}
            context.log_event(AssetObservation(asset_key=context.asset_key, partition=key,
                                               metadata={**said, **metadata(report)}))
            return
        yield MaterializeResult(metadata=metadata(report))

    return _track_sink


def library_sink_asset(registration: Registration) -> AssetsDefinition:
    @asset(name=registration.asset, deps=[catalog], group_name="library", kinds={registration.kind},
           description=registration.description, required_resource_keys={"library", *registration.resources},
           output_required=False,
           # after tracks finish, and hourly: a track that only left a playlist finishes nothing
           automation_condition=AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
           | AutomationCondition.on_cron("0 * * * *"))
    def _library_sink(context: AssetExecutionContext) -> Iterator[MaterializeResult]:
        sink = _build(context, registration)
        try:
            report = sink.write_library(context.resources.library.get())
        except TrackError as err:
            raise Failure(description=f"The {registration.name} export failed: {err}") from err
        _log(context, report, "")
        if report.skipped:  # nothing written: observed, not materialised
            context.log_event(AssetObservation(asset_key=context.asset_key, metadata={"skipped": report.skipped}))
            return
        yield MaterializeResult(metadata=metadata(report))

    return _library_sink


SINK_ASSETS = [track_sink_asset(r) for r in registered("track")] + [library_sink_asset(r) for r in registered("library")]
MIRROR_ASSETS = [a for a in SINK_ASSETS if a.key.path[-1] in {r.asset for r in registered("track")}]
