"""The embedded keyword report source: a deterministic synthetic Google Ads account.

A keyword population is drawn once from the seed (match type, quality, traffic, click-through,
conversion rate, value per conversion, a slow trend); each day is then drawn from ``(seed, date)``
alone, so any day can be computed on its own (backfills are independent) and reruns are identical.
Value per click has structure a model can learn: it depends on the campaign, the match type and the
quality, has weekly seasonality and a slow trend, and is observed through noisy daily counts.
Impressions are long-tailed (lognormal: most keywords have a few, a few have most); some keywords
are launched during the year (absent before their launch day) and any keyword may be paused for a
week now and then. The generator also knows what a click really costs in the auction (``market_cpc``),
which the backtest uses to replay bids.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from astro_assets.core.features import MATCH_TYPES

EPOCH = dt.date(2026, 1, 1)
#: Monday .. Sunday multipliers.
WEEKDAY_IMPRESSIONS = np.array([1.10, 1.08, 1.04, 1.00, 0.95, 0.80, 0.78])
WEEKDAY_CONVERSION_RATE = np.array([1.00, 1.02, 1.06, 1.06, 1.12, 0.82, 0.78])
KEYWORDS_PER_AD_GROUP = 25
TREND_PERIOD_DAYS = 120.0
#: Share of keywords launched during the year (absent before their launch day), and the window of
#: launch days around EPOCH they are drawn from.
LAUNCHED_SHARE = 0.15
LAUNCH_WINDOW_DAYS = (-180, 300)
#: Chance that a keyword is paused for a given week (Monday to Sunday).
WEEKLY_PAUSE_RATE = 0.03
#: Spread (lognormal sigma) of the clearing price of a click around the keyword's market CPC.
AUCTION_PRICE_SIGMA = 0.35
FIRST_KEYWORD_ID = 100_000_000

_ADJECTIVES = np.array(
    "cheap best buy new used discount luxury organic wireless portable smart vintage handmade "
    "waterproof lightweight kids mens womens eco professional compact large small premium fast "
    "quiet classic modern budget custom digital electric outdoor indoor foldable rechargeable "
    "stainless leather wooden cotton ceramic glass bamboo vegan local online top rated".split()
)
_PRODUCTS = np.array(
    "shoes boots sneakers jacket backpack headphones speaker laptop tablet phone case charger "
    "watch camera lens tripod drone bike helmet tent sleeping-bag stove kettle blender mixer "
    "toaster coffee-maker grinder vacuum lamp desk chair sofa mattress pillow blanket towel "
    "rug curtains mirror clock plant pot vase frame candle perfume shampoo razor toothbrush "
    "sunglasses wallet belt scarf gloves hat socks dress shirt jeans skirt coat hoodie "
    "swimsuit yoga-mat dumbbells treadmill racket ball skates skis snowboard kayak paddle "
    "fishing-rod grill cooler thermos bottle lunchbox knife pan pot-set wok oven fridge "
    "washer dryer printer monitor keyboard mouse router".split()
)
_MODIFIERS = np.array(
    "online near-me sale deals reviews price 2026 uk us shop store delivery free-shipping "
    "outlet black-friday gift set kit repair rental".split()
)
_CATEGORIES = np.array(
    "Footwear Outerwear Audio Computing Mobile Photo Outdoor Kitchen Home Furniture Bedding "
    "Beauty Accessories Apparel Fitness Sports Appliances Office".split()
)


@dataclass(frozen=True)
class KeywordPopulation:
    """Per-keyword parameters of the synthetic account (arrays of length ``keywords``)."""

    keyword_id: np.ndarray
    campaign_index: np.ndarray
    ad_group_index: np.ndarray
    match: np.ndarray  # index into MATCH_TYPES
    quality: np.ndarray  # 0..1
    base_impressions: np.ndarray
    ctr: np.ndarray
    conversion_rate: np.ndarray
    value_per_conversion: np.ndarray
    cost_ratio: np.ndarray  # cost per click / expected value per click
    trend_amplitude: np.ndarray
    trend_phase: np.ndarray
    launch_day: np.ndarray  # days since EPOCH of the keyword's launch (very negative: always there)
    n_campaigns: int


@lru_cache(maxsize=2)
def keyword_population(seed: int, keywords: int) -> KeywordPopulation:
    if keywords <= 0:
        raise ValueError(f"keywords must be positive, got {keywords}")
    rng = np.random.default_rng([seed, 0x4B57])
    i = np.arange(keywords, dtype=np.int64)
    ad_group = i // KEYWORDS_PER_AD_GROUP
    n_ad_groups = int(ad_group[-1]) + 1
    n_campaigns = int(min(max(1, n_ad_groups // 40), 500))
    campaign = (ad_group * n_campaigns) // n_ad_groups
    match = rng.choice(3, size=keywords, p=[0.40, 0.35, 0.25]).astype(np.int8)
    quality = rng.beta(2.0, 2.0, keywords)
    base_impressions = rng.lognormal(3.0, 1.5, keywords)
    ctr = np.array([0.08, 0.05, 0.03])[match] * (0.5 + quality)
    campaign_value = rng.lognormal(3.2, 0.5, n_campaigns)
    value_per_conversion = campaign_value[campaign] * rng.lognormal(0.0, 0.3, keywords)
    conversion_rate = rng.beta(2.0, 40.0, keywords) * (0.7 + 0.6 * quality) * np.array([1.2, 1.0, 0.8])[match]
    cost_ratio = rng.uniform(0.3, 0.9, keywords)
    trend_amplitude = rng.normal(0.0, 0.2, keywords)
    trend_phase = rng.uniform(0.0, 2 * np.pi, keywords)
    launch_day = np.where(
        rng.random(keywords) < LAUNCHED_SHARE, rng.integers(*LAUNCH_WINDOW_DAYS, keywords), np.iinfo(np.int32).min
    )
    return KeywordPopulation(
        keyword_id=FIRST_KEYWORD_ID + i,
        campaign_index=campaign,
        ad_group_index=ad_group,
        match=match,
        quality=quality,
        base_impressions=base_impressions,
        ctr=ctr,
        conversion_rate=conversion_rate,
        value_per_conversion=value_per_conversion,
        cost_ratio=cost_ratio,
        trend_amplitude=trend_amplitude,
        trend_phase=trend_phase,
        launch_day=launch_day,
        n_campaigns=n_campaigns,
    )


def keyword_index(keyword_ids: np.ndarray) -> np.ndarray:
    """Position of synthetic keyword ids in the population arrays."""
    return np.asarray(keyword_ids, dtype=np.int64) - FIRST_KEYWORD_ID


def _trend(pop: KeywordPopulation, day: dt.date) -> np.ndarray:
    t = (day - EPOCH).days / TREND_PERIOD_DAYS
    return np.exp(pop.trend_amplitude * np.sin(2 * np.pi * t + pop.trend_phase))


def expected_value_per_click(seed: int, keywords: int, day: dt.date) -> np.ndarray:
    """The true expected conversion value per click of every keyword on ``day`` (ground truth)."""
    pop = keyword_population(seed, keywords)
    rate = np.minimum(pop.conversion_rate * WEEKDAY_CONVERSION_RATE[day.weekday()] * _trend(pop, day), 0.95)
    return rate * pop.value_per_conversion


def market_cpc(seed: int, keywords: int, day: dt.date) -> np.ndarray:
    """The typical price of a click of every keyword on ``day`` in the auction (what the account's
    reported cost per click is drawn around); single clicks clear around it with spread
    ``AUCTION_PRICE_SIGMA``."""
    pop = keyword_population(seed, keywords)
    return expected_value_per_click(seed, keywords, day) * pop.cost_ratio


def active(seed: int, keywords: int, day: dt.date) -> np.ndarray:
    """Which keywords run on ``day``: launched by then and not paused that week."""
    pop = keyword_population(seed, keywords)
    week = (day.toordinal() - 1) // 7  # Monday to Sunday (day 1 of the proleptic calendar is a Monday)
    paused = np.random.default_rng([seed, 0x9A05, week]).random(keywords) < WEEKLY_PAUSE_RATE
    return (pop.launch_day <= (day - EPOCH).days) & ~paused


def _names(pop: KeywordPopulation) -> dict[str, pa.Array]:
    i = np.arange(len(pop.keyword_id))
    keyword_text = pc.binary_join_element_wise(
        pa.array(_ADJECTIVES).take(pa.array(i % len(_ADJECTIVES))),
        pa.array(_PRODUCTS).take(pa.array((i // len(_ADJECTIVES)) % len(_PRODUCTS))),
        pa.array(_MODIFIERS).take(pa.array((i // 7) % len(_MODIFIERS))),
        " ",
    )
    campaign_names = pa.array([f"C{c:03d} {_CATEGORIES[c % len(_CATEGORIES)]}" for c in range(pop.n_campaigns)])
    n_ad_groups = int(pop.ad_group_index[-1]) + 1
    ad_group_names = pa.array([f"AG{g:06d} {_PRODUCTS[g % len(_PRODUCTS)]}" for g in range(n_ad_groups)])
    return {
        "campaign_name": campaign_names.take(pa.array(pop.campaign_index)),
        "ad_group_name": ad_group_names.take(pa.array(pop.ad_group_index)),
        "keyword_text": keyword_text,
        "match_type": pa.array(np.array(MATCH_TYPES)).take(pa.array(pop.match)),
    }


@lru_cache(maxsize=2)
def _cached_names(seed: int, keywords: int) -> dict[str, pa.Array]:
    return _names(keyword_population(seed, keywords))


def keyword_report(seed: int, keywords: int, day: dt.date) -> pa.Table:
    """One day of the keyword performance report, Google Ads fields, one row per active keyword.

    Keywords with no impressions that day are absent (as in a real report), and so are keywords not
    yet launched or paused that week (``active``); 2% more are absent as reporting gaps; 5% of
    conversion values are null (tracking gaps); quality score and search impression share are null
    where Google would not report them.
    """
    pop = keyword_population(seed, keywords)
    rng = np.random.default_rng([seed, day.toordinal()])
    n = keywords
    weekday = day.weekday()
    impressions = rng.poisson(pop.base_impressions * WEEKDAY_IMPRESSIONS[weekday] * rng.lognormal(0.0, 0.25, n))
    clicks = rng.binomial(impressions, np.minimum(pop.ctr, 0.9))
    value_per_click = expected_value_per_click(seed, keywords, day)
    conversion_rate = value_per_click / pop.value_per_conversion
    conversions = rng.binomial(clicks, conversion_rate)
    conversion_value = np.round(conversions * pop.value_per_conversion * rng.lognormal(0.0, 0.25, n), 2)
    market = value_per_click * pop.cost_ratio  # market_cpc(seed, keywords, day), without computing it twice
    cost_micros = np.round(clicks * market * rng.lognormal(0.0, 0.1, n) * 1e6)
    quality_score = np.rint(1 + 9 * pop.quality).astype(np.int64)
    impression_share = np.clip(0.3 + 0.5 * pop.quality + rng.normal(0.0, 0.08, n), 0.1, 1.0)

    gap = rng.random(n) < 0.02
    value_missing = rng.random(n) < 0.05
    quality_missing = (pop.base_impressions < 3.0) | (rng.random(n) < 0.03)
    share_missing = rng.random(n) < 0.08
    present = (impressions > 0) & ~gap & active(seed, keywords, day)

    names = _cached_names(seed, keywords)
    idx = np.flatnonzero(present)
    take = pa.array(idx)
    table = pa.table(
        {
            "campaign_id": pa.array(1_000 + pop.campaign_index[idx]),
            "campaign_name": names["campaign_name"].take(take),
            "ad_group_id": pa.array(10_000_000 + pop.ad_group_index[idx]),
            "ad_group_name": names["ad_group_name"].take(take),
            "keyword_id": pa.array(pop.keyword_id[idx]),
            "keyword_text": names["keyword_text"].take(take),
            "match_type": names["match_type"].take(take),
            "impressions": pa.array(impressions[idx].astype(np.int64)),
            "clicks": pa.array(clicks[idx].astype(np.int64)),
            "cost_micros": pa.array(cost_micros[idx].astype(np.int64)),
            "conversions": pa.array(conversions[idx].astype(np.float64)),
            "conversion_value": pa.array(conversion_value[idx], mask=value_missing[idx]),
            "quality_score": pa.array(quality_score[idx], mask=quality_missing[idx]),
            "search_impression_share": pa.array(impression_share[idx], mask=share_missing[idx]),
        }
    )
    return table
