"""The Google Ads API resources: credentials and ids only through ``dg.EnvVar``, the API keyword source.

:class:`GoogleAdsApi` holds what the official ``google-ads`` client needs. Every credential and id is a
``dg.EnvVar`` (:func:`google_ads_api_from_env`), resolved by Dagster when a run starts: the values are never in
a file, the run config (Dagster records ``{"env": NAME}``), a log line or metadata; error texts from the API
are passed through :meth:`GoogleAdsApi.redact` before they are shown or written.

A variable that is not set is left out (the field stays ``None``) instead of making every run that needs the
resource fail at launch with one variable named: the asset calls :meth:`GoogleAdsApi.client`, which raises
:class:`GoogleAdsNotConfigured` naming every missing variable, and the two ways to authenticate
(OAuth client + refresh token, or a service account key file).

The client is built with ``use_proto_plus=False`` (plain protobuf messages) for API version v26. Credentials
are created here rather than by ``GoogleAdsClient.load_from_dict`` so that no token is fetched before the first
call (load_from_dict refreshes at once) and so that the OAuth token endpoint can be set
(``GOOGLE_ADS_TOKEN_URI``; the tests run one on 127.0.0.1).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import pyarrow as pa

from astro_assets.defs.resources import KeywordSource
from astro_assets.settings import Settings
from astro_assets.sources import google_ads_api
from astro_assets.sources.google_ads_retry import RetryPolicy
from astro_assets.stages.google_ads_upload import MAX_OPERATIONS_PER_REQUEST

#: GoogleAdsApi field -> the environment variable it comes from (google-ads' own names where it has them:
#: https://developers.google.com/google-ads/api/docs/client-libs/python/configuration#environment_variables).
ENV_VARS: dict[str, str] = {
    "developer_token": "GOOGLE_ADS_DEVELOPER_TOKEN",
    "client_id": "GOOGLE_ADS_CLIENT_ID",
    "client_secret": "GOOGLE_ADS_CLIENT_SECRET",
    "refresh_token": "GOOGLE_ADS_REFRESH_TOKEN",
    "json_key_file_path": "GOOGLE_ADS_JSON_KEY_FILE_PATH",
    "impersonated_email": "GOOGLE_ADS_IMPERSONATED_EMAIL",
    "login_customer_id": "GOOGLE_ADS_LOGIN_CUSTOMER_ID",
    "customer_id": "GOOGLE_ADS_CUSTOMER_ID",
    "endpoint": "GOOGLE_ADS_ENDPOINT",
    "token_uri": "GOOGLE_ADS_TOKEN_URI",
}
REQUIRED = ("developer_token", "customer_id")
OAUTH = ("client_id", "client_secret", "refresh_token")
SERVICE_ACCOUNT = ("json_key_file_path",)
#: Google's OAuth 2.0 token endpoint (the default; GOOGLE_ADS_TOKEN_URI replaces it).
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
#: The OAuth scope of the Google Ads API.
ADWORDS_SCOPE = "https://www.googleapis.com/auth/adwords"

_CUSTOMER_ID = re.compile(r"^\d{3}-?\d{3}-?\d{4}$")


class GoogleAdsNotConfigured(RuntimeError):
    """Credentials or ids the Google Ads API needs are not set; the message names the variables."""


def _env(field: str) -> str:
    return ENV_VARS[field]


class GoogleAdsApi(dg.ConfigurableResource):
    """The Google Ads API account Astro reads reports from and uploads bids to (the ``google_ads`` resource)."""

    developer_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    json_key_file_path: str | None = None
    impersonated_email: str | None = None
    login_customer_id: str | None = None
    customer_id: str | None = None
    #: host:port of the API (default Google's, googleads.googleapis.com:443).
    endpoint: str | None = None
    token_uri: str | None = None
    #: False: every mutate is ``validate_only`` (a dry run); True only with ASTRO_GOOGLE_ADS_UPLOAD=live.
    upload_live: bool = False
    max_operations_per_request: int = MAX_OPERATIONS_PER_REQUEST
    retry_max_attempts: int = 6
    retry_initial_delay_seconds: float = 5.0
    retry_max_delay_seconds: float = 300.0

    def missing_variables(self) -> list[str]:
        """The variables that must still be set, empty when the API can be called."""
        missing = [_env(f) for f in REQUIRED if not getattr(self, f)]
        if not all(getattr(self, f) for f in OAUTH) and not all(getattr(self, f) for f in SERVICE_ACCOUNT):
            oauth_missing = [_env(f) for f in OAUTH if not getattr(self, f)]
            missing.append(
                f"{' and '.join(oauth_missing)} (OAuth: {', '.join(_env(f) for f in OAUTH)}) "
                f"or {_env('json_key_file_path')} (service account)"
            )
        return missing

    @property
    def configured(self) -> bool:
        return not self.missing_variables()

    def require_configured(self, what: str) -> None:
        missing = self.missing_variables()
        if missing:
            raise GoogleAdsNotConfigured(
                f"{what}: the Google Ads API is not configured; not set: {'; '.join(missing)}. "
                "Set them in the environment of the Dagster processes (README 'Publishing bids')."
            )
        if self.customer_id and not _CUSTOMER_ID.match(self.customer_id.strip()):
            raise GoogleAdsNotConfigured(
                f"{what}: {_env('customer_id')} is not a customer id (10 digits, 123-456-7890)"
            )
        if self.login_customer_id and not _CUSTOMER_ID.match(self.login_customer_id.strip()):
            raise GoogleAdsNotConfigured(f"{what}: {_env('login_customer_id')} is not a customer id (10 digits)")

    def customer(self) -> str:
        """The customer id as the API wants it: digits only."""
        return (self.customer_id or "").replace("-", "").strip()

    def credentials(self) -> Any:
        """OAuth (client id, secret, refresh token) or service-account credentials; no token fetched yet."""
        if all(getattr(self, f) for f in SERVICE_ACCOUNT):
            from google.oauth2 import service_account

            return service_account.Credentials.from_service_account_file(
                self.json_key_file_path, scopes=[ADWORDS_SCOPE], subject=self.impersonated_email or None
            )
        from google.oauth2.credentials import Credentials

        return Credentials(
            None,
            refresh_token=self.refresh_token,
            client_id=self.client_id,
            client_secret=self.client_secret,
            token_uri=self.token_uri or GOOGLE_TOKEN_URI,
        )

    def client(self, what: str = "google_ads") -> Any:
        """A ``GoogleAdsClient`` (API v26, protobuf messages); :class:`GoogleAdsNotConfigured` first if a
        variable is missing."""
        self.require_configured(what)
        from google.ads.googleads.client import GoogleAdsClient

        return GoogleAdsClient(
            credentials=self.credentials(),
            developer_token=self.developer_token,
            endpoint=self.endpoint or None,
            login_customer_id=(self.login_customer_id or "").replace("-", "").strip() or None,
            version=google_ads_api.API_VERSION,
            use_proto_plus=False,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.retry_max_attempts,
            initial_delay=self.retry_initial_delay_seconds,
            max_delay=self.retry_max_delay_seconds,
        )

    def redact(self, text: str | None) -> str | None:
        """``text`` with every credential and id value replaced by its variable's name."""
        if text is None:
            return None
        for field, name in ENV_VARS.items():
            value = getattr(self, field)
            if value and field not in ("endpoint", "token_uri"):
                for form in {value, value.replace("-", "")}:
                    if len(form) >= 4:
                        text = text.replace(form, f"<{name}>")
        return text


class GoogleAdsApiKeywordSource(KeywordSource):
    """``raw_features`` from the Google Ads API (``ASTRO_KEYWORD_SOURCE=google_ads_api``): the day's
    ``keyword_view`` through SearchStream, validated as file ingest validates a report."""

    api: GoogleAdsApi
    #: The account's time zone (ASTRO_ACCOUNT_TIMEZONE): a day is reported once it is over there.
    account_timezone: str = "UTC"

    def keyword_report(self, day: dt.date) -> pa.Table:
        client = self.api.client("raw_features from the Google Ads API")
        today = dt.datetime.now(ZoneInfo(self.account_timezone)).date()
        return google_ads_api.keyword_report(
            client, self.api.customer(), day, today=today, retry=self.api.retry_policy(), log=_log_line
        )

    def expected_value_per_click(self, day: dt.date) -> Callable[[np.ndarray], np.ndarray] | None:
        return None


def _log_line(text: str) -> None:
    dg.get_dagster_logger("astro.google_ads").info(text)


def google_ads_api_from_env(environ: Mapping[str, str] | None = None, live: bool = False) -> GoogleAdsApi:
    """The resource with a ``dg.EnvVar`` for every variable that is set (its value is read by Dagster at run
    time, never here); ``live`` from ASTRO_GOOGLE_ADS_UPLOAD."""
    environ = os.environ if environ is None else environ
    return GoogleAdsApi(
        **{field: dg.EnvVar(name) for field, name in ENV_VARS.items() if environ.get(name)},
        upload_live=live,
    )


def google_ads_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the variables the API needs are set (names only; the bid upload's job and schedule exist then)."""
    environ = os.environ if environ is None else environ
    present = {field for field, name in ENV_VARS.items() if environ.get(name)}
    return set(REQUIRED) <= present and (set(OAUTH) <= present or set(SERVICE_ACCOUNT) <= present)


def google_ads_resources(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``google_ads`` resource (always: ``bid_upload`` names what is missing when it is not configured), and
    the ``keyword_source`` when ``ASTRO_KEYWORD_SOURCE=google_ads_api`` (it replaces the one of
    ``build_resources``)."""
    api = google_ads_api_from_env(environ, live=settings.google_ads_upload_live)
    resources: dict[str, Any] = {"google_ads": api}
    if settings.keyword_source == "google_ads_api":
        resources["keyword_source"] = GoogleAdsApiKeywordSource(api=api, account_timezone=settings.account_timezone)
    return resources
