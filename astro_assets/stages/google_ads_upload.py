"""The day's changed bids to the Google Ads API: ``AdGroupCriterionService.MutateAdGroupCriteria``.

Reads the published ``bid_file`` partition's keyword table (``DataLayout.bid_keywords_file``, one row per
keyword: the bid_file partition contract) and sends **only the rows whose ``changed`` is true**, as
``update`` operations on ``customers/{customer}/adGroupCriteria/{ad_group_id}~{criterion_id}`` with a field mask
naming exactly the fields set:

| the row says | fields sent (``update_mask``) |
|---|---|
| ``ENABLED`` with a bid | ``cpc_bid_micros``; ``status`` = ENABLED only if ``writes_status`` (undoing its pause) |
| ``PAUSED`` and ``paused_by_astro`` | ``status`` = PAUSED (no bid: a paused keyword has none to set) |
| ``PAUSED`` by a person (not ``paused_by_astro``) | ``cpc_bid_micros`` only: Astro may set its bid, never its status |
| ``REMOVED`` (the keyword, its ad group or campaign removed in the account) | nothing: no operation at all |

A removed keyword's row is never ``changed`` (``stages.bids``); it is also skipped here whatever ``changed``
says (an older partition, a hand-edited table), because the API refuses any change to a removed resource
(``OperationAccessDeniedError.OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE``,
https://developers.google.com/google-ads/api/reference/rpc/v26/OperationAccessDeniedErrorEnum.OperationAccessDeniedError).

At most ``max_operations`` (10,000, the API's limit per mutate request,
https://developers.google.com/google-ads/api/docs/best-practices/quotas) operations per request, every request
with ``partial_failure=true`` (valid operations are applied, each invalid one gets its own error,
https://developers.google.com/google-ads/api/docs/best-practices/partial-failures) and ``validate_only=true``
unless the upload is live (``ASTRO_GOOGLE_ADS_UPLOAD=live``): a dry run has the API validate every operation
and change nothing. ``RESOURCE_EXHAUSTED`` and transient errors are retried with back-off
(``sources.google_ads_retry``); a request that still fails stops the upload, and its operations and all
after it are logged as not sent.

Before anything is sent, every bid is compared with break-even (predicted value per click × (1 − margin)):
one bid above it refuses the whole upload (:class:`UploadRefused`), nothing sent.

The upload log (one row per operation: the keyword, what the operation set, read back from the operation as
serialised, and ``accepted`` or the API's error) is what the ``bid_upload`` checks read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astro_assets.core.bid_rule import REMOVED, BidRule
from astro_assets.sources.google_ads_api import API_VERSION
from astro_assets.sources.google_ads_retry import RetryPolicy, call_with_retries
from astro_assets.storage import BID_FILE, DataLayout
from astro_assets.storage.publish import publish_partition

#: The API's limit of operations in one mutate request.
MAX_OPERATIONS_PER_REQUEST = 10_000
#: Seconds one MutateAdGroupCriteria call may take before it is cancelled (and retried).
MUTATE_TIMEOUT_SECONDS = 600.0
#: Float slack when comparing micros with break-even (a bid is rounded down to the cent below it).
BREAK_EVEN_TOLERANCE_MICROS = 1.0

#: The keyword table columns the upload reads (the bid_file contract).
KEYWORD_COLUMNS = (
    "ad_group_id",
    "keyword_id",
    "campaign_id",
    "keyword_text",
    "match_type",
    "predicted_value_per_click",
    "max_cpc_micros",
    "status",
    "paused_by_astro",
    "changed",
)

UPLOAD_LOG_SCHEMA = pa.schema(
    [
        ("campaign_id", pa.int64()),
        ("ad_group_id", pa.int64()),
        ("keyword_id", pa.int64()),
        ("keyword_text", pa.string()),
        ("match_type", pa.string()),
        # what the operation set, read back from it: "update", the mask, the bid and the status sent
        ("operation", pa.string()),
        ("update_mask", pa.string()),
        ("cpc_bid_micros", pa.int64()),
        ("status", pa.string()),
        ("predicted_value_per_click", pa.float64()),
        ("break_even_micros", pa.float64()),
        ("request", pa.int64()),
        ("validate_only", pa.bool_()),
        ("sent", pa.bool_()),
        ("accepted", pa.bool_()),
        ("error", pa.string()),
    ]
)


class UploadRefused(ValueError):
    """The keyword table would send a bid above break-even; nothing was sent."""


@dataclass
class UploadResult:
    log: pa.Table
    requests: int
    attempts: int
    retries: int
    unchanged: int
    request_error: str | None = None
    retried_statuses: list[str] = field(default_factory=list)
    #: Rows left out because the keyword (or its ad group or campaign) is removed in the account.
    removed_in_account: int = 0

    @property
    def sent(self) -> int:
        return int(pc.sum(self.log.column("sent")).as_py() or 0)

    @property
    def accepted(self) -> int:
        return int(pc.sum(self.log.column("accepted")).as_py() or 0)

    @property
    def rejected(self) -> int:
        return self.log.num_rows - self.accepted


def read_keywords(layout: DataLayout, day: dt.date) -> pa.Table:
    """The published keyword table of ``day`` (``MissingPartitionError`` when bid_file has no such day; a
    ``ValueError`` naming the file and the columns it lacks)."""
    path = layout.bid_keywords_file(layout.require_published(BID_FILE, day))
    missing = [c for c in KEYWORD_COLUMNS if c not in pq.read_schema(path).names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; rematerialize bid_file for {day}")
    return pq.read_table(path, columns=list(KEYWORD_COLUMNS))


def settable_rows(keywords: pa.Table) -> pa.Table:
    """The rows the API may change: every keyword not removed in the account."""
    return keywords.filter(pc.fill_null(pc.not_equal(keywords.column("status"), REMOVED), True))


def changed_rows(keywords: pa.Table) -> pa.Table:
    """The rows to send: changed, and not removed in the account."""
    settable = settable_rows(keywords)
    return settable.filter(pc.fill_null(settable.column("changed"), False))


def planned_fields(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Per row: send the bid? send the status? (the table at the top of this module)."""
    status = np.asarray(table.column("status").to_pylist(), dtype=object)
    by_astro = np.asarray(pc.fill_null(table.column("paused_by_astro"), False).to_numpy(zero_copy_only=False))
    micros = np.asarray(pc.fill_null(table.column("max_cpc_micros"), 0).to_numpy(zero_copy_only=False))
    enabled = status == "ENABLED"
    paused = status == "PAUSED"
    unknown = ~(enabled | paused)
    if unknown.any():
        raise UploadRefused(f"status: {int(unknown.sum())} rows are neither ENABLED nor PAUSED; nothing was sent")
    no_bid = enabled & (micros <= 0)
    if no_bid.any():
        raise UploadRefused(f"max_cpc_micros: {int(no_bid.sum())} ENABLED rows have no bid (<= 0); nothing was sent")
    send_bid = (enabled | (paused & ~by_astro)) & (micros > 0)
    if "writes_status" in table.column_names:
        # The bid file's own rule (core.bid_rule.keyword_states) says where Astro may set a status: a
        # pause it decides, or undoing a pause it recorded; never enabling what a person paused.
        send_status = np.asarray(pc.fill_null(table.column("writes_status"), False).to_numpy(zero_copy_only=False))
    else:
        send_status = enabled | (paused & by_astro)
    return send_bid, send_status


def break_even_micros(predicted: np.ndarray, rule: BidRule) -> np.ndarray:
    return rule.break_even(np.asarray(predicted, dtype=np.float64)) * 1_000_000


def refuse_above_break_even(table: pa.Table, send_bid: np.ndarray, rule: BidRule) -> np.ndarray:
    """Break-even in micros per row; :class:`UploadRefused` if any bid to be sent exceeds it (or has no valid
    prediction)."""
    limit = break_even_micros(pc.fill_null(table.column("predicted_value_per_click"), np.nan).to_numpy(), rule)
    micros = pc.fill_null(table.column("max_cpc_micros"), 0).to_numpy(zero_copy_only=False).astype(np.float64)
    above = send_bid & ~(micros <= limit + BREAK_EVEN_TOLERANCE_MICROS)  # NaN break-even counts as above
    if above.any():
        first = int(np.flatnonzero(above)[0])
        raise UploadRefused(
            f"max_cpc_micros: {int(above.sum())} bids above break-even (predicted value per click x "
            f"(1 - {rule.target_margin})), e.g. keyword {table.column('keyword_id')[first].as_py()}: "
            f"{int(micros[first])} > {limit[first]:.0f} micros; nothing was sent"
        )
    return limit


def build_operations(client: Any, customer_id: str, table: pa.Table, send_bid: np.ndarray, send_status: np.ndarray):
    """One ``AdGroupCriterionOperation`` (protobuf) per row that has a field to send; returns (rows, operations)."""
    service = client.get_service("AdGroupCriterionService", version=API_VERSION)
    status_enum = client.enums.AdGroupCriterionStatusEnum
    operation_type = type(client.get_type("AdGroupCriterionOperation", version=API_VERSION))
    ad_groups = table.column("ad_group_id").to_pylist()
    criteria = table.column("keyword_id").to_pylist()
    micros = table.column("max_cpc_micros").to_pylist()
    statuses = table.column("status").to_pylist()
    rows, operations = [], []
    for i in range(table.num_rows):
        if not (send_bid[i] or send_status[i]):
            continue
        operation = operation_type()
        criterion = operation.update
        criterion.resource_name = service.ad_group_criterion_path(customer_id, ad_groups[i], criteria[i])
        if send_bid[i]:
            criterion.cpc_bid_micros = int(micros[i])
            operation.update_mask.paths.append("cpc_bid_micros")
        if send_status[i]:
            criterion.status = getattr(status_enum, statuses[i])
            operation.update_mask.paths.append("status")
        rows.append(i)
        operations.append(operation)
    return rows, operations


def _error_text(error: Any) -> str:
    """``<error kind>.<code>: <message>`` of one GoogleAdsError (protobuf)."""
    code = error.error_code
    kind = code.WhichOneof("error_code")
    if kind is None:
        return error.message
    enum = code.DESCRIPTOR.fields_by_name[kind].enum_type
    value = getattr(code, kind)
    name = enum.values_by_number[value].name if enum is not None and value in enum.values_by_number else str(value)
    return f"{kind}.{name}: {error.message}"


def partial_failure_errors(client: Any, response: Any, operations: int) -> dict[int, str]:
    """Operation index -> the API's error, from a response's ``partial_failure_error``."""
    if not response.HasField("partial_failure_error"):
        return {}
    failure_type = type(client.get_type("GoogleAdsFailure", version=API_VERSION))
    errors: dict[int, list[str]] = {}
    for detail in response.partial_failure_error.details:
        failure = failure_type.FromString(detail.value)
        for error in failure.errors:
            indexes = [
                e.index
                for e in error.location.field_path_elements
                if e.field_name == "operations" and e.HasField("index")
            ]
            for index in indexes or range(operations):  # an error not tied to an operation: all of them
                errors.setdefault(index, []).append(_error_text(error))
    if not errors:  # a partial failure without details: every operation of the request is in doubt
        message = response.partial_failure_error.message or "partial failure without details"
        return dict.fromkeys(range(operations), message)
    return {index: "; ".join(texts) for index, texts in errors.items()}


def request_error_text(error: BaseException) -> str:
    """One line for a whole request that failed: status and the API's messages, never credentials."""
    failure = getattr(error, "failure", None)
    if failure is not None and getattr(failure, "errors", None):
        return "; ".join(_error_text(e) for e in failure.errors)
    code = getattr(error, "grpc_status_code", None) or getattr(error, "code", None)
    name = getattr(code, "name", None) if not callable(code) else getattr(code(), "name", None)
    return f"{name or type(error).__name__}: {getattr(error, 'message', None) or error}"


def upload_bids(
    client: Any,
    customer_id: str,
    keywords: pa.Table,
    rule: BidRule,
    live: bool,
    max_operations: int = MAX_OPERATIONS_PER_REQUEST,
    retry: RetryPolicy | None = None,
    log: Callable[[str], None] = print,
) -> UploadResult:
    """Send the changed rows of ``keywords`` (validate-only unless ``live``) and return the upload log."""
    if not 1 <= max_operations <= MAX_OPERATIONS_PER_REQUEST:
        raise ValueError(f"max_operations={max_operations} must be in 1..{MAX_OPERATIONS_PER_REQUEST}")
    retry = retry or RetryPolicy()
    table = changed_rows(keywords)
    send_bid, send_status = planned_fields(table)
    limit = refuse_above_break_even(table, send_bid, rule)
    rows, operations = build_operations(client, customer_id, table, send_bid, send_status)
    service = client.get_service("AdGroupCriterionService", version=API_VERSION)
    request_type = type(client.get_type("MutateAdGroupCriteriaRequest", version=API_VERSION))

    errors: dict[int, str] = {}  # operation number -> error
    request_of: dict[int, int] = {}
    sent_upto = 0
    requests = attempts = retries = 0
    retried: list[str] = []
    request_error = None
    failed: range = range(0)  # the operations of a request that failed as a whole (sent, not applied)
    for start in range(0, len(operations), max_operations):
        batch = operations[start : start + max_operations]
        request = request_type(customer_id=customer_id, partial_failure=True, validate_only=not live)
        request.operations.extend(batch)
        requests += 1
        number = requests

        def on_retry(attempt, code, wait):
            nonlocal retries
            retries += 1
            retried.append(code.name)

        def send(request=request):
            nonlocal attempts
            attempts += 1
            return service.mutate_ad_group_criteria(request=request, timeout=MUTATE_TIMEOUT_SECONDS)

        for k in range(len(batch)):
            request_of[start + k] = number
        try:
            response = call_with_retries(send, retry, log, f"MutateAdGroupCriteria request {number}", on_retry=on_retry)
        except Exception as error:  # the whole request failed: it and everything after it is not applied
            request_error = f"request {number}: {request_error_text(error)}"
            log(f"bid upload stopped: {request_error}")
            for k in range(start, len(operations)):
                errors[k] = (
                    request_error
                    if k < start + len(batch)
                    else f"not sent: an earlier request failed ({request_error})"
                )
            sent_upto = start
            failed = range(start, start + len(batch))
            break
        for index, text in partial_failure_errors(client, response, len(batch)).items():
            errors[start + index] = text
        sent_upto = start + len(batch)

    columns: dict[str, list[Any]] = {name: [] for name in UPLOAD_LOG_SCHEMA.names}
    predicted = table.column("predicted_value_per_click").to_pylist()
    for number, (row, operation) in enumerate(zip(rows, operations, strict=True)):
        mask = list(operation.update_mask.paths)
        criterion = operation.update
        columns["campaign_id"].append(table.column("campaign_id")[row].as_py())
        columns["ad_group_id"].append(table.column("ad_group_id")[row].as_py())
        columns["keyword_id"].append(table.column("keyword_id")[row].as_py())
        columns["keyword_text"].append(table.column("keyword_text")[row].as_py())
        columns["match_type"].append(table.column("match_type")[row].as_py())
        columns["operation"].append("update")
        columns["update_mask"].append(",".join(mask))
        columns["cpc_bid_micros"].append(criterion.cpc_bid_micros if "cpc_bid_micros" in mask else None)
        columns["status"].append(
            type(criterion).DESCRIPTOR.fields_by_name["status"].enum_type.values_by_number[criterion.status].name
            if "status" in mask
            else None
        )
        columns["predicted_value_per_click"].append(predicted[row])
        columns["break_even_micros"].append(float(limit[row]))
        columns["request"].append(request_of.get(number))
        columns["validate_only"].append(not live)
        columns["sent"].append(number < sent_upto or number in failed)
        columns["accepted"].append(number not in errors)
        columns["error"].append(errors.get(number))
    settable = settable_rows(keywords).num_rows
    return UploadResult(
        pa.table(columns, schema=UPLOAD_LOG_SCHEMA),
        requests=requests,
        attempts=attempts,
        retries=retries,
        unchanged=settable - table.num_rows,
        request_error=request_error,
        retried_statuses=retried,
        removed_in_account=keywords.num_rows - settable,
    )


def publish_upload_log(layout: DataLayout, asset: str, day: dt.date, log: pa.Table) -> None:
    """The upload log of ``day`` as the ``asset`` partition (temporary folder, then renamed)."""
    with publish_partition(layout.partition_dir(asset, day)) as staging:
        pq.write_table(log, layout.bid_upload_log(staging), compression="zstd")


def read_upload_log(layout: DataLayout, asset: str, day: dt.date) -> pa.Table:
    return pq.read_table(layout.bid_upload_log(layout.require_published(asset, day)))


@dataclass(frozen=True)
class UploadLogSummary:
    operations: int
    accepted: int
    rejected: int
    above_break_even: int
    rejections: pa.Table  # the rejected operations (keyword, what was sent, the error)


def summarise_upload_log(log: pa.Table, rule: BidRule) -> UploadLogSummary:
    """Counts for the checks: operations rejected, and bids sent above break-even recomputed from the
    logged prediction with ``rule`` (not the break-even logged at upload time)."""
    sent_micros = pc.fill_null(log.column("cpc_bid_micros"), -1).to_numpy(zero_copy_only=False).astype(np.float64)
    has_bid = sent_micros >= 0
    limit = break_even_micros(pc.fill_null(log.column("predicted_value_per_click"), np.nan).to_numpy(), rule)
    above = has_bid & ~(sent_micros <= limit + BREAK_EVEN_TOLERANCE_MICROS)
    rejected = log.filter(pc.invert(log.column("accepted")))
    return UploadLogSummary(
        operations=log.num_rows,
        accepted=log.num_rows - rejected.num_rows,
        rejected=rejected.num_rows,
        above_break_even=int(above.sum()),
        rejections=rejected.select(["keyword_id", "keyword_text", "update_mask", "cpc_bid_micros", "status", "error"]),
    )
