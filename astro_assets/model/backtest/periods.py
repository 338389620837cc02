"""The backtest's setup and its three disjoint periods: training, validation (every choice) and test
(the figures). ``periods_of`` refuses a test period that shares a day with the days choices used."""

import datetime as dt
from dataclasses import dataclass, field

from astro_assets.core.calendar import ONE_DAY, days_ending
from astro_assets.model.analyst import RISK_LEVEL
from astro_assets.model.baselines import GBDT_GRID, GbdtParams
from astro_assets.model.network import TrainingParams
from astro_assets.model.training import NETWORK_GRID

#: The backtest's defaults: the size the targets are stated for, ending on a fixed day (reproducible).
DEFAULT_KEYWORDS = 20_000
DEFAULT_DAYS = 14
DEFAULT_END = dt.date(2026, 10, 31)
#: The analyst's shrinkage strengths tried on validation days (its budget: as many as the models').
ANALYST_PRIORS = (5.0, 20.0, 80.0)
#: The bid rule's target margins tried on validation days, for every policy (its own choice each):
#: max CPC = estimated value per click × (1 − margin). The default rule's 0.2 is among them.
MARGINS = (0.1, 0.2, 0.3, 0.4)


class PeriodOverlapError(ValueError):
    """The test period shares days with the days choices were made on."""


@dataclass(frozen=True)
class BacktestSetup:
    keywords: int = DEFAULT_KEYWORDS
    days: int = DEFAULT_DAYS  # test days
    end: dt.date = DEFAULT_END  # the last test day
    seed: int = 7
    training_days: int = 7
    validation_days: int = 14
    #: Targets are read this many days after they happened (97.7% of conversions have arrived).
    label_maturity: int = 7
    #: The last validation day (default: the day before the test period); later ones overlap the test.
    validation_end: dt.date | None = None
    network_grid: tuple[TrainingParams, ...] = NETWORK_GRID
    gbdt_grid: tuple[GbdtParams, ...] = GBDT_GRID
    analyst_priors: tuple[float, ...] = ANALYST_PRIORS
    #: Target margins tried on validation days (each policy replays them all and keeps its best).
    margins: tuple[float, ...] = MARGINS
    champion_params: TrainingParams = field(default_factory=TrainingParams)
    #: The gate: the candidate's lead must exceed this share of the other's observed profit (5th pct).
    gate_margin: float = 0.0
    #: The risk-bounded analyst's level α (bids at the α lower bound): the spend-above-truth target.
    risk_level: float = RISK_LEVEL

    @property
    def held_out_days(self) -> list[dt.date]:
        return days_ending(self.end, self.days)


@dataclass(frozen=True)
class Periods:
    training: list[dt.date]  # feature days; their targets are the next days
    validation: list[dt.date]
    validation_labelled: list[dt.date]  # validation feature days whose targets are mature by the test
    test: list[dt.date]
    decided_on: dt.date  # the morning the choices are made (the first test day)

    @property
    def choice_days(self) -> list[dt.date]:
        """Every day whose outcome or target informed a choice."""
        used = set(self.training) | {d + ONE_DAY for d in self.training}
        used |= set(self.validation) | {d + ONE_DAY for d in self.validation_labelled}
        return sorted(used)


def periods_of(setup: BacktestSetup) -> Periods:
    test = setup.held_out_days
    validation_end = setup.validation_end or test[0] - ONE_DAY
    validation = days_ending(validation_end, setup.validation_days)
    mature = test[0] - dt.timedelta(days=setup.label_maturity)
    labelled = [d for d in validation if d + ONE_DAY <= mature]
    training = days_ending(validation[0] - dt.timedelta(days=setup.label_maturity + 1), setup.training_days)
    periods = Periods(training, validation, labelled, test, test[0])
    overlap = sorted(set(periods.choice_days) & set(test))
    if overlap:
        raise PeriodOverlapError(
            f"refusing to report on {len(overlap)} test day(s) that choices used: "
            f"{', '.join(d.isoformat() for d in overlap)} (choices used {periods.choice_days[0]} .. "
            f"{periods.choice_days[-1]}; test {test[0]} .. {test[-1]})"
        )
    return periods
