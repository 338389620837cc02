"""What runs on the Spark executors: onnxruntime over Arrow batches.

Imports only numpy, pyarrow, onnxruntime, ``core.features`` and ``core.worker`` (no torch, no dagster),
and is shipped to the executors by value with those two, so a cluster's workers need those three packages
and nothing else.
The ONNX session is created once per Python worker (``core.worker.process_cache``) and reused for
every batch and task.
"""

import json
from collections.abc import Iterator

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq

from astro_assets.core.features import feature_rows
from astro_assets.core.worker import process_cache


def onnx_session(model_bytes: bytes, digest: str, threads: int = 1) -> ort.InferenceSession:
    """The worker's session for this model, created on first use (one intra-op thread per task:
    Spark already runs one task per core, more threads oversubscribe them)."""
    sessions = process_cache("onnx_sessions")
    session = sessions.get((digest, threads))
    if session is None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        sessions.clear()  # one model per worker at a time
        sessions[(digest, threads)] = session
    return session


def model_description(session: ort.InferenceSession) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)


def input_shape(session: ort.InferenceSession) -> tuple[int, int]:
    """(T, F) from the model's own metadata."""
    description = model_description(session)
    return int(description["astro.lags"]), len(json.loads(description["astro.features"]))


def features_matrix(values: pa.Array | pa.ChunkedArray, lags: int, n_features: int) -> np.ndarray:
    """The ``features`` column (``features.FEATURES_TYPE``, or ``list<float>``) of T×F values per row
    as a [rows, T, F] float32 array."""
    return feature_rows(values, lags * n_features).reshape(-1, lags, n_features)


#: Rows per ``session.run``. Batches are read ``batch_rows`` at a time (bounded memory, one row group
#: per batch written) and scored in slices of this many rows: this GRU runs 8-12 % faster on 500-1,000
#: rows a call than on 10,000 (the bench's bound sweep, 2026-11-27, README "Benchmark"); 1,000 was chosen on
#: one shard of a 100k-keyword day, apart from the runs the README reports.
ORT_RUN_ROWS = 1_000


def score_batches(
    batches: Iterator[pa.RecordBatch], model_bytes: bytes, digest: str, threads: int = 1, run_rows: int = ORT_RUN_ROWS
) -> Iterator[pa.RecordBatch]:
    """Score each Arrow batch as one array: the keyword (ad_group_id, keyword_id) and its features in,
    (ad_group_id, keyword_id, predicted value per click) out."""
    session = onnx_session(model_bytes, digest, threads)
    lags, n_features = input_shape(session)
    input_name = session.get_inputs()[0].name
    for batch in batches:
        if batch.num_rows == 0:
            continue
        features = features_matrix(batch.column(batch.schema.get_field_index("features")), lags, n_features)
        prediction = np.empty(len(features), dtype=np.float32)
        for start in range(0, len(features), run_rows):
            scored = session.run(None, {input_name: features[start : start + run_rows]})[0]
            prediction[start : start + run_rows] = scored.reshape(-1)
        yield pa.RecordBatch.from_arrays(
            [
                batch.column(batch.schema.get_field_index("ad_group_id")),
                batch.column(batch.schema.get_field_index("keyword_id")),
                pa.array(prediction),
            ],
            names=["ad_group_id", "keyword_id", "predicted_value_per_click"],
        )


#: A keyword is the pair (ad_group_id, keyword_id): Google's criterion id is shared across ad groups.
PREDICTION_SCHEMA = pa.schema(
    [
        ("ad_group_id", pa.int64()),
        ("keyword_id", pa.int64()),
        ("predicted_value_per_click", pa.float32()),
        ("model_version", pa.string()),
    ]
)


#: Predictions files keep a dictionary for the columns that repeat (ad group, model version) only:
#: a keyword id or a predicted value is nearly unique, and a dictionary the writer fills and then
#: abandons costs time and bytes (one shard of 164,772 keywords, 2026-11-27: 80 ms and 2.03 MB with
#: the default, 35 ms and 1.46 MB with this).
PREDICTION_WRITE_OPTIONS = {"use_dictionary": ["ad_group_id", "model_version"]}


def prediction_batch(ad_group_ids: pa.Array, keyword_ids: pa.Array, values: np.ndarray, version: str) -> pa.RecordBatch:
    """One batch of ``PREDICTION_SCHEMA``: the keywords, their predicted values per click, the version."""
    return pa.RecordBatch.from_arrays(
        [
            ad_group_ids,
            keyword_ids,
            pa.array(values, pa.float32()),
            pa.repeat(pa.scalar(version, pa.string()), len(values)),
        ],
        schema=PREDICTION_SCHEMA,
    )


def score_file(
    features_path: str, out_path: str, model_bytes: bytes, digest: str, version: str, batch_rows: int = 10_000
) -> int:
    """Score one Parquet file of preprocessed features batch by batch (bounded memory) into
    ``out_path``: ad group id, keyword id, predicted value per click, model version. Returns the rows written."""
    source = pq.ParquetFile(features_path)
    rows = 0
    with pq.ParquetWriter(out_path, PREDICTION_SCHEMA, **PREDICTION_WRITE_OPTIONS) as writer:
        batches = source.iter_batches(batch_size=batch_rows, columns=["ad_group_id", "keyword_id", "features"])
        for scored in score_batches(batches, model_bytes, digest):
            writer.write_batch(prediction_batch(*scored.columns[:2], scored.column(2).to_numpy(), version))
            rows += scored.num_rows
    return rows
