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


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """One throwaway TLS certificate for the whole test process: gRPC reads its trusted roots once, at
    the first TLS channel, so every module's local Google Ads server must present this one."""
    from astro_assets_tests.google_ads_server import make_certificate, trust_certificate

    key, cert, path = make_certificate(tmp_path_factory.mktemp("tls"))
    trust_certificate(path)  # before the first TLS channel of this process
    return key, cert


@pytest.fixture
def server(certificate):
    """The local Google Ads server (gRPC over TLS on 127.0.0.1) with a fresh state."""
    from astro_assets_tests.google_ads_server import LocalGoogleAds, Servers

    state = LocalGoogleAds()
    with Servers(state, *certificate) as servers:
        yield state, servers


def loopback_spark(master: str = "local[1]"):
    """A real local SparkSession on 127.0.0.1 (no UI, Arrow on, two shuffle partitions) for the tests
    that call the stages directly."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
