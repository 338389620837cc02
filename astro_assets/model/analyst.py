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

The **risk-bounded analyst** (``risk_bounded_estimate``) bids from the same estimate, as a prediction of
the bid day (× the account's weekday factor) with its uncertainty (the shrinkage's posterior weight,
the campaign's dispersion of a click's value, the campaign-days' variance), at the lower bound of level
``RISK_LEVEL``: min(mean × (1 − margin), lower bound).

Keywords are identified by the pair (ad group id, keyword id): criterion ids repeat across ad groups.
numpy, pyarrow and scipy (the Gamma quantile) only.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.special import gammaincinv

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
    return _estimate_from_rows(_window_rows(reports, ages, completeness, params), params)[0]


def _window_rows(
    reports: list[pa.Table], ages: list[int], completeness: np.ndarray, params: AnalystParams
) -> dict[str, np.ndarray] | None:
    """The keyword-days of ``reports`` (lag-corrected value, ``usable``: not null, not in an outage);
    None without any row."""
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
        return None
    rows = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    # Null conversion values: the keyword-day tells nothing about value; drop it (clicks too).
    usable = ~np.isnan(rows["value"])
    # Tracking outages: campaign-days with clicks but no conversion where the campaign's rate says
    # several were expected (``core.analyst_rule``: the same formulas the published analyst runs).
    usable &= ~outage_rows(
        rows["campaign"], rows["day"], rows["clicks"], rows["conversions_corrected"], params.outage_expected_conversions
    )
    rows["usable"] = usable
    return rows


def _estimate_from_rows(
    rows: dict[str, np.ndarray] | None, params: AnalystParams
) -> tuple[AnalystEstimate, np.ndarray, np.ndarray]:
    """``estimate`` of the window's rows, with each row's keyword (index into the estimate's keys)
    and each keyword's campaign id."""
    if rows is None:
        empty = np.zeros(0)
        none = np.zeros(0, dtype=np.int64)
        return AnalystEstimate(none, empty, empty, np.zeros(0, dtype=bool)), none, none
    usable = rows["usable"]
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
    guess = AnalystEstimate(
        keys, theta, key_clicks, cannot_earn(theta, key_clicks, cheapest, params.min_clicks_to_pause)
    )
    return guess, key_of, campaign_of_key


def analyst_bid_units(estimate: AnalystEstimate, keys: np.ndarray, rule: BidRule) -> np.ndarray:
    """Bids (whole currency units, 0 = paused) for ``keys``: estimate × (1 − margin); keywords the
    analyst has no data on, or that cannot earn, get none."""
    if len(estimate.keys) == 0:
        return np.zeros(len(keys), dtype=np.int64)
    at = np.clip(np.searchsorted(estimate.keys, keys), 0, len(estimate.keys) - 1)
    found = estimate.keys[at] == keys
    return max_cpc_units(np.where(found & ~estimate.cannot_earn[at], estimate.value_per_click[at], 0.0), rule)


# -- the risk-bounded analyst ------------------------------------------------------------------------

#: The risk-bounded analyst's level α: the share of its keyword-days on which the bid may exceed the
#: day's value per click. It is the issue's target itself (spend above the true value ≤ 5 %), not a
#: setting chosen by profit.
RISK_LEVEL = 0.05


@dataclass
class RiskBoundedEstimate:
    """The careful analyst's estimate turned into a prediction for the bid day with its uncertainty."""

    keys: np.ndarray  # pair keys, sorted
    #: The bid day's expected value per click: the analyst's θ_k × the account's weekday factor.
    value_per_click: np.ndarray
    #: Its lower bound at ``level``: the level-quantile of the predictive distribution.
    lower_bound: np.ndarray
    clicks: np.ndarray
    cannot_earn: np.ndarray
    level: float
    weekday_factor: float
    #: φ of each keyword's campaign: a click's value variance is φ × its mean (currency).
    dispersion: np.ndarray
    #: τ²: the campaign-days' relative variance of value per click beyond the clicks' own noise.
    day_variance: float
    #: The relative variance of the weekday factor's estimate (common to every keyword).
    weekday_variance: float


def weekday_factors(ages: np.ndarray, clicks: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per offset ``age % 7`` (0: the bid day's own weekday, whose window days are 7, 14, ... days
    old), that weekday's value per click over the window's: the account's weekly pattern (1 where a
    weekday has no clicks or value)."""
    offset = np.asarray(ages, dtype=np.int64) % 7
    day_clicks = np.bincount(offset, weights=clicks, minlength=7)
    day_value = np.bincount(offset, weights=value, minlength=7)
    total_rate = value.sum() / clicks.sum() if clicks.sum() > 0 else 0.0
    if total_rate <= 0:
        return np.ones(7)
    factors = np.divide(day_value, day_clicks * total_rate, out=np.ones(7), where=day_clicks > 0)
    return np.where(factors > 0, factors, 1.0)


def gamma_lower_bound(mean: np.ndarray, variance: np.ndarray, level: float) -> np.ndarray:
    """The ``level``-quantile of the Gamma distribution of this mean and variance (shape mean²/var,
    scale var/mean); the mean itself where the variance is 0, 0 where the mean is not positive.
    ``scipy.special.gammaincinv(a, y)`` inverts the regularized lower incomplete gamma function P(a, x)
    (docs.scipy.org, scipy.special.gammaincinv): the quantile of Gamma(a, 1)."""
    mean = np.asarray(mean, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    positive = mean > 0
    spread = positive & (variance > 0)
    shape = np.where(spread, mean**2 / np.where(spread, variance, 1.0), 1.0)
    scale = np.where(spread, variance / np.where(positive, mean, 1.0), 0.0)
    bound = np.where(spread, gammaincinv(shape, level) * scale, mean)
    return np.where(positive, bound, 0.0)


def risk_bounded_estimate(
    reports: list[pa.Table],
    ages: list[int],
    completeness: np.ndarray,
    params: AnalystParams,
    level: float = RISK_LEVEL,
) -> RiskBoundedEstimate:
    """The careful analyst's ``estimate`` of ``reports`` (read on the bid day: ``ages[i]`` days old),
    as a predictive distribution of the bid day's value per click with its ``level`` lower bound.

    - mean: θ_k × w, w the account's value per click on the window days of the bid day's weekday over
      the window's (``weekday_factors``: the truth has a weekly pattern the 28-day mean averages out);
    - the keyword's estimate: the empirical-Bayes posterior the shrinkage already is (normal-normal:
      the weight of C_k + κ clicks), with a click's value variance φ_c × its mean (a compound Poisson:
      few conversions of a varying value), φ_c the campaign's ratio of the squared residuals of its
      keyword-days to their expected value: var θ_k = φ_c θ_k / (C_k + κ);
    - the day: τ², the campaign-days' relative variance beyond that noise (method of moments), and the
      weekday factor's own estimation variance (one estimate shared by every keyword);
    - the distribution: a Gamma with that mean and variance (moment-matched). A value per click is
      positive and, from a few conversions, skewed to the right; a Gamma is the posterior of a Poisson
      rate and tends to the normal as clicks accumulate, where a normal bound would go below 0.
    """
    rows = _window_rows(reports, ages, completeness, params)
    guess, key_of, campaign_of_key = _estimate_from_rows(rows, params)
    if rows is None:
        empty = np.zeros(0)
        return RiskBoundedEstimate(guess.keys, empty, empty, empty, guess.cannot_earn, level, 1.0, empty, 0.0, 0.0)
    usable = rows["usable"]
    clicks = np.where(usable, rows["clicks"], 0.0)
    value = np.where(usable, rows["value"], 0.0)
    factors = weekday_factors(rows["day"], clicks, value)
    # Each usable keyword-day's expected value from its keyword's estimate and its weekday.
    expected = clicks * guess.value_per_click[key_of] * factors[rows["day"] % 7]
    campaigns, campaign_of = np.unique(rows["campaign"], return_inverse=True)
    squared = np.bincount(campaign_of, weights=(value - expected) ** 2, minlength=len(campaigns))
    mass = np.bincount(campaign_of, weights=expected, minlength=len(campaigns))
    account_phi = squared.sum() / mass.sum() if mass.sum() > 0 else 0.0
    phi = np.divide(squared, mass, out=np.full(len(campaigns), account_phi), where=mass > 0)
    # τ²: per campaign-day, (value − expected)² beyond its Poisson part φ_c × expected, over expected².
    span = int(rows["day"].max()) + 1
    cell, cell_of = np.unique(campaign_of * span + rows["day"], return_inverse=True)
    cell_campaign, cell_days = np.divmod(cell, span)
    cell_value = np.bincount(cell_of, weights=value, minlength=len(cell))
    cell_expected = np.bincount(cell_of, weights=expected, minlength=len(cell))
    excess = ((cell_value - cell_expected) ** 2 - phi[cell_campaign] * cell_expected).sum()
    tau2 = max(0.0, float(excess / (cell_expected**2).sum())) if (cell_expected**2).sum() > 0 else 0.0

    # The weekday factor's own noise, shared by every keyword: w = X / T (X the value of the bid day's
    # weekday, T the window's), relative variance var X / X² + var T / T² − 2 var X / (X T) (X is in T),
    # each total's variance its keyword-days' φ_c × expected plus its campaign-days' τ² × expected².
    same_weekday = rows["day"] % 7 == 0
    row_phi = phi[campaign_of]
    x, t = expected[same_weekday].sum(), expected.sum()
    x_variance = (row_phi * expected)[same_weekday].sum() + tau2 * (cell_expected[cell_days % 7 == 0] ** 2).sum()
    t_variance = (row_phi * expected).sum() + tau2 * (cell_expected**2).sum()
    weekday_variance = x_variance / x**2 + t_variance / t**2 - 2 * x_variance / (x * t) if x > 0 and t > 0 else 0.0

    weekday = float(factors[0])
    key_phi = phi[np.searchsorted(campaigns, campaign_of_key)]
    theta = guess.value_per_click
    mean = theta * weekday
    variance = (
        weekday**2 * key_phi * theta / (guess.clicks + params.prior_clicks)
        + (tau2 + max(weekday_variance, 0.0)) * mean**2
    )
    return RiskBoundedEstimate(
        guess.keys,
        mean,
        gamma_lower_bound(mean, variance, level),
        guess.clicks,
        guess.cannot_earn,
        level,
        weekday,
        key_phi,
        tau2,
        max(weekday_variance, 0.0),
    )


def risk_bounded_bid_units(estimate: RiskBoundedEstimate, keys: np.ndarray, rule: BidRule) -> np.ndarray:
    """Bids (whole currency units, 0 = paused) for ``keys``: min(mean × (1 − margin), lower bound), so
    never above the predicted value × (1 − margin) (the break-even the bid rule and the bid file's
    checks hold); no bid where the analyst has no data or the keyword cannot earn."""
    return max_cpc_units(risk_bounded_values(estimate, keys, rule), rule)


def risk_bounded_values(estimate: RiskBoundedEstimate, keys: np.ndarray, rule: BidRule) -> np.ndarray:
    """The value per click ``max_cpc_units`` bids from: min(mean, lower bound / (1 − margin)); 0 where
    the analyst has no data or the keyword cannot earn."""
    if len(estimate.keys) == 0:
        return np.zeros(len(keys))
    at = np.clip(np.searchsorted(estimate.keys, keys), 0, len(estimate.keys) - 1)
    found = estimate.keys[at] == keys
    bounded = np.minimum(estimate.value_per_click, estimate.lower_bound / (1.0 - rule.target_margin))
    return np.where(found & ~estimate.cannot_earn[at], bounded[at], 0.0)
