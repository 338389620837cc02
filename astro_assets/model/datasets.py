"""Training data: lagged features of day D paired with day D+1's observed value per click.

numpy and pyarrow only; the stages read the partitions and hand the tables in.
"""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from astro_assets.core.calendar import days_ending
from astro_assets.core.features import LAGS, N_FEATURES
from astro_assets.core.scoring import features_matrix
from astro_assets.storage import MissingPartitionError


@dataclass
class TrainingSet:
    """Lagged features with the next day's observed value per click (rows with clicks only)."""

    features: np.ndarray  # [N, T, F] float32
    target: np.ndarray  # [N] value per click on the next day
    clicks: np.ndarray  # [N] clicks on the next day (the weight of the target)
    trailing_value_per_click: np.ndarray  # [N] the trailing-mean baseline's prediction
    #: [N] each row's weight in the loss when the rows are a sample (``model.sampling``: clicks over the
    #: row's inclusion probability, so the click-weighted loss stays unbiased); None: the clicks.
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.target)

    @property
    def loss_weight(self) -> np.ndarray:
        """What each row weighs in the click-weighted loss: its sample weight, else its clicks."""
        return self.clicks if self.weight is None else self.weight

    def concat(self, other: "TrainingSet") -> "TrainingSet":
        weight = None
        if self.weight is not None or other.weight is not None:
            weight = np.concatenate([self.loss_weight, other.loss_weight])
        parts = (np.concatenate([a, b]) for a, b in zip(self.astuple(), other.astuple(), strict=True))
        return TrainingSet(*parts, weight=weight)

    def astuple(self) -> tuple[np.ndarray, ...]:
        return (self.features, self.target, self.clicks, self.trailing_value_per_click)


@dataclass(frozen=True)
class TrainingWindow:
    """Feature days whose next day is the target; the last ones are held out for evaluation: the gate
    compares on every day of ``gate_days`` (oldest first), the whole-day metrics on ``holdout_day``
    (the last)."""

    train_days: list[dt.date]
    holdout_day: dt.date
    gate_days: tuple[dt.date, ...] = ()

    @classmethod
    def ending(cls, end: dt.date, training_days: int, holdout_days: int = 1) -> "TrainingWindow":
        """The ``training_days + holdout_days`` feature days before ``end`` (the history a run builds to
        train: ``cli.run``): the model trains on the first ``training_days``, the last ``holdout_days``
        (at least one) are held out for the gate."""
        held = max(holdout_days, 1)
        days = days_ending(end - dt.timedelta(days=1), training_days + held)
        return cls(days[:-held], days[-1], tuple(days[-held:]))

    @property
    def held_out_days(self) -> list[dt.date]:
        return list(self.gate_days) or [self.holdout_day]

    @property
    def feature_days(self) -> list[dt.date]:
        return [*self.train_days, *self.held_out_days]


def features_array(table: pa.Table, column: str = "features") -> np.ndarray:
    """The features column of a table (``features.FEATURES_TYPE``, or ``list<float>``) as a [rows, T, F]
    float32 array."""
    return features_matrix(table.column(column), LAGS, N_FEATURES)


def labelled_set(features: pa.Table, next_day_raw: pa.Table) -> TrainingSet:
    """Day-D features joined with day D+1's observed value per click (keywords with clicks and a known
    conversion value that day) on the keyword (ad_group_id, keyword_id), ordered by that pair."""
    clicks = next_day_raw.column("clicks").to_numpy(zero_copy_only=False).astype(np.float64)
    value = next_day_raw.column("conversion_value").to_numpy(zero_copy_only=False).astype(np.float64)
    labelled = (clicks > 0) & ~np.isnan(value)
    rows, target_rows = _pair_join(
        (features.column("ad_group_id").to_numpy(), features.column("keyword_id").to_numpy()),
        tuple(next_day_raw.column(name).to_numpy()[labelled] for name in ("ad_group_id", "keyword_id")),
    )
    trailing = features.column("trailing_value_per_click").to_numpy(zero_copy_only=False)
    return TrainingSet(
        features=features_array(features)[rows],
        target=(value[labelled] / clicks[labelled])[target_rows].astype(np.float32),
        clicks=clicks[labelled][target_rows].astype(np.float32),
        trailing_value_per_click=trailing[rows].astype(np.float32),
    )


Pair = tuple[np.ndarray, np.ndarray]  # (ad group ids, keyword ids)


def _pair_join(left: Pair, right: Pair) -> Pair:
    """Row indices of the (ad group id, keyword id) pairs found on both sides (each side unique),
    ordered by the pair."""
    ad_groups = np.concatenate([left[0], right[0]]).astype(np.int64)
    ids = np.concatenate([left[1], right[1]]).astype(np.int64)
    order = np.lexsort((ids, ad_groups))
    same = (ad_groups[order][1:] == ad_groups[order][:-1]) & (ids[order][1:] == ids[order][:-1])
    first, second = order[:-1][same], order[1:][same]  # a pair on both sides: one row from each
    left_rows = np.where(first < len(left[0]), first, second)
    right_rows = np.where(first < len(left[0]), second, first) - len(left[0])
    return left_rows, right_rows


def concat_sets(parts: list[TrainingSet]) -> TrainingSet:
    if not parts:
        raise MissingPartitionError("no training days")
    result = parts[0]
    for part in parts[1:]:
        result = result.concat(part)
    return result
