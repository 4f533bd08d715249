"""The synthetic landing data: deterministic, contract-shaped, and honest about its faults.

Files are read back independently of the generator (csv module, gzip, pyarrow) and every
row is re-checked against the contract, so truth.json is tested rather than trusted.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from synth import generate
from synth.dates import Month
from synth.population import Population, nhs_check_digit
from synth.reference import GROUPS, LETTERS, load
from synth.sources import SOURCES

START, END = "2024-11", "2025-01"
MONTHS = ("2024-11", "2024-12", "2025-01")

VALID_CODES = {
    "sex": {"0", "1", "2", "9"},
    "appointment_status": {"Attended", "DNA", "Cancelled", "Unknown"},
    "admission_method": set("11 12 13 21 22 23 24 25 2A 2B 2C 2D 28 31 32 81 82 83".split()),
    "department_type": {"01", "02", "03"},
    "attendance_status": set("5 6 7 2 3 4 0".split()),
    "first_attendance": {"1", "2", "3", "4"},
    "programme": {"COVID-19", "Influenza"},
    "pay_band": {f"Band {i}" for i in range(1, 10)} | {"VSM", "Medical", "Other"},
    "staff_group": {"Clinical", "Non-clinical"},
}


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Three small months with a high fault rate so every fault kind shows up."""
    out = tmp_path_factory.mktemp("landing")
    return out, generate(out, START, END, scale=0.02, seed=7, faults=0.01)


def read_rows(path: Path, entry: dict) -> tuple[list[str], list[list[str]]]:
    """Header and data rows as text ('' for null), whatever the file's format."""
    if entry["format"] == "parquet":
        table = pq.read_table(path)
        names = table.column_names
        return names, [["" if r[c] is None else r[c] for c in names] for r in table.to_pylist()]
    data = path.read_bytes()
    if entry["compression"] == "gzip":
        data = gzip.decompress(data)
    rows = list(csv.reader(io.StringIO(data.decode(entry["encoding"]), newline="")))
    return rows[0], rows[1:]


def nhs_valid(value: str) -> bool:
    if len(value) != 10 or not value.isdigit():
        return False
    remainder = sum(int(d) * w for d, w in zip(value[:9], range(10, 1, -1), strict=True)) % 11
    check = 11 - remainder if remainder else 0
    return check < 10 and check == int(value[9])


def parse_date(text: str, date_format: str) -> date | None:
    try:
        fmt = "%d/%m/%Y" if date_format == "DD/MM/YYYY" else "%Y-%m-%d"
        return datetime.strptime(text, fmt).date()
    except ValueError:
        return None


def month_bounds(period: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{period}-01")
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def problems(row: dict[str, str], source: str, entry: dict, earlier_ids: set[str]) -> set[str]:
    """Every contract breach of one well-formed row, judged from the text alone."""
    spec = SOURCES[source]
    found = set()
    if any(row[c] == "" for c in spec.required):
        found.add("missing_value")
    if row.get("nhs_number") and not nhs_valid(row["nhs_number"]):
        found.add("invalid_nhs_number")
    if row.get("age") and not 0 <= int(row["age"]) <= 120:
        found.add("invalid_age")
    if any(row[c] and row[c] not in VALID_CODES[c] for c in VALID_CODES if c in row):
        found.add("invalid_code")
    if row[spec.id_column] in earlier_ids:
        found.add("duplicate_id")
    if spec.event_date and row[spec.event_date]:
        when = parse_date(row[spec.event_date], entry["date_format"])
        first, last = month_bounds(entry["period"])
        if when is None:
            found.add("invalid_date")
        elif when < first - timedelta(days=200) or when > last + timedelta(days=200):
            found.add("date_out_of_range")
        elif not first <= when <= last:
            found.add("event outside its month but not a listed fault")
    return found


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", "2024-12", "2025-01", scale=0.005, seed=3)
    second = generate(tmp_path / "b", "2024-12", "2025-01", scale=0.005, seed=3)
    assert first == second
    for relative in [*first["files"], "truth.json"]:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()


def test_a_different_seed_gives_different_data(tmp_path: Path) -> None:
    one = generate(tmp_path / "a", "2025-01", "2025-01", scale=0.005, seed=1)
    two = generate(tmp_path / "b", "2025-01", "2025-01", scale=0.005, seed=2)
    path = "gp_register/gp_register_2025-01.csv"
    assert one["files"][path] != two["files"][path]


def test_every_source_has_exactly_one_file_per_month(landing: tuple[Path, dict]) -> None:
    out, truth = landing
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(truth["files"]) | {"truth.json"}
    per_source_month = Counter((e["source"], e["period"]) for e in truth["files"].values())
    assert set(per_source_month) == {(s, m) for s in SOURCES for m in MONTHS}
    assert set(per_source_month.values()) == {1}


def test_file_formats_follow_the_contract(landing: tuple[Path, dict]) -> None:
    out, truth = landing
    entries = truth["files"]
    assert entries["gp_appointments/gp_appointments_2024-11.csv.gz"]["compression"] == "gzip"
    assert entries["gp_appointments/gp_appointments_2024-12.csv"]["compression"] is None
    assert entries["inpatient_spells/inpatient_spells_2024-12.parquet"]["format"] == "parquet"
    ae = entries["ae_attendances/ae_attendances_2024-12.csv"]
    assert (ae["encoding"], ae["date_format"]) == ("cp1252", "DD/MM/YYYY")
    bom = out / "outpatient_appointments/outpatient_appointments_2024-12.csv"
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
    with pytest.raises(UnicodeDecodeError):
        (out / "ae_attendances/ae_attendances_2024-12.csv").read_bytes().decode("utf-8")


def contract_columns(entry: dict, truth: dict) -> list[str]:
    """The columns a file must have: before the contract's second release, not its columns."""
    spec = SOURCES[entry["source"]]
    released = entry["period"] not in truth["staff_vaccination"]["periods_without_columns"]
    return list(spec.columns if released else spec.first_release().columns)


def test_truth_row_counts_equal_the_data_rows_in_each_file(landing: tuple[Path, dict]) -> None:
    out, truth = landing
    for relative, entry in truth["files"].items():
        header, rows = read_rows(out / relative, entry)
        assert header == contract_columns(entry, truth), relative
        assert len(rows) == entry["rows"], relative
        faults = sum(entry["row_faults"].values())
        assert (
            entry["expected_rows_loaded"] == entry["rows"] - faults == entry["ethnicity"]["records"]
        )
        assert [r for r, _ in entry["fault_rows"]] == sorted({r for r, _ in entry["fault_rows"]})
        assert Counter(reason for _, reason in entry["fault_rows"]) == Counter(entry["row_faults"])


def test_listed_faults_are_real_and_clean_rows_are_clean(landing: tuple[Path, dict]) -> None:
    """Each faulty row breaks the contract in exactly its listed way; no clean row breaks it."""
    out, truth = landing
    seen_reasons = set()
    for relative, entry in truth["files"].items():
        header, rows = read_rows(out / relative, entry)
        listed = {number - 1: reason for number, reason in entry["fault_rows"]}
        clean_ids: set[str] = set()
        for index, fields in enumerate(rows):
            reason = listed.get(index)
            seen_reasons.add(reason)
            if len(fields) != len(header):
                assert reason == "malformed_line", (relative, index + 1)
                continue
            row = dict(zip(header, fields, strict=True))
            expected = set() if reason in (None, "malformed_line") else {reason}
            assert problems(row, entry["source"], entry, clean_ids) == expected, (
                relative,
                index + 1,
            )
            if reason is None:
                clean_ids.add(row[SOURCES[entry["source"]].id_column])
    assert seen_reasons - {None} == {
        "malformed_line",
        "invalid_date",
        "date_out_of_range",
        "invalid_age",
        "invalid_nhs_number",
        "duplicate_id",
        "invalid_code",
        "missing_value",
    }


def test_nhs_numbers_pass_modulus_11_except_invalid_nhs_number_faults(
    landing: tuple[Path, dict],
) -> None:
    out, truth = landing
    for relative, entry in truth["files"].items():
        if "nhs_number" not in SOURCES[entry["source"]].columns:
            continue
        header, rows = read_rows(out / relative, entry)
        position = header.index("nhs_number")
        listed = {number - 1: reason for number, reason in entry["fault_rows"]}
        for index, fields in enumerate(rows):
            if listed.get(index) in ("malformed_line", "missing_value"):
                continue
            valid = nhs_valid(fields[position])
            assert valid == (listed.get(index) != "invalid_nhs_number"), (relative, index + 1)
            assert fields[position].startswith("999") or not valid


def _clean_rows(out: Path, relative: str, entry: dict) -> list[dict[str, str]]:
    header, rows = read_rows(out / relative, entry)
    listed = {number - 1 for number, _ in entry["fault_rows"]}
    return [dict(zip(header, r, strict=True)) for i, r in enumerate(rows) if i not in listed]


def test_event_identifiers_are_never_reused_across_months(landing: tuple[Path, dict]) -> None:
    out, truth = landing
    ids: Counter[str] = Counter()
    for relative, entry in truth["files"].items():
        spec = SOURCES[entry["source"]]
        if spec.id_prefix:
            ids.update(row[spec.id_column] for row in _clean_rows(out, relative, entry))
    assert ids and max(ids.values()) == 1


def test_without_faults_events_belong_to_people_registered_that_month(tmp_path: Path) -> None:
    truth = generate(tmp_path, "2025-03", "2025-04", scale=0.01, faults=0.0)
    assert all(
        not e["fault_rows"] and not e["ethnicity"]["invalid"] for e in truth["files"].values()
    )
    for period in ("2025-03", "2025-04"):
        register_path = f"gp_register/gp_register_{period}.csv"
        register = {
            r["nhs_number"]
            for r in _clean_rows(tmp_path, register_path, truth["files"][register_path])
        }
        for relative, entry in truth["files"].items():
            if entry["period"] == period and entry["source"] not in ("workforce", "recruitment"):
                people = {r["nhs_number"] for r in _clean_rows(tmp_path, relative, entry)}
                assert people <= register, relative


def _recorded_kind(value: str, snomed: str = "") -> str:
    """Classify an ethnic_category field the way truth.json counts it."""
    text = value.strip().upper()
    letter = text[:1]
    if letter in LETTERS and (len(text) == 1 or text[1:4] in (" - ", " \u2013 ")):
        return "known"
    if text == "Z":
        return "not_stated"
    if text == "":
        return "known" if snomed else "not_known"
    return "not_known" if text == "99" else "invalid"


def test_ethnicity_truth_matches_the_recorded_values(landing: tuple[Path, dict]) -> None:
    out, truth = landing
    for relative, entry in truth["files"].items():
        rows = _clean_rows(out, relative, entry)
        kinds = Counter(
            _recorded_kind(r["ethnic_category"], r.get("ethnicity_snomed", "")) for r in rows
        )
        expected = {k: v for k, v in entry["ethnicity"].items() if k != "records"}
        assert {k: kinds.get(k, 0) for k in expected} == expected, relative


def test_register_snomed_concepts_match_the_true_category(landing: tuple[Path, dict]) -> None:
    out, truth = landing
    concepts = {int(c) for ids in load().snomed_by_letter for c in ids}
    entry_path = "gp_register/gp_register_2024-11.csv"
    rows = _clean_rows(out, entry_path, truth["files"][entry_path])
    with_snomed = [r for r in rows if r["ethnicity_snomed"]]
    known = [
        r for r in rows if _recorded_kind(r["ethnic_category"], r["ethnicity_snomed"]) == "known"
    ]
    assert 0.3 < len(with_snomed) / len(known) < 0.5
    assert all(
        int(r["ethnicity_snomed"]) in concepts and not r["ethnic_category"] for r in with_snomed
    )


def test_register_ethnic_mix_is_close_to_the_census(tmp_path: Path) -> None:
    truth = generate(tmp_path, "2025-01", "2025-01", scale=0.1, faults=0.0)
    entry = truth["files"]["gp_register/gp_register_2025-01.csv"]
    snomed_letter = {int(c): i for i, ids in enumerate(load().snomed_by_letter) for c in ids}
    letters = Counter()
    for row in _clean_rows(tmp_path, "gp_register/gp_register_2025-01.csv", entry):
        text = row["ethnic_category"].strip().upper()[:1]
        if row["ethnicity_snomed"]:
            letters[snomed_letter[int(row["ethnicity_snomed"])]] += 1
        elif text in LETTERS:
            letters[LETTERS.index(text)] += 1
    total = sum(letters.values())
    census = load().census_share
    for i, letter in enumerate(LETTERS):
        assert abs(letters[i] / total - census[i]) < 0.006, letter
    population = truth["population"]["by_period"]["2025-01"]
    assert population["total"] == pytest.approx(33_000, rel=0.01)
    assert set(population["by_group_5"]) == set(GROUPS)


def test_ethnicity_completeness_improves_over_time(landing: tuple[Path, dict]) -> None:
    out, truth = landing

    def known_share(source: str, period: str) -> float:
        ext = next(
            e for p, e in truth["files"].items() if p.startswith(f"{source}/{source}_{period}")
        )
        return ext["ethnicity"]["known"] / ext["ethnicity"]["records"]

    for source in ("gp_register", "gp_appointments", "outpatient_appointments"):
        assert known_share(source, MONTHS[-1]) > known_share(source, MONTHS[0]) + 0.03, source
    register = _clean_rows(
        out,
        "gp_register/gp_register_2024-11.csv",
        truth["files"]["gp_register/gp_register_2024-11.csv"],
    )
    first = sum(
        _recorded_kind(r["ethnic_category"], r["ethnicity_snomed"]) == "known" for r in register
    )
    assert first / len(register) == pytest.approx(0.85, abs=0.02)


def test_truth_declares_the_injected_ratios_for_all_five_groups(landing: tuple[Path, dict]) -> None:
    _, truth = landing
    for table in ("rate_ratios", "proportions"):
        for name, by_group in truth[table].items():
            assert list(by_group) == list(GROUPS), name
    assert all(r["White"] == 1.0 for r in truth["rate_ratios"].values())
    assert truth["workforce"]["disciplinary_relative_likelihood"] == pytest.approx(1.5)
    assert truth["generator"] == {
        "seed": 7,
        "scale": 0.02,
        "start": START,
        "end": END,
        "faults": 0.01,
    }


def test_workforce_carries_the_vaccination_columns_from_the_second_release(
    landing: tuple[Path, dict],
) -> None:
    out, truth = landing
    assert truth["staff_vaccination"]["periods_without_columns"] == ["2024-11", "2024-12"]
    added = {"covid_vaccination_date", "flu_vaccination_date"}
    for period in MONTHS:
        relative = f"workforce/workforce_{period}.csv"
        header, _ = read_rows(out / relative, truth["files"][relative])
        assert added & set(header) == (added if period == "2025-01" else set()), period


VACCINATION_COLUMNS = ("covid_vaccination_date", "flu_vaccination_date")
GROUP_OF = {letter: GROUPS[g] for letter, g in zip(LETTERS, load().group_of, strict=True)}


def campaign(season: int, months: int) -> tuple[date, date]:
    """First and last day of a campaign opening on 1 September of ``season``."""
    years, month = divmod(8 + months, 12)
    return date(season, 9, 1), date(season + years, month + 1, 1) - timedelta(days=1)


@pytest.fixture(scope="module")
def staff_in_march(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict]:
    """The March 2025 staff snapshot, after both 2024 campaigns, large enough for uptake."""
    out = tmp_path_factory.mktemp("staff")
    truth = generate(out, "2025-01", "2025-03", scale=0.25, seed=11, faults=0.0)
    relative = "workforce/workforce_2025-03.csv"
    return _clean_rows(out, relative, truth["files"][relative]), truth


@pytest.mark.parametrize("column", VACCINATION_COLUMNS)
def test_staff_doses_fall_in_their_campaigns(staff_in_march, column) -> None:
    """The latest dose is this season's or last season's (2023, with a 29 February)."""
    rows, truth = staff_in_march
    months = truth["staff_vaccination"][column]["campaign"]["months"]
    doses = [date.fromisoformat(r[column]) for r in rows if r[column]]
    assert {d.year if d.month >= 9 else d.year - 1 for d in doses} == {2023, 2024}
    for dose in doses:
        first, last = campaign(dose.year if dose.month >= 9 else dose.year - 1, months)
        assert first <= dose <= last, dose


@pytest.mark.parametrize("column", VACCINATION_COLUMNS)
def test_staff_uptake_by_group_and_organisation_recovers_the_truth(staff_in_march, column) -> None:
    """This season's uptake in each group, and among White clinical staff in each
    organisation, is within four standard errors of the rates in truth.json."""
    rows, truth = staff_in_march
    uptake = truth["staff_vaccination"][column]["uptake"]
    cells: dict[str, list[tuple[bool, float]]] = {}
    for r in rows:
        group = GROUP_OF.get(r["ethnic_category"])
        if group is None:  # not known
            continue
        rate = uptake[r["staff_group"]][r["organisation_code"]][group]
        had = bool(r[column]) and date.fromisoformat(r[column]) >= date(2024, 9, 1)
        cells.setdefault(group, []).append((had, rate))
        if group == "White" and r["staff_group"] == "Clinical":
            cells.setdefault(r["organisation_code"], []).append((had, rate))
    assert set(cells) == {*GROUPS, "RRF", "RXV", "RW4"}
    for cell, outcomes in cells.items():
        expected = sum(rate for _, rate in outcomes)
        spread = sum(rate * (1 - rate) for _, rate in outcomes) ** 0.5
        assert abs(sum(had for had, _ in outcomes) - expected) < 4 * spread, cell
    clinical = uptake["Clinical"]["RRF"]
    assert 0.6 <= clinical["White"] <= 0.75 and min(clinical.values()) < clinical["White"] - 0.1


def test_a_population_beyond_the_999_range_goes_on_into_998_with_unique_valid_numbers() -> None:
    rng = np.random.default_rng(3)
    population = Population(rng, 0.01, Month("2025-01", 0))
    first = population._take_nhs(900_000)
    assert (first // 10_000_000 == 999).all()
    beyond = population._take_nhs(200_000)  # the 999 range's last few thousand, then 998
    assert set(np.unique(beyond // 10_000_000)) == {998, 999}
    assert (beyond[-190_000:] // 10_000_000 == 998).all()
    numbers = np.concatenate([first, beyond])
    assert len(np.unique(numbers)) == len(numbers)
    assert (nhs_check_digit(numbers // 10) == numbers % 10).all()
    again = Population(np.random.default_rng(3), 0.01, Month("2025-01", 0))
    assert (again._take_nhs(900_000) == first).all()  # smaller scales draw what they always did
