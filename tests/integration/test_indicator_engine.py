"""The indicator engine on a small synthetic Wigan loaded through the real ingest pipeline.

One load into DuckDB per session; PostgreSQL gets an exact copy of those inputs, so the two
warehouses can be compared value for value.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.support.pipeline import compute, copy_inputs, settings_for, small_wigan
from transforms import tasks as pipeline
from transforms.config.catalogue import catalogue
from transforms.config.sources import SOURCES
from transforms.core import statistics as st
from transforms.core.disclosure import SUPPRESSION_THRESHOLD
from transforms.indicators import assembly as indicators
from transforms.indicators import counts as aggregation
from transforms.indicators import store as indicator_store
from transforms.quality import completeness
from transforms.warehouse import engine as warehouse
from transforms.warehouse import tables


def read(url: str, sql: str) -> pd.DataFrame:
    with warehouse.make_engine(url).connect() as conn:
        result = conn.execute(sa.text(sql))
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def values(url: str, table: str = '"values"') -> pd.DataFrame:
    """``indicators.values`` (or another table of computed rows) in key order."""
    frame = read(url, f"select * from indicators.{table}").drop(columns=["computed_at", "run_id"])
    keys = ["indicator_id", "measure", "period_type", "period_start", "breakdown", "group_code"]
    return frame.sort_values(keys, ignore_index=True)


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB warehouse with 14 months of every source loaded (and ethnicity linked)."""
    root = tmp_path_factory.mktemp("indicators")
    small_wigan(root)
    return root


@pytest.fixture
def duckdb_url(loaded: Path, tmp_path: Path) -> str:
    """A private copy of the loaded warehouse, before any indicator was computed."""
    shutil.copy(loaded / "loaded.duckdb", tmp_path / "warehouse.duckdb")
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_duckdb_and_postgres_give_identical_values(duckdb_url, warehouse_url):
    postgres_url = warehouse_url
    copy_inputs(duckdb_url, postgres_url)
    assert compute(duckdb_url) == compute(postgres_url)
    ours, theirs = values(duckdb_url), values(postgres_url)
    assert len(ours) > 1000
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False, rtol=1e-12)
    shown = [mart(url).drop(columns="computed_at") for url in (duckdb_url, postgres_url)]
    pd.testing.assert_frame_equal(*shown, check_dtype=False, rtol=1e-12)


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_a_postgres_compute_groups_in_memory_for_its_transaction_only(duckdb_url, warehouse_url):
    copy_inputs(duckdb_url, warehouse_url)
    show = sa.text("show work_mem")
    engine = warehouse.make_engine(warehouse_url)
    with engine.begin() as conn:
        before = conn.execute(show).scalar_one()
        indicator_store.compute(conn, "test")
        assert conn.execute(show).scalar_one() == warehouse.GROUPING_MEMORY != before
    with engine.connect() as conn:
        assert conn.execute(show).scalar_one() == before


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_duckdb_and_postgres_link_and_count_completeness_identically(duckdb_url, warehouse_url):
    """PostgreSQL recomputes, from the staging rows DuckDB loaded, every month's recorded
    completeness, best-known ethnicity and linked completeness: the same rows come out."""
    postgres_url = warehouse_url
    copy_inputs(duckdb_url, postgres_url)
    done = tables.quality_ethnicity_completeness
    with warehouse.make_engine(postgres_url).begin() as conn:
        conn.execute(sa.delete(done))
        for name, source in SOURCES.items():
            periods = sa.select(tables.STAGING[name].c.period).distinct()
            for period in conn.execute(periods).scalars():
                completeness.record_delivery(conn, source, period)
        completeness.rebuild_person_ethnicity(conn)
        completeness.rebuild_linked(conn)
    for table, keys in [
        (tables.core_person_ethnicity, ["person_id"]),
        (done, ["source", "period", "organisation", "basis"]),
    ]:
        ours, theirs = (
            rows(url, table).drop(columns="computed_at").sort_values(keys, ignore_index=True)
            for url in (duckdb_url, postgres_url)
        )
        assert len(ours) > 1000
        pd.testing.assert_frame_equal(ours, theirs, check_dtype=False, rtol=1e-12)


def rows(url: str, table: sa.Table) -> pd.DataFrame:
    with warehouse.make_engine(url).connect() as conn:
        return warehouse.fetch_frame(conn, sa.select(table))


def mart(url: str) -> pd.DataFrame:
    keys = ["indicator_id", "measure", "period_type", "period_start", "breakdown", "group_code"]
    frame = read(url, "select * from mart.indicator_values")
    frame["ethnicity_known_pct"] = frame["ethnicity_known_pct"].astype(float)
    return frame.sort_values(keys, ignore_index=True)


def test_every_indicator_period_and_breakdown_is_filled(duckdb_url):
    compute(duckdb_url)
    found = values(duckdb_url)
    sizes = {"all": 1, "ethnicity_5": 7, "ethnicity_16": 18}
    for indicator in catalogue().values():
        mine = found[found["indicator_id"] == indicator.id]
        assert set(mine["measure"]) == set(indicator.measures), indicator.id
        assert set(mine["period_type"]) == set(indicator.periods), indicator.id
        for (_, _, breakdown), rows in mine.groupby(["measure", "period_start", "breakdown"]):
            assert len(rows) == sizes.get(breakdown, len(rows)), (indicator.id, breakdown)
    rolling = found[found["period_type"] == "rolling_12m"]["period_start"].astype(str)
    assert sorted(set(rolling)) == ["2024-09-01", "2024-10-01", "2024-11-01"]


def test_counts_equal_the_staging_rows_they_stand_for(duckdb_url):
    compute(duckdb_url)
    staged = read(
        duckdb_url,
        "select count(*) filter (where appointment_status = 'DNA') as dna, "
        "count(*) filter (where appointment_status in ('Attended', 'DNA')) as seen "
        "from staging.stg_gp_appointments where period = '2025-03'",
    ).iloc[0]
    row = read(
        duckdb_url,
        "select numerator, denominator from indicators.\"values\" where indicator_id = 'ACC02' "
        "and period_start = date '2025-03-01' and breakdown = 'all'",
    ).iloc[0]
    assert (row["numerator"], row["denominator"]) == (staged["dna"], staged["seen"])
    register = read(
        duckdb_url,
        "select count(*) / 12.0 as person_years from staging.stg_gp_register "
        "where period between '2024-09' and '2025-08'",
    ).iloc[0]["person_years"]
    out01 = read(
        duckdb_url,
        "select denominator from indicators.\"values\" where indicator_id = 'OUT01' "
        "and period_start = date '2024-09-01' and breakdown = 'all'",
    ).iloc[0]["denominator"]
    assert math.isclose(out01, register, rel_tol=1e-12)


def test_only_aggregated_rows_reach_python(duckdb_url, monkeypatch):
    fetched: list[int] = []
    original = aggregation._fetch

    def counting(conn, query, month=None):
        frames = original(conn, query, month)
        fetched.extend(len(f) for f in frames)
        return frames

    monkeypatch.setattr(aggregation, "_fetch", counting)
    compute(duckdb_url)
    months, codes, bands = 14, 18, 19  # the most a count can return, however many rows
    assert fetched and max(fetched) <= months * codes * bands


def test_counting_month_by_month_gives_the_values_of_one_query(duckdb_url, monkeypatch):
    compute(duckdb_url)  # a small warehouse: every source's months fit in one query
    whole = values(duckdb_url)
    queries: list[int] = []
    original = aggregation._scan

    def scan(counts, months, with_age, label=None):
        if label is None:
            queries.append(len(months))
        return original(counts, months, with_age, label)

    monkeypatch.setattr(aggregation, "BATCH_ROWS", 1)  # every month a batch of its own
    monkeypatch.setattr(aggregation, "_scan", scan)
    compute(duckdb_url, force=True)
    assert queries and set(queries) == {1}
    pd.testing.assert_frame_equal(values(duckdb_url), whole)


def test_computing_periods_a_few_months_at_a_time_gives_the_values_of_one_chunk(
    duckdb_url, monkeypatch
):
    """The compute's memory is one chunk's (``CHUNK_MONTHS``): taken two months of period
    ends at a time, the 14 months give the same rows, bit for bit, as in one chunk."""
    compute(duckdb_url)
    whole = values(duckdb_url), values(duckdb_url, "published")
    chunks = []
    original = indicator_store._values

    def counted(conn, entries, work):
        chunks.append(sorted({p.months[-1] for todo, _, _ in work.values() for p in todo}))
        return original(conn, entries, work)

    monkeypatch.setattr(indicator_store, "CHUNK_MONTHS", 2)
    monkeypatch.setattr(indicator_store, "_values", counted)
    compute(duckdb_url, force=True)
    assert len(chunks) == 7 and all(len(ends) <= 2 for ends in chunks)
    pd.testing.assert_frame_equal(values(duckdb_url), whole[0], check_exact=True)
    pd.testing.assert_frame_equal(values(duckdb_url, "published"), whole[1], check_exact=True)


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_postgres_counts_every_month_of_a_source_in_one_query(
    duckdb_url, warehouse_url, monkeypatch
):
    """Batches are DuckDB's (its joins do not spill); on PostgreSQL each batch would scan the
    source again."""
    copy_inputs(duckdb_url, warehouse_url)
    asked, scanned = [], []
    count, scan = aggregation.counts_by_month, aggregation._scan

    def counting(conn, counts, months, *, with_age):
        asked.append(len(months))
        return count(conn, counts, months, with_age=with_age)

    def scanning(counts, months, with_age, label=None):
        if label is None:
            scanned.append(len(months))
        return scan(counts, months, with_age, label)

    monkeypatch.setattr(aggregation, "BATCH_ROWS", 1)  # DuckDB would count month by month
    monkeypatch.setattr(aggregation, "counts_by_month", counting)
    monkeypatch.setattr(aggregation, "_scan", scanning)
    compute(warehouse_url)
    assert max(asked) > 1
    assert scanned == asked


def test_rerun_recomputes_nothing_and_changes_nothing(duckdb_url):
    first = compute(duckdb_url)
    before = values(duckdb_url)
    assert all(first.values())
    assert not any(compute(duckdb_url).values())
    pd.testing.assert_frame_equal(values(duckdb_url), before)


def test_a_change_to_the_methods_code_recomputes_every_period(duckdb_url, monkeypatch):
    first = compute(duckdb_url)
    monkeypatch.setattr(  # a code change, as an upgrade brings (here: one more module)
        indicator_store, "METHOD_MODULES", (*indicator_store.METHOD_MODULES, json)
    )
    assert compute(duckdb_url) == first


def test_resubmission_recomputes_only_its_periods_and_matches_a_full_recompute(
    duckdb_url, loaded, tmp_path
):
    compute(duckdb_url)
    landing = tmp_path / "landing"
    shutil.copytree(loaded / "landing", landing)
    (month,) = (landing / "gp_appointments").glob("gp_appointments_2025-03.*")
    truth = json.loads((landing / "truth.json").read_text())
    entry = truth["files"][f"gp_appointments/{month.name}"]
    if entry["format"] == "parquet":
        rows = pd.read_parquet(month)
    else:
        rows = pd.read_csv(month, dtype=str, encoding=entry["encoding"], keep_default_na=False)
    month.unlink()
    rows.head(len(rows) // 2).to_csv(month.parent / "gp_appointments_2025-03.csv", index=False)
    settings = settings_for(tmp_path, duckdb_url)
    for group in pipeline.find_deliveries(settings, "gp_appointments", None):
        pipeline.load_month(settings, group, "resubmission")

    recomputed = compute(duckdb_url)
    assert recomputed["ACC02"] == 1  # the month itself
    assert recomputed["ACC01"] == 3  # every rolling year containing 2025-03
    assert recomputed["OUT01"] == 0  # nothing it reads changed
    incremental = values(duckdb_url)
    compute(duckdb_url, force=True)
    pd.testing.assert_frame_equal(values(duckdb_url), incremental)


def test_a_recompute_replaces_every_period_however_many_deletes_it_takes(duckdb_url, monkeypatch):
    """The recomputed periods are deleted in batches (``PERIODS_PER_DELETE``, 1,000: more
    than this warehouse has); in batches of 7, every period is still replaced exactly once."""
    done = compute(duckdb_url, force=True)
    before = values(duckdb_url)
    monkeypatch.setattr(indicator_store, "PERIODS_PER_DELETE", 7)
    assert compute(duckdb_url, force=True) == done
    assert sum(done.values()) > 7 * 3
    pd.testing.assert_frame_equal(values(duckdb_url), before)
    inputs = read(duckdb_url, "select * from indicators.inputs")
    assert len(inputs) == sum(done.values())


def test_failed_compute_leaves_the_values_as_they_were(duckdb_url, monkeypatch):
    """The write fails half-way: every period deleted and the data team's rows written,
    then the partners' rows refused."""
    compute(duckdb_url, force=True)
    before = values(duckdb_url)

    def broken(conn, table, rows):
        if table is tables.indicators_published:
            raise RuntimeError("the warehouse refused the partners' rows")
        return original(conn, table, rows)

    original = indicator_store.append_arrow
    monkeypatch.setattr(indicator_store, "append_arrow", broken)
    with pytest.raises(RuntimeError, match="refused"):
        compute(duckdb_url, force=True)
    pd.testing.assert_frame_equal(values(duckdb_url), before)


def test_mart_view_shows_only_disclosure_controlled_values(duckdb_url):
    compute(duckdb_url)
    mart = read(duckdb_url, "select * from mart.indicator_values")
    exact = values(duckdb_url)
    assert len(mart) == len(exact)
    assert not {"published_numerator", "published_denominator"} & set(mart.columns)
    for column in ("numerator", "denominator"):
        shown = mart[column].dropna()
        assert not shown.between(1, SUPPRESSION_THRESHOLD).any()
        assert (shown % 5 == 0).all()
    suppressed = mart[mart["suppressed"]]
    assert len(suppressed) > 0
    derived = ["value", "lower_95", "upper_95", "ratio_to_reference", "significance_vs_all"]
    assert suppressed[derived].isna().all().all()
    small = exact[exact["numerator"].between(1, SUPPRESSION_THRESHOLD)]
    assert small["suppressed"].all() and small["published_numerator"].isna().all()


def test_no_withheld_count_in_the_mart_can_be_recovered_by_subtraction(duckdb_url):
    """Checked on what partners see, independently of transforms.core.disclosure: in every set
    (All persons and its 5 groups; each 5 group and its 16 groups; a source and its
    organisations) no count is the only one withheld."""
    compute(duckdb_url)
    shown = mart(duckdb_url)
    parents = read(duckdb_url, "select ethnic_code, group_5 from core.dim_ethnicity")
    parent_of = dict(zip(parents["ethnic_code"], parents["group_5"], strict=True))
    breakdown, code = shown["breakdown"], shown["group_code"]
    shown["set"] = None
    shown.loc[breakdown.isin(["all", "ethnicity_5"]), "set"] = "all"
    shown.loc[breakdown == "source_organisation", "set"] = code.str.split(":").str[0]
    nested = shown[breakdown.isin(["ethnicity_5", "ethnicity_16"])].copy()
    nested["set"] = nested["group_code"].map(parent_of).fillna(nested["group_label"])
    keys = ["indicator_id", "measure", "period_type", "period_start", "set"]
    for frame in (shown.dropna(subset=["set"]), nested):
        for column in ("numerator", "denominator"):
            grouped = frame[column].isna().groupby([frame[k] for k in keys])
            alone = (grouped.sum() == 1) & (grouped.size() > 1)
            assert not alone.any(), (column, alone[alone].index[:3].tolist())
    withheld = shown[shown["suppression_reason"] == "withheld"]
    assert withheld[["method", "note"]].isna().all().all()


def test_ratio_to_a_withheld_reference_group_is_withheld(duckdb_url):
    compute(duckdb_url)
    shown = mart(duckdb_url)
    reference = shown[shown["group_label"] == shown["reference_group"]]
    withheld = reference[reference["suppressed"]][
        ["indicator_id", "measure", "period_start", "breakdown"]
    ]
    exposed = shown.merge(withheld, on=list(withheld.columns))
    assert len(exposed) > 0  # small monthly indicators have withheld reference groups
    assert exposed["ratio_to_reference"].isna().all()
    assert exposed["significance_vs_reference"].isna().all()


def test_partners_see_statistics_of_the_published_counts_only(duckdb_url):
    """The first edition computed values and limits from exact counts, and a value with its
    limits pinned the count down. Now each follows from the published counts: Wilson and
    Byar of the rounded counts; a DSR's limits are Dobson's for its published count, so
    (upper − value) ÷ (value − lower) is that of the published count."""
    compute(duckdb_url)
    shown = mart(duckdb_url).dropna(subset=["value"])
    for measure in ("proportion", "crude_rate"):
        rows = shown[shown["measure"] == measure]
        method = st.proportion if measure == "proportion" else st.crude_rate
        multiplier = 100 if measure == "proportion" else 1000
        expected = method(
            rows["numerator"].astype(float),
            rows["denominator"].astype(float),
            multiplier=multiplier,
        )
        if measure == "proportion":  # DQ01 and the proportions: all per 100
            assert len(rows) > 1000
        for ours, theirs in (
            ("value", "value"),
            ("lower_95", "lower95_0cl"),
            ("upper_998", "upper99_8cl"),
        ):
            assert rows[ours].to_numpy() == pytest.approx(expected[theirs].to_numpy(), rel=1e-12)
    dsr = shown[shown["measure"] == "dsr"]
    assert len(dsr) > 100 and (dsr["numerator"] >= indicators.DSR_SHOWN_FROM).all()
    low, high = st.byars_limits(dsr["numerator"].astype(float), 0.95)
    count = dsr["numerator"].astype(float)
    shape = (dsr["upper_95"] - dsr["value"]) / (dsr["value"] - dsr["lower_95"])
    assert shape.to_numpy() == pytest.approx(((high - count) / (count - low)).to_numpy(), rel=1e-9)


def test_partners_see_one_marker_for_every_withheld_count(duckdb_url):
    compute(duckdb_url)
    shown = mart(duckdb_url)
    assert set(shown["suppression_reason"].dropna()) == {"withheld", "unreliable"}
    withheld = shown[shown["suppression_reason"] == "withheld"]
    assert (withheld["numerator"].isna() | withheld["denominator"].isna()).all()
    unreliable = shown[shown["suppression_reason"] == "unreliable"]
    assert set(unreliable["measure"]) == {"dsr"}
    assert (unreliable["numerator"] < indicators.DSR_SHOWN_FROM).all()
    assert unreliable[["value", "lower_95", "ratio_to_reference"]].isna().all().all()
    exact = values(duckdb_url)
    assert {"small_count", "secondary"} <= {
        code for reason in exact["suppression_reason"].dropna() for code in reason.split(";")
    }  # the data team still sees why


def test_the_attacking_audit_finds_nothing_in_the_mart(duckdb_url):
    compute(duckdb_url)
    with warehouse.make_engine(duckdb_url).connect() as conn:
        assert indicator_store.attack_mart(conn) == []
