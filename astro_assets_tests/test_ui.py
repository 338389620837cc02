"""The Dagster UI as a person meets it: `dagster dev` on the project's workspace and shipped instance
config (temporary DAGSTER_HOME, 127.0.0.1, a free port), driven in headless Debian Chromium through
Playwright. Screenshots land in test-artifacts/ui/."""

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from astro_assets.core.calendar import account_today
from astro_assets.defs.freshness import BID_FILE_DEADLINE_HOURS, FRESHNESS_CHECK, FRESHNESS_SENSOR
from astro_assets.defs.sensors import REPORT_FILE_TAG, REPORTS_SENSOR
from astro_assets.settings import Settings, load_settings
from astro_assets_tests.processes import free_port, stop_process_groups, wait_until

pytestmark = [pytest.mark.spark, pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
#: Without these, Chromium tries the network at start and stalls on this closed machine.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Days near today: a backfill of raw_features also targets the lag windows of the six days after each
# day (the TimeWindowPartitionMapping, followed downstream), so a range must end at the newest
# partition (yesterday) for every targeted day to have its raw data.
YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
DAY = YESTERDAY - dt.timedelta(days=2)
BACKFILL_DAYS = [YESTERDAY - dt.timedelta(days=1), YESTERDAY]
DAILY_ASSETS = ("raw_features", "preprocessed_features", "daily_predictions", "bid_file")
GRAPH_ASSETS = (
    "raw_features",
    "preprocessed_features",
    "trained_model",
    "onnx_model",
    "daily_predictions",
    "bid_file",
    "bid_upload",
    "backtest",
)
KEYWORDS = 5_000  # enough clicks on the held-out day for the promotion gate to be decisive (README)
RUN_SECONDS = 600


def _unavailable(reason: str):
    """CI must run the browser test; elsewhere a missing browser is a skip with the reason."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    """`dagster dev` over a data folder that already holds the history and a model (made by
    `python -m astro_assets.cli.run` for the day before DAY through the same instance)."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    data = tmp_path_factory.mktemp("data")
    logs = tmp_path_factory.mktemp("logs")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ASTRO_DATA_DIR": str(data),
        "ASTRO_KEYWORDS": str(KEYWORDS),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
    day_before = (DAY - dt.timedelta(days=1)).isoformat()
    seed = subprocess.run(
        [sys.executable, "-m", "astro_assets.cli.run", "--date", day_before],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert seed.returncode == 0, seed.stderr[-3000:]

    with _serve(env, logs / "dagster-dev.log") as (base, instance):
        yield base, instance, data


@contextlib.contextmanager
def _serve(env: dict[str, str], log: Path):
    """`dagster dev` on the workspace (127.0.0.1, a free port) with ``env``; yields its address and the
    instance of its DAGSTER_HOME; its log is copied to the artifacts when it stops."""
    port = free_port()
    dagster = str(Path(sys.executable).with_name("dagster"))
    server = subprocess.Popen(
        [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{base}/server_info", timeout=2).status == 200, 180, "dagster dev")
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        yield base, instance
        instance.dispose()
    finally:
        stop_process_groups([server])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / log.name)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: install Debian's chromium package (`make test` does, as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[dev]'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


#: The UI opens its "Join the Dagster community" dialog on 127.0.0.1 one second after a page loads, over
#: whatever a test clicks, until it is dismissed: in this browser's storage (key ``communityNux``) or on
#: the instance (dagster-webserver 1.13, ``CommunityNux.tsx``). A person dismisses it once; so does this.
DISMISSED_COMMUNITY_DIALOG = "window.localStorage.setItem('communityNux', JSON.stringify('1'))"


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.add_init_script(DISMISSED_COMMUNITY_DIALOG)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")


def _materialize_daily_assets(page, base: str, partitions: str, launch: str) -> None:
    """On the asset graph: filter to the daily assets, "Materialize all…", pick ``partitions``, launch."""
    _open(page, f"{base}/asset-groups")
    page.locator(".CodeMirror").first.click()
    page.keyboard.type("group:keywords or group:bidding")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Materialize all").click()
    page.get_by_text("Launch runs to materialize 4 assets").wait_for()
    page.get_by_role("button", name="Show all partitions").click()  # the dialog opens on the last 90 days
    partition_input = page.locator("[role=dialog] input:not([type=checkbox])").first
    partition_input.fill(partitions)
    partition_input.press("Enter")
    page.get_by_role("button", name=launch).click()


def _shown_as(name: str, label: str) -> bool:
    """Zoomed out, the graph shortens long names in the middle ("preproce…_features")."""
    head, _, tail = label.partition("…")
    return label == name or (bool(tail) and name.startswith(head) and name.endswith(tail))


def _materialized_partitions(instance: dg.DagsterInstance, asset: str) -> list[str]:
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
    return [r.asset_materialization.partition for r in records]


def test_a_person_materialises_one_day_from_the_asset_graph(dagster_dev, page):
    from playwright.sync_api import expect

    base, instance, data = dagster_dev
    _open(page, f"{base}/asset-groups")
    # Until the graph has drawn, the last settings button is the page's own, not the graph's gear.
    page.locator("foreignObject").first.wait_for()
    page.locator("button:has([aria-label=settings])").last.click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    names = page.locator("foreignObject [class*=assetName]")
    expect(names).to_have_count(len(GRAPH_ASSETS))
    labels = names.all_inner_texts()
    assert all(any(_shown_as(asset, label) for label in labels) for asset in GRAPH_ASSETS), labels
    page.screenshot(path=ARTIFACTS / "asset-graph.png")

    _materialize_daily_assets(page, base, DAY.isoformat(), "Launch 1 run")
    page.get_by_role("link", name="View", exact=True).click()  # on the "Launched run" toast
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_SECONDS * 1000)
    expect(page.get_by_text(f"partition: {DAY}")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "run.png")

    (run,) = [r for r in instance.get_runs() if r.tags.get("dagster/partition") == DAY.isoformat()]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    bid_file = data / "bid_file" / f"date={DAY}"
    editor = sorted(bid_file.glob("bids-*.csv"))  # UTF-16 LE with a byte-order mark, tab-separated
    assert editor and editor[0].read_bytes()[2:].decode("utf-16-le").startswith("Campaign ID\tCampaign\t")

    _open(page, f"{base}/assets/bid_file?partition={DAY}")
    metadata = page.locator("table", has_text="paused_below_floor").first
    expect(metadata.get_by_text(str(bid_file)).first).to_be_visible()  # `path`, and `dagster/uri` beside it
    expect(metadata.get_by_role("row", name="bids").first).to_be_visible()
    expect(metadata.get_by_role("row").filter(has_text="model_version").first).to_be_visible()  # from predictions
    page.screenshot(path=ARTIFACTS / "bid-file.png", full_page=True)
    _see_plot(page, metadata, "bid_distribution")
    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text("Checks (4)")).to_be_visible()  # the three below and freshness_check (its sensor is off)
    for check in (
        "bid_file_max_cpc_within_floor_and_ceiling",
        "bid_file_never_bids_above_break_even",
        "bid_file_sets_every_keyword_once",
    ):
        # The list on the left (the innermost item holding the name and its status); details on the right.
        page.locator("div", has=page.get_by_text(check, exact=True)).filter(has_text="Succeeded").last.click()
        expect(page.get_by_text("blocking", exact=True)).to_be_visible()
        expect(page.get_by_text("Passed", exact=True)).to_be_visible()
        expect(page.get_by_role("row", name="failed_expectations 0")).to_be_visible()
        page.screenshot(path=ARTIFACTS / f"check-{check}.png", full_page=True)


def _see_plot(page, metadata, label: str) -> None:
    """A plot in the metadata (Markdown with an embedded PNG) opens from its row and is drawn."""
    from playwright.sync_api import expect

    metadata.get_by_role("row").filter(has_text=label).get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog").filter(has_text=label)
    plot = dialog.locator("img")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth") > 100, "the PNG did not decode"
    page.wait_for_timeout(500)  # let the dialog finish fading in before the screenshot
    page.screenshot(path=ARTIFACTS / f"plot-{label}.png")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def test_the_model_plots_show_on_its_asset_page(dagster_dev, page):
    from playwright.sync_api import expect

    base, _, _ = dagster_dev
    _open(page, f"{base}/assets/trained_model")
    metadata = page.locator("table", has_text="promotion_reason")
    expect(metadata.get_by_role("row").filter(has_text="comparison").get_by_text("gbdt")).to_be_visible()
    _see_plot(page, metadata, "loss_curve")
    _see_plot(page, metadata, "predicted_vs_actual")


def test_a_backfill_from_the_ui_materialises_each_day_once(dagster_dev, page):
    base, instance, data = dagster_dev
    keys = [d.isoformat() for d in BACKFILL_DAYS]
    _materialize_daily_assets(page, base, f"[{keys[0]}...{keys[-1]}]", "Launch backfill")

    def finished() -> bool:  # the backfill's status leaves REQUESTED when the daemon is done with it
        backfills = instance.get_backfills()
        return bool(backfills) and backfills[0].status.value not in ("REQUESTED", "CANCELING", "FAILING")

    wait_until(finished, RUN_SECONDS * len(keys), "the backfill")
    (backfill,) = instance.get_backfills()
    _open(page, f"{base}/runs/b/{backfill.backfill_id}")
    page.screenshot(path=ARTIFACTS / "backfill.png", full_page=True)
    assert backfill.status.value == "COMPLETED_SUCCESS", backfill.status
    for asset in DAILY_ASSETS:
        done = [p for p in _materialized_partitions(instance, asset) if p in keys]
        assert sorted(done) == keys, (asset, done)
    assert all((data / "bid_file" / f"date={key}" / "manifest.json").exists() for key in keys)


def test_the_daemon_picks_up_the_daily_schedule_when_it_is_turned_on(dagster_dev, page):
    from playwright.sync_api import expect

    base, instance, _ = dagster_dev
    _open(page, f"{base}/automation")
    page.get_by_role("link", name="daily_bid_job_schedule").click()
    running = page.locator("tr", has_text="Running")
    expect(running.locator("input[type=checkbox]")).not_to_be_checked()
    turned_on = time.time()
    running.locator("label").first.click()
    expect(running.locator("input[type=checkbox]")).to_be_checked()

    def schedule_state():
        """The schedule's stored state (None until the webserver has written it: the switch flips first)."""
        states = [s for s in instance.all_instigator_state() if s.instigator_name == "daily_bid_job_schedule"]
        assert len(states) <= 1, states
        return states[0] if states else None

    def daemon_passed() -> bool:
        state = schedule_state()
        data = state.instigator_data if state else None
        return data is not None and (data.last_iteration_timestamp or 0) >= turned_on - 1

    # The scheduler daemon that `dagster dev` started records each pass over a running schedule.
    wait_until(daemon_passed, 120, "the scheduler daemon's first pass over daily_bid_job_schedule")
    assert schedule_state().status.value == "RUNNING"
    page.screenshot(path=ARTIFACTS / "schedule-on.png")


def test_two_daily_runs_at_once_both_succeed_one_after_the_other(dagster_dev):
    """Two daily_bid_job runs for different days submitted together: the shipped instance's run queue
    (tag astro/spark, limit 1) starts the second when the first ends; both succeed, and each day's
    files that existed come out byte for byte as before (days the seeding run already made)."""
    from dagster_graphql import DagsterGraphQLClient

    base, instance, data = dagster_dev
    days = [DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=1)]
    folders = [
        data / asset / f"date={d}"
        for d in days
        for asset in ("raw_features", "preprocessed_features", "daily_predictions")
    ]
    folders = [f for f in folders if f.exists()]  # the seeding run made predictions for DAY - 1 only
    assert len(folders) == 5
    before = {f: {p.name: p.read_bytes() for p in f.iterdir()} for f in folders}
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(base.rsplit(":", 1)[1]))
    run_ids = [client.submit_job_execution("daily_bid_job", tags={"dagster/partition": d.isoformat()}) for d in days]

    def finished() -> bool:
        return all(instance.get_run_by_id(r).is_finished for r in run_ids)

    wait_until(finished, RUN_SECONDS * len(run_ids), "both runs")
    records = sorted((instance.get_run_record_by_id(r) for r in run_ids), key=lambda r: r.start_time)
    assert [r.dagster_run.status.value for r in records] == ["SUCCESS", "SUCCESS"]
    assert records[1].start_time >= records[0].end_time  # the second waited in the queue
    assert {f: {p.name: p.read_bytes() for p in f.iterdir()} for f in folders} == before


# -- operating: a report dropped in the folder launches its day; bid_file's freshness -----------------

API_REPORT = Path(__file__).parent / "data" / "google_ads_api_keyword_view.csv"


@pytest.fixture
def reports_dev(tmp_path):
    """A second `dagster dev`, with ASTRO_REPORTS_DIR set: raw_features reads that folder (the module's
    server reads the synthetic account, for which the reports sensor only skips). Empty data folder, no
    seeding: the sensor's run is one raw_features day of a few keywords."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    reports = tmp_path / "reports"
    reports.mkdir()
    data = tmp_path / "data"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ASTRO_DATA_DIR": str(data),
        "ASTRO_REPORTS_DIR": str(reports),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
    with _serve(env, tmp_path / "dagster-dev-reports.log") as (base, instance):
        yield base, instance, reports, data


def _turn_on(page, base: str, sensor: str) -> None:
    """Automation -> the sensor's page -> its Running switch, which starts off."""
    from playwright.sync_api import expect

    _open(page, f"{base}/automation")
    page.get_by_role("link", name=sensor).click()  # the link's name is the sensor's and its kind
    running = page.locator("tr", has_text="Running")
    expect(running.locator("input[type=checkbox]")).not_to_be_checked()
    running.locator("label").first.click()
    expect(running.locator("input[type=checkbox]")).to_be_checked()


def _runs_of(instance: dg.DagsterInstance, sensor: str) -> list[dg.DagsterRun]:
    return instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": sensor}))


def _expected_bid_file_partition(settings: Settings, now: dt.datetime) -> dt.date:
    """The day bid_file's freshness check asks for at ``now``: the day before the last deadline
    (``freshness.BID_FILE_DEADLINE_HOURS`` after the daily run hour, in the account's time zone)."""
    local = now.astimezone(ZoneInfo(settings.account_timezone))
    deadline_hour = min(settings.daily_run_hour + BID_FILE_DEADLINE_HOURS, 23)
    last_deadline_day = local.date() if local.hour >= deadline_hour else local.date() - dt.timedelta(days=1)
    return last_deadline_day - dt.timedelta(days=1)


def test_a_report_dropped_in_the_folder_launches_its_day_and_bid_file_shows_its_freshness(reports_dev, page):
    from playwright.sync_api import expect

    base, instance, reports, data = reports_dev
    settings = load_settings()
    day = account_today(settings.account_timezone) - dt.timedelta(days=1)  # the newest day that is over
    header, *rows = API_REPORT.read_text(encoding="utf-8").splitlines()
    one_day = [f"{day},{row.split(',', 1)[1]}" for row in rows if row.startswith("2026-11-22,")]  # 4 keywords
    (reports / "keyword_view.csv").write_text("\n".join([header, *one_day]) + "\n", encoding="utf-8")
    before = _expected_bid_file_partition(settings, dt.datetime.now(dt.UTC))

    # A person turns both sensors on (both start off); the daemons of `dagster dev` do the rest. The
    # reports sensor's page is the one left open.
    _turn_on(page, base, FRESHNESS_SENSOR)
    _turn_on(page, base, REPORTS_SENSOR)

    def done() -> bool:
        runs = [*_runs_of(instance, REPORTS_SENSOR), *_runs_of(instance, FRESHNESS_SENSOR)]
        return len({r.tags["dagster/sensor_name"] for r in runs}) == 2 and all(r.is_finished for r in runs)

    wait_until(done, RUN_SECONDS, "the reports sensor's raw_features run and the freshness checks' run")
    (run,) = _runs_of(instance, REPORTS_SENSOR)
    assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
    assert run.tags["dagster/partition"] == day.isoformat() and run.tags[REPORT_FILE_TAG] == "keyword_view.csv"
    assert (data / "raw_features" / f"date={day}").is_dir()

    # The sensor's page (still open, live): the tick that requested the run, its id linking to the run.
    tick = page.get_by_role("row").filter(has_text="1 run requested")
    expect(tick).to_have_count(1, timeout=60_000)
    page.screenshot(path=ARTIFACTS / "reports-sensor.png", full_page=True)
    with page.context.expect_page() as opened:  # the run opens in a new tab
        tick.get_by_role("link", name=run.run_id[:8]).click()
    run_page = opened.value
    expect(run_page.get_by_text("Success", exact=True).first).to_be_visible(timeout=60_000)
    expect(run_page.get_by_text(f"partition: {day}")).to_be_visible()
    expect(run_page.get_by_text("Launched by")).to_be_visible()  # the name, shortened in the middle, and in full:
    expect(run_page.get_by_title(REPORTS_SENSOR, exact=True).first).to_be_visible()
    run_page.screenshot(path=ARTIFACTS / "reports-sensor-run.png", full_page=True)
    run_page.close()
    _open(page, f"{base}/runs")
    expect(page.get_by_role("link", name=run.run_id[:8])).to_be_visible()

    # bid_file was never made here, so its freshness check fails, naming the day it expects.
    after = _expected_bid_file_partition(settings, dt.datetime.now(dt.UTC))
    _open(page, f"{base}/assets/bid_file")
    page.get_by_role("tab", name="Checks").click()
    page.locator("div", has=page.get_by_text(FRESHNESS_CHECK, exact=True)).filter(has_text="Failed").last.click()
    expect(page.get_by_text("Evaluates freshness for targeted asset.")).to_be_visible()
    message = page.get_by_text("The asset has never been observed/materialized. We currently expect partition")
    expect(message).to_be_visible()
    assert any(f"partition {d} to have arrived" in message.inner_text() for d in {before, after}), message.inner_text()
    page.screenshot(path=ARTIFACTS / "bid-file-freshness.png", full_page=True)
