"""Shared fixtures: loopback Spark, a temporary data root and a real Dagster instance per test."""

import os
import sys

# Before anything imports pyspark or the definitions: loopback only, this interpreter for workers,
# a small account unless a test says otherwise.
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("ASTRO_SPARK_MASTER", "local[2]")
os.environ.setdefault("ASTRO_SPARK_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("ASTRO_SPARK_DRIVER_MEMORY", "2g")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# CI explores the same examples every run (a failure there is reproducible); locally they vary.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def dagster_instance(tmp_path):
    """A real Dagster instance whose DAGSTER_HOME is a temporary folder."""
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance
