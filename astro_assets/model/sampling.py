"""The training sample: a fixed budget of labelled rows drawn per keyword shard and day, weighted so
that the click-weighted objective stays unbiased.

Why a sample. The training window at 10M keywords is ~35M labelled rows × 105 floats (~15 GB): it
fits neither the driver nor the time budget of one training run. A sample of ``budget`` rows bounds
both whatever the keyword count, and the measured budget curve (README "Training at scale") shows
where more rows stop improving the model.

How. Each (day, shard) is a stratum. A first pass counts each stratum's labelled rows (keywords
with clicks and a known conversion value the next day); the budget is split over the strata in
proportion to those counts (largest remainders, so the sample has exactly ``min(budget, labelled)``
rows). Within a stratum, *priority sampling* by clicks (Duffield, Lund & Thorup, "Priority sampling
for estimation of arbitrary subset sums", J. ACM 54(6), 2007): each row gets the priority
``clicks / u`` with ``u`` uniform in (0, 1], the ``k`` highest priorities are kept, and each kept
row weighs ``max(clicks, tau)`` where ``tau`` is the (k+1)-th priority. The weighted sum over the
sample is an unbiased estimate of the click-weighted sum over the stratum for any per-row quantity,
so the loss (click-weighted squared error) keeps its expectation; keywords with many clicks are kept
with certainty and weigh their clicks. The uniform draws come from ``(seed, day, shard)``: the same
seed gives the same sample whatever the number of executors.

Where. Both passes run as Spark tasks, one per stratum (``stages.training``), so both cores work. The
first reads only the key columns of the feature file and the four label columns of the next raw day
(``LABEL_COLUMNS``), and leaves the stratum's labelled rows in a small file for the second (~32 bytes
a labelled row), which then only draws and reads features. The second writes its rows straight into
the sample's memory-mapped ``.npy`` files at offsets the driver assigns, so no row of the window ever
reaches the driver through Spark, and a task holds one stratum's labelled rows plus one Parquet batch
of features at a time (``FEATURE_BATCH_ROWS``). The features column is still decoded whole: Parquet
readers here (pyarrow) cannot skip pages by row (apache/arrow#45284), and a sample of a few percent
has rows in every page anyway; only the kept rows of a batch are converted (``take``).

numpy, pyarrow and ``core`` only: shipped to the executors by value, like ``core``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astro_assets.core.features import LAGS, N_FEATURES
from astro_assets.core.lagging import read_keyword_shard
from astro_assets.core.scoring import features_matrix

#: Rows of features decoded at a time inside a task (one Parquet batch: 65,536 × 105 float32 ≈ 27 MB).
FEATURE_BATCH_ROWS = 65_536
#: The per-row columns of the sample besides the features (``columns.npy``, float32, this order).
SAMPLE_COLUMNS = ("target", "weight", "clicks", "trailing_value_per_click")
#: How a stratum's rows are drawn: in proportion to their clicks (training), or uniformly (the rows
#: a held-out comparison is made on, whose click weights are applied by the comparison itself).
BY_CLICKS, BY_ROWS = "clicks", "rows"
#: The raw report columns a label needs.
LABEL_COLUMNS = ("ad_group_id", "keyword_id", "clicks", "conversion_value")


@dataclass(frozen=True)
class Stratum:
    """One keyword shard of one feature day: its preprocessed part file and the files of the same
    shard of the next day's raw report (``storage.DataLayout.raw_shard_paths``)."""

    day_ordinal: int
    shard: int
    shards: int
    features_path: str
    next_day_raw_paths: tuple[str, ...]


def labelled_rows(keys: pa.Table, next_day_raw: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of ``keys`` (a feature day's ``ad_group_id``, ``keyword_id``) whose keyword has
    clicks and a known conversion value in ``next_day_raw``, ascending, with that day's value per click
    and clicks. The keyword is the (ad group id, keyword id) pair, as in ``datasets.labelled_set``."""
    clicks = next_day_raw.column("clicks").to_numpy(zero_copy_only=False).astype(np.float64)
    value = next_day_raw.column("conversion_value").to_numpy(zero_copy_only=False).astype(np.float64)
    labelled = (clicks > 0) & ~np.isnan(value)
    mask = pa.array(labelled)
    right = pa.table(
        {
            "ad_group_id": next_day_raw.column("ad_group_id").filter(mask),
            "keyword_id": next_day_raw.column("keyword_id").filter(mask),
            "_target": pa.array(value[labelled] / clicks[labelled]),
            "_clicks": pa.array(clicks[labelled]),
        }
    )
    left = pa.table(
        {
            "ad_group_id": keys.column("ad_group_id"),
            "keyword_id": keys.column("keyword_id"),
            "_row": pa.array(np.arange(keys.num_rows, dtype=np.int64)),
        }
    )
    joined = left.join(right, keys=["ad_group_id", "keyword_id"], join_type="inner")
    rows = joined.column("_row").to_numpy()
    order = np.argsort(rows, kind="stable")
    return (
        rows[order],
        joined.column("_target").to_numpy()[order],
        joined.column("_clicks").to_numpy()[order],
    )


def priority_sample(sizes: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Priority sampling of ``k`` of the rows with positive ``sizes``: the kept positions (ascending)
    and their weights ``max(size, tau)`` (``sizes`` itself when every row is kept)."""
    n = len(sizes)
    sizes = np.asarray(sizes, dtype=np.float64)
    if k >= n:
        return np.arange(n), sizes.copy()
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    priority = sizes / (1.0 - rng.random(n))  # u = 1 - random() is uniform in (0, 1]
    part = np.argpartition(priority, n - k - 1)
    tau = priority[part[n - k - 1]]
    kept = np.sort(part[n - k :])
    return kept, np.maximum(sizes[kept], tau)


def allocate(counts: list[int], budget: int) -> list[int]:
    """``budget`` rows split over strata of ``counts`` labelled rows in proportion to the counts
    (largest remainders, ties to the earlier stratum); every stratum whole when the budget covers them."""
    total = sum(counts)
    if budget >= total:
        return list(counts)
    exact = [budget * c / total for c in counts]
    quotas = [int(e) for e in exact]
    by_remainder = sorted(range(len(counts)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in by_remainder[: budget - sum(quotas)]:
        quotas[i] += 1
    return quotas


def labelled_stratum(stratum: Stratum) -> np.ndarray:
    """The stratum's labelled rows as one float64 array [4, n]: row position (ascending), next-day
    value per click, next-day clicks, and the row's trailing value per click."""
    keys = pq.read_table(
        stratum.features_path, columns=["ad_group_id", "keyword_id", "trailing_value_per_click"], use_threads=False
    )
    rows, target, clicks = labelled_rows(keys, read_labels(stratum))
    trailing = keys.column("trailing_value_per_click").to_numpy(zero_copy_only=False)[rows]
    return np.stack([rows.astype(np.float64), target, clicks, trailing])


def read_labels(stratum: Stratum) -> pa.Table:
    """The next day's label columns of the stratum's shard (only those columns when the shard is one file)."""
    paths = list(stratum.next_day_raw_paths)
    if len(paths) == 1:
        return pq.read_table(paths[0], columns=list(LABEL_COLUMNS), use_threads=False)
    return read_keyword_shard(paths, stratum.shard, stratum.shards).select(list(LABEL_COLUMNS))


def count_labelled(stratum: Stratum, labelled_file: str | None = None) -> int:
    """The first pass: the stratum's labelled rows; with ``labelled_file``, they are also saved there
    (``labelled_stratum``'s array, ~32 bytes a row) so that the second pass need not find them again."""
    labelled = labelled_stratum(stratum)
    if labelled_file is not None:
        with open(labelled_file + ".tmp", "wb") as out:
            np.save(out, labelled)
        os.replace(labelled_file + ".tmp", labelled_file)  # whole or absent, if the task is retried
    return labelled.shape[1]


def stratum_rng(seed: int, stratum: Stratum) -> np.random.Generator:
    return np.random.default_rng([seed, stratum.day_ordinal, stratum.shard])


#: The keyword columns a sample may keep beside its rows (``write_stratum_sample(keys_file=...)``, int64):
#: the held-out rows' ad group and campaign, which the careful analyst's estimate needs.
KEY_COLUMNS = ("ad_group_id", "keyword_id", "campaign_id")


def write_stratum_sample(
    stratum: Stratum,
    quota: int,
    seed: int,
    by: str,
    features_file: str,
    columns_file: str,
    offset: int,
    keys_file: str | None = None,
    labelled_file: str | None = None,
) -> int:
    """The second pass: draw ``quota`` rows of the stratum and write them into the sample's
    memory-mapped files (``features_file`` [rows, T, F], ``columns_file`` [rows, SAMPLE_COLUMNS]) at
    ``offset``. The labelled rows come from ``labelled_file`` (the first pass's) when it exists, else
    they are found again. Reads the features column one Parquet batch at a time and converts only the
    kept rows of each. Returns the rows written."""
    if labelled_file is not None and os.path.exists(labelled_file):
        labelled = np.load(labelled_file)
    else:
        labelled = labelled_stratum(stratum)
    rows, target, clicks, trailing_all = labelled[0].astype(np.int64), labelled[1], labelled[2], labelled[3]
    sizes = clicks if by == BY_CLICKS else np.ones(len(rows))
    kept, weight = priority_sample(sizes, quota, stratum_rng(seed, stratum))
    if by != BY_CLICKS:
        weight = clicks[kept] * (weight / sizes[kept])  # clicks / inclusion probability
    positions = rows[kept]
    k = len(positions)
    columns = np.lib.format.open_memmap(columns_file, mode="r+")
    columns[offset : offset + k] = np.column_stack([target[kept], weight, clicks[kept], trailing_all[kept]]).astype(
        np.float32
    )
    columns.flush()
    del columns
    if keys_file is not None:
        ids = pq.read_table(stratum.features_path, columns=list(KEY_COLUMNS), use_threads=False)
        keys = np.lib.format.open_memmap(keys_file, mode="r+")
        keys[offset : offset + k] = np.column_stack([ids.column(c).to_numpy()[positions] for c in KEY_COLUMNS])
        keys.flush()
        del keys
    features = np.lib.format.open_memmap(features_file, mode="r+")
    start, done = 0, 0
    for batch in pq.ParquetFile(stratum.features_path).iter_batches(
        batch_size=FEATURE_BATCH_ROWS, columns=["features"], use_threads=False
    ):
        end = start + batch.num_rows
        upto = int(np.searchsorted(positions, end))
        if upto > done:
            block = batch.column(0).take(pa.array(positions[done:upto] - start))  # only the kept rows
            features[offset + done : offset + upto] = features_matrix(block, LAGS, N_FEATURES)
            done = upto
        start = end
    features.flush()
    del features
    if done != k:
        raise ValueError(f"{stratum.features_path}: {k} sampled rows but only {done} found in its {start} rows")
    return k
