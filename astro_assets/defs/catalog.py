"""The asset catalog: owners, tags, ``code_version`` and column schemas, applied to every asset in one
place (:func:`apply_catalog`, called by ``build_definitions``) by mapping the asset specs
(``AssetsDefinition.map_asset_specs``), so no asset module repeats them.

- **code_version** of an asset is a hash of the source of the stage code that computes it (the
  :data:`STAGE_MODULES` table): the abstract syntax tree with docstrings dropped, so a comment, a
  docstring or a reformat changes nothing, and a change of code does. Dagster compares it with the
  code version recorded on each materialisation and marks partitions made by older code as stale
  ("code version changed") in the UI.
- **dagster/column_schema** (``TableSchema``) of the Parquet assets, from the pyarrow schemas the code
  writes with (``core.features.RAW_SCHEMA``, ``core.lagging.PREPROCESSED_SCHEMA``,
  ``core.scoring.PREDICTION_SCHEMA``): the catalog cannot drift from the files.
- **owners** and **tags** per asset (:data:`CATALOG`).
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astro_assets.core.features import FEATURE_NAMES, LAGS, NULL_POLICY, RAW_SCHEMA
from astro_assets.core.lagging import PREPROCESSED_SCHEMA
from astro_assets.core.scoring import PREDICTION_SCHEMA
from astro_assets.storage import (
    BACKTEST,
    BID_FILE,
    DAILY_PREDICTIONS,
    ONNX_MODEL,
    PREPROCESSED_FEATURES,
    RAW_FEATURES,
    TRAINED_MODEL,
    DataLayout,
)
from astro_assets.storage.layout import BID_UPLOAD

#: The modules whose code computes each asset (the stage, and the core/storage code it runs). The
#: Dagster shell of the asset (``defs/assets/*``) is left out: its metadata is not the data.
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    RAW_FEATURES: (
        "astro_assets.sources.synthetic",
        "astro_assets.sources.google_ads_report",
        "astro_assets.storage.raw",
        "astro_assets.core.features",
    ),
    PREPROCESSED_FEATURES: (
        "astro_assets.stages.preprocess",
        "astro_assets.core.lagging",
        "astro_assets.core.features",
    ),
    TRAINED_MODEL: (
        "astro_assets.stages.training",
        "astro_assets.model.training",
        "astro_assets.model.network",
        "astro_assets.model.datasets",
        "astro_assets.model.baselines",
        "astro_assets.model.evaluation",
        "astro_assets.model.checkpoint",
        "astro_assets.model.sampling",
        "astro_assets.model.heldout",
        "astro_assets.stages.analyst",
        "astro_assets.core.analyst_rule",
    ),
    ONNX_MODEL: ("astro_assets.model.export", "astro_assets.model.registry"),
    DAILY_PREDICTIONS: ("astro_assets.stages.predict", "astro_assets.core.scoring", "astro_assets.core.analyst_rule"),
    BID_FILE: ("astro_assets.stages.bids", "astro_assets.core.bid_rule"),
    BID_UPLOAD: ("astro_assets.stages.google_ads_upload",),
    # A package: every module of it (its __init__ only re-exports).
    BACKTEST: tuple(
        f"astro_assets.model.backtest.{name}"
        for name in ("__init__", "periods", "market", "fitting", "replay", "run", "report")
    ),
}


@dataclass(frozen=True)
class CatalogEntry:
    owners: tuple[str, ...]
    tags: Mapping[str, str]


_DATA = ("team:astro-data",)
_ML = ("team:astro-ml",)
_BIDDING = ("team:astro-bidding",)
#: Owners and tags of each asset. Tags are filterable in the catalog (``tag:astro/cadence=daily``).
CATALOG: dict[str, CatalogEntry] = {
    RAW_FEATURES: CatalogEntry(_DATA, {"astro/cadence": "daily", "astro/stage": "ingest", "source": "google_ads"}),
    PREPROCESSED_FEATURES: CatalogEntry(_DATA, {"astro/cadence": "daily", "astro/stage": "features"}),
    TRAINED_MODEL: CatalogEntry(_ML, {"astro/cadence": "weekly", "astro/stage": "training"}),
    ONNX_MODEL: CatalogEntry(_ML, {"astro/cadence": "weekly", "astro/stage": "export"}),
    DAILY_PREDICTIONS: CatalogEntry(_ML + _BIDDING, {"astro/cadence": "daily", "astro/stage": "scoring"}),
    BID_FILE: CatalogEntry(_BIDDING, {"astro/cadence": "daily", "astro/stage": "bidding", "astro/output": "editor"}),
    BID_UPLOAD: CatalogEntry(_BIDDING, {"astro/cadence": "daily", "astro/stage": "upload", "astro/output": "api"}),
    BACKTEST: CatalogEntry(_ML, {"astro/cadence": "on_demand", "astro/stage": "evaluation"}),
}


def _features_description() -> str:
    return (
        f"[T={LAGS}] x [F={len(FEATURE_NAMES)}] float32 little-endian, day-major, one fixed-size binary value "
        f"(core.features.FEATURES_TYPE): {', '.join(FEATURE_NAMES)}"
    )


#: Dagster's metadata key for an asset's columns (``TableMetadataSet.column_schema``), shown in the catalog.
COLUMN_SCHEMA = "dagster/column_schema"
#: The pyarrow schema each Parquet asset is written with, and descriptions of its columns.
COLUMN_SCHEMAS: dict[str, tuple[pa.Schema, Mapping[str, str]]] = {
    RAW_FEATURES: (RAW_SCHEMA, {name: f"null becomes: {policy}" for name, policy in NULL_POLICY.items()}),
    PREPROCESSED_FEATURES: (
        PREPROCESSED_SCHEMA,
        {
            "features": _features_description(),
            "trailing_value_per_click": "the keyword's click-weighted value per click over its window",
            "clicks_in_window": "clicks over the lag window (the evidence behind shrinkage)",
        },
    ),
    DAILY_PREDICTIONS: (
        PREDICTION_SCHEMA,
        {
            "predicted_value_per_click": "expected conversion value per click on the day (account currency)",
            "model_version": "the ONNX model that scored the row (onnx_model's model_version)",
        },
    ),
}


def table_schema(schema: pa.Schema, descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    """A Dagster ``TableSchema`` from a pyarrow schema: name, Arrow type, nullability, description."""
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                description=descriptions.get(field.name),
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
            for field in schema
        ]
    )


def _module_path(module: str, root: Path | None) -> Path:
    if root is not None:
        return root.joinpath(*module.split(".")).with_suffix(".py")
    package, _, name = module.rpartition(".")
    if name == "__init__":  # a package's own module
        module = package
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"catalog: stage module {module} (STAGE_MODULES) does not exist")
    return Path(spec.origin)


def _code_fingerprint(source: str) -> str:
    """The module's syntax tree without docstrings: comments, docstrings and layout do not count."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def code_version(modules: Iterable[str], root: Path | None = None) -> str:
    """A short hash of the code of ``modules`` (``root``: the folder holding the ``astro_assets``
    package to read them from; default: where they are imported from)."""
    digest = hashlib.sha256()
    for module in sorted(modules):
        digest.update(module.encode() + b"\0")
        digest.update(_code_fingerprint(_module_path(module, root).read_text(encoding="utf-8")).encode() + b"\0")
    return digest.hexdigest()[:16]


def stage_code_versions(root: Path | None = None) -> dict[str, str]:
    """The code version of every asset of :data:`STAGE_MODULES`."""
    return {asset: code_version(modules, root) for asset, modules in STAGE_MODULES.items()}


def _with_catalog(spec: dg.AssetSpec, versions: Mapping[str, str]) -> dg.AssetSpec:
    name = spec.key.to_user_string()
    entry = CATALOG.get(name)
    metadata = dict(spec.metadata)
    if name in COLUMN_SCHEMAS:
        metadata[COLUMN_SCHEMA] = dg.MetadataValue.table_schema(table_schema(*COLUMN_SCHEMAS[name]))
    return spec.replace_attributes(
        owners=[*spec.owners, *(o for o in (entry.owners if entry else ()) if o not in spec.owners)],
        tags={**(entry.tags if entry else {}), **spec.tags},
        code_version=versions.get(name, spec.code_version),
        metadata=metadata,
    )


def apply_catalog(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Every asset of ``assets`` with its owners, tags, code version and column schema."""
    versions = stage_code_versions()
    return [asset.map_asset_specs(lambda spec: _with_catalog(spec, versions)) for asset in assets]


def model_versions_of_day(layout: DataLayout, day: dt.date) -> list[str]:
    """The model version(s) that scored ``day``'s published predictions (the ``model_version`` column),
    so the bid file can say which model its bids come from. Read from the Parquet footers' statistics
    when they settle it (one version per file), else from the dictionary-encoded column."""
    versions: set[str] = set()
    for path in layout.part_files(layout.require_published(DAILY_PREDICTIONS, day)):
        metadata = pq.ParquetFile(path).metadata
        column = metadata.schema.to_arrow_schema().get_field_index("model_version")
        stats = [metadata.row_group(i).column(column).statistics for i in range(metadata.num_row_groups)]
        if stats and all(s is not None and s.has_min_max and s.min == s.max for s in stats):
            versions.update(str(s.min) for s in stats)
        else:
            table = pq.read_table(path, columns=["model_version"], read_dictionary=["model_version"])
            versions.update(str(v) for v in pc.unique(table.column("model_version")).to_pylist() if v is not None)
    return sorted(versions)
