"""Back-off and retry for Google Ads API calls (the API source's SearchStream, the bid upload's mutates).

Google's guidance: retry ``RESOURCE_EXHAUSTED`` (quota) and transient errors (``UNAVAILABLE``,
``DEADLINE_EXCEEDED``, ``INTERNAL``, ``ABORTED``) with exponential back-off, and wait at least the
``retry_delay`` a quota error carries (``QuotaErrorDetails.retry_delay``); every other error is final
(https://developers.google.com/google-ads/api/docs/best-practices/error-types ,
https://developers.google.com/google-ads/api/docs/best-practices/quotas).

How errors arrive with the official client: the library's ``ExceptionInterceptor`` leaves ``INTERNAL`` and
``RESOURCE_EXHAUSTED`` as gRPC errors, which the generated client turns into ``google.api_core`` exceptions
(``ResourceExhausted`` with ``grpc_status_code``); other statuses carrying a ``GoogleAdsFailure`` become
``GoogleAdsException`` (``.error.code()``). All are recognised here by their gRPC status code.
The v26 clients configure no retry of their own (``default_retry=None`` in their transports), so this is the
only retry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

T = TypeVar("T")

RETRYABLE = frozenset(
    {
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
    }
)
#: The trailing-metadata key of the serialized GoogleAdsFailure (v26).
FAILURE_METADATA_KEY = "google.ads.googleads.v26.errors.googleadsfailure-bin"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off: ``initial_delay`` × ``multiplier``^k seconds (± ``jitter``), at most ``max_delay``,
    never less than the server's ``retry_delay``; ``max_attempts`` calls in all."""

    max_attempts: int = 6
    initial_delay: float = 5.0
    multiplier: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_delay < 0 or self.multiplier < 1 or self.max_delay < 0:
            raise ValueError(f"unusable retry policy {self}")

    def delay(self, attempt: int, server_delay: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        base *= 1.0 + random.uniform(-self.jitter, self.jitter)
        return min(self.max_delay, max(base, server_delay or 0.0))


def status_code(error: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of a Google Ads / gRPC / api_core error, None for anything else."""
    inner = getattr(error, "error", None)  # GoogleAdsException wraps the grpc.RpcError
    if inner is not None and callable(getattr(inner, "code", None)):
        return inner.code()
    code = getattr(error, "grpc_status_code", None)  # google.api_core.exceptions.GoogleAPICallError
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(error, grpc.RpcError) and callable(getattr(error, "code", None)):
        return error.code()
    return None


def server_retry_delay(error: BaseException) -> float | None:
    """The largest ``QuotaErrorDetails.retry_delay`` (seconds) the error's GoogleAdsFailure carries, if any."""
    call = getattr(error, "response", None) or getattr(error, "call", None) or error
    trailing = getattr(call, "trailing_metadata", None)
    if not callable(trailing):
        return None
    try:
        metadata = trailing() or ()
    except Exception:  # a call without metadata
        return None
    from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure

    delays = []
    for key, value in metadata:
        if key == FAILURE_METADATA_KEY:
            failure = GoogleAdsFailure.deserialize(value)
            for e in failure.errors:
                delay = e.details.quota_error_details.retry_delay
                delays.append(delay.total_seconds() if hasattr(delay, "total_seconds") else 0.0)
    return max(delays) if delays else None


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    log: Callable[[str], None],
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, grpc.StatusCode, float], Any] | None = None,
) -> T:
    """``call()``; on a retryable status, wait (back-off) and call again, at most ``policy.max_attempts`` times.
    ``log`` gets one line per retry (status and wait, never request contents)."""
    attempt = 1
    while True:
        try:
            return call()
        except Exception as error:
            code = status_code(error)
            if code not in RETRYABLE or attempt >= policy.max_attempts:
                raise
            wait = policy.delay(attempt, server_retry_delay(error))
            log(f"{what}: {code.name} on attempt {attempt} of {policy.max_attempts}; retrying in {wait:.2f} s")
            if on_retry is not None:
                on_retry(attempt, code, wait)
            sleep(wait)
            attempt += 1
