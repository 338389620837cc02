"""Sensors: new Google Ads reports in ``ASTRO_REPORTS_DIR`` launch their days' ``raw_features`` runs,
and a failed run raises an alert. Both start off, like the schedules (README "Operating Astro").

- :func:`reports_sensor`: each tick hashes the report files of the folder (``sources.report_index``);
  a file whose content hash is not in the cursor is read and validated as ``astro-ingest`` does, and
  each day it holds gets one ``raw_features`` run request. The run key names the file and its content
  hash, so the same bytes are never ingested twice (Dagster drops a run request whose run key this
  sensor already used; docs "Sensors": idempotence with run keys). A refused or unreadable file is a
  skipped tick whose reason is the ingest's message; it is retried only once its content changes.
- :func:`run_failure_alert_sensor`: on every failed run of this code location, logs an error, tags the
  run ``astro/alert`` and, when configured, posts to a Slack incoming webhook and/or sends an e-mail
  (``ASTRO_ALERT_*`` environment variables, read through ``dg.EnvVar``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import dagster as dg

from astro_assets.core import calendar
from astro_assets.defs.checks import CHECK_SPECS
from astro_assets.defs.resources import GoogleAdsReportFolder, KeywordSource
from astro_assets.sources.report_index import REPORT_INDEX, IndexedReport
from astro_assets.storage import RAW_FEATURES

REPORTS_SENSOR = "google_ads_reports_sensor"
RUN_FAILURE_SENSOR = "run_failure_alert_sensor"
#: Run tags: the report (file name and content hash) a raw_features run ingests, and the alert mark.
REPORT_FILE_TAG = "astro/report_file"
REPORT_SHA256_TAG = "astro/report_sha256"
ALERT_TAG = "astro/alert"
ALERT_RESOURCE = "alerts"
#: Environment variables of the optional alert channels (all unset: log and tag only).
ALERT_VARIABLES = {
    "slack_webhook_url": "ASTRO_ALERT_SLACK_WEBHOOK_URL",
    "smtp_host": "ASTRO_ALERT_SMTP_HOST",
    "smtp_port": "ASTRO_ALERT_SMTP_PORT",
    "email_from": "ASTRO_ALERT_EMAIL_FROM",
    "email_to": "ASTRO_ALERT_EMAIL_TO",
}


# -- reports -> raw_features runs ------------------------------------------------------------------


@dataclass(frozen=True)
class ReportPlan:
    """What one tick does: a run request per day of the new or changed files, the refusals, and the
    cursor to keep (file name -> content hash of every report file present)."""

    run_requests: list[dg.RunRequest]
    refusals: list[str]
    cursor: dict[str, str]


#: The checks a report's run executes: raw_features' own gates.
RAW_GATES = [
    dg.AssetCheckKey(dg.AssetKey(RAW_FEATURES), spec.name) for spec in CHECK_SPECS if spec.asset == RAW_FEATURES
]


def run_key(day: dt.date, reports: list[IndexedReport]) -> str:
    """The day, and each file (name and content hash) that brought it: the same bytes, the same key."""
    files = "+".join(sorted(f"{r.path.name}@{r.sha256[:16]}" for r in reports))
    return f"{RAW_FEATURES}/{day.isoformat()}/{files}"


def plan_report_runs(entries: list[IndexedReport], seen: dict[str, str]) -> ReportPlan:
    """The run requests for the files of ``entries`` that are new or changed since ``seen``."""
    fresh = [e for e in entries if seen.get(e.path.name) != e.sha256]
    by_day: dict[dt.date, list[IndexedReport]] = {}
    for entry in fresh:
        for day in entry.days:
            by_day.setdefault(day, []).append(entry)
    requests = [
        dg.RunRequest(
            run_key=run_key(day, reports),
            partition_key=day.isoformat(),
            asset_selection=[dg.AssetKey(RAW_FEATURES)],
            # Its write-audit-publish checks, not its freshness check (the freshness sensor's, at the deadline).
            asset_check_keys=RAW_GATES,
            tags={
                REPORT_FILE_TAG: ",".join(sorted(r.path.name for r in reports)),
                REPORT_SHA256_TAG: ",".join(sorted(r.sha256 for r in reports)),
            },
        )
        for day, reports in sorted(by_day.items())
    ]
    refusals = [e.error for e in fresh if e.error]
    return ReportPlan(requests, refusals, {e.path.name: e.sha256 for e in entries})


def account_today(partitions_def: dg.TimeWindowPartitionsDefinition, now: dt.datetime | None = None) -> dt.date:
    """Today in the partitions' time zone (the account's): a day not over there is not a partition."""
    return calendar.account_today(partitions_def.timezone, now)


def reports_sensor(partitions_def: dg.TimeWindowPartitionsDefinition) -> dg.SensorDefinition:
    first_day = partitions_def.start.date()

    @dg.sensor(
        name=REPORTS_SENSOR,
        target=dg.AssetSelection.assets(RAW_FEATURES),
        default_status=dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=60,
        description=(
            "A new or changed Google Ads report in ASTRO_REPORTS_DIR launches raw_features for exactly the days "
            "it holds; a refused file is a skipped tick with the ingest's message."
        ),
    )
    def google_ads_reports_sensor(
        context: dg.SensorEvaluationContext, keyword_source: KeywordSource
    ) -> dg.SensorResult | dg.SkipReason:
        if not isinstance(keyword_source, GoogleAdsReportFolder):
            return dg.SkipReason(
                f"ASTRO_REPORTS_DIR is not set: raw_features reads {type(keyword_source).__name__}, not a folder"
            )
        entries = REPORT_INDEX.folder(keyword_source.folder, account_today(partitions_def), first_day)
        plan = plan_report_runs(entries, json.loads(context.cursor) if context.cursor else {})
        for refusal in plan.refusals:
            context.log.warning(f"refused: {refusal}")
        cursor = json.dumps(plan.cursor, sort_keys=True)
        if plan.run_requests:
            return dg.SensorResult(run_requests=plan.run_requests, cursor=cursor)
        reason = "\n".join(plan.refusals) if plan.refusals else f"no new or changed report in {keyword_source.folder}"
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor)

    return google_ads_reports_sensor


# -- failed runs -> alert ---------------------------------------------------------------------------


class AlertChannels(dg.ConfigurableResource):
    """Where a failure alert goes besides the log and the run tag: a Slack incoming webhook and/or an
    e-mail through an SMTP relay. Unset fields (the default) mean the channel is off."""

    slack_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    email_from: str | None = None
    email_to: str | None = None

    def channels(self) -> list[str]:
        return [
            name
            for name, on in (
                ("slack", bool(self.slack_webhook_url)),
                ("email", bool(self.smtp_host and self.email_to and self.email_from)),
            )
            if on
        ]

    def send(self, subject: str, text: str) -> dict[str, str]:
        """Deliver to every configured channel; returns channel -> "sent" or the error (never raises:
        a broken channel must not hide the alert in the log and the tag)."""
        outcome: dict[str, str] = {}
        if self.slack_webhook_url:
            try:
                request = urllib.request.Request(
                    self.slack_webhook_url,
                    data=json.dumps({"text": f"*{subject}*\n{text}"}).encode(),
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    outcome["slack"] = "sent" if response.status < 300 else f"HTTP {response.status}"
            except OSError as error:
                outcome["slack"] = f"{type(error).__name__}: {error}"
        if "email" in self.channels():
            try:
                message = EmailMessage()
                message["Subject"], message["From"], message["To"] = subject, self.email_from, self.email_to
                message.set_content(text)
                with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=10) as smtp:
                    smtp.send_message(message)
                outcome["email"] = "sent"
            except (OSError, smtplib.SMTPException) as error:
                outcome["email"] = f"{type(error).__name__}: {error}"
        return outcome


def alert_channels() -> AlertChannels:
    """The alert channels, each field read through ``dg.EnvVar`` when its variable is set (so the
    resource view shows the variable, never the secret webhook URL)."""
    fields: dict[str, Any] = {}
    for field, variable in ALERT_VARIABLES.items():
        if os.environ.get(variable):
            fields[field] = dg.EnvVar.int(variable) if field == "smtp_port" else dg.EnvVar(variable)
    return AlertChannels(**fields)


def alert_text(run: dg.DagsterRun, failure: str | None, step_errors: list[str]) -> tuple[str, str]:
    """Subject and body of the alert for a failed run: the run, its partition, each failed step's error."""
    partition = run.tags.get("dagster/partition")
    what = f"{run.job_name}" + (f" for {partition}" if partition else "")
    subject = f"Astro: {what} failed"
    body = "\n".join([f"Run {run.run_id} ({what}) failed: {failure or 'no failure message'}", *step_errors])
    return subject, body


def step_errors(context: dg.RunFailureSensorContext) -> list[str]:
    """``<step>: <first line of its error>`` for each failed step of the run."""
    errors = []
    for event in context.get_step_failure_events():
        error = getattr(event.step_failure_data, "error", None)
        while error is not None and error.cause is not None:  # the user code's own error, not Dagster's wrapper
            error = error.cause
        message = (error.message if error else event.message or "").strip().splitlines()
        errors.append(f"{event.step_key}: {message[0] if message else 'failed'}")
    return errors


@dg.run_failure_sensor(
    name=RUN_FAILURE_SENSOR,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Every failed run: an error in the sensor's log, the run tagged astro/alert, and Slack/e-mail "
    "when ASTRO_ALERT_* is set.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertChannels) -> None:
    run = context.dagster_run
    subject, body = alert_text(run, context.failure_event.message, step_errors(context))
    context.log.error(body)
    outcome = alerts.send(subject, body)
    tags = {ALERT_TAG: "failed", f"{ALERT_TAG}_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if outcome:
        tags[f"{ALERT_TAG}_channels"] = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.items()))[:200]
    context.instance.add_run_tags(run.run_id, tags)
