"""The release gate on hand-made releases: a clean one passes; each test then breaks one rule
once and checks the gate names the file, table, row and rule."""

from __future__ import annotations

import ast
import uuid
from collections.abc import Callable, Iterator
from copy import deepcopy
from datetime import date
from pathlib import Path

import fsspec
import pyarrow as pa
import pytest

from tests.support.releases import (
    MONTHS,
    clean_rows,
    fingertips_csv,
    proportion,
    table_of,
    write_release,
)
from transforms.publish import gate
from transforms.publish.gate import GateFailure, GateFinding, check_release

JANUARY, FEBRUARY = MONTHS
Release = tuple[fsspec.AbstractFileSystem, str, dict]


@pytest.fixture
def memory() -> Iterator[tuple[fsspec.AbstractFileSystem, str]]:
    fs = fsspec.filesystem("memory")
    folder = f"/gate-{uuid.uuid4().hex}/releases/release=2026-10"
    yield fs, folder
    fs.rm(folder.split("/releases")[0], recursive=True)


@pytest.fixture(params=["memory", "local"])
def anywhere(request: pytest.FixtureRequest, tmp_path) -> tuple[fsspec.AbstractFileSystem, str]:
    if request.param == "local":
        return fsspec.filesystem("file"), str(tmp_path / "release=2026-10")
    return request.getfixturevalue("memory")


def release(
    place: tuple[fsspec.AbstractFileSystem, str],
    rows: dict[str, list[dict]] | None = None,
    csv_rows: list[dict] | None = None,
    tables: dict[str, pa.Table] | None = None,
    **options,
) -> Release:
    """A release of ``rows`` (the clean ones by default) with the CSV of ``csv_rows`` (the
    clean ones by default, so a broken table is broken in its Parquet file only);
    ``tables`` replaces some tables as written."""
    fs, folder = place
    rows = rows or clean_rows()
    written = {name: table_of(name, table_rows) for name, table_rows in rows.items()}
    csv = fingertips_csv(csv_rows or clean_rows()["indicator_values"])
    manifest = write_release(fs, folder, written | (tables or {}), csv, **options)
    return fs, folder, manifest


def changed(
    table: str, where: Callable[[dict], bool], base: dict | None = None, **values
) -> dict[str, list[dict]]:
    """The clean rows (or ``base``) with the one row of ``table`` matching ``where`` changed."""
    rows = base or clean_rows()
    [row] = [r for r in rows[table] if where(r)]
    row.update(values)
    return rows


def cell(code: str, month: date = JANUARY, indicator: str = "ACC02") -> Callable[[dict], bool]:
    return lambda r: (
        (r["indicator_id"], r["group_code"], r["period_start"])
        == (
            indicator,
            code,
            month,
        )
    )


def position(rows: list[dict], where: Callable[[dict], bool]) -> int:
    [found] = [i for i, r in enumerate(rows) if where(r)]
    return found


def findings_of(rule: str, found: Release | list[GateFinding]) -> list[GateFinding]:
    if isinstance(found, tuple):
        found = check_release(*found)
    return [f for f in found if f.rule == rule]


def located(findings: list[GateFinding]) -> list[tuple[str, str, int | None]]:
    return [(f.file, f.table, f.row) for f in findings]


VALUES_FILE = "indicator_values.parquet"
B_JANUARY = position(clean_rows()["indicator_values"], cell("B"))


def test_a_clean_release_passes(anywhere):
    assert check_release(*release(anywhere)) == []


def test_a_missing_file_is_found(memory):
    fs, folder, manifest = release(memory)
    fs.rm(f"{folder}/README.md")
    assert located(findings_of("missing", (fs, folder, manifest))) == [("README.md", "", None)]


def test_a_changed_file_fails_its_size_and_sha256(memory):
    fs, folder, manifest = release(memory)
    fs.pipe(f"{folder}/README.md", b"# Release, edited after the manifest\n")
    found = check_release(fs, folder, manifest)
    assert located(findings_of("bytes", found)) == [("README.md", "", None)]
    assert located(findings_of("sha256", found)) == [("README.md", "", None)]
    assert "README.md" in findings_of("sha256sums", found)[0].detail


def test_a_wrong_sha256sums_line_is_found(memory):
    fs, folder, manifest = release(memory)
    sums = fs.cat(f"{folder}/SHA256SUMS").decode().splitlines()
    wrong = ["0" * 64 + "  indicators.parquet" if "indicators.parquet" in s else s for s in sums]
    fs.pipe(f"{folder}/SHA256SUMS", ("\n".join(wrong) + "\n").encode())
    [finding] = findings_of("sha256sums", (fs, folder, manifest))
    assert finding.file == "SHA256SUMS" and finding.detail.startswith("indicators.parquet: says")


def test_a_row_count_unlike_the_manifest_is_found(memory):
    def one_more_row(manifest: dict) -> None:
        next(e for e in manifest["files"] if e["path"] == "indicators.parquet")["rows"] += 1

    found = findings_of("rows", release(memory, edit_manifest=one_more_row))
    assert located(found) == [("indicators.parquet", "indicators", None)]


def test_a_column_of_another_type_is_found(memory):
    indicators = table_of("indicators", clean_rows()["indicators"])
    theme = indicators.schema.get_field_index("theme")
    narrowed = indicators.set_column(theme, "theme", indicators["theme"].cast(pa.int32()))
    found = findings_of("schema", release(memory, tables={"indicators": narrowed}))
    assert located(found) == [("indicators.parquet", "indicators", None)]
    assert "theme is INTEGER, declared BIGINT" in found[0].detail


def test_a_file_of_another_release_is_found(memory):
    groups = table_of("ethnic_groups", clean_rows()["ethnic_groups"], release="2026-09")
    found = findings_of("metadata", release(memory, tables={"ethnic_groups": groups}))
    assert located(found) == [("ethnic_groups.parquet", "ethnic_groups", None)]


def test_a_file_the_manifest_does_not_list_is_found(memory):
    fs, folder, manifest = release(memory)
    fs.pipe(f"{folder}/exact_counts.parquet", b"not checked")
    assert located(findings_of("unlisted", (fs, folder, manifest))) == [
        ("exact_counts.parquet", "", None)
    ]


def test_a_manifest_unlike_manifest_json_is_found(memory):
    fs, folder, manifest = release(memory)
    other = deepcopy(manifest) | {"release": "2026-11"}
    assert located(findings_of("manifest", (fs, folder, other))) == [("manifest.json", "", None)]


def test_a_count_of_1_to_7_is_found(memory):
    rows = changed("indicator_values", cell("B"), numerator=5, **proportion(5, 200))
    found = findings_of("small_count", release(memory, rows))
    assert located(found) == [(VALUES_FILE, "indicator_values", B_JANUARY)]
    assert "numerator 5 is a count of 1-7" in str(found[0])


def test_an_unrounded_count_is_found(memory):
    rows = changed("indicator_values", cell("B"), numerator=41, **proportion(41, 200))
    found = findings_of("not_rounded", release(memory, rows))
    assert located(found) == [(VALUES_FILE, "indicator_values", B_JANUARY)]


def test_a_value_beside_a_withheld_count_is_found(memory):
    rows = changed("indicator_values", cell("D", FEBRUARY), value=25.0)
    found = findings_of("derived_shown", release(memory, rows))
    at = position(rows["indicator_values"], cell("D", FEBRUARY))
    assert located(found) == [(VALUES_FILE, "indicator_values", at)]
    assert found[0].detail.startswith("value shown where a count is withheld")


def test_a_lone_withheld_count_is_found(memory):
    withheld = {"numerator": None, "suppressed": True, "suppression_reason": "withheld"}
    rows = changed("indicator_values", cell("B"), **withheld, **proportion(None, None))
    found = findings_of("lone_withheld", release(memory, rows))
    assert located(found) == [(VALUES_FILE, "indicator_values", B_JANUARY)]


def test_a_lone_withheld_organisation_in_completeness_is_found(memory):
    withheld = {"known": None, "pct_known": None, "lower_95": None, "upper_95": None}
    rows = changed(
        "ethnicity_completeness",
        lambda r: (r["organisation"], r["month"]) == ("P3", JANUARY),
        **withheld,
    )
    found = findings_of("lone_withheld", release(memory, rows))
    at = position(
        rows["ethnicity_completeness"], lambda r: (r["organisation"], r["month"]) == ("P3", JANUARY)
    )
    assert located(found) == [("ethnicity_completeness.parquet", "ethnicity_completeness", at)]


def wres_row(organisation: str, group: str | None) -> Callable[[dict], bool]:
    return lambda r: (r["organisation_code"], r["group_label"]) == (organisation, group)


def test_a_wres_share_beside_its_withheld_count_is_found(memory):
    rows = changed("wres", wres_row("O1", "BME"), numerator=None)
    rows = changed("wres", wres_row("O2", "BME"), numerator=None, value=None, lower_95=None,
                   upper_95=None, base=rows)  # fmt: skip
    found = findings_of("derived_shown", release(memory, rows))
    at = position(rows["wres"], wres_row("O1", "BME"))
    assert ("wres.parquet", "wres", at) in located(found)


def test_a_wres_likelihood_beside_a_withheld_group_is_found(memory):
    withheld = {"numerator": None, "value": None, "lower_95": None, "upper_95": None}
    rows = changed("wres", wres_row("O1", "BME"), **withheld)
    rows = changed("wres", wres_row("O2", "BME"), **withheld, base=rows)
    found = findings_of("derived_shown", release(memory, rows))
    at = position(rows["wres"], wres_row("O1", None))
    assert ("wres.parquet", "wres", at) in located(found)


def test_a_data_team_reason_code_is_found(memory):
    """ "small_count" beside a withheld cell would tell partners it is 1-7."""
    withheld = {"numerator": None, "value": None, "lower_95": None, "upper_95": None}
    rows = changed("wres", wres_row("O1", "BME"), suppressed=True, **withheld)
    rows = changed("wres", wres_row("O2", "BME"), suppressed=True, **withheld, base=rows)
    for organisation in ("O1", "O2"):
        rows = changed("wres", wres_row(organisation, None), value=None, base=rows)
    rows = changed("wres", wres_row("O1", "BME"), suppression_reason="small_count", base=rows)
    rows = changed("wres", wres_row("O2", "BME"), suppression_reason="withheld", base=rows)
    found = findings_of("category", release(memory, rows))
    at = position(rows["wres"], wres_row("O1", "BME"))
    assert located(found) == [("wres.parquet", "wres", at)]
    assert "'small_count' is not one of ['withheld', 'unreliable']" in found[0].detail


def test_a_lone_withheld_wres_organisation_is_found(memory):
    withheld = {"numerator": None, "value": None, "lower_95": None, "upper_95": None}
    rows = changed("wres", wres_row("O1", "BME"), **withheld)
    rows = changed("wres", wres_row("O1", None), value=None, base=rows)
    found = findings_of("lone_withheld", release(memory, rows))
    at = position(rows["wres"], wres_row("O1", "BME"))
    assert located(found) == [("wres.parquet", "wres", at)]


def test_a_wres_count_the_partnership_total_confines_is_found_by_the_attack(memory):
    """O2's BME trainees are withheld, but ALL's 50 less O1's 50 leaves at most 52 - 48 = 4."""
    withheld = {"numerator": None, "value": None, "lower_95": None, "upper_95": None}
    rows = changed("wres", wres_row("O1", "BME"), numerator=50, value=100.0)
    rows = changed("wres", wres_row("O2", "BME"), **withheld, base=rows)
    rows = changed("wres", wres_row("O2", None), value=None, base=rows)
    found = findings_of("attack", release(memory, rows))
    at = position(rows["wres"], wres_row("O2", "BME"))
    assert located(found) == [("wres.parquet", "wres", at)]
    assert "withheld, but can be at most" in found[0].detail


def test_statistics_of_exact_counts_are_found_by_the_attack(memory):
    """The counts are fine; the value and limits are those of 42 of 200, not of 40."""
    rows = changed("indicator_values", cell("B"), **proportion(42, 200))
    found = findings_of("attack", release(memory, rows))
    assert (VALUES_FILE, "indicator_values", B_JANUARY) in located(found)
    assert "do not follow from the published counts" in found[0].detail


def test_checked_a_month_of_periods_at_a_time_the_gate_finds_the_same(memory, monkeypatch):
    """The tables of every period are read a year at a time; a month at a time (January and
    February apart), a release broken in both months gets the same findings, each at its
    row of the whole file: sets, the attack, DQ01 against completeness and the CSV."""
    withheld = {"numerator": None, "suppressed": True, "suppression_reason": "withheld"}
    rows = changed("indicator_values", cell("B"), **proportion(42, 200))
    rows = changed("indicator_values", cell("C", FEBRUARY), **proportion(62, 300), base=rows)
    rows = changed(
        "indicator_values", cell("H", FEBRUARY), **withheld, **proportion(None, None), base=rows
    )
    rows = changed(
        "ethnicity_completeness",
        lambda r: (r["organisation"], r["month"]) == ("P3", FEBRUARY),
        known=85,
        base=rows,
    )
    csv_rows = changed("indicator_values", cell("B", FEBRUARY), numerator=45)["indicator_values"]
    broken = release(memory, rows, csv_rows=csv_rows)
    by_year = sorted(map(str, check_release(*broken)))
    monkeypatch.setattr(gate, "PERIOD_MONTHS", 1)
    by_month = sorted(map(str, check_release(*broken)))
    assert by_month == by_year
    rules = {line.split(": ")[1] for line in by_month}
    assert {"attack", "lone_withheld", "completeness_differs", "csv_differs"} <= rules
    at = position(rows["indicator_values"], cell("C", FEBRUARY))
    assert f"{VALUES_FILE} row {at} (indicator_values): attack" in " ".join(by_month)


def test_a_set_is_checked_whole_though_a_row_of_it_ends_in_another_year(memory):
    """The tables are read a year of period starts at a time, the key their sets share: an
    All persons row written with the wrong period_end (2024) stays in its set, whose lone
    withheld 5-group is found."""
    parent = next(
        r["parent_group_code"]
        for r in clean_rows()["ethnic_groups"]
        if (r["breakdown"], r["group_code"]) == ("ethnicity_16", "B")
    )
    withheld = {"numerator": None, "suppressed": True, "suppression_reason": "withheld"}
    withheld |= proportion(None, None)
    rows = changed("indicator_values", cell("all"), period_end=date(2024, 12, 31))
    rows = changed("indicator_values", cell(parent), **withheld, base=rows)
    rows = changed("indicator_values", cell("B"), **withheld, base=rows)
    found = findings_of("lone_withheld", release(memory, rows))
    at = position(rows["indicator_values"], cell(parent))
    assert located(found) == [(VALUES_FILE, "indicator_values", at)]


def test_a_year_without_completeness_indicator_rows_passes(memory):
    """A year of periods with values but no DQ01 row (nothing to pair completeness with)."""
    rows = clean_rows()
    december = [
        deepcopy(r) | {"period_start": date(2024, 12, 1), "period_end": date(2024, 12, 31)}
        for r in rows["indicator_values"]
        if r["indicator_id"] == "ACC02" and r["period_start"] == JANUARY
    ]
    rows["indicator_values"] = december + rows["indicator_values"]
    assert check_release(*release(memory, rows, csv_rows=rows["indicator_values"])) == []


def test_completeness_unlike_dq01_is_found(memory):
    rows = changed(
        "ethnicity_completeness",
        lambda r: (r["organisation"], r["month"]) == ("P1", JANUARY),
        known=185,
    )
    found = findings_of("completeness_differs", release(memory, rows))
    at = position(rows["ethnicity_completeness"], lambda r: r["known"] == 185)
    assert located(found) == [("ethnicity_completeness.parquet", "ethnicity_completeness", at)]
    assert "known 185 but numerator 180" in found[0].detail


def test_a_csv_count_unlike_the_parquet_is_found(memory):
    csv_rows = changed("indicator_values", cell("B"), numerator=45)["indicator_values"]
    found = findings_of("csv_differs", release(memory, csv_rows=csv_rows))
    assert located(found) == [
        ("indicator_values.csv", "indicator_values", B_JANUARY),
        ("indicator_values.csv", "indicator_values", None),
    ]
    assert "count 45, denominator 200, a value" in found[0].detail
    assert "(indicator ACC02, count 40, denominator 200, a value) has no CSV row" in found[1].detail


def test_a_small_count_in_the_csv_is_found(memory):
    csv_rows = changed("indicator_values", cell("B"), numerator=5)["indicator_values"]
    found = findings_of("small_count", release(memory, csv_rows=csv_rows))
    assert located(found) == [("indicator_values.csv", "indicator_values", B_JANUARY)]


def test_an_nhs_number_in_a_note_is_found_and_not_repeated(memory):
    rows = changed("indicator_values", cell("B"), note="query from 943 476 5919")
    found = findings_of("identifier", release(memory, rows))
    assert located(found) == [(VALUES_FILE, "indicator_values", B_JANUARY)]
    assert "NHS number" in found[0].detail and "476 5919" not in str(found[0])


def test_a_pseudonym_and_an_identifier_column_in_the_csv_are_found(memory):
    fs, folder = memory
    csv_rows = changed("indicator_values", cell("B"), note="a1" * 32)["indicator_values"]
    csv = fingertips_csv(csv_rows, extra={"patient_id": ""})
    rows = {name: table_of(name, r) for name, r in clean_rows().items()}
    manifest = write_release(fs, folder, rows, csv)
    found = findings_of("identifier", (fs, folder, manifest))
    assert located(found) == [
        ("indicator_values.csv", "indicator_values", None),
        ("indicator_values.csv", "indicator_values", B_JANUARY),
    ]
    assert "'patient_id'" in found[0].detail and "pseudonym" in found[1].detail


def test_a_gate_failure_names_file_table_row_and_rule():
    findings = [
        GateFinding(VALUES_FILE, "indicator_values", i, "small_count", "numerator 5")
        for i in range(12)
    ]
    message = str(GateFailure(findings))
    assert "indicator_values.parquet row 0 (indicator_values): small_count: numerator 5" in message
    assert "row 9 " in message and "row 10 " not in message and "and 2 more" in message
    assert GateFailure(findings).findings == findings


def test_the_gate_shares_no_code_with_disclosure_control():
    """One bug must not pass both the rules and the gate (PUBLICATION.md, "Gate")."""
    tree = ast.parse(Path(gate.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    shared = ("transforms.core.disclosure", "transforms.indicators", "pyarrow")
    assert [
        m for m in imported if m.startswith(shared) and m != "transforms.core.disclosure_audit"
    ] == []


def test_a_gate_out_of_its_memory_fails_the_publish_and_blames_no_file(memory, monkeypatch):
    monkeypatch.setitem(gate.GATE_DUCKDB, "memory_limit", "1MB")
    with pytest.raises(gate.GateOutOfMemory, match="memory_limit in GATE_DUCKDB"):
        check_release(*release(memory))
