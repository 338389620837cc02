"""The ``features`` column as preprocessing writes it (one fixed-size binary value of T×F float32 per
keyword, ``features.FEATURES_TYPE``) and as partitions written before it hold it (``list<float>``):
the same values to every reader, clear errors on a broken column, and the Parquet options it is
written with. Real Spark (loopback), real Parquet files, real onnxruntime.
"""

import datetime as dt
import hashlib
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from astro_assets.core import audit, scoring
from astro_assets.core.calendar import lag_window
from astro_assets.core.features import (
    FEATURE_VECTOR_LENGTH,
    FEATURES_TYPE,
    LAGS,
    N_FEATURES,
    feature_rows,
    features_column,
)
from astro_assets.core.lagging import PREPROCESSED_SCHEMA
from astro_assets.model.export import export_onnx
from astro_assets.model.network import ValuePerClickModel
from astro_assets.sources import synthetic
from astro_assets.stages.preprocess import write_preprocessed
from astro_assets.storage import PREPROCESSED_FEATURES, DataLayout
from astro_assets.storage.raw import write_raw_partition
from astro_assets_tests.conftest import loopback_spark

DAY = dt.date(2026, 5, 10)
SEED, KEYWORDS = 17, 3_000


@pytest.fixture(scope="module")
def spark():
    session = loopback_spark("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def preprocessed(spark, tmp_path_factory) -> list:
    """The part files of one preprocessed day of a synthetic account."""
    layout = DataLayout(tmp_path_factory.mktemp("account"))
    for day in lag_window(DAY, LAGS):
        write_raw_partition(layout, day, synthetic.keyword_report(SEED, KEYWORDS, day))
    write_preprocessed(spark, layout, DAY)
    return layout.part_files(layout.require_published(PREPROCESSED_FEATURES, DAY))


def as_lists(table: pa.Table) -> pa.Table:
    """``table`` with its features column as a partition written before ``FEATURES_TYPE`` held it."""
    values = feature_rows(table.column("features"), FEATURE_VECTOR_LENGTH)
    offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32) * FEATURE_VECTOR_LENGTH)
    column = table.schema.get_field_index("features")
    return table.set_column(column, "features", pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1))))


def test_values_round_trip_bit_for_bit_through_slices_and_chunks():
    rng = np.random.default_rng(5)
    values = rng.normal(size=(50, LAGS, N_FEATURES)).astype(np.float32)
    values[3, 2, 1] = np.nan
    column = features_column(values)
    assert column.type == FEATURES_TYPE and column.type.byte_width == FEATURE_VECTOR_LENGTH * 4
    flat = values.reshape(50, -1)
    np.testing.assert_array_equal(feature_rows(column, FEATURE_VECTOR_LENGTH), flat)
    np.testing.assert_array_equal(feature_rows(column.slice(7, 20), FEATURE_VECTOR_LENGTH), flat[7:27])
    chunked = pa.chunked_array([column.slice(0, 9), column.slice(9)])
    np.testing.assert_array_equal(feature_rows(chunked, FEATURE_VECTOR_LENGTH), flat)
    np.testing.assert_array_equal(scoring.features_matrix(column.slice(11, 5), LAGS, N_FEATURES), values[11:16])
    # numpy alone reads a value: the README's recipe
    first = np.frombuffer(column[0].as_py(), "<f4").reshape(LAGS, N_FEATURES)
    np.testing.assert_array_equal(first, values[0])


def test_a_broken_column_is_refused_with_what_is_wrong():
    values = np.zeros((4, LAGS, N_FEATURES), dtype=np.float32)
    with_nulls = pa.concat_arrays([pa.nulls(2, FEATURES_TYPE), features_column(values)])
    with pytest.raises(ValueError, match="2 null arrays"):
        feature_rows(with_nulls, FEATURE_VECTOR_LENGTH)
    with pytest.raises(
        ValueError, match=f"{FEATURE_VECTOR_LENGTH} values per row; {FEATURE_VECTOR_LENGTH - 1} expected"
    ):
        feature_rows(features_column(values), FEATURE_VECTOR_LENGTH - 1)
    short = pa.array([[0.0] * (FEATURE_VECTOR_LENGTH - 1)] * 3, pa.list_(pa.float32()))
    with pytest.raises(ValueError, match=f"{3 * (FEATURE_VECTOR_LENGTH - 1)} values for 3 rows"):
        feature_rows(short, FEATURE_VECTOR_LENGTH)
    with pytest.raises(ValueError, match="the features column holds"):
        features_column(np.zeros((4, LAGS - 1, N_FEATURES), dtype=np.float32))


def test_preprocessing_writes_the_binary_column_with_lz4_and_no_dictionary(spark, preprocessed):
    rows = 0
    for path in preprocessed:
        file = pq.ParquetFile(path)
        assert file.schema_arrow.field("features").type == FEATURES_TYPE
        assert file.schema_arrow.remove_metadata().equals(PREPROCESSED_SCHEMA)
        for group in range(file.metadata.num_row_groups):
            names = [file.metadata.row_group(group).column(i) for i in range(file.metadata.num_columns)]
            features = next(c for c in names if c.path_in_schema == "features")
            assert features.compression in ("LZ4", "LZ4_RAW") and not features.has_dictionary_page
            assert all(c.compression in ("LZ4", "LZ4_RAW") for c in names)
        rows += file.metadata.num_rows
    assert rows > KEYWORDS // 2

    # Spark reads the column as binary, the same bytes
    from pyspark.sql.types import BinaryType

    frame = spark.read.parquet(str(preprocessed[0]))
    assert frame.schema["features"].dataType == BinaryType()
    first = frame.orderBy("ad_group_id", "keyword_id").select("ad_group_id", "keyword_id", "features").first()
    table = pq.read_table(preprocessed[0])
    row = [
        i
        for i, pair in enumerate(zip(table["ad_group_id"].to_pylist(), table["keyword_id"].to_pylist(), strict=True))
        if pair == (first.ad_group_id, first.keyword_id)
    ]
    assert len(row) == 1
    np.testing.assert_array_equal(
        np.frombuffer(first.features, "<f4"), feature_rows(table.column("features"), FEATURE_VECTOR_LENGTH)[row[0]]
    )


def test_a_list_partition_scores_and_audits_as_the_binary_one(preprocessed, tmp_path):
    """A shard written before the binary column (``list<float>``) gives the same predictions, to the
    bit, and the same audit totals as the same shard written now; a broken value shows in both."""
    torch.manual_seed(0)
    model = ValuePerClickModel(N_FEATURES, 8, np.zeros(N_FEATURES, np.float32), np.ones(N_FEATURES, np.float32))
    onnx_bytes = export_onnx(model, "20260510-abcdef0123", {})
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    binary = tmp_path / "binary.parquet"
    shutil.copy(preprocessed[0], binary)
    listed = tmp_path / "list.parquet"
    pq.write_table(as_lists(pq.read_table(binary)), listed)
    assert pa.types.is_list(pq.read_schema(listed).field("features").type)

    scored = {}
    for name, path in (("binary", binary), ("list", listed)):
        out = tmp_path / f"predictions-{name}.parquet"
        rows = scoring.score_file(str(path), str(out), onnx_bytes, digest, "v", batch_rows=700)
        assert rows == pq.ParquetFile(path).metadata.num_rows
        scored[name] = pq.read_table(out)
    assert scored["binary"].equals(scored["list"])
    assert scored["binary"].num_rows > scoring.ORT_RUN_ROWS

    totals = {name: audit.audit_features_file(str(path)) for name, path in (("binary", binary), ("list", listed))}
    assert totals["binary"] == totals["list"]
    assert totals["binary"]["missing_feature_values"] == 0 and totals["binary"]["missing_feature_arrays"] == 0

    table = pq.read_table(binary)
    values = feature_rows(table.column("features"), FEATURE_VECTOR_LENGTH).copy()
    values[4, 8] = np.nan
    values[9, 5] = 2.0  # a click-through rate of 2
    broken = table.set_column(table.schema.get_field_index("features"), "features", features_column(values))
    pq.write_table(broken, binary)
    pq.write_table(as_lists(broken), listed)
    totals = {name: audit.audit_features_file(str(path)) for name, path in (("binary", binary), ("list", listed))}
    assert totals["binary"] == totals["list"]
    assert totals["binary"]["missing_feature_values"] == 1 and totals["binary"]["out_of_range_ctr"] == 1
