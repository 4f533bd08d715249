"""Truth recovery: the indicators computed by ``hei run`` recover what the generator injected.

The generator (``synth``) draws events with known group rate ratios (White = 1,
age-standardised) and known group proportions. Sampling noise is real, so the rule is
statistical: the injected value must lie inside the 99.8% confidence interval (of the ratio
to White for rates, of the value for proportions) in at least 90% of the cells that have one,
and more often than a broken estimate would manage. Counts are checked exactly against an
independent reading of the landing files and the generator's population totals.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.support.cli import hei, user_env
from transforms.config.catalogue import catalogue
from transforms.indicators import store as indicator_store
from transforms.warehouse.engine import fetch_frame
from transforms.warehouse.tables import indicators_values

pytestmark = pytest.mark.e2e
START, END, SCALE = "2024-09", "2025-12", "0.1"
GROUPS = ["Mixed", "Asian or Asian British", "Black or Black British", "Other ethnic group"]
GROUPS_5 = ["White", *GROUPS]
RATE_TRUTH = {
    "ACC01": "gp_appointments_attended",
    "ACC03": "ae_attendances",
    "ACC04": "elective_admissions",
    "ACC05": "outpatient_first_attendances",
    "ACC07": "talking_therapies_referrals",
    "OUT01": "emergency_admissions",
    "OUT02": "emergency_acsc_admissions",
    "OUT04": "deaths",
}
PROPORTION_TRUTH = {
    "ACC02": "gp_appointments_dna",
    "ACC06": "outpatient_dna",
    "OUT03": "talking_therapies_recovery",
    "VAC01": "covid_uptake_adults",
    "VAC02": "flu_uptake_65plus",
}
STAFF_TRUTH = {"VAC03": "covid_vaccination_date", "VAC04": "flu_vaccination_date"}
BME = GROUPS
COVERAGE = 0.90  # share of cells whose 99.8% interval must contain the injected value


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("truth")
    env = user_env(root) | {
        "HEI_LANDING_DIR": str(root / "landing"),
        "HEI_WAREHOUSE_URL": f"duckdb:///{root / 'warehouse.duckdb'}",
    }
    for args in (
        [
            "synth",
            "--out",
            str(root / "landing"),
            "--start",
            START,
            "--end",
            END,
            "--scale",
            SCALE,
            "--faults",
            "0",
        ],
        ["run"],
        ["status"],
    ):
        done = hei(*args, env=env, timeout=1200, cwd=root)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    engine = sa.create_engine(env["HEI_WAREHOUSE_URL"])
    with engine.connect() as conn:
        values = fetch_frame(conn, sa.select(indicators_values))
        attack = indicator_store.attack_mart(conn)
    engine.dispose()
    truth = json.loads((root / "landing" / "truth.json").read_text())
    return {
        "values": values,
        "truth": truth,
        "landing": root / "landing",
        "status": done.stdout,
        "attack": attack,
    }


def _cells(values: pd.DataFrame, ids: dict[str, str], measure: str) -> pd.DataFrame:
    chosen = values[
        values["indicator_id"].isin(list(ids))
        & (values["measure"] == measure)
        & (values["breakdown"] == "ethnicity_5")
        & values["group_label"].isin(GROUPS)
    ]
    return chosen.assign(truth_key=chosen["indicator_id"].map(ids))


def test_injected_rate_ratios_are_recovered(run):
    cells = _cells(run["values"], RATE_TRUTH, "dsr").dropna(
        subset=["ratio_lower_998", "ratio_upper_998"]
    )
    true = [
        run["truth"]["rate_ratios"][k][g]
        for k, g in zip(cells["truth_key"], cells["group_label"], strict=True)
    ]
    inside = cells["ratio_lower_998"].le(true) & cells["ratio_upper_998"].ge(true)
    assert len(cells) >= 60
    assert inside.mean() >= COVERAGE, cells[~inside][["indicator_id", "group_label"]]
    flat = cells["ratio_lower_998"].le(1.0) & cells["ratio_upper_998"].ge(1.0)
    assert inside.sum() > flat.sum()  # the ratios tell the groups apart, not just "about 1"


def test_injected_proportions_are_recovered(run):
    cells = _cells(run["values"], PROPORTION_TRUTH, "proportion").dropna(
        subset=["lower_998", "upper_998"]
    )
    truth = run["truth"]["proportions"]
    true = [
        100 * truth[k][g] for k, g in zip(cells["truth_key"], cells["group_label"], strict=True)
    ]
    inside = cells["lower_998"].le(true) & cells["upper_998"].ge(true)
    assert len(cells) >= 60
    assert inside.mean() >= COVERAGE, cells[~inside][["indicator_id", "group_label", "value"]]
    for key, indicator in (("covid_uptake_adults", "VAC01"), ("flu_uptake_65plus", "VAC02")):
        assert (cells["indicator_id"] == indicator).any(), f"no {key} cells"


def _staff_expected(period: pd.DataFrame, uptake: dict[str, dict[str, float]]) -> pd.Series:
    """Each row's injected uptake (%): the generator's clinical uptake by organisation and
    group, averaged with the period's own mix (groups' shares within an organisation taken as
    the partnership's, organisations' within a group likewise)."""
    rows = period.set_index("group_label")
    groups = rows[rows["breakdown"] == "ethnicity_5"]["denominator"].reindex(GROUPS_5)
    group_share = groups / groups.sum()
    organisations = rows[rows["breakdown"] == "source_organisation"]["denominator"]
    organisations = organisations.drop("workforce: all organisations")
    org_share = organisations / organisations.sum()
    org_of = {f"workforce: {o}": o for o in uptake}
    expected = {}
    for label, breakdown in zip(period["group_label"], period["breakdown"], strict=True):
        if breakdown == "source_organisation" and label in org_of:
            by_group = uptake[org_of[label]]
            expected[label] = sum(group_share[g] * by_group[g] for g in GROUPS_5)
        elif label in GROUPS_5 or label == "BME":
            members = BME if label == "BME" else [label]
            weights = group_share[members] / group_share[members].sum()
            expected[label] = sum(
                org_share[f"workforce: {o}"] * sum(weights[g] * uptake[o][g] for g in members)
                for o in uptake
            )
    return 100 * period["group_label"].map(expected)


def test_injected_staff_uptake_is_recovered_by_group_and_organisation(run):
    values = run["values"]
    staff = values[
        values["indicator_id"].isin(list(STAFF_TRUTH))
        & values["breakdown"].isin(["ethnicity_5", "wres_group", "source_organisation"])
    ]
    checked = []
    for (indicator, _), period in staff.groupby(["indicator_id", "period_start"]):
        uptake = run["truth"]["staff_vaccination"][STAFF_TRUTH[indicator]]["uptake"]["Clinical"]
        expected = _staff_expected(period, uptake)
        overall = values.loc[
            (values["indicator_id"] == indicator)
            & (values["period_start"] == period["period_start"].iloc[0])
            & (values["breakdown"] == "all"),
            "value",
        ]
        checked.append(
            period.assign(expected=expected, overall=float(overall.iloc[0])).dropna(
                subset=["expected", "lower_998"]
            )
        )
    cells = pd.concat(checked)
    inside = cells["lower_998"].le(cells["expected"]) & cells["upper_998"].ge(cells["expected"])
    assert len(cells) >= 20 and set(cells["breakdown"]) == {
        "ethnicity_5",
        "wres_group",
        "source_organisation",
    }
    assert inside.mean() >= COVERAGE, cells[~inside][["indicator_id", "group_label", "value"]]
    # the groups and organisations differ as injected, not just "about the overall value"
    off_truth = (cells["value"] - cells["expected"]).abs().mean()
    assert off_truth < (cells["value"] - cells["overall"]).abs().mean()


def test_register_person_years_equal_the_generated_population(run):
    values, population = run["values"], run["truth"]["population"]["by_period"]
    rows = values[(values["indicator_id"] == "OUT01") & (values["breakdown"] == "all")]
    assert len(rows) == 5  # rolling years ending 2025-08 .. 2025-12
    for row in rows.itertuples():
        first = row.period_start.strftime("%Y-%m")
        months = sorted(m for m in population if m >= first)[:12]
        expected = sum(population[m]["total"] for m in months) / 12
        assert row.denominator == pytest.approx(expected, rel=1e-12)


def test_monthly_counts_equal_the_landing_files(run):
    values = run["values"]
    for path, entry in run["truth"]["files"].items():
        if entry["source"] != "gp_appointments":
            continue
        status = _read(run["landing"] / path, entry)["appointment_status"]
        row = values[
            (values["indicator_id"] == "ACC02")
            & (values["breakdown"] == "all")
            & (values["period_start"].astype(str) == f"{entry['period']}-01")
        ].iloc[0]
        assert row.numerator == (status == "DNA").sum()
        assert row.denominator == status.isin(["Attended", "DNA"]).sum()


def _read(path: Path, entry: dict) -> pd.DataFrame:
    if entry["format"] == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, encoding=entry["encoding"], compression="infer")


def test_status_lists_every_indicator_of_the_catalogue(run):
    table = run["status"].split("Indicators (indicators.values")[1]
    listed = {line.split()[0] for line in table.splitlines()[3:] if line.strip()}
    assert set(catalogue()) <= listed


def test_the_attacking_audit_finds_nothing_partners_could_narrow_down(run):
    """A clean synthetic run: the audit the compute ran on each indicator, run again on the
    whole mart as partners read it."""
    assert run["attack"] == []
