"""The bid rule: how a predicted value per click becomes a max CPC, with its guardrails.

Max CPC = predicted value per click × (1 − target margin), rounded *down* to the currency unit and
capped at the ceiling. A keyword whose bid would fall below the floor gets no bid: raising it to the
floor would bid at a loss.

Two guardrails (``guarded_bid_units``), neither of which may ever lift a bid above the keyword's
predicted value per click × (1 − margin):
- shrinkage: a keyword with little evidence (few clicks in its lag window) has its value pulled toward
  its ad group's click-weighted mean prediction, weight clicks / (clicks + ``shrinkage_clicks``), and
  only ever downward (the ad group cannot vouch for more than the keyword's own prediction);
- a day-over-day change cap: against the bid published for the previous day, a bid moves by at most
  ``max_daily_change`` (up or down), except that it never goes above the break-even limit.

numpy and pyarrow only: the bid file, the backtest and the checks all compute bids here.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from astro_assets.core.features import KEYWORD_PAIR


@dataclass(frozen=True)
class BidRule:
    """How a predicted value per click becomes a max CPC (account currency). The ``bid_policy``
    resource converts its configuration to this value object; every bid is computed from it."""

    target_margin: float = 0.2
    floor: float = 0.05
    ceiling: float = 25.0
    currency_unit: float = 0.01
    #: A bid moves at most this fraction from the previous day's bid (None: no cap).
    max_daily_change: float | None = 0.25
    #: Clicks of evidence at which a keyword's prediction and its ad group's count equally.
    shrinkage_clicks: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.target_margin < 1.0:
            raise ValueError(f"target_margin={self.target_margin} must be in [0, 1)")
        if not 0.0 < self.floor <= self.ceiling:
            raise ValueError(f"floor={self.floor} and ceiling={self.ceiling} need 0 < floor <= ceiling")
        if self.currency_unit <= 0:
            raise ValueError(f"currency_unit={self.currency_unit} must be positive")
        if self.max_daily_change is not None and not 0.0 < self.max_daily_change:
            raise ValueError(f"max_daily_change={self.max_daily_change} must be positive")
        if self.shrinkage_clicks < 0:
            raise ValueError(f"shrinkage_clicks={self.shrinkage_clicks} must not be negative")

    @property
    def floor_units(self) -> int:
        return int(np.ceil(self.floor / self.currency_unit - 1e-9))

    def break_even(self, predicted: np.ndarray) -> np.ndarray:
        """The most a click may cost: predicted value per click × (1 − margin)."""
        return np.asarray(predicted, dtype=np.float64) * (1.0 - self.target_margin)


def max_cpc_units(predicted: np.ndarray, rule: BidRule) -> np.ndarray:
    """Max CPC in whole currency units (cents); 0 means no bid.

    Never above ``rule.break_even`` nor the ceiling; never below the floor (below it: no bid);
    NaN, infinite or negative predictions get no bid.
    """
    units = units_at_most(bid_limit(predicted, rule), rule)
    units[units < rule.floor_units] = 0
    return units


def bid_limit(predicted: np.ndarray, rule: BidRule) -> np.ndarray:
    """The most a bid may be, in currency: break-even capped at the ceiling; 0 for a NaN, infinite or
    non-positive prediction."""
    break_even = rule.break_even(predicted)
    valid = np.isfinite(break_even) & (break_even > 0)
    return np.where(valid, np.minimum(break_even, rule.ceiling), 0.0)


def units_at_most(limit: np.ndarray, rule: BidRule) -> np.ndarray:
    """``limit`` (currency) rounded down to whole units."""
    # Round down to the unit, with a hair of slack for values that are a whole number of units but
    # land a few ulps below it in floating point (0.3625 × 0.8 is 0.29, not 0.28999...).
    units = np.floor(limit / rule.currency_unit + 1e-9).astype(np.int64)
    # Never above the limit by more than that floating-point hair (MONEY_TOLERANCE in the checks).
    units -= (units * rule.currency_unit > limit + 1e-9).astype(np.int64)
    return units


def shrunk_value(predicted: np.ndarray, clicks: np.ndarray, ad_group: np.ndarray, rule: BidRule) -> np.ndarray:
    """Each keyword's predicted value per click pulled toward its ad group's click-weighted mean
    prediction with weight ``clicks / (clicks + shrinkage_clicks)``, never above its own prediction."""
    predicted = np.asarray(predicted, dtype=np.float64)
    clicks = np.maximum(np.nan_to_num(np.asarray(clicks, dtype=np.float64)), 0.0)
    usable = np.isfinite(predicted) & (predicted > 0)
    groups, group = np.unique(np.asarray(ad_group), return_inverse=True)
    weight = np.where(usable, clicks + 1.0, 0.0)  # +1: an ad group of keywords without clicks still has a mean
    total = np.bincount(group, weights=weight, minlength=len(groups))
    value = np.bincount(group, weights=np.where(usable, predicted, 0.0) * weight, minlength=len(groups))
    group_value = np.divide(value, total, out=np.zeros(len(groups)), where=total > 0)[group]
    trust = clicks / (clicks + rule.shrinkage_clicks) if rule.shrinkage_clicks > 0 else np.ones_like(clicks)
    shrunk = trust * predicted + (1.0 - trust) * group_value
    return np.where(usable, np.minimum(shrunk, predicted), predicted)


@dataclass(frozen=True)
class GuardedBids:
    units: np.ndarray  # the bids, whole currency units; 0 = no bid
    before_change_cap: np.ndarray  # the bids shrinkage alone would give
    effects: dict[str, int]


def guarded_bid_units(
    predicted: np.ndarray,
    rule: BidRule,
    clicks: np.ndarray | None = None,
    ad_group: np.ndarray | None = None,
    previous_units: np.ndarray | None = None,
) -> GuardedBids:
    """Bids with the guardrails: shrinkage toward the ad group (when ``clicks`` and ``ad_group`` are
    given) and the day-over-day change cap against ``previous_units`` (0 = no bid yesterday).

    Invariants, for any input: no bid above ``bid_limit`` (break-even and ceiling), none below the
    floor, and where yesterday had a bid and the limit allows, at most ``max_daily_change`` away from it.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    limit_units = max_cpc_units(predicted, rule)  # the unguarded bid: 0 where it cannot cover the floor
    value = predicted if clicks is None or ad_group is None else shrunk_value(predicted, clicks, ad_group, rule)
    units = np.minimum(max_cpc_units(value, rule), limit_units)
    before_cap = units.copy()
    effects = {"lowered_by_shrinkage": int((units < limit_units).sum())}
    if previous_units is not None and rule.max_daily_change is not None:
        previous = np.asarray(previous_units, dtype=np.int64)
        had_bid = (previous > 0) & (limit_units > 0)
        low = np.ceil(previous * (1.0 - rule.max_daily_change) - 1e-9).astype(np.int64)
        high = np.floor(previous * (1.0 + rule.max_daily_change) + 1e-9).astype(np.int64)
        capped = np.minimum(np.clip(units, low, high), limit_units)
        units = np.where(had_bid, capped, units)
        units[units < rule.floor_units] = 0
        effects["raised_by_change_cap"] = int((units > before_cap).sum())
        effects["lowered_by_change_cap"] = int((units < before_cap).sum())
    return GuardedBids(units, before_cap, effects)


def format_money(units: np.ndarray, rule: BidRule) -> pa.Array:
    """Whole currency units as decimal strings ("12.34"), exactly: no float formatting involved."""
    decimals = max(0, int(round(-np.log10(rule.currency_unit))))
    units = pa.array(np.asarray(units, dtype=np.int64))
    if decimals == 0:
        return pc.cast(units, pa.string())
    scale = 10**decimals
    whole = pc.cast(pc.divide(units, scale), pa.string())  # integer division on int64
    fraction = pc.utf8_lpad(
        pc.cast(pc.subtract(units, pc.multiply(pc.divide(units, scale), scale)), pa.string()),
        width=decimals,
        padding="0",
    )
    return pc.binary_join_element_wise(whole, fraction, ".")


def _pair_keys(*tables: pa.Table) -> list[str]:
    """The identity columns every table has: the pair, or ``keyword_id`` alone for a legacy table."""
    return [key for key in KEYWORD_PAIR if all(key in t.column_names for t in tables)]


def lookup(keywords: pa.Table, other: pa.Table, column: str) -> tuple[np.ndarray, pa.ChunkedArray]:
    """For each row of ``keywords``: whether ``other`` has its keyword (matched on the pair), and
    ``other[column]`` there (null where it has none), in the order of ``keywords``."""
    keys = _pair_keys(keywords, other)
    n = keywords.num_rows
    left = keywords.select(keys).append_column("_row", pa.array(np.arange(n, dtype=np.int64)))
    right = other.select([*keys, column]).append_column("_found", pa.array(np.ones(other.num_rows, dtype=bool)))
    joined = left.join(right, keys, join_type="left outer", use_threads=False)
    order = pc.sort_indices(joined.column("_row"))
    joined = joined.take(order)
    if joined.num_rows != n:
        raise ValueError(f"{joined.num_rows - n} keywords appear more than once in the table they are looked up in")
    found = pc.fill_null(joined.column("_found"), False).to_numpy(zero_copy_only=False)
    return np.asarray(found, dtype=bool), joined.column(column)


def previous_units_of(keywords: pa.Table, previous: pa.Table | None, rule: BidRule) -> np.ndarray | None:
    """The previous day's bid (whole units, 0 = none) of each keyword, matched on the pair
    (ad_group_id, keyword_id) from the previous day's table (ad_group_id, keyword_id, max_cpc); a
    legacy table without ad_group_id is matched on keyword_id."""
    if previous is None:
        return None
    found, cpc = lookup(keywords, previous, "max_cpc")
    cpc = np.nan_to_num(cpc.to_numpy(zero_copy_only=False).astype(np.float64))
    return np.where(found, np.rint(cpc / rule.currency_unit), 0).astype(np.int64)


def units_to_micros(units: np.ndarray, rule: BidRule) -> np.ndarray:
    """Whole currency units as micros (the Google Ads API's money: currency × 1,000,000), exactly."""
    return np.asarray(units, dtype=np.int64) * int(round(rule.currency_unit * 1_000_000))


# -- status: who may pause and enable a keyword ------------------------------------------------------

#: Keyword statuses (the Google Ads API's names; Editor spells them Enabled / Paused).
ENABLED = "ENABLED"
PAUSED = "PAUSED"
#: A keyword removed in the account (itself, or its ad group or campaign): final. Google Ads refuses any
#: change to a removed resource (OperationAccessDeniedError.OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE,
#: https://developers.google.com/google-ads/api/reference/rpc/v26/OperationAccessDeniedErrorEnum.OperationAccessDeniedError),
#: so a removed keyword's row in the keyword table says REMOVED and it gets no Editor row and no API operation.
REMOVED = "REMOVED"
#: Statuses a person sets that Astro must never undo (a removed keyword cannot be enabled either).
INACTIVE_STATUSES = (PAUSED, REMOVED)


@dataclass(frozen=True)
class KeywordStates:
    """What each keyword's row says: its status, whether the row writes a bid and the status, and
    whether the keyword stands paused by Astro (recorded, so that Astro undoes its own pauses only)."""

    paused: np.ndarray  # the keyword's status after the import: PAUSED (True) or ENABLED
    writes_bid: np.ndarray  # the row carries a Max CPC
    writes_status: np.ndarray  # the row carries a status (else the account's status is left as it is)
    paused_by_astro: np.ndarray  # paused by Astro and not yet undone
    paused_by_account: np.ndarray  # paused by a person: Astro never enables it
    removed: np.ndarray  # removed in the account (itself, its ad group or campaign): no bid, no status, no row
    effects: dict[str, int]


def keyword_states(
    earns: np.ndarray,
    keyword_paused: np.ndarray,
    parent_paused: np.ndarray,
    paused_by_astro_before: np.ndarray,
    removed: np.ndarray | None = None,
) -> KeywordStates:
    """The status rule, for every scored keyword:

    - a keyword whose bid can earn gets its bid; if Astro paused it and its ad group and campaign
      are active, the row enables it again (the only case where Astro writes Enabled);
    - a keyword whose bid cannot earn (below the floor, invalid prediction) is paused: the row says
      Paused and carries no bid; the pause is Astro's unless a person had already paused it;
    - a keyword the report says is paused (or removed) and that Astro did not pause was paused by a
      person: it keeps its status (it may get a bid, never Enabled); so does a keyword Astro paused
      whose ad group or campaign a person has paused since (it stays recorded as Astro's pause and is
      enabled once they are active again);
    - a keyword the report says is removed, or whose ad group or campaign is, is none of these: removal
      is final and Google Ads refuses any change to it, so it writes no bid and no status, is neither
      paused nor Astro's pause (a pause Astro recorded before ends: Astro can never undo it).

    ``keyword_paused``/``parent_paused``: the report says the keyword / its ad group or campaign is
    paused or removed; ``paused_by_astro_before``: the last published day records Astro's pause;
    ``removed``: the report says the keyword, its ad group or its campaign is removed (default: none).
    """
    earns, keyword_paused, parent_paused, before = (
        np.asarray(a, dtype=bool) for a in (earns, keyword_paused, parent_paused, paused_by_astro_before)
    )
    removed = np.zeros(len(earns), dtype=bool) if removed is None else np.asarray(removed, dtype=bool)
    active = ~removed
    by_account = keyword_paused & ~before & active
    astro_pause = ~earns & ~by_account & active
    kept = earns & before & parent_paused & active
    undo = earns & before & ~parent_paused & active
    paused_by_astro = astro_pause | kept
    paused = by_account | paused_by_astro
    writes_status = (~earns & active) | undo
    effects = {
        "paused_by_astro_new": int((astro_pause & ~before).sum()),
        "paused_by_astro_still": int((astro_pause & before).sum()),
        "enabled_again": int(undo.sum()),
        "kept_paused_under_paused_parent": int(kept.sum()),
        "paused_by_account": int(by_account.sum()),
        "paused_by_account_with_bid": int((by_account & earns).sum()),
        "removed_in_account": int(removed.sum()),
    }
    return KeywordStates(paused, earns & active, writes_status, paused_by_astro, by_account, removed.copy(), effects)
