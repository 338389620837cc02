"""A local stand-in for the Google Ads API, for tests: real gRPC over TLS on 127.0.0.1, the google-ads
package's own messages, and an OAuth token endpoint on 127.0.0.1. Nothing leaves the machine.

The google-ads package ships proto-plus messages and client transports but no ``*_pb2_grpc`` servicer base
classes, so the two methods are registered with grpc's generic handlers under the exact method paths the
library's transports call (``/google.ads.googleads.v26.services.GoogleAdsService/SearchStream``,
``.../AdGroupCriterionService/MutateAdGroupCriteria``), (de)serialised with the library's own request and
response classes (``SearchGoogleAdsStreamRequest.deserialize`` ...), exactly as its transports do on the
client side.

TLS: the client builds its channel with ``google.api_core.grpc_helpers.create_channel``, always
``grpc.ssl_channel_credentials()`` plus the OAuth call credentials (no insecure option), so the server has a
throwaway self-signed certificate for 127.0.0.1 and the client process trusts it through gRPC's
``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` (:func:`trust_certificate`, set before the first TLS channel).

Every request is recorded with its metadata. Faults are scripted: ``stream_faults`` / ``mutate_faults`` are
lists of gRPC status codes returned (in order) before calls are served; a ``RESOURCE_EXHAUSTED`` carries a
``GoogleAdsFailure`` with a ``QuotaError`` and a ``retry_delay`` in its trailing metadata, as the API sends it;
``reject`` is a set of criterion ids answered with a partial-failure error.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import threading
import urllib.parse
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from google.ads.googleads.v26.errors.types.criterion_error import CriterionErrorEnum
from google.ads.googleads.v26.errors.types.errors import (
    ErrorCode,
    ErrorDetails,
    ErrorLocation,
    GoogleAdsError,
    GoogleAdsFailure,
    QuotaErrorDetails,
)
from google.ads.googleads.v26.errors.types.quota_error import QuotaErrorEnum
from google.ads.googleads.v26.services.types.ad_group_criterion_service import (
    MutateAdGroupCriteriaRequest,
    MutateAdGroupCriteriaResponse,
    MutateAdGroupCriterionResult,
)
from google.ads.googleads.v26.services.types.google_ads_service import (
    GoogleAdsRow,
    SearchGoogleAdsStreamRequest,
    SearchGoogleAdsStreamResponse,
)
from google.protobuf import any_pb2
from google.rpc import status_pb2

SEARCH_STREAM = "SearchStream"
MUTATE = "MutateAdGroupCriteria"
FAILURE_KEY = "google.ads.googleads.v26.errors.googleadsfailure-bin"
ACCESS_TOKEN = "local-test-access-token"


def make_certificate(folder: Path) -> tuple[bytes, bytes, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 / localhost: (key PEM, cert PEM, cert file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    path = folder / "local-google-ads.pem"
    path.write_bytes(cert_pem)
    return key_pem, cert_pem, path


def trust_certificate(cert_file: Path) -> None:
    """Make this process's gRPC trust ``cert_file`` as its root (read by gRPC core at its first TLS channel)."""
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(cert_file)


@dataclass
class Recorded:
    method: str
    request: Any  # the library's proto-plus request message
    metadata: dict[str, str]
    answered: str  # "OK" or the status code name


@dataclass
class LocalGoogleAds:
    """The server's state: what it serves, what it was sent."""

    rows: dict[str, list[GoogleAdsRow]] = field(default_factory=dict)  # day (YYYY-MM-DD) -> rows
    rows_per_batch: int = 2
    #: status codes answered in order before serving (None: serve that call normally)
    stream_faults: list[grpc.StatusCode | None] = field(default_factory=list)
    mutate_faults: list[grpc.StatusCode | None] = field(default_factory=list)
    reject: set[int] = field(default_factory=set)
    retry_delay_seconds: float = 0.05
    developer_token: str | None = None  # when set, requests with another token are refused
    recorded: list[Recorded] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.recorded if r.method == method]

    # -- handlers ---------------------------------------------------------------------------------

    def _record(
        self, method: str, request: Any, context: grpc.ServicerContext
    ) -> tuple[Recorded, grpc.StatusCode | None]:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        with self.lock:
            faults = self.stream_faults if method == SEARCH_STREAM else self.mutate_faults
            fault = faults.pop(0) if faults else None
            entry = Recorded(method, request, metadata, "OK")
            self.recorded.append(entry)
        if metadata.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            fault = grpc.StatusCode.UNAUTHENTICATED
        elif self.developer_token is not None and metadata.get("developer-token") != self.developer_token:
            fault = grpc.StatusCode.PERMISSION_DENIED
        if fault is not None:
            entry.answered = fault.name
        return entry, fault

    def _abort(self, context: grpc.ServicerContext, code: grpc.StatusCode) -> None:
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            failure = GoogleAdsFailure(
                errors=[
                    GoogleAdsError(
                        error_code=ErrorCode(quota_error=QuotaErrorEnum.QuotaError.RESOURCE_TEMPORARILY_EXHAUSTED),
                        message="Too many requests. Retry in a moment. (local test server)",
                        details=ErrorDetails(
                            quota_error_details=QuotaErrorDetails(
                                retry_delay=dt.timedelta(seconds=self.retry_delay_seconds)
                            )
                        ),
                    )
                ]
            )
            context.set_trailing_metadata(((FAILURE_KEY, GoogleAdsFailure.serialize(failure)),))
        context.abort(code, f"{code.name} (local test server)")

    def search_stream(self, request: SearchGoogleAdsStreamRequest, context: grpc.ServicerContext):
        _, fault = self._record(SEARCH_STREAM, request, context)
        if fault is not None:
            self._abort(context, fault)
        day = request.query.rsplit("segments.date = '", 1)[-1].split("'", 1)[0]
        rows = self.rows.get(day, [])
        for start in range(0, len(rows), self.rows_per_batch):
            yield SearchGoogleAdsStreamResponse(results=rows[start : start + self.rows_per_batch])

    def mutate(self, request: MutateAdGroupCriteriaRequest, context: grpc.ServicerContext):
        _, fault = self._record(MUTATE, request, context)
        if fault is not None:
            self._abort(context, fault)
        errors, results = [], []
        for index, operation in enumerate(request.operations):
            criterion_id = int(operation.update.resource_name.rsplit("~", 1)[-1])
            if criterion_id in self.reject:
                errors.append(
                    GoogleAdsError(
                        error_code=ErrorCode(criterion_error=CriterionErrorEnum.CriterionError.INVALID_KEYWORD_TEXT),
                        message=f"criterion {criterion_id} rejected by the local test server",
                        location=ErrorLocation(
                            field_path_elements=[ErrorLocation.FieldPathElement(field_name="operations", index=index)]
                        ),
                    )
                )
                results.append(MutateAdGroupCriterionResult())
            else:
                results.append(MutateAdGroupCriterionResult(resource_name=operation.update.resource_name))
        response = MutateAdGroupCriteriaResponse(results=[] if request.validate_only else results)
        if errors:
            detail = any_pb2.Any(
                type_url="type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                value=GoogleAdsFailure.serialize(GoogleAdsFailure(errors=errors)),
            )
            status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="partial failure")
            status.details.append(detail)
            MutateAdGroupCriteriaResponse.pb(response).partial_failure_error.CopyFrom(status)
        return response


class _TokenHandler(BaseHTTPRequestHandler):
    state: LocalGoogleAds

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
        self.state.token_requests.append(form)
        payload = json.dumps({"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # quiet
        pass


class Servers:
    """The gRPC server (TLS) and the OAuth token endpoint, both on 127.0.0.1; a context manager."""

    def __init__(self, state: LocalGoogleAds, key_pem: bytes, cert_pem: bytes):
        self.state = state
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "google.ads.googleads.v26.services.GoogleAdsService": {
                SEARCH_STREAM: grpc.unary_stream_rpc_method_handler(
                    state.search_stream,
                    request_deserializer=SearchGoogleAdsStreamRequest.deserialize,
                    response_serializer=SearchGoogleAdsStreamResponse.serialize,
                )
            },
            "google.ads.googleads.v26.services.AdGroupCriterionService": {
                MUTATE: grpc.unary_unary_rpc_method_handler(
                    state.mutate,
                    request_deserializer=MutateAdGroupCriteriaRequest.deserialize,
                    response_serializer=MutateAdGroupCriteriaResponse.serialize,
                )
            },
        }
        for service, methods in handlers.items():
            self.grpc.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))
        self.port = self.grpc.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
        handler = type("Handler", (_TokenHandler,), {"state": state})
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.http_thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/token"

    def __enter__(self) -> Servers:
        self.grpc.start()
        self.http_thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.grpc.stop(grace=None)
        self.http.shutdown()
        self.http.server_close()
