"""The careful analyst's arithmetic (``model.analyst``), where the predictions are made: numpy and
pyarrow only, so the Spark executors can run it next to onnxruntime.

Why the analyst ships as a small table and not as an ONNX graph (issue 14, point 5: the platform
publishes the bids of whatever policy wins validation). A keyword's estimate is
θ_k = (V_k + κ·θ_group) / (C_k + κ), paused when θ_k is below the cheapest cost per click it paid. V_k,
C_k and the cheapest cost per click are in the keyword's own feature vector (log1p of clicks, cost,
conversions and conversion value per day, and the flag of an imputed value); what a keyword cannot
know alone is its ad group's θ (and which campaign-days were tracking outages), aggregates over every
keyword of the account, so over every shard. They are computed once per training run on the latest
window (``window_cells`` per shard, ``policy_table`` on the driver), published as one small Parquet
table (one row per ad group) and joined per shard (``score_file``). An ONNX graph would need the same
per-row join for θ_group as a second input, plus a graph to build and keep in step with this module.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astro_assets.core.features import FEATURE_NAMES, LAGS, N_FEATURES
from astro_assets.core.scoring import PREDICTION_SCHEMA, PREDICTION_WRITE_OPTIONS, features_matrix, prediction_batch

#: Parquet schema-metadata key of the published table's scalars (κ, pausing evidence, outages...).
POLICY_METADATA = b"astro.analyst"
#: Per-(ad group, window day) sums of one shard (``window_cells``); summed across shards by the driver.
CELL_COLUMNS = ("clicks", "conversions", "usable_clicks", "usable_value")

_CLICKS = FEATURE_NAMES.index("log_clicks")
_COST = FEATURE_NAMES.index("log_cost")
_CONVERSIONS = FEATURE_NAMES.index("log_conversions")
_VALUE = FEATURE_NAMES.index("log_conversion_value")
_VALUE_MISSING = FEATURE_NAMES.index("conversion_value_missing")


# -- the formulas (``model.analyst.estimate`` uses the same ones) -----------------------------------


def outage_rows(
    campaign: np.ndarray, day: np.ndarray, clicks: np.ndarray, conversions: np.ndarray, expected_at_least: float
) -> np.ndarray:
    """Whether each row (a keyword-day or an ad-group-day) lies in a tracking outage: a campaign-day
    with no conversion at all where the campaign's rate over all the rows says ``expected_at_least``
    were expected."""
    if len(campaign) == 0:
        return np.zeros(0, dtype=bool)
    campaigns, campaign_of = np.unique(campaign, return_inverse=True)
    days, day_of = np.unique(day, return_inverse=True)
    cell = campaign_of * len(days) + day_of
    cells = len(campaigns) * len(days)
    cell_clicks = np.bincount(cell, weights=clicks, minlength=cells)
    cell_conversions = np.bincount(cell, weights=conversions, minlength=cells)
    campaign_clicks = np.bincount(campaign_of, weights=clicks, minlength=len(campaigns))
    campaign_rate = np.divide(
        np.bincount(campaign_of, weights=conversions, minlength=len(campaigns)),
        campaign_clicks,
        out=np.zeros(len(campaigns)),
        where=campaign_clicks > 0,
    )
    expected = cell_clicks * np.repeat(campaign_rate, len(days))
    return ((cell_conversions == 0) & (expected >= expected_at_least))[cell]


def shrink(value: np.ndarray, clicks: np.ndarray, prior: np.ndarray, kappa: float) -> np.ndarray:
    """Empirical-Bayes value per click: (value + κ·prior) / (clicks + κ)."""
    return (value + kappa * prior) / (clicks + kappa)


def group_priors(
    group: np.ndarray, campaign: np.ndarray, clicks: np.ndarray, value: np.ndarray, kappa: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Each ad group's value per click shrunk toward its campaign's, itself shrunk toward the account's
    rate, from rows (keywords, or ad-group-days) of usable ``clicks`` and ``value``: (ad group ids,
    their θ, their campaign ids, the campaign's θ for each ad group, the account's rate)."""
    total_rate = float(value.sum() / clicks.sum()) if clicks.sum() > 0 else 0.0
    c_ids, c_of = np.unique(campaign, return_inverse=True)
    campaign_theta = shrink(
        np.bincount(c_of, weights=value, minlength=len(c_ids)),
        np.bincount(c_of, weights=clicks, minlength=len(c_ids)),
        total_rate,
        kappa,
    )
    g_ids, g_of = np.unique(group, return_inverse=True)
    g_campaign = np.zeros(len(g_ids), dtype=np.int64)
    g_campaign[g_of] = c_of
    group_theta = shrink(
        np.bincount(g_of, weights=value, minlength=len(g_ids)),
        np.bincount(g_of, weights=clicks, minlength=len(g_ids)),
        campaign_theta[g_campaign],
        kappa,
    )
    return g_ids, group_theta, c_ids[g_campaign], campaign_theta[g_campaign], total_rate


def cannot_earn(theta: np.ndarray, clicks: np.ndarray, cheapest: np.ndarray, min_clicks: float) -> np.ndarray:
    """Keywords with ``min_clicks`` usable clicks whose estimate is below the cheapest cost per click
    they paid: no bid can earn on them."""
    return (clicks >= min_clicks) & (theta < cheapest)


# -- the window, from the feature vector ------------------------------------------------------------


def _expm1(features: np.ndarray, index: int) -> np.ndarray:
    return np.expm1(features[:, :, index].astype(np.float64))


def window_days(day: dt.date, lags: int = LAGS) -> list[dt.date]:
    """The days of the feature window of ``day`` in the order of its lags (oldest first)."""
    return [day - dt.timedelta(days=lags - 1 - t) for t in range(lags)]


def window_columns(features: np.ndarray) -> dict[str, np.ndarray]:
    """Per keyword and window day ([n, T]): clicks, cost, conversions, the conversion value (NaN where
    the report had none and the features imputed it: the analyst drops those days, clicks too)."""
    value = _expm1(features, _VALUE)
    return {
        "clicks": np.rint(_expm1(features, _CLICKS)),
        "cost": _expm1(features, _COST),
        "conversions": _expm1(features, _CONVERSIONS),
        "value": np.where(features[:, :, _VALUE_MISSING] > 0.5, np.nan, value),
    }


def window_cells(ad_group_ids: np.ndarray, campaign_ids: np.ndarray, features: np.ndarray) -> dict[str, np.ndarray]:
    """One shard's sums per (ad group, window day): ``ad_group_id``, ``campaign_id``, ``lag`` and
    ``CELL_COLUMNS`` (all clicks and conversions; clicks and value of the days with a known value)."""
    window = window_columns(features)
    usable = ~np.isnan(window["value"])
    lags = features.shape[1]
    groups, group_of = np.unique(np.asarray(ad_group_ids, dtype=np.int64), return_inverse=True)
    campaign_of_group = np.zeros(len(groups), dtype=np.int64)
    campaign_of_group[group_of] = campaign_ids
    cell = (group_of[:, None] * lags + np.arange(lags)[None, :]).ravel()
    size = len(groups) * lags
    sums = {
        "clicks": window["clicks"],
        "conversions": window["conversions"],
        "usable_clicks": np.where(usable, window["clicks"], 0.0),
        "usable_value": np.where(usable, window["value"], 0.0),
    }
    cells = {name: np.bincount(cell, weights=v.ravel(), minlength=size) for name, v in sums.items()}
    return {
        "ad_group_id": np.repeat(groups, lags),
        "campaign_id": np.repeat(campaign_of_group, lags),
        "lag": np.tile(np.arange(lags), len(groups)),
        **cells,
    }


def combine_cells(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The shards' cells as one set (an ad group spans shards: its cells are summed)."""
    rows = {name: np.concatenate([p[name] for p in parts]) for name in ("ad_group_id", "campaign_id", "lag")}
    values = {name: np.concatenate([p[name] for p in parts]) for name in CELL_COLUMNS}
    key = rows["ad_group_id"] * 1024 + rows["lag"]
    unique, first, of = np.unique(key, return_index=True, return_inverse=True)
    return {
        **{name: v[first] for name, v in rows.items()},
        **{name: np.bincount(of, weights=v, minlength=len(unique)) for name, v in values.items()},
    }


def policy_table(
    cells: dict[str, np.ndarray],
    day: dt.date,
    version: str,
    kappa: float,
    min_clicks_to_pause: float,
    outage_expected_conversions: float,
) -> pa.Table:
    """The published analyst: one row per ad group (its θ and its campaign's θ) from the account's
    cells of the window of ``day``, with κ, the pausing evidence, the account's rate and the outage
    campaign-days found in the window in the schema metadata."""
    outage = outage_rows(
        cells["campaign_id"], cells["lag"], cells["clicks"], cells["conversions"], outage_expected_conversions
    )
    clicks = np.where(outage, 0.0, cells["usable_clicks"])
    value = np.where(outage, 0.0, cells["usable_value"])
    groups, group_theta, campaigns, campaign_theta, total_rate = group_priors(
        cells["ad_group_id"], cells["campaign_id"], clicks, value, kappa
    )
    days = window_days(day)
    outages = sorted(
        {
            (int(c), days[int(t)].isoformat())
            for c, t in zip(cells["campaign_id"][outage], cells["lag"][outage], strict=True)
        }
    )
    description = {
        "version": version,
        "window_end": day.isoformat(),
        "prior_clicks": kappa,
        "min_clicks_to_pause": min_clicks_to_pause,
        "account_value_per_click": total_rate,
        "outages": outages,
    }
    table = pa.table(
        {
            "ad_group_id": pa.array(groups, pa.int64()),
            "campaign_id": pa.array(campaigns, pa.int64()),
            "group_value_per_click": pa.array(group_theta, pa.float64()),
            "campaign_value_per_click": pa.array(campaign_theta, pa.float64()),
        }
    )
    return table.replace_schema_metadata({POLICY_METADATA: json.dumps(description).encode()})


def policy_description(table: pa.Table) -> dict:
    return json.loads(table.schema.metadata[POLICY_METADATA])


def policy_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def read_policy(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))


@dataclass(frozen=True)
class PublishedAnalyst:
    """A published table made ready for lookups (once per task): its scalars, and the ad groups' and
    campaigns' θ sorted by id."""

    description: dict
    group_ids: np.ndarray
    group_theta: np.ndarray
    campaign_ids: np.ndarray
    campaign_theta: np.ndarray

    @classmethod
    def of(cls, table: pa.Table) -> PublishedAnalyst:
        groups = table.column("ad_group_id").to_numpy()
        order = np.argsort(groups, kind="stable")
        campaigns, first = np.unique(table.column("campaign_id").to_numpy(), return_index=True)
        return cls(
            policy_description(table),
            groups[order],
            table.column("group_value_per_click").to_numpy()[order],
            campaigns,
            table.column("campaign_value_per_click").to_numpy()[first],
        )

    def values(
        self, day: dt.date, ad_group_ids: np.ndarray, campaign_ids: np.ndarray, features: np.ndarray
    ) -> np.ndarray:
        """The analyst's value per click for keywords of ``day`` (0 where it pauses: no bid can earn):
        each keyword's window from its features (days with an imputed conversion value and the
        table's outage campaign-days dropped), shrunk toward its ad group's θ (its campaign's for an
        ad group the table does not know, the account's rate for an unknown campaign)."""
        window = window_columns(features)
        usable = ~np.isnan(window["value"])
        lag_of = {d.isoformat(): t for t, d in enumerate(window_days(day, features.shape[1]))}
        for campaign, outage_day in self.description["outages"]:  # a few campaign-days
            if outage_day in lag_of:
                usable[:, lag_of[outage_day]] &= np.asarray(campaign_ids) != campaign
        clicks = np.where(usable, window["clicks"], 0.0).sum(axis=1)
        value = np.where(usable, window["value"], 0.0).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            day_cpc = np.where(window["clicks"] > 0, window["cost"] / window["clicks"], np.inf)
        cheapest = day_cpc.min(axis=1) if len(day_cpc) else np.zeros(0)
        prior = np.full(len(ad_group_ids), float(self.description["account_value_per_click"]))
        for ids, theta, own in (
            (self.campaign_ids, self.campaign_theta, campaign_ids),
            (self.group_ids, self.group_theta, ad_group_ids),
        ):
            if len(ids):
                at = np.clip(np.searchsorted(ids, own), 0, len(ids) - 1)
                prior = np.where(ids[at] == own, theta[at], prior)
        kappa = float(self.description["prior_clicks"])
        theta = shrink(value, clicks, prior, kappa)
        paused = cannot_earn(theta, clicks, cheapest, float(self.description["min_clicks_to_pause"]))
        return np.where(paused, 0.0, theta)


def analyst_values(
    table: pa.Table, day: dt.date, ad_group_ids: np.ndarray, campaign_ids: np.ndarray, features: np.ndarray
) -> np.ndarray:
    """:meth:`PublishedAnalyst.values` of a published table."""
    return PublishedAnalyst.of(table).values(day, ad_group_ids, campaign_ids, features)


def score_file(
    features_path: str, out_path: str, policy: bytes, day: dt.date, version: str, batch_rows: int = 10_000
) -> int:
    """``scoring.score_file`` for the published analyst: one Parquet file of preprocessed features
    (one keyword shard) into predictions of the same schema. Returns the rows written."""
    analyst = PublishedAnalyst.of(read_policy(policy))
    source = pq.ParquetFile(features_path)
    rows = 0
    with pq.ParquetWriter(out_path, PREDICTION_SCHEMA, **PREDICTION_WRITE_OPTIONS) as writer:
        for batch in source.iter_batches(
            batch_size=batch_rows, columns=["ad_group_id", "keyword_id", "campaign_id", "features"]
        ):
            if batch.num_rows == 0:
                continue
            groups = batch.column(0).to_numpy()
            values = analyst.values(
                day, groups, batch.column(2).to_numpy(), features_matrix(batch.column(3), LAGS, N_FEATURES)
            )
            writer.write_batch(prediction_batch(batch.column(0), batch.column(1), values.astype(np.float32), version))
            rows += batch.num_rows
    return rows


def shard_cells(features_path: str, batch_rows: int = 65_536) -> dict[str, np.ndarray]:
    """``window_cells`` of one Parquet file of preprocessed features, read batch by batch."""
    parts = []
    for batch in pq.ParquetFile(features_path).iter_batches(
        batch_size=batch_rows, columns=["ad_group_id", "campaign_id", "features"]
    ):
        parts.append(
            window_cells(
                batch.column(0).to_numpy(),
                batch.column(1).to_numpy(),
                features_matrix(batch.column(2), LAGS, N_FEATURES),
            )
        )
    return combine_cells(parts) if parts else window_cells(np.zeros(0), np.zeros(0), np.zeros((0, LAGS, N_FEATURES)))
