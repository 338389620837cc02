"""``bid_upload``: the day's changed bids sent to the Google Ads API (``stages.google_ads_upload``).

After ``bid_file``, in no job by default (the daily job stops at the Editor files): materialise it by hand, or
turn on ``bid_upload_schedule`` (its job and schedule are defined once the API is configured,
:func:`~astro_assets.defs.google_ads.google_ads_configured`). A dry run (``validate_only``) unless
``ASTRO_GOOGLE_ADS_UPLOAD=live``. The upload log is the partition ``bid_upload/date=YYYY-MM-DD/``; two checks
read it: rejected operations (counted and shown), and no bid sent above break-even.
"""

import dagster as dg
import pyarrow as pa

from astro_assets.defs.google_ads import GoogleAdsApi, GoogleAdsNotConfigured
from astro_assets.defs.partitions import days_in
from astro_assets.defs.resources import AstroStorage, BidPolicy
from astro_assets.stages.google_ads_upload import (
    UploadRefused,
    publish_upload_log,
    read_keywords,
    read_upload_log,
    summarise_upload_log,
    upload_bids,
)
from astro_assets.storage import BID_FILE, partition_date
from astro_assets.storage.layout import BID_UPLOAD

BID_UPLOAD_JOB = "bid_upload_job"
BID_UPLOAD_SCHEDULE = "bid_upload_schedule"
REJECTIONS_CHECK = "bid_upload_operations_accepted"
BREAK_EVEN_CHECK = "bid_upload_never_sends_above_break_even"
#: Rejected operations shown in metadata (all of them are in the upload log).
SHOWN_REJECTIONS = 20


def _markdown(table: pa.Table, api: GoogleAdsApi) -> str:
    frame = table.slice(0, SHOWN_REJECTIONS).to_pandas()
    if "error" in frame:
        frame["error"] = [api.redact(e) for e in frame["error"]]
    return frame.to_markdown(index=False) if len(frame) else "none"


def bid_upload_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=BID_UPLOAD,
        partitions_def=partitions_def,
        group_name="publishing",  # apart from the daily bid assets: it needs API credentials
        kinds={"googleads", "parquet"},
        deps=[BID_FILE],
        description=(
            "The day's changed keywords (bid and status) sent to the Google Ads API with "
            "AdGroupCriterionService.MutateAdGroupCriteria; a dry run (validate_only) unless "
            "ASTRO_GOOGLE_ADS_UPLOAD=live. Upload log at bid_upload/date=YYYY-MM-DD/upload_log.parquet."
        ),
    )
    def bid_upload(
        context: dg.AssetExecutionContext, storage: AstroStorage, bid_policy: BidPolicy, google_ads: GoogleAdsApi
    ) -> dg.MaterializeResult:
        layout = storage.layout
        rule = bid_policy.to_rule()
        try:  # names every missing variable before anything is read or sent
            client = google_ads.client("bid_upload")
        except GoogleAdsNotConfigured as error:
            raise dg.Failure(description=str(error)) from None
        totals = dict.fromkeys(
            (
                "keywords",
                "unchanged",
                "removed_in_account",
                "operations",
                "requests",
                "attempts",
                "retries",
                "accepted",
                "rejected",
            ),
            0,
        )
        last = None
        failures = []
        for day in days_in(context.partition_time_window):
            keywords = read_keywords(layout, day)
            try:
                result = upload_bids(
                    client,
                    google_ads.customer(),
                    keywords,
                    rule,
                    live=google_ads.upload_live,
                    max_operations=google_ads.max_operations_per_request,
                    retry=google_ads.retry_policy(),
                    log=lambda line: context.log.info(google_ads.redact(line)),
                )
            except UploadRefused as error:
                raise dg.Failure(description=f"bid_upload {day}: {error}") from None
            log = result.log.set_column(
                result.log.schema.get_field_index("error"),
                "error",
                pa.array([google_ads.redact(e) for e in result.log.column("error").to_pylist()], pa.string()),
            )
            publish_upload_log(layout, BID_UPLOAD, day, log)
            summary = summarise_upload_log(log, rule)
            for name, value in (
                ("keywords", keywords.num_rows),
                ("unchanged", result.unchanged),
                ("removed_in_account", result.removed_in_account),
                ("operations", log.num_rows),
                ("requests", result.requests),
                ("attempts", result.attempts),
                ("retries", result.retries),
                ("accepted", summary.accepted),
                ("rejected", summary.rejected),
            ):
                totals[name] += value
            context.log.info(
                f"bid_upload {day}: {log.num_rows:,} operations in {result.requests} requests "
                f"({'live' if google_ads.upload_live else 'validate_only'}), {summary.accepted:,} accepted, "
                f"{summary.rejected:,} rejected, {result.unchanged:,} unchanged keywords not sent, "
                f"{result.removed_in_account:,} removed in the account left out"
            )
            if result.request_error:
                failures.append(f"{day}: {google_ads.redact(result.request_error)}")
            last = (day, summary)
        if failures:  # the log is published (what was and was not applied), then the run fails
            raise dg.Failure(description="bid_upload: a request failed after its retries: " + " | ".join(failures))
        day, summary = last
        return dg.MaterializeResult(
            metadata={
                "mode": "live" if google_ads.upload_live else "validate_only (dry run: nothing changed)",
                **{name: dg.MetadataValue.int(value) for name, value in totals.items()},
                "dagster/row_count": dg.MetadataValue.int(totals["operations"]),
                "path": dg.MetadataValue.path(str(layout.bid_upload_log(layout.partition_dir(BID_UPLOAD, day)))),
                "rejections": dg.MetadataValue.md(_markdown(summary.rejections, google_ads)),
            }
        )

    return bid_upload


def bid_upload_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """Checks on what was actually sent (the upload log, read back from the operations)."""

    @dg.asset_check(
        name=REJECTIONS_CHECK,
        asset=BID_UPLOAD,
        partitions_def=partitions_def,
        description="Every operation sent was accepted by the API; rejected ones are counted and listed.",
    )
    def operations_accepted(
        context: dg.AssetCheckExecutionContext, storage: AstroStorage, bid_policy: BidPolicy
    ) -> dg.AssetCheckResult:
        log = read_upload_log(storage.layout, BID_UPLOAD, partition_date(context.partition_key))
        summary = summarise_upload_log(log, bid_policy.to_rule())
        shown = summary.rejections.slice(0, SHOWN_REJECTIONS).to_pandas()
        return dg.AssetCheckResult(
            passed=summary.rejected == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "operations": dg.MetadataValue.int(summary.operations),
                "accepted": dg.MetadataValue.int(summary.accepted),
                "rejected": dg.MetadataValue.int(summary.rejected),
                "rejections": dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "none"),
            },
        )

    @dg.asset_check(
        name=BREAK_EVEN_CHECK,
        asset=BID_UPLOAD,
        partitions_def=partitions_def,
        description="No cpc_bid_micros sent above predicted value per click × (1 − target margin), operation "
        "for operation, on the upload log (what went over the wire).",
    )
    def never_above_break_even(
        context: dg.AssetCheckExecutionContext, storage: AstroStorage, bid_policy: BidPolicy
    ) -> dg.AssetCheckResult:
        log = read_upload_log(storage.layout, BID_UPLOAD, partition_date(context.partition_key))
        summary = summarise_upload_log(log, bid_policy.to_rule())
        return dg.AssetCheckResult(
            passed=summary.above_break_even == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "operations": dg.MetadataValue.int(summary.operations),
                "bids_above_break_even": dg.MetadataValue.int(summary.above_break_even),
            },
        )

    return [operations_accepted, never_above_break_even]


def bid_upload_job_and_schedule(hour_of_day: int = 8) -> tuple[object, dg.ScheduleDefinition]:
    """``bid_upload_job`` (the asset and its checks) and its schedule: daily at ``hour_of_day`` (in the
    daily partitions' time zone; two hours after the daily bid run) for the day just over; off until turned on,
    like every schedule."""
    job = dg.define_asset_job(
        BID_UPLOAD_JOB,
        selection=dg.AssetSelection.assets(BID_UPLOAD),  # partitions inferred from the asset
        executor_def=dg.in_process_executor,
        description="Send the day's changed bids to the Google Ads API (validate_only unless "
        "ASTRO_GOOGLE_ADS_UPLOAD=live).",
    )
    schedule = dg.build_schedule_from_partitioned_job(
        job, name=BID_UPLOAD_SCHEDULE, hour_of_day=hour_of_day, minute_of_hour=0
    )
    return job, schedule
