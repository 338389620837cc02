"""The bid-file checks count every rule on the Editor files as Editor reads them: each case breaks one
cell (or the predictions) of a published day and sees exactly the checks that guard it fail, with the
count of rows or keywords that break it (the totals GX validates, ``stages.validation.bid_file_totals``).
The cases of ``test_bid_file`` (a bid above break-even, a pause left serving, a keyword missing or
twice, a row of a keyword not scored, a bid below the floor with an unknown status) are not repeated."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, DataLayout
from astro_assets_tests.conftest import loopback_spark
from astro_assets_tests.test_bid_file import DAY, EVERYONE, RULE, bid, failing_checks, rewrite, write_day

FLOOR_AND_CEILING = "bid_file_max_cpc_within_floor_and_ceiling"
BREAK_EVEN = "bid_file_never_bids_above_break_even"
ONE_ROW = "bid_file_sets_every_keyword_once"


@pytest.fixture(scope="module")
def spark():
    return loopback_spark()


@pytest.fixture
def published(tmp_path):
    """A published day: campaign 3 in two files of two rows, campaign 4 in one; (70, 12) cannot earn
    and (80, 22) has a NaN prediction, so both are paused without a bid; everyone else bids 1.60."""
    layout = DataLayout(tmp_path)
    write_day(layout, DAY, {**EVERYONE, (70, 12): 0.01, (80, 22): float("nan")})
    bid(layout, DAY, max_rows=2)
    return layout


def _keyword(keyword_id: str, change: dict):
    """Change the cells of the row of ``keyword_id`` (ad groups 70 and 80 hold one keyword of each id)."""
    return lambda rows: [
        {**r, **change} if r["Keyword ID"] == keyword_id and r["Ad group ID"] in ("70", "80") else r for r in rows
    ]


CELLS = [
    # (case, file index, keyword id, cells written, failing checks with their counts)
    ("a Max CPC with one decimal", 0, "11", {"Max CPC": "1.6"}, {FLOOR_AND_CEILING: ["malformed_max_cpc=1"]}),
    (
        "a Max CPC with a decimal comma",  # not a number Editor reads: no bid, so the keyword keeps serving
        0,
        "11",
        {"Max CPC": "1,60"},
        {FLOOR_AND_CEILING: ["malformed_max_cpc=1"], BREAK_EVEN: ["serving_without_bid=1"]},
    ),
    (
        "a Max CPC above the ceiling",
        0,
        "11",
        {"Max CPC": "30.00"},
        {FLOOR_AND_CEILING: ["max_cpc_above_ceiling=1"], BREAK_EVEN: ["bids_above_break_even=1"]},
    ),
    (
        "a Max CPC of zero",
        0,
        "11",
        {"Max CPC": "0.00"},
        {FLOOR_AND_CEILING: ["max_cpc_below_floor=1", "max_cpc_not_positive=1"]},
    ),
    (
        "an unknown match type",
        0,
        "11",
        {"Criterion Type": "Exact match"},
        {FLOOR_AND_CEILING: ["unknown_criterion_types=1"]},
    ),
    ("an unknown status", 0, "11", {"Status": "enabled"}, {FLOOR_AND_CEILING: ["unknown_statuses=1"]}),
    ("a blank campaign name", 0, "11", {"Campaign": ""}, {FLOOR_AND_CEILING: ["rows_without_names=1"]}),
    (
        "a keyword id that is not a number",  # the row matches no keyword, and its keyword has no row
        0,
        "11",
        {"Keyword ID": "11a"},
        {
            FLOOR_AND_CEILING: ["rows_without_ids=1"],
            BREAK_EVEN: ["rows_not_scored=1"],
            ONE_ROW: ["keywords_without_row=1", "rows_not_scored=1"],
        },
    ),
    (
        "a bid beside a NaN prediction",  # no break-even can be computed: no bid may be written
        2,
        "22",
        {"Max CPC": "0.50", "Status": ""},
        {BREAK_EVEN: ["bids_above_break_even=1"]},
    ),
]


@pytest.mark.parametrize("case, index, keyword, cells, failing", CELLS, ids=[c[0] for c in CELLS])
def test_a_broken_cell_fails_the_checks_that_guard_it(spark, published, case, index, keyword, cells, failing):
    path = published.bid_editor_files(published.partition_dir(BID_FILE, DAY), "bids")[index]
    rewrite(path, _keyword(keyword, cells))
    assert {name: sorted(rules) for name, rules in failing_checks(spark, published).items()} == failing


def test_a_keyword_scored_twice_fails(spark, published):
    """A prediction twice for one keyword: its one row is compared with the lower break-even, and the
    keyword is counted."""
    path = published.part_files(published.partition_dir(DAILY_PREDICTIONS, DAY))[0]
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), path)
    assert failing_checks(spark, published) == {ONE_ROW: ["keywords_scored_more_than_once=1"]}


def test_the_checks_count_every_row_and_keyword(spark, published):
    """The counts shown beside the results: every row of every file, every keyword scored."""
    from astro_assets.stages import validation as v

    inputs = v.CheckInputs(spark, published, DAY, RULE)
    validation, counts = v.run_suite(ONE_ROW, v.bids_one_row_per_keyword, inputs)
    assert validation.success
    assert counts == {"rows": len(EVERYONE), "editor_rows": len(EVERYONE), "keywords": len(EVERYONE)}
