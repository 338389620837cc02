"""Write-audit-publish: every blocking check of a daily asset runs on the staged partition, and a
failure leaves the previously published version exactly as it was.

Each test breaks the data a check guards, in the staged files, right after the real stage wrote them
(the stage function is wrapped, nothing else is replaced), then materialises the asset through Dagster
and sees: the check failed on the asset (recorded on the instance, as the UI shows it), the run failed
with the check's counts in its message, the published partition is byte for byte and mtime what it
was, and (once per asset) the next good run publishes normally.
"""

import dataclasses
import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from astro_assets.core.calendar import lag_window
from astro_assets.core.features import FEATURE_VECTOR_LENGTH, LAGS, feature_rows, features_column
from astro_assets.defs import build_definitions
from astro_assets.defs.assets import features as features_asset
from astro_assets.defs.assets import predictions as predictions_asset
from astro_assets.defs.assets import raw as raw_asset
from astro_assets.defs.assets.predictions import SLA_CHECK, sla_check_result
from astro_assets.defs.checks import CHECK_SPECS
from astro_assets.settings import load_settings
from astro_assets.sources import synthetic
from astro_assets.storage import DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout
from astro_assets.storage.raw import write_raw_partition

pytestmark = pytest.mark.spark

DAY = dt.date(2026, 5, 20)
KEYWORDS = 2_000


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A data folder where DAY's raw, features and predictions are published once, cleanly, through
    the assets (their checks pass), with the history and a model they need."""
    import torch

    from astro_assets.core.features import N_FEATURES
    from astro_assets.model.export import export_onnx
    from astro_assets.model.network import ValuePerClickModel

    root = tmp_path_factory.mktemp("wap")
    settings = dataclasses.replace(load_settings(), data_dir=str(root / "data"), keywords=KEYWORDS, seed=5)
    layout = DataLayout(settings.data_dir)
    for day in lag_window(DAY - dt.timedelta(days=1), LAGS - 1):
        write_raw_partition(layout, day, synthetic.keyword_report(settings.seed, KEYWORDS, day))
    layout.onnx_dir().mkdir(parents=True)
    torch.manual_seed(0)  # an untrained model scores finite, non-negative values: enough to publish and check
    model = ValuePerClickModel(N_FEATURES, 8, np.zeros(N_FEATURES), np.ones(N_FEATURES)).eval()
    layout.onnx_model().write_bytes(export_onnx(model, "20260520-wap", {"end_date": "2026-05-19"}))
    defs = build_definitions(settings)
    (root / "home").mkdir()
    (root / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        for asset in (RAW_FEATURES, PREPROCESSED_FEATURES, DAILY_PREDICTIONS):
            result = _materialize(defs, instance, asset)
            assert result.success and all(e.passed for e in _gate_evaluations(result))
    return settings, layout, defs


def _gate_evaluations(result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
    """The evaluations of the write-audit-publish checks (freshness checks of the same assets aside)."""
    names = {spec.name for spec in CHECK_SPECS}
    return [e for e in result.get_asset_check_evaluations() if e.check_name in names]


def _materialize(defs: dg.Definitions, instance: dg.DagsterInstance, asset: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(asset),
        partition_key=DAY.isoformat(),
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
    )


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def _first_parquet(folder: Path) -> Path:
    return sorted(folder.glob("*.parquet"))[0]


def _rewrite(path: Path, edit) -> None:
    pq.write_table(edit(pq.read_table(path)), path)


def _set(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = value
    return table.set_column(
        table.schema.get_field_index(column), column, pa.array(values, table.schema.field(column).type)
    )


# -- what each break does to the staged partition --------------------------------------------------


def negative_clicks(folder: Path) -> None:
    _rewrite(_first_parquet(folder), lambda t: _set(t, "clicks", 0, -3))


def duplicate_keyword_row(folder: Path) -> None:
    _rewrite(_first_parquet(folder), lambda t: pa.concat_tables([t, t.slice(0, 1)]))


def clicks_above_impressions(folder: Path) -> None:
    _rewrite(_first_parquet(folder), lambda t: _set(t, "clicks", 0, t.column("impressions")[0].as_py() + 5))


def null_feature_array(folder: Path) -> None:
    def edit(table: pa.Table) -> pa.Table:
        column = table.schema.get_field_index("features")
        arrays = table.column(column).combine_chunks()
        return table.set_column(column, "features", pa.concat_arrays([pa.nulls(3, arrays.type), arrays.slice(3)]))

    _rewrite(_first_parquet(folder), edit)


def nan_feature_value(folder: Path) -> None:
    def edit(table: pa.Table) -> pa.Table:
        column = table.schema.get_field_index("features")
        values = feature_rows(table.column(column), FEATURE_VECTOR_LENGTH).copy()
        values[0, 7] = np.nan
        return table.set_column(column, "features", features_column(values))

    _rewrite(_first_parquet(folder), edit)


def out_of_range_feature(folder: Path) -> None:
    """A click-through rate of 3 (the raw day had more clicks than impressions): preprocessing does not
    clamp it away, the range check sees it."""

    def edit(table: pa.Table) -> pa.Table:
        column = table.schema.get_field_index("features")
        values = feature_rows(table.column(column), FEATURE_VECTOR_LENGTH).copy()
        values[0, 5] = 3.0  # feature 5 of day 0 of the first keyword: ctr
        return table.set_column(column, "features", features_column(values))

    _rewrite(_first_parquet(folder), edit)


def _prediction(value: float):
    def edit(folder: Path) -> None:
        _rewrite(_first_parquet(folder), lambda t: _set(t, "predicted_value_per_click", 0, value))

    return edit


def lost_keyword(folder: Path) -> None:
    _rewrite(_first_parquet(folder), lambda t: t.slice(1))


BREAKS = [
    # (name, asset, module whose stage function is wrapped, its name, break, failing check, counted rule)
    (
        "negative clicks",
        RAW_FEATURES,
        raw_asset,
        "write_raw",
        negative_clicks,
        "raw_features_metrics_are_consistent",
        "negative_clicks=1",
    ),
    (
        "clicks above impressions",
        RAW_FEATURES,
        raw_asset,
        "write_raw",
        clicks_above_impressions,
        "raw_features_metrics_are_consistent",
        "clicks_above_impressions=1",
    ),
    (
        "a keyword twice in raw",
        RAW_FEATURES,
        raw_asset,
        "write_raw",
        duplicate_keyword_row,
        "raw_features_metrics_are_consistent",
        "duplicate_keywords=1",
    ),
    (
        "a null feature array",
        PREPROCESSED_FEATURES,
        features_asset,
        "build_features",
        null_feature_array,
        "preprocessed_features_have_no_nulls",
        "missing_feature_arrays=3",
    ),
    (
        "a NaN feature value",
        PREPROCESSED_FEATURES,
        features_asset,
        "build_features",
        nan_feature_value,
        "preprocessed_features_have_no_nulls",
        "missing_feature_values=1",
    ),
    (
        "an out-of-range feature",
        PREPROCESSED_FEATURES,
        features_asset,
        "build_features",
        out_of_range_feature,
        "preprocessed_features_within_range",
        "out_of_range_ctr=1",
    ),
    (
        "a keyword twice in features",
        PREPROCESSED_FEATURES,
        features_asset,
        "build_features",
        duplicate_keyword_row,
        "preprocessed_features_one_row_per_keyword",
        "duplicate_keywords=1",
    ),
    (
        "a NaN prediction",
        DAILY_PREDICTIONS,
        predictions_asset,
        "score_day",
        _prediction(float("nan")),
        "daily_predictions_are_finite_and_non_negative",
        "non_finite_predictions=1",
    ),
    (
        "an infinite prediction",
        DAILY_PREDICTIONS,
        predictions_asset,
        "score_day",
        _prediction(float("inf")),
        "daily_predictions_are_finite_and_non_negative",
        "non_finite_predictions=1",
    ),
    (
        "a negative prediction",
        DAILY_PREDICTIONS,
        predictions_asset,
        "score_day",
        _prediction(-0.5),
        "daily_predictions_are_finite_and_non_negative",
        "negative_predictions=1",
    ),
    (
        "a keyword not scored",
        DAILY_PREDICTIONS,
        predictions_asset,
        "score_day",
        lost_keyword,
        "daily_predictions_one_row_per_keyword",
        "keywords_not_scored=1",
    ),
    (
        "a keyword scored twice",
        DAILY_PREDICTIONS,
        predictions_asset,
        "score_day",
        duplicate_keyword_row,
        "daily_predictions_one_row_per_keyword",
        "duplicate_keywords=1",
    ),
]


#: The break of each asset after which the test also sees the next good run publish (a second run per
#: break would double the file's time to show the same thing again).
NEXT_GOOD_RUN = {"negative clicks", "a null feature array", "a NaN prediction"}


@pytest.mark.parametrize("name, asset, module, stage, damage, check, counted", BREAKS, ids=[b[0] for b in BREAKS])
def test_a_failing_blocking_check_publishes_nothing_and_the_next_good_run_does(
    published, monkeypatch, name, asset, module, stage, damage, check, counted
):
    _, layout, defs = published
    folder = layout.partition_dir(asset, DAY)
    before = _snapshot(folder)
    real = getattr(module, stage)

    def broken(*args, **kwargs):
        rows = real(*args, **kwargs)
        staging = next(a for a in (*args, *kwargs.values()) if isinstance(a, Path) and ".staging-" in a.name)
        damage(staging)
        return rows

    monkeypatch.setattr(module, stage, broken)
    with dg.instance_for_test() as instance:
        failed = _materialize(defs, instance, asset)
        assert not failed.success
        message = failed.get_step_failure_events()[0].step_failure_data.error.message
        assert check in message and counted in message and "nothing for 2026-05-20 was published" in message
        evaluation = {e.check_name: e for e in failed.get_asset_check_evaluations()}[check]
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(asset), check)]
        )[dg.AssetCheckKey(dg.AssetKey(asset), check)]
        assert record.status.value == "FAILED"  # what the asset's page shows
        assert _snapshot(folder) == before  # the previous version, untouched
        assert not list(folder.parent.glob(f".{folder.name}.staging-*"))  # no staging left behind

        if name not in NEXT_GOOD_RUN:
            return
        monkeypatch.setattr(module, stage, real)
        good = _materialize(defs, instance, asset)
        assert good.success and all(e.passed for e in _gate_evaluations(good))
        assert set(_snapshot(folder)) == set(before)


def test_downstream_assets_do_not_run_after_a_blocked_partition(published, monkeypatch):
    """Blocking stays visible the Dagster way: the assets after a blocked one are not materialised."""
    _, layout, defs = published
    real = raw_asset.write_raw

    def broken(folder, table):
        rows = real(folder, table)
        negative_clicks(folder)
        return rows

    monkeypatch.setattr(raw_asset, "write_raw", broken)
    before = _snapshot(layout.partition_dir(PREPROCESSED_FEATURES, DAY))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*defs.assets, *defs.asset_checks],
            selection=dg.AssetSelection.assets(RAW_FEATURES, PREPROCESSED_FEATURES),
            partition_key=DAY.isoformat(),
            resources=defs.resources,
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    assert not result.asset_materializations_for_node(PREPROCESSED_FEATURES)
    assert _snapshot(layout.partition_dir(PREPROCESSED_FEATURES, DAY)) == before


def test_warnings_do_not_block_and_are_counted(published, monkeypatch):
    """Conversions above clicks happen in real accounts ("every" conversion): counted, shown as a
    warning when frequent, never a reason to hold the day back."""
    _, layout, defs = published
    real = raw_asset.write_raw

    def many_conversions(folder, table):
        rows = real(folder, table)
        for path in sorted(folder.glob("*.parquet")):
            _rewrite(
                path,
                lambda t: t.set_column(
                    t.schema.get_field_index("conversions"),
                    "conversions",
                    pc.add(pc.cast(t.column("clicks"), pa.float64()), 1.0),
                ),
            )
        return rows

    monkeypatch.setattr(raw_asset, "write_raw", many_conversions)
    with dg.instance_for_test() as instance:
        result = _materialize(defs, instance, RAW_FEATURES)
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    warning = evaluations["raw_features_conversions_rarely_exceed_clicks"]
    assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
    assert warning.metadata["conversions_above_clicks"].value == warning.metadata["rows"].value
    assert evaluations["raw_features_metrics_are_consistent"].passed
    assert evaluations["raw_features_nulls_within_tolerance"].passed


def test_the_sla_check_is_evaluated_and_fails_when_the_rate_cannot_score_10m_in_an_hour():
    slow = sla_check_result(rows=250_000, rows_per_second=2_000.0)  # 10M would take 83 minutes
    assert slow.check_name == SLA_CHECK and slow.metadata["evaluated"].value is True
    assert slow.passed is False and slow.severity == dg.AssetCheckSeverity.WARN
    fast = sla_check_result(rows=250_000, rows_per_second=5_000.0)  # 33 minutes
    assert fast.passed is True and fast.metadata["evaluated"].value is True
