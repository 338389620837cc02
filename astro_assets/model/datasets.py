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

    def __len__(self) -> int:
        return len(self.target)

    def concat(self, other: "TrainingSet") -> "TrainingSet":
        return TrainingSet(*(np.concatenate([a, b]) for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[np.ndarray, ...]:
        return (self.features, self.target, self.clicks, self.trailing_value_per_click)


@dataclass(frozen=True)
class TrainingWindow:
    """Feature days whose next day is the target; the last pair is held out for evaluation."""

    train_days: list[dt.date]
    holdout_day: dt.date

    @classmethod
    def ending(cls, end: dt.date, training_days: int) -> "TrainingWindow":
        holdout = end - dt.timedelta(days=1)
        return cls(days_ending(holdout - dt.timedelta(days=1), training_days), holdout)

    @property
    def feature_days(self) -> list[dt.date]:
        return [*self.train_days, self.holdout_day]


def features_array(table: pa.Table, column: str = "features") -> np.ndarray:
    """The list<float> feature column of a table as a [rows, T, F] float32 array."""
    return features_matrix(table.column(column), LAGS, N_FEATURES)


def labelled_set(features: pa.Table, next_day_raw: pa.Table) -> TrainingSet:
    """Day-D features joined with day D+1's observed value per click (keywords with clicks and a known
    conversion value that day), ordered by keyword id."""
    clicks = next_day_raw.column("clicks").to_numpy(zero_copy_only=False).astype(np.float64)
    value = next_day_raw.column("conversion_value").to_numpy(zero_copy_only=False).astype(np.float64)
    labelled = (clicks > 0) & ~np.isnan(value)
    target_ids = next_day_raw.column("keyword_id").to_numpy()[labelled]
    ids = features.column("keyword_id").to_numpy()
    _, rows, target_rows = np.intersect1d(ids, target_ids, assume_unique=True, return_indices=True)
    trailing = features.column("trailing_value_per_click").to_numpy(zero_copy_only=False)
    return TrainingSet(
        features=features_array(features)[rows],
        target=(value[labelled] / clicks[labelled])[target_rows].astype(np.float32),
        clicks=clicks[labelled][target_rows].astype(np.float32),
        trailing_value_per_click=trailing[rows].astype(np.float32),
    )


def concat_sets(parts: list[TrainingSet]) -> TrainingSet:
    if not parts:
        raise MissingPartitionError("no training days")
    result = parts[0]
    for part in parts[1:]:
        result = result.concat(part)
    return result
