"""The synthetic account as each policy sees it in the backtest (``Market``)."""

import datetime as dt

import numpy as np
import pyarrow as pa

from astro_assets.core.calendar import ONE_DAY, lag_window
from astro_assets.core.features import LAGS
from astro_assets.core.lagging import lagged_features
from astro_assets.model.datasets import TrainingSet, concat_sets, labelled_set
from astro_assets.sources import synthetic


class Market:
    """The synthetic account as each policy sees it: reports drawn with the policy's own bids on the
    days it bid (the account's historical bids before), read as downloaded on a given morning.

    ``policy`` is the name of a bid history (``bids``): a policy, or one arm of it (a policy at one
    target margin, ``replay.arm``) while margins are compared on validation days."""

    def __init__(self, seed: int, keywords: int):
        self.seed, self.keywords = seed, keywords
        self.bids: dict[str, dict[dt.date, np.ndarray]] = {}  # history -> day -> bids (population order)
        self._complete: dict[tuple[str | None, dt.date], pa.Table] = {}

    def report(self, policy: str | None, day: dt.date, reported_on: dt.date | None) -> pa.Table:
        bids = self.bids.get(policy, {}).get(day) if policy else None
        if reported_on is not None and (reported_on - day).days >= len(synthetic.LAG_PROFILE):
            reported_on = None  # complete by then: the same table, kept once
        if reported_on is not None:
            return synthetic.keyword_report(self.seed, self.keywords, day, reported_on=reported_on, bids=bids)
        key = (policy if bids is not None else None, day)
        if key not in self._complete:
            self._complete[key] = synthetic.keyword_report(self.seed, self.keywords, day, bids=bids)
        return self._complete[key]

    def features(self, policy: str | None, evening: dt.date) -> pa.Table:
        """Lagged features of ``evening`` as known the next morning."""
        morning = evening + ONE_DAY
        return lagged_features(evening, [self.report(policy, d, morning) for d in lag_window(evening, LAGS)])

    def index(self, table: pa.Table) -> np.ndarray:
        return synthetic.population_index(
            self.seed, self.keywords, table.column("ad_group_id").to_numpy(), table.column("keyword_id").to_numpy()
        )

    def labelled(self, days: list[dt.date], read_on: dt.date) -> TrainingSet:
        """Features of each of ``days`` (account history) with the next day's value per click as
        downloaded on ``read_on``."""
        return concat_sets(
            [labelled_set(self.features(None, d), self.report(None, d + ONE_DAY, read_on)) for d in days]
        )

    def truth(self, day: dt.date) -> np.ndarray:
        return synthetic.expected_value_per_click(self.seed, self.keywords, day)
