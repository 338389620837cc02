"""The careful analyst: what a competent SQL team would bid, the baseline a model must beat on profit.

From the raw keyword reports of the last ``lookback_days`` days (as downloaded this morning, so the
recent days are still missing conversions that will arrive later):

1. **conversion lag**: each day's conversion value is divided by the share of a day's value that has
   arrived at its age (``completeness``, measured by comparing early and late downloads of the same
   days — the analyst re-downloads, see ``lag_completeness``);
2. **tracking outages**: a campaign-day with many clicks and no conversion at all, where the
   campaign's other days say several were expected, is dropped (its clicks too);
3. **empirical-Bayes shrinkage**: each keyword's value per click is pulled toward its ad group's,
   itself pulled toward its campaign's, each with the weight of ``prior_clicks`` clicks
   (θ_k = (V_k + κ·θ_group) / (C_k + κ)); κ is chosen on validation days (``choose_prior_clicks``);
4. **pausing what cannot earn**: a keyword whose estimate is below the cheapest cost per click it
   paid on any day of the window (with ``min_clicks_to_pause`` clicks of evidence) gets no bid.

Bids are then the estimate × (1 − margin) through the same ``max_cpc_units`` as every policy.
Keywords are identified by the pair (ad group id, keyword id): criterion ids repeat across ad groups.
numpy and pyarrow only.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from astro_assets.core.analyst_rule import cannot_earn, group_priors, outage_rows, shrink
from astro_assets.core.bid_rule import BidRule, max_cpc_units


@dataclass(frozen=True)
class AnalystParams:
    lookback_days: int = 28
    #: κ: clicks of evidence at which a keyword's own value per click and its ad group's count equally.
    prior_clicks: float = 20.0
    #: An outage is a campaign-day with no conversion where this many were expected.
    outage_expected_conversions: float = 5.0
    min_clicks_to_pause: float = 10.0


def pair_keys(ad_group_ids: np.ndarray, keyword_ids: np.ndarray) -> np.ndarray:
    """One int64 per keyword (ad group id, criterion id)."""
    return (np.asarray(ad_group_ids, dtype=np.int64) << 32) + np.asarray(keyword_ids, dtype=np.int64)


def table_keys(table: pa.Table) -> np.ndarray:
    return pair_keys(table.column("ad_group_id").to_numpy(), table.column("keyword_id").to_numpy())


def lag_completeness(early: list[pa.Table], late: list[pa.Table], ages: list[int], max_age: int) -> np.ndarray:
    """Share of a day's conversion value that has arrived ``age`` days after it (index = age, 1 ..
    ``max_age``; 1.0 beyond), measured as the ratio of the total value of the same days downloaded
    at ``ages`` and downloaded late (complete); never below 0.05, never above 1, non-decreasing."""
    completeness = np.ones(max_age + 1)
    for age in range(1, max_age + 1):
        pairs = [(e, lt) for e, lt, a in zip(early, late, ages, strict=True) if a == age]
        early_value = sum(
            float(np.nansum(e.column("conversion_value").to_numpy(zero_copy_only=False))) for e, _ in pairs
        )
        late_value = sum(
            float(np.nansum(lt.column("conversion_value").to_numpy(zero_copy_only=False))) for _, lt in pairs
        )
        if late_value > 0:
            completeness[age] = np.clip(early_value / late_value, 0.05, 1.0)
    completeness[0] = completeness[1]
    return np.maximum.accumulate(completeness)


@dataclass
class AnalystEstimate:
    keys: np.ndarray  # pair keys, sorted
    value_per_click: np.ndarray
    clicks: np.ndarray  # lag window clicks (after dropping outages and null values)
    cannot_earn: np.ndarray  # bool


def estimate(
    reports: list[pa.Table], ages: list[int], completeness: np.ndarray, params: AnalystParams
) -> AnalystEstimate:
    """Each keyword's value per click from ``reports`` (one per day; ``ages[i]`` = days between that
    day and the download), corrected for lag and outages, shrunk toward ad group and campaign."""
    parts = []
    for table, age in zip(reports, ages, strict=True):
        if table.num_rows == 0:
            continue
        value = table.column("conversion_value").to_numpy(zero_copy_only=False).astype(np.float64)
        parts.append(
            {
                "key": table_keys(table),
                "group": table.column("ad_group_id").to_numpy(),
                "campaign": table.column("campaign_id").to_numpy(),
                "clicks": table.column("clicks").to_numpy().astype(np.float64),
                "cost": table.column("cost_micros").to_numpy() / 1e6,
                "conversions": table.column("conversions").to_numpy().astype(np.float64),
                "value": value / completeness[min(age, len(completeness) - 1)],
                "conversions_corrected": table.column("conversions").to_numpy()
                / completeness[min(age, len(completeness) - 1)],
                "day": np.full(table.num_rows, age),
            }
        )
    if not parts:
        empty = np.zeros(0)
        return AnalystEstimate(np.zeros(0, dtype=np.int64), empty, empty, np.zeros(0, dtype=bool))
    rows = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    # Null conversion values: the keyword-day tells nothing about value; drop it (clicks too).
    usable = ~np.isnan(rows["value"])
    # Tracking outages: campaign-days with clicks but no conversion where the campaign's rate says
    # several were expected (``core.analyst_rule``: the same formulas the published analyst runs).
    usable &= ~outage_rows(
        rows["campaign"], rows["day"], rows["clicks"], rows["conversions_corrected"], params.outage_expected_conversions
    )
    clicks = np.where(usable, rows["clicks"], 0.0)
    value = np.where(usable, rows["value"], 0.0)

    keys, key_of = np.unique(rows["key"], return_inverse=True)
    n = len(keys)
    group_of_key = np.zeros(n, dtype=np.int64)
    group_of_key[key_of] = rows["group"]
    campaign_of_key = np.zeros(n, dtype=np.int64)
    campaign_of_key[key_of] = rows["campaign"]
    key_clicks = np.bincount(key_of, weights=clicks, minlength=n)
    key_value = np.bincount(key_of, weights=value, minlength=n)
    groups, group_theta, _, _, _ = group_priors(
        group_of_key, campaign_of_key, key_clicks, key_value, params.prior_clicks
    )
    theta = shrink(key_value, key_clicks, group_theta[np.searchsorted(groups, group_of_key)], params.prior_clicks)

    with_clicks = rows["clicks"] > 0
    day_cpc = np.divide(rows["cost"], rows["clicks"], out=np.full(len(key_of), np.inf), where=with_clicks)
    cheapest = np.full(n, np.inf)
    np.minimum.at(cheapest, key_of, day_cpc)
    return AnalystEstimate(
        keys, theta, key_clicks, cannot_earn(theta, key_clicks, cheapest, params.min_clicks_to_pause)
    )


def analyst_bid_units(estimate: AnalystEstimate, keys: np.ndarray, rule: BidRule) -> np.ndarray:
    """Bids (whole currency units, 0 = paused) for ``keys``: estimate × (1 − margin); keywords the
    analyst has no data on, or that cannot earn, get none."""
    if len(estimate.keys) == 0:
        return np.zeros(len(keys), dtype=np.int64)
    at = np.clip(np.searchsorted(estimate.keys, keys), 0, len(estimate.keys) - 1)
    found = estimate.keys[at] == keys
    return max_cpc_units(np.where(found & ~estimate.cannot_earn[at], estimate.value_per_click[at], 0.0), rule)
