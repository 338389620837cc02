"""The embedded keyword report source: a deterministic synthetic Google Ads account.

A keyword population is drawn once from the seed (match type, quality, traffic, click-through,
conversion rate, value per conversion, a slow trend); each day is then drawn from ``(seed, date)``
alone, so any day can be computed on its own (backfills are independent) and reruns are identical.
Value per click has structure a model can learn: it depends on the campaign, the match type and the
quality, has weekly seasonality and a slow trend, and is observed through noisy daily counts.
Impressions are long-tailed (lognormal: most keywords have a few, a few have most); some keywords
are launched during the year (absent before their launch day) and any keyword may be paused for a
week now and then.

The market has consequences (README "The synthetic account"):
- competitors set a price level per keyword-day (``market_cpc``) that is only modestly correlated with
  the advertiser's own value per click (corr of the logs about 0.4, ``MARKET_VALUE_ELASTICITY``); a click
  clears at max(reserve, lognormal(market, ``AUCTION_PRICE_SIGMA``)) and the reserve (the lowest price at
  which the ad shows at all) is ``market · exp(-RESERVE_Z · σ)``, so a keyword whose value per click is
  below its reserve loses money at any bid (about 30% of keyword-days);
- impressions, clicks, cost and impression share depend on the bid live that day: a bid b wins the
  share Φ(ln(b / market) / σ) of the impressions on offer (none below the reserve) and pays the clearing
  prices below it. The raw source's bid is the account's own historical bid (``account_bid``), a
  per-keyword series drawn here, so every day stays computable on its own; the backtest passes its
  policy's bids instead (``keyword_report(..., bids=...)``);
- conversions are credited to the click's day and arrive over the following days (``LAG_PROFILE``):
  ``keyword_report(..., reported_on=R)`` is the day as downloaded on the morning of day R (only what
  arrived by R - 1), ``reported_on=None`` the complete day;
- shocks: a tracking outage zeroes one campaign's reported conversions for a day (``OUTAGE_RATE`` of
  days), a campaign's price jumps for a week (``PRICE_JUMP_*``), and a seasonal peak (``PEAK_*``,
  Black Friday week) lifts traffic, conversion rate and prices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtr

from astro_assets.core.features import MATCH_TYPES
from astro_assets.storage.raw import RawBlocks

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
#: The reserve (the lowest clearing price: below it the ad does not show) is market · exp(-RESERVE_Z · σ).
RESERVE_Z = 1.0
#: log market price = MARKET_VALUE_ELASTICITY · (log value per click − its mean) + N(0, MARKET_SPREAD)
#: + MARKET_LEVEL around the mean log value: competitors' prices follow the advertiser's value only a
#: little (corr of the logs ≈ 0.4, measured in test_market.py), and MARKET_LEVEL puts about a third of
#: keyword-days below their reserve (they lose money at any bid).
MARKET_VALUE_ELASTICITY = 0.3
MARKET_SPREAD = 0.6
MARKET_LEVEL = -0.1
#: Day-to-day wobble of a keyword's market price (lognormal sigma).
MARKET_DAILY_SIGMA = 0.12
#: The account's historical bid: its ad group's mean value per click × ACCOUNT_BID_RATIO × a per-keyword
#: lognormal(0, ACCOUNT_BID_SPREAD) × a weekly lognormal(0, ACCOUNT_BID_WEEKLY_SIGMA) (a manager who
#: bids by ad group and revises weekly).
ACCOUNT_BID_RATIO = 1.0
ACCOUNT_BID_SPREAD = 0.35
ACCOUNT_BID_WEEKLY_SIGMA = 0.1
#: Share of a click day's conversions that arrive 0, 1, 2, ... days after it (the last entry takes the tail).
LAG_PROFILE = np.array([0.45, 0.22, 0.13, 0.08, 0.05, 0.03, 0.02, 0.01, 0.01])
LAG_PROFILE = LAG_PROFILE / LAG_PROFILE.sum()
#: Chance that a day has a tracking outage: one campaign reports no conversions that day (ever).
OUTAGE_RATE = 0.25
#: Each quarter a campaign's competitors raise prices by PRICE_JUMP_FACTOR for PRICE_JUMP_DAYS, with this chance.
PRICE_JUMP_RATE = 0.5
PRICE_JUMP_FACTOR = 1.5
PRICE_JUMP_DAYS = 7
#: The seasonal peak (Black Friday week, every year): traffic, conversion rate and prices rise.
PEAK_DAYS = ((11, 20), (11, 30))  # (month, day) first and last
PEAK_IMPRESSIONS, PEAK_CONVERSION_RATE, PEAK_PRICE = 1.4, 1.3, 1.2
FIRST_KEYWORD_ID = 100_000_000
#: Keywords drawn at once. An account of more is drawn block by block, each block from streams of its own
#: (``BLOCK_STREAM``), so that drawing a day needs the memory of one block, not of the account (issue 16:
#: 100M keywords on one machine). An account of at most this many keywords is one block, drawn exactly
#: as it always was: every figure measured on such an account stands. Blocks hold whole ad groups.
POPULATION_BLOCK = 10_000_000
BLOCK_STREAM = 0xB10C
#: Share of keywords that repeat a keyword of the previous ad group of their campaign (same text, match
#: type and traits): Google Ads gives them the same criterion id, so they differ by ad group id only.
SHARED_CRITERION_SHARE = 0.05

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
    market_level: np.ndarray  # competitors' typical price per click (before daily moves and shocks)
    account_bid_level: np.ndarray  # the account's historical max CPC (before its weekly revisions)
    trend_amplitude: np.ndarray
    trend_phase: np.ndarray
    launch_day: np.ndarray  # days since EPOCH of the keyword's launch (very negative: always there)
    n_campaigns: int


def blocks(keywords: int) -> int:
    """How many blocks an account of ``keywords`` keywords is drawn in (``POPULATION_BLOCK``)."""
    return max(1, -(-keywords // POPULATION_BLOCK))


def block_of(keywords: int, block: int | None) -> int:
    """``block``, checked; None means the whole account, which must then be a single block."""
    count = blocks(keywords)
    if block is None:
        if count > 1:
            raise ValueError(
                f"an account of {keywords:,} keywords is drawn in {count} blocks of {POPULATION_BLOCK:,}: "
                f"pass block=0..{count - 1}"
            )
        return 0
    if not 0 <= block < count:
        raise ValueError(f"block {block} is not one of the {count} blocks of an account of {keywords:,} keywords")
    return block


def campaign_count(keywords: int) -> int:
    """Campaigns of an account of ``keywords`` keywords: one per 40 ad groups, between 1 and 500."""
    return int(min(max(1, ((keywords - 1) // KEYWORDS_PER_AD_GROUP + 1) // 40), 500))


def _rng(block: int, *key: int) -> np.random.Generator:
    """The stream ``key`` of a block: block 0's is the stream the whole account always used."""
    return np.random.default_rng(list(key) if block == 0 else [*key, BLOCK_STREAM, block])


def keyword_population(seed: int, keywords: int, block: int | None = None) -> KeywordPopulation:
    """The keyword parameters of the account, or of one of its blocks (``blocks``): the keywords from
    ``block × POPULATION_BLOCK``, whose ids, ad groups and campaigns are the account's."""
    if keywords <= 0:
        raise ValueError(f"keywords must be positive, got {keywords}")
    return _population(seed, keywords, block_of(keywords, block))


@lru_cache(maxsize=2)
def _population(seed: int, keywords: int, block: int) -> KeywordPopulation:
    return _draw_population(seed, keywords, block)[0]


def release_blocks() -> None:
    """Forget the cached populations and names: an account of several blocks drawn block by block then
    holds one block at a time."""
    _population.cache_clear()
    _cached_names.cache_clear()


@lru_cache(maxsize=2)
def _account_constants(seed: int, keywords: int) -> tuple[np.ndarray, float]:
    """What every block shares with the first: its campaigns' values and the centre of its log value
    per click (block 0's mean, over up to ``POPULATION_BLOCK`` keywords)."""
    _, campaign_value, centre = _draw_population(seed, keywords, 0)
    return campaign_value, centre


def _draw_population(seed: int, keywords: int, block: int) -> tuple[KeywordPopulation, np.ndarray, float]:
    rng = _rng(block, seed, 0x4B57)
    first = block * POPULATION_BLOCK
    size = min(POPULATION_BLOCK, keywords - first)
    i = np.arange(first, first + size, dtype=np.int64)
    ad_group = i // KEYWORDS_PER_AD_GROUP
    n_ad_groups = (keywords - 1) // KEYWORDS_PER_AD_GROUP + 1
    n_campaigns = campaign_count(keywords)
    campaign = (ad_group * n_campaigns) // n_ad_groups
    match = rng.choice(3, size=size, p=[0.40, 0.35, 0.25]).astype(np.int8)
    quality = rng.beta(2.0, 2.0, size)
    base_impressions = rng.lognormal(3.0, 1.5, size)
    ctr = np.array([0.08, 0.05, 0.03])[match] * (0.5 + quality)
    campaign_value = rng.lognormal(3.2, 0.5, n_campaigns)  # drawn in every block: each block's stream stays in step
    if block > 0:
        campaign_value = _account_constants(seed, keywords)[0]
    value_per_conversion = campaign_value[campaign] * rng.lognormal(0.0, 0.3, size)
    conversion_rate = rng.beta(2.0, 40.0, size) * (0.7 + 0.6 * quality) * np.array([1.2, 1.0, 0.8])[match]
    trend_amplitude = rng.normal(0.0, 0.2, size)
    trend_phase = rng.uniform(0.0, 2 * np.pi, size)
    launch_day = np.where(
        rng.random(size) < LAUNCHED_SHARE, rng.integers(*LAUNCH_WINDOW_DAYS, size), np.iinfo(np.int32).min
    )
    # Drawn after every earlier parameter, so those keep their values.
    log_value = np.log(conversion_rate * value_per_conversion)
    centre = float(log_value.mean()) if block == 0 else _account_constants(seed, keywords)[1]
    market_level = np.exp(
        centre + MARKET_VALUE_ELASTICITY * (log_value - centre) + rng.normal(0.0, MARKET_SPREAD, size) + MARKET_LEVEL
    )
    local_group = ad_group - ad_group[0]
    group_value = np.bincount(local_group, weights=np.exp(log_value)) / np.bincount(local_group)
    account_bid_level = group_value[local_group] * ACCOUNT_BID_RATIO * rng.lognormal(0.0, ACCOUNT_BID_SPREAD, size)
    population = KeywordPopulation(
        keyword_id=FIRST_KEYWORD_ID + i,
        campaign_index=campaign,
        ad_group_index=ad_group,
        match=match,
        quality=quality,
        base_impressions=base_impressions,
        ctr=ctr,
        conversion_rate=conversion_rate,
        value_per_conversion=value_per_conversion,
        market_level=market_level,
        account_bid_level=account_bid_level,
        trend_amplitude=trend_amplitude,
        trend_phase=trend_phase,
        launch_day=launch_day,
        n_campaigns=n_campaigns,
    )
    return _share_criteria(seed, population, block), campaign_value, centre


def criterion_owners(seed: int, ad_group: np.ndarray, campaign: np.ndarray, block: int = 0) -> np.ndarray:
    """The position of the keyword whose criterion id each keyword carries: itself, or (for
    ``SHARED_CRITERION_SHARE`` of them) the keyword at the same place in the previous ad group of its
    campaign, followed back to the first of a chain (within the block: a block's first ad group shares
    with none before it)."""
    i = np.arange(len(ad_group))
    previous = i - KEYWORDS_PER_AD_GROUP
    same_campaign = np.zeros(len(i), dtype=bool)
    same_campaign[previous >= 0] = campaign[previous[previous >= 0]] == campaign[previous >= 0]
    shared = same_campaign & (_rng(block, seed, 0xC717).random(len(i)) < SHARED_CRITERION_SHARE)
    owner = np.where(shared, previous, i)
    while not np.array_equal(owner[owner], owner):
        owner = owner[owner]
    return owner


def _share_criteria(seed: int, pop: KeywordPopulation, block: int) -> KeywordPopulation:
    """The population with shared criteria: a keyword repeated in another ad group takes its first
    occurrence's criterion id, match type and traits (its own traffic volume and daily draws stay)."""
    owner = criterion_owners(seed, pop.ad_group_index, pop.campaign_index, block)
    shared = ("keyword_id", "match", "quality", "ctr", "conversion_rate", "value_per_conversion", "market_level")
    shared += ("trend_amplitude", "trend_phase", "launch_day")
    return replace(pop, **{name: getattr(pop, name)[owner] for name in shared})


def keyword_index(keyword_ids: np.ndarray) -> np.ndarray:
    """Position of synthetic keyword (criterion) ids in the population arrays: that of the criterion's
    first occurrence, whose traits (and so truth and market price) its repeats in other ad groups share."""
    return np.asarray(keyword_ids, dtype=np.int64) - FIRST_KEYWORD_ID


def _trend(pop: KeywordPopulation, day: dt.date) -> np.ndarray:
    t = (day - EPOCH).days / TREND_PERIOD_DAYS
    return np.exp(pop.trend_amplitude * np.sin(2 * np.pi * t + pop.trend_phase))


def in_peak(day: dt.date) -> bool:
    """Whether ``day`` is in the seasonal peak (Black Friday week, ``PEAK_DAYS``)."""
    return PEAK_DAYS[0] <= (day.month, day.day) <= PEAK_DAYS[1]


def expected_value_per_click(seed: int, keywords: int, day: dt.date, block: int | None = None) -> np.ndarray:
    """The true expected conversion value per click of every keyword (of the account, or of ``block``)
    on ``day`` (ground truth)."""
    pop = keyword_population(seed, keywords, block)
    peak = PEAK_CONVERSION_RATE if in_peak(day) else 1.0
    rate = np.minimum(pop.conversion_rate * WEEKDAY_CONVERSION_RATE[day.weekday()] * _trend(pop, day) * peak, 0.95)
    return rate * pop.value_per_conversion


def price_jump(seed: int, keywords: int, day: dt.date, block: int | None = None) -> np.ndarray:
    """Per keyword, the factor of its campaign's price jump on ``day`` (1 outside a jump)."""
    pop = keyword_population(seed, keywords, block)
    offset = (day - EPOCH).days
    quarter, in_quarter = divmod(offset, 91)
    rng = np.random.default_rng([seed, 0x1B3F, quarter & 0xFFFF_FFFF])
    jumps = rng.random(pop.n_campaigns) < PRICE_JUMP_RATE
    start = rng.integers(0, 91 - PRICE_JUMP_DAYS, pop.n_campaigns)
    live = jumps & (start <= in_quarter) & (in_quarter < start + PRICE_JUMP_DAYS)
    return np.where(live, PRICE_JUMP_FACTOR, 1.0)[pop.campaign_index]


def market_cpc(seed: int, keywords: int, day: dt.date, block: int | None = None) -> np.ndarray:
    """Competitors' typical price of a click of every keyword on ``day``: the keyword's market level
    (only modestly tied to the advertiser's value) × a daily wobble × its campaign's price jump × the
    seasonal peak. Single clicks clear at max(reserve, lognormal(ln market_cpc, ``AUCTION_PRICE_SIGMA``))."""
    block = block_of(keywords, block)
    pop = keyword_population(seed, keywords, block)
    wobble = _rng(block, seed, 0x3C7D, day.toordinal()).lognormal(0.0, MARKET_DAILY_SIGMA, len(pop.keyword_id))
    peak = PEAK_PRICE if in_peak(day) else 1.0
    return pop.market_level * wobble * price_jump(seed, keywords, day, block) * peak


def reserve_price(market: np.ndarray) -> np.ndarray:
    """The lowest price a click clears at (below it the ad does not show)."""
    return np.asarray(market, dtype=np.float64) * np.exp(-RESERVE_Z * AUCTION_PRICE_SIGMA)


def won_share(bid: np.ndarray, market: np.ndarray) -> np.ndarray:
    """The share of the impressions (and clicks) on offer that a max CPC ``bid`` wins: Φ(ln(b/market)/σ),
    0 below the reserve or without a bid. This is the impression share Google would report."""
    bid = np.asarray(bid, dtype=np.float64)
    market = np.asarray(market, dtype=np.float64)
    shows = (bid > 0) & (market > 0) & (bid >= reserve_price(market))
    z = np.log(np.where(shows, bid, 1.0) / np.where(market > 0, market, 1.0)) / AUCTION_PRICE_SIGMA
    return np.where(shows, ndtr(z), 0.0)


def expected_spend(bid: np.ndarray, market: np.ndarray) -> np.ndarray:
    """Expected cost per click *on offer* of a max CPC ``bid``: E[price; price <= bid] with price =
    max(reserve, lognormal(ln market, σ)); divided by ``won_share`` it is the average CPC (<= bid)."""
    bid = np.asarray(bid, dtype=np.float64)
    market = np.asarray(market, dtype=np.float64)
    sigma = AUCTION_PRICE_SIGMA
    shows = won_share(bid, market) > 0
    z = np.log(np.where(shows, bid, 1.0) / np.where(market > 0, market, 1.0)) / sigma
    z_reserve = -RESERVE_Z
    spend = reserve_price(market) * ndtr(z_reserve) + market * np.exp(sigma**2 / 2) * (
        ndtr(z - sigma) - ndtr(z_reserve - sigma)
    )
    return np.where(shows, np.maximum(spend, 0.0), 0.0)


def account_bid(seed: int, keywords: int, day: dt.date, block: int | None = None) -> np.ndarray:
    """The account's own historical max CPC of every keyword on ``day`` (what the raw source's report
    reflects): set by ad group, revised weekly."""
    block = block_of(keywords, block)
    pop = keyword_population(seed, keywords, block)
    week = (day.toordinal() - 1) // 7
    weekly = _rng(block, seed, 0x5E1D, week).lognormal(0.0, ACCOUNT_BID_WEEKLY_SIGMA, len(pop.keyword_id))
    return np.round(pop.account_bid_level * weekly, 2)


def impressions_on_offer(seed: int, keywords: int, day: dt.date, block: int | None = None) -> np.ndarray:
    """Expected impressions each keyword could get on ``day`` at a bid that wins every auction."""
    block = block_of(keywords, block)
    pop = keyword_population(seed, keywords, block)
    noise = _rng(block, seed, 0x1A90, day.toordinal()).lognormal(0.0, 0.25, len(pop.keyword_id))
    peak = PEAK_IMPRESSIONS if in_peak(day) else 1.0
    return pop.base_impressions * WEEKDAY_IMPRESSIONS[day.weekday()] * noise * peak * active(seed, keywords, day, block)


def clicks_on_offer(seed: int, keywords: int, day: dt.date, block: int | None = None) -> np.ndarray:
    """Expected clicks each keyword could get on ``day`` at a bid that wins every auction."""
    pop = keyword_population(seed, keywords, block)
    return impressions_on_offer(seed, keywords, day, block) * np.minimum(pop.ctr, 0.9)


def outage_campaign(seed: int, keywords: int, day: dt.date) -> int | None:
    """The campaign (index) whose conversion tracking is down on ``day``, if any."""
    rng = np.random.default_rng([seed, 0x0DA7, day.toordinal()])
    if rng.random() < OUTAGE_RATE:
        return int(rng.integers(campaign_count(keywords)))
    return None


#: Ad group ids of the synthetic account are AD_GROUP_ID_BASE + the ad group's index.
AD_GROUP_ID_BASE = 10_000_000


@lru_cache(maxsize=2)
def _pair_keys(seed: int, keywords: int) -> tuple[np.ndarray, np.ndarray]:
    pop = keyword_population(seed, keywords)
    keys = _pair_key(AD_GROUP_ID_BASE + pop.ad_group_index, pop.keyword_id)
    order = np.argsort(keys, kind="stable")
    return keys[order], order


def _pair_key(ad_group_ids: np.ndarray, keyword_ids: np.ndarray) -> np.ndarray:
    return (np.asarray(ad_group_ids, dtype=np.int64) << 32) + np.asarray(keyword_ids, dtype=np.int64)


def population_index(seed: int, keywords: int, ad_group_ids: np.ndarray, keyword_ids: np.ndarray) -> np.ndarray:
    """Position in the population arrays of each (ad group id, keyword id) pair of a report (a
    keyword is identified by the pair: criterion ids may repeat across ad groups); -1 if unknown."""
    keys, order = _pair_keys(seed, keywords)
    wanted = _pair_key(ad_group_ids, keyword_ids)
    at = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
    return np.where(keys[at] == wanted, order[at], -1)


def active(seed: int, keywords: int, day: dt.date, block: int | None = None) -> np.ndarray:
    """Which keywords run on ``day``: launched by then and not paused that week."""
    block = block_of(keywords, block)
    pop = keyword_population(seed, keywords, block)
    week = (day.toordinal() - 1) // 7  # Monday to Sunday (day 1 of the proleptic calendar is a Monday)
    draw = _rng(block, seed, 0x9A05, week).random(len(pop.keyword_id))
    # A shared criterion pauses everywhere (its first occurrence is in the same block).
    paused = draw[keyword_index(pop.keyword_id) - block * POPULATION_BLOCK] < WEEKLY_PAUSE_RATE
    return (pop.launch_day <= (day - EPOCH).days) & ~paused


def _names(pop: KeywordPopulation) -> dict[str, pa.Array]:
    i = keyword_index(pop.keyword_id)  # a shared criterion has its first occurrence's text
    keyword_text = pc.binary_join_element_wise(
        pa.array(_ADJECTIVES).take(pa.array(i % len(_ADJECTIVES))),
        pa.array(_PRODUCTS).take(pa.array((i // len(_ADJECTIVES)) % len(_PRODUCTS))),
        pa.array(_MODIFIERS).take(pa.array((i // 7) % len(_MODIFIERS))),
        " ",
    )
    campaign_names = pa.array([f"C{c:03d} {_CATEGORIES[c % len(_CATEGORIES)]}" for c in range(pop.n_campaigns)])
    first, last = int(pop.ad_group_index[0]), int(pop.ad_group_index[-1])  # the block's ad groups
    ad_group_names = pa.array([f"AG{g:06d} {_PRODUCTS[g % len(_PRODUCTS)]}" for g in range(first, last + 1)])
    return {
        "campaign_name": campaign_names.take(pa.array(pop.campaign_index)),
        "ad_group_name": ad_group_names.take(pa.array(pop.ad_group_index - first)),
        "keyword_text": keyword_text,
        "match_type": pa.array(np.array(MATCH_TYPES)).take(pa.array(pop.match)),
    }


@lru_cache(maxsize=2)
def _cached_names(seed: int, keywords: int, block: int) -> dict[str, pa.Array]:
    return _names(keyword_population(seed, keywords, block))


def keyword_report(
    seed: int,
    keywords: int,
    day: dt.date,
    reported_on: dt.date | None = None,
    bids: np.ndarray | None = None,
    block: int | None = None,
) -> pa.Table:
    """One day of the keyword performance report, Google Ads fields, one row per active keyword.

    ``bids`` (population order, account currency, 0 = paused) are the max CPCs live that day; by
    default the account's own historical bids (``account_bid``). They decide the impressions won (the
    reported search impression share), hence clicks, and the prices paid (cost). ``reported_on`` is
    the morning the day was downloaded: conversions (and their value) arrive over the days after the
    click (``LAG_PROFILE``), so a day downloaded on ``day + 1`` is incomplete and completes on later
    downloads (``len(LAG_PROFILE)`` days after it, it is the complete day); ``None`` is the complete
    day. The draws do not depend on ``reported_on``: two downloads of a day agree except for the
    conversions that arrived in between.

    Keywords with no impressions that day are absent (as in a real report), and so are keywords not
    yet launched or paused that week (``active``) and keywords whose bid is below the reserve; 2% more
    are absent as reporting gaps; 5% of conversion values are null (tracking gaps); a tracking outage
    zeroes one campaign's conversions on some days (``outage_campaign``); quality score and search
    impression share are null where Google would not report them ("< 10%").

    ``block``: the rows of one block of the account (``blocks``; ``bids`` then the block's); None: the
    whole account (an account of several blocks is drawn block by block and the blocks concatenated).
    """
    if reported_on is not None and reported_on <= day:
        raise ValueError(f"a day is reported the morning after it at the earliest: {day} reported on {reported_on}")
    if block is None and blocks(keywords) > 1:
        starts = [b * POPULATION_BLOCK for b in range(blocks(keywords) + 1)]
        parts = [bids[starts[b] : starts[b + 1]] if bids is not None else None for b in range(blocks(keywords))]
        return pa.concat_tables(
            keyword_report(seed, keywords, day, reported_on, part, b) for b, part in enumerate(parts)
        )
    block = block_of(keywords, block)
    pop = keyword_population(seed, keywords, block)
    n = len(pop.keyword_id)
    streams = [_rng(block, seed, day.toordinal(), k) for k in range(6)]
    live_bid = account_bid(seed, keywords, day, block) if bids is None else np.asarray(bids, dtype=np.float64)
    if live_bid.shape != (n,):
        raise ValueError(f"bids must have one entry per keyword ({n}), got shape {live_bid.shape}")
    market = market_cpc(seed, keywords, day, block)
    share = won_share(live_bid, market)
    # One stream per quantity: a different bid changes its keyword's counts, not the other draws.
    impressions = streams[0].poisson(impressions_on_offer(seed, keywords, day, block) * share)
    clicks = streams[1].binomial(impressions, np.minimum(pop.ctr, 0.9))
    value_per_click = expected_value_per_click(seed, keywords, day, block)
    conversions = streams[2].binomial(clicks, value_per_click / pop.value_per_conversion)
    value_each = pop.value_per_conversion * streams[2].lognormal(0.0, 0.25, n)
    if reported_on is not None and (reported_on - day).days < len(LAG_PROFILE):
        # [keywords with conversions, lag]: how many arrive lag days after the click day.
        converted = np.flatnonzero(conversions)
        arrived = streams[3].multinomial(conversions[converted], LAG_PROFILE)
        conversions = conversions.copy()
        conversions[converted] = arrived[:, : (reported_on - day).days].sum(axis=1)
    outage = outage_campaign(seed, keywords, day)
    if outage is not None:
        conversions = np.where(pop.campaign_index == outage, 0, conversions)
    conversion_value = np.round(conversions * value_each, 2)
    average_cpc = np.divide(expected_spend(live_bid, market), share, out=np.zeros(n), where=share > 0)
    # The day's clicks average their clearing prices around the expected one, never above the bid.
    day_cpc = np.minimum(average_cpc * streams[4].lognormal(0.0, 0.1, n), live_bid)
    cost_micros = np.floor(clicks * day_cpc * 1e6)
    quality_score = np.rint(1 + 9 * pop.quality).astype(np.int64)
    impression_share = np.clip(share + streams[4].normal(0.0, 0.03, n), 0.0, 1.0)

    misc = streams[5]
    gap = misc.random(n) < 0.02
    value_missing = misc.random(n) < 0.05
    quality_missing = (pop.base_impressions < 3.0) | (misc.random(n) < 0.03)
    share_missing = (impression_share < 0.1) | (misc.random(n) < 0.08)
    present = (impressions > 0) & ~gap & active(seed, keywords, day, block)

    names = _cached_names(seed, keywords, block)
    idx = np.flatnonzero(present)
    take = pa.array(idx)
    table = pa.table(
        {
            "campaign_id": pa.array(1_000 + pop.campaign_index[idx]),
            "campaign_name": names["campaign_name"].take(take),
            "ad_group_id": pa.array(AD_GROUP_ID_BASE + pop.ad_group_index[idx]),
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


def report_day(seed: int, keywords: int, day: dt.date) -> pa.Table | RawBlocks:
    """The day's report as the raw stage writes it: one table for an account of one block, else its
    blocks one at a time (``storage.raw.RawBlocks``), each block's cached draws forgotten once it is
    written, so that a day holds one block in memory."""
    if blocks(keywords) == 1:
        return keyword_report(seed, keywords, day)

    def each_block() -> Iterator[pa.Table]:
        for block in range(blocks(keywords)):
            yield keyword_report(seed, keywords, day, block=block)
            release_blocks()

    return RawBlocks(keywords, each_block())
