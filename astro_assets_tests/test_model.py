"""Training is reproducible and learns; the ONNX export matches torch and describes itself; the
executor-side scorer gives the same numbers; a damaged or mismatched model is refused."""

import datetime as dt
import hashlib
import json

import dagster as dg
import numpy as np
import onnx
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from astro_assets.core import scoring
from astro_assets.core.features import FEATURE_NAMES, LAGS, N_FEATURES, features_column
from astro_assets.model.baselines import GbdtParams, fit_gbdt, predict_gbdt
from astro_assets.model.checkpoint import load_trained_model, model_version, save_trained_model
from astro_assets.model.datasets import TrainingSet
from astro_assets.model.evaluation import comparison_table, evaluate
from astro_assets.model.export import PARITY_TOLERANCE, export_onnx, parity
from astro_assets.model.network import TrainingParams, fit_scaler, predict, train
from astro_assets.model.registry import ModelMismatchError, publish_onnx, read_model
from astro_assets.storage import DataLayout

PARAMS = TrainingParams(epochs=12, hidden_size=8, batch_size=256, learning_rate=1e-2, seed=3)


def toy_data(rows: int = 2_000, seed: int = 0) -> TrainingSet:
    """Target = 1 + 2 × feature 0 of the last day, plus noise; the trailing mean is blind to it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 0.5, size=(rows, LAGS, N_FEATURES)).astype(np.float32)
    target = (1.0 + 2.0 * np.abs(x[:, -1, 0]) + rng.normal(0, 0.05, rows)).astype(np.float32)
    return TrainingSet(x, target, np.ones(rows, np.float32), np.full(rows, target.mean(), np.float32))


def test_scaler_is_fitted_per_feature_and_never_divides_by_zero():
    x = np.zeros((4, LAGS, N_FEATURES), np.float32)
    x[:, :, 0] = np.arange(4)[:, None]
    mean, std = fit_scaler(x)
    assert mean[0] == pytest.approx(1.5) and std[0] == pytest.approx(np.std(np.arange(4)))
    assert np.all(std[1:] == 1.0)  # constant features


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.just(LAGS), st.just(N_FEATURES)),
        elements=st.floats(-1e4, 1e4, width=32),
    ),
    st.randoms(use_true_random=False),
)
def test_scaling_is_finite_centred_and_ignores_row_order(x, random):
    """For any finite training window: finite parameters, scaled values centred with unit spread
    (or left unscaled where a feature is constant), and the same parameters in any row order."""
    mean, std = fit_scaler(x)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)
    scaled = (x.reshape(-1, N_FEATURES).astype(np.float64) - mean) / std
    assert np.all(np.isfinite(scaled))
    assert np.allclose(scaled.mean(axis=0), 0, atol=1e-3)
    spread = scaled.std(axis=0)
    assert np.all((np.abs(spread - 1) < 1e-3) | (spread < 1e-3))
    order = list(range(len(x)))
    random.shuffle(order)
    shuffled_mean, shuffled_std = fit_scaler(x[order])
    assert np.allclose(shuffled_mean, mean, rtol=1e-5, atol=1e-3) and np.allclose(shuffled_std, std, rtol=1e-5)


def test_training_is_reproducible_and_learns():
    data = toy_data()
    first, losses = train(data, PARAMS, log=lambda _: None)
    second, _ = train(data, PARAMS, log=lambda _: None)
    assert np.array_equal(predict(first, data.features), predict(second, data.features))
    day = dt.date(2026, 5, 1)
    assert model_version(first, day) == model_version(second, day)
    assert losses[-1] < losses[0]
    metrics = evaluate({"model": predict(first, data.features), "trailing_mean": data.trailing_value_per_click}, data)
    assert metrics["model_mae"] < 0.8 * metrics["trailing_mean_mae"]


@pytest.fixture(scope="module")
def exported():
    data = toy_data(800)
    model, _ = train(data, PARAMS, log=lambda _: None)
    version = model_version(model, dt.date(2026, 5, 1))
    return model, version, export_onnx(model, version, {"end_date": "2026-05-01", "train_days": ["2026-04-30"]}), data


def test_onnx_matches_torch_and_describes_itself(exported):
    model, version, onnx_bytes, data = exported
    assert parity(model, onnx_bytes, data.features[:500]) <= PARITY_TOLERANCE
    proto = onnx.load_from_string(onnx_bytes)
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["astro.features"]) == list(FEATURE_NAMES)
    assert int(props["astro.lags"]) == LAGS
    assert props["astro.model_version"] == version
    scaler = json.loads(props["astro.scaler"])
    assert np.allclose(scaler["mean"], model.mean.numpy()) and np.allclose(scaler["std"], model.std.numpy())


@pytest.mark.parametrize("encoding", ["binary", "list"])
def test_executor_scoring_matches_torch(exported, encoding):
    """The features as preprocessing writes them (``features.FEATURES_TYPE``) and as partitions written
    before it hold them (``list<float>``) score the same as torch, over more rows than one
    ``session.run`` takes (``scoring.ORT_RUN_ROWS``): every slice lands on its own rows."""
    model, _, onnx_bytes, data = exported
    rows = 2 * scoring.ORT_RUN_ROWS + 345
    inputs = np.resize(data.features, (rows, LAGS, N_FEATURES))  # the toy set repeated
    if encoding == "binary":
        features = features_column(inputs)
    else:
        features = pa.ListArray.from_arrays(
            pa.array(np.arange(0, (rows + 1) * LAGS * N_FEATURES, LAGS * N_FEATURES, dtype=np.int32)),
            pa.array(inputs.reshape(-1)),
        )
    batch = pa.RecordBatch.from_arrays(
        [pa.array(np.full(rows, 7, dtype=np.int64)), pa.array(np.arange(rows, dtype=np.int64)), features],
        names=["ad_group_id", "keyword_id", "features"],
    )
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    out = list(scoring.score_batches(iter([batch]), onnx_bytes, digest))
    scored = out[0].column("predicted_value_per_click").to_numpy()
    assert out[0].column("keyword_id").to_pylist() == list(range(rows))
    assert out[0].column("ad_group_id").to_pylist() == [7] * rows
    assert np.max(np.abs(scored - predict(model, inputs))) <= PARITY_TOLERANCE
    assert scoring.onnx_session(onnx_bytes, digest) is scoring.onnx_session(onnx_bytes, digest)  # once per worker


def test_save_and_load_round_trip(tmp_path, exported):
    model, version, _, data = exported
    layout = DataLayout(tmp_path)
    save_trained_model(layout, version, model, PARAMS, data, {"version": version})
    loaded_version, loaded, record, holdout = load_trained_model(layout)
    assert loaded_version == version and record == {"version": version}
    assert np.array_equal(predict(loaded, data.features[:50]), predict(model, data.features[:50]))
    assert holdout.shape == (min(2048, len(data)), LAGS, N_FEATURES)


def test_a_truncated_model_is_refused_with_its_path(tmp_path, exported):
    _, version, onnx_bytes, _ = exported
    layout = DataLayout(tmp_path)
    publish_onnx(layout, version, onnx_bytes[: len(onnx_bytes) // 2])
    with pytest.raises(ModelMismatchError, match="model.onnx is not a valid ONNX model"):
        read_model(layout)


def test_a_model_for_other_features_is_refused(tmp_path, exported):
    _, version, onnx_bytes, _ = exported
    proto = onnx.load_from_string(onnx_bytes)
    for prop in proto.metadata_props:
        if prop.key == "astro.features":
            prop.value = json.dumps([*FEATURE_NAMES[:-1], "avg_position"])
    layout = DataLayout(tmp_path)
    publish_onnx(layout, version, proto.SerializeToString())
    mismatch = r"features only in the model: \['avg_position'\], missing from it: \['is_phrase'\]"
    with pytest.raises(ModelMismatchError, match=mismatch):
        read_model(layout)
    assert not layout.asset_dir("daily_predictions").exists()


def test_gbdt_baseline_learns_and_is_reproducible():
    data = toy_data()
    first, second = fit_gbdt(data, GbdtParams(rounds=40)), fit_gbdt(data, GbdtParams(rounds=40))
    predictions = predict_gbdt(first, data.features)
    assert np.array_equal(predictions, predict_gbdt(second, data.features))
    metrics = evaluate({"gbdt": predictions, "trailing_mean": data.trailing_value_per_click}, data)
    assert metrics["gbdt_mae"] < 0.5 * metrics["trailing_mean_mae"]
    table = comparison_table(
        metrics | {"model_mae": 0.1, "model_click_weighted_mae": 0.1, "model_click_weighted_mse": 0.1}
    )
    assert table.splitlines()[0] == "| predictor | MAE | click-weighted MAE | click-weighted MSE |"
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == ["| model", "| trailing_mean", "| gbdt"]


def _materialize_onnx_model(layout: DataLayout, instance):
    from astro_assets.defs.assets.model import onnx_model
    from astro_assets.defs.resources import AstroStorage

    return dg.materialize(
        [onnx_model],
        resources={"storage": AstroStorage(data_dir=str(layout.root))},
        instance=instance,
        raise_on_error=False,
    )


def test_a_model_that_does_not_beat_the_trailing_mean_is_not_promoted(tmp_path, exported):
    """The published model.onnx stays byte for byte; the materialisation says why; with no earlier
    model to keep, the asset fails and says so."""
    model, version, _, data = exported
    layout = DataLayout(tmp_path)
    reason = "click-weighted MSE 0.9800 does not beat the trailing mean's 1.0000 by the promotion margin 0.05"
    with dg.instance_for_test() as instance:
        save_trained_model(
            layout, version, model, PARAMS, data, {"version": version, "promote": False, "promotion_reason": reason}
        )
        refused = _materialize_onnx_model(layout, instance)
        assert not refused.success and not layout.onnx_model().exists()
        failure = refused.get_step_failure_events()[0].step_failure_data.error.message
        assert "was not promoted" in failure and "no earlier model" in failure

        # A record without a promotion decision never publishes either.
        save_trained_model(layout, version, model, PARAMS, data, {"version": version, "end_date": "2026-05-01"})
        undecided = _materialize_onnx_model(layout, instance)
        assert not undecided.success and not layout.onnx_model().exists()
        assert "no promotion decision" in undecided.get_step_failure_events()[0].step_failure_data.error.message

        save_trained_model(
            layout, version, model, PARAMS, data, {"version": version, "end_date": "2026-05-01", "promote": True}
        )
        assert _materialize_onnx_model(layout, instance).success
        published = layout.onnx_model().read_bytes()

        other, _ = train(toy_data(800, seed=1), PARAMS, log=lambda _: None)
        candidate = model_version(other, dt.date(2026, 5, 8))
        save_trained_model(
            layout, candidate, other, PARAMS, data, {"version": candidate, "promote": False, "promotion_reason": reason}
        )
        kept = _materialize_onnx_model(layout, instance)
        assert kept.success
        assert layout.onnx_model().read_bytes() == published
        metadata = kept.asset_materializations_for_node("onnx_model")[0].metadata
        assert metadata["promoted"].value is False
        assert metadata["model_version"].value == version and metadata["candidate_version"].value == candidate
        assert metadata["promotion_reason"].value == reason
