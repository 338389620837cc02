"""The whole graph for one partition on a few thousand keywords, through a real Dagster instance:
real Spark, real GX checks, real torch training, real onnxruntime scoring."""

import datetime as dt
import re
import shutil
import subprocess
import sys

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astro_assets.bids import BID_FILE_COLUMNS, EDITOR_MATCH_TYPES
from astro_assets.features import LAGS
from astro_assets.resources import AstroStorage, BidPolicy, SyntheticKeywordSource
from astro_assets.storage import DataLayout

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

DAY = dt.date(2026, 3, 20)
KEYWORDS = 3_000


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    """Materialise DAY end to end (history, training, ONNX, predictions, bids) once for the module."""
    from astro_assets.definitions import ASSETS, defs
    from astro_assets.run import TRAINING_DAYS, days

    data_dir = tmp_path_factory.mktemp("data")
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    resources = {
        **defs.resources,
        "storage": AstroStorage(data_dir=str(data_dir)),
        "keyword_source": SyntheticKeywordSource(seed=11, keywords=KEYWORDS),
    }
    everything = [*ASSETS, *defs.asset_checks]
    results = []
    with dg.instance_for_test(temp_dir=str(home)) as instance:

        def run(selection, partition=None, config=None):
            result = dg.materialize(everything, selection=selection, partition_key=partition, instance=instance,
                                    resources=resources, run_config=config or {})
            assert result.success
            results.append(result)
            return result

        feature_days = days(DAY - dt.timedelta(days=TRAINING_DAYS + 1), DAY)
        for d in days(feature_days[0] - dt.timedelta(days=LAGS - 1), DAY):
            run(dg.AssetSelection.assets("raw_features").without_checks(), d.isoformat())
        for d in feature_days[:-1]:
            run(dg.AssetSelection.assets("preprocessed_features").without_checks(), d.isoformat())
        config = {"ops": {"trained_model": {"config": {"end_date": DAY.isoformat(), "epochs": 4}}}}
        run(dg.AssetSelection.assets("trained_model", "onnx_model"), config=config)
        daily = run(dg.AssetSelection.assets("raw_features", "preprocessed_features", "daily_predictions", "bid_file"),
                    DAY.isoformat())
        materializations = {
            key.to_user_string(): instance.get_latest_materialization_event(key).asset_materialization
            for key in [dg.AssetKey(a) for a in ("trained_model", "onnx_model", "daily_predictions", "bid_file")]
        }
        yield DataLayout(data_dir), daily, materializations


def test_every_check_of_the_day_runs_and_passes(materialized):
    _, daily, _ = materialized
    evaluations = {e.check_name: e for e in daily.get_asset_check_evaluations()}
    assert len(evaluations) == 10
    failed = {name: e.metadata for name, e in evaluations.items() if not e.passed}
    assert not failed


def test_bid_file_matches_the_predictions(materialized):
    layout, _, meta = materialized
    predictions = pq.read_table(layout.partition_dir("daily_predictions", DAY)).to_pandas()
    features = pq.read_table(layout.partition_dir("preprocessed_features", DAY)).to_pandas()
    bids = pd.read_csv(layout.bid_file(DAY), dtype={"Max CPC": str})
    assert tuple(bids.columns) == BID_FILE_COLUMNS
    assert len(predictions) == len(features) == predictions.keyword_id.nunique()

    policy = BidPolicy()
    expected = predictions.merge(features, on="keyword_id")
    expected["cents"] = np.floor(expected.predicted_value_per_click.astype(float) * (1 - policy.target_margin) * 100 + 1e-9)
    expected["cents"] = np.minimum(expected.cents, policy.ceiling * 100)
    expected = expected[expected.cents >= policy.floor * 100]
    expected = expected.assign(
        **{"Criterion Type": expected.match_type.map(EDITOR_MATCH_TYPES), "Campaign": expected.campaign_name,
           "Ad group": expected.ad_group_name, "Keyword": expected.keyword_text}
    )
    merged = bids.merge(expected, on=["Campaign", "Ad group", "Keyword", "Criterion Type"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts()
    written = (merged["Max CPC"].astype(float) * 100).round().astype(int)
    assert (written == merged.cents.astype(int)).all()
    assert (merged["Max CPC"].str.match(r"^\d+\.\d{2}$")).all()
    assert meta["bid_file"].metadata["bids"].value == len(bids)
    assert len(bids) > 0.9 * KEYWORDS


def test_model_beats_the_trailing_mean_on_the_held_out_day(materialized):
    _, _, meta = materialized
    trained = meta["trained_model"].metadata
    assert trained["training_rows"].value > 5_000
    assert len(trained["loss_per_epoch"].value) == 4
    assert trained["model_mae_vs_expected"].value < 0.8 * trained["trailing_mean_mae_vs_expected"].value
    assert meta["onnx_model"].metadata["parity_max_abs_difference"].value <= 1e-4


def test_predictions_record_throughput_and_model_version(materialized):
    layout, _, meta = materialized
    predictions = meta["daily_predictions"].metadata
    assert predictions["rows"].value == pq.read_table(layout.partition_dir("daily_predictions", DAY)).num_rows
    assert predictions["rows_per_second"].value > 0
    assert predictions["model_version"].value == meta["onnx_model"].metadata["model_version"].value


def test_ci_check_command_fails_when_nulls_appear_after_null_replacement(materialized, tmp_path):
    """`python -m astro_assets.ci_checks --data-dir` (the README's check command on stored data) passes
    on the day as materialised and exits 1, naming the check, once nulls are injected into it."""
    layout, _, _ = materialized
    data = tmp_path / "data"
    shutil.copytree(layout.root, data)
    command = [sys.executable, "-m", "astro_assets.ci_checks", "--data-dir", str(data), "--date", DAY.isoformat()]

    clean = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
    assert "9 run, 0 blocking failures" in clean.stdout

    part = sorted((data / "preprocessed_features" / f"date={DAY}").glob("*.parquet"))[0]
    table = pq.read_table(part)
    column = table.schema.get_field_index("features")
    features = table.column(column).combine_chunks()
    broken = pa.concat_arrays([pa.nulls(5, type=features.type), features.slice(5)])
    pq.write_table(table.set_column(column, "features", broken), part)

    failing = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert failing.returncode == 1, failing.stdout[-3000:] + failing.stderr[-3000:]
    assert re.search(r"preprocessed_features_have_no_nulls\s+FAILED \(ERROR\)", failing.stdout), failing.stdout
    assert re.search(r"preprocessed_features_within_range\s+passed", failing.stdout), failing.stdout
