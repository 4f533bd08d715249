"""VAC03 from hand-made workforce snapshots: clinical staff of the December snapshot by their
own ethnic code (5 groups and the WRES groups) and by organisation, and no campaign at all
when December's delivery lacked the vaccination dates."""

from __future__ import annotations

from tests.support.deliveries import csv_bytes, deliver, load, query, rows_of
from transforms.config.settings import Settings
from transforms.indicators import store as indicator_store
from transforms.ops import status
from transforms.warehouse.engine import make_engine

CAMPAIGN = ("2024-09", "2024-10", "2024-11")
DECEMBER = [  # ethnic category, staff group, COVID-19 dose, organisation
    ("A", "Clinical", "2024-10-02", "RRF"),  # vaccinated
    ("A", "Clinical", "", "RRF"),  # not vaccinated
    ("H", "Clinical", "2024-09-01", "RRF"),  # vaccinated on the campaign's first day
    ("H", "Clinical", "2024-08-31", "RW4"),  # last season's dose: not in the campaign
    ("M", "Non-clinical", "2024-10-10", "RW4"),  # not frontline: in neither count
    ("Z", "Clinical", "2024-12-31", "RW4"),  # vaccinated on the campaign's last day
]


def december(*, with_dates: bool) -> bytes:
    rows = rows_of("workforce", len(DECEMBER))
    for row, (code, group, dose, organisation) in zip(rows, DECEMBER, strict=True):
        row.update(ethnic_category=code, staff_group=group, covid_vaccination_date=dose)
        row.update(organisation_code=organisation)
    dropped = () if with_dates else ("covid_vaccination_date", "flu_vaccination_date")
    return csv_bytes([{k: v for k, v in r.items() if k not in dropped} for r in rows])


def vac03(settings: Settings) -> list[tuple]:
    """Compute, then VAC03's exact counts: (breakdown, group, numerator, denominator)."""
    with make_engine(settings.warehouse_url).begin() as conn:
        indicator_store.compute(conn, "test")
    return query(
        settings,
        'select breakdown, group_label, numerator, denominator from indicators."values" '
        "where indicator_id = 'VAC03' and breakdown <> 'ethnicity_16' "
        "and numerator + denominator > 0 order by 1, 2",
    )


def test_vac03_counts_clinical_staff_vaccinated_in_the_campaign_and_not_without_dates(settings):
    for month in CAMPAIGN:
        deliver(settings, "workforce", f"workforce_{month}.csv", csv_bytes(rows_of("workforce", 2)))
    deliver(settings, "workforce", "workforce_2024-12.csv", december(with_dates=True))
    load(settings, "workforce")
    assert vac03(settings) == [
        ("all", "All persons", 3, 5),
        ("ethnicity_5", "Asian or Asian British", 1, 2),
        ("ethnicity_5", "Not stated", 1, 1),
        ("ethnicity_5", "White", 1, 2),
        ("source_organisation", "workforce: RRF", 2, 3),
        ("source_organisation", "workforce: RW4", 1, 2),
        ("source_organisation", "workforce: all organisations", 3, 5),
        ("wres_group", "BME", 1, 2),
        ("wres_group", "Unknown", 1, 1),
        ("wres_group", "White", 1, 2),
    ]
    # December resubmitted without the dates: the campaign's uptake is unknown, not 0%
    deliver(settings, "workforce", "workforce_2024-12.csv", december(with_dates=False), 60)
    load(settings, "workforce")
    assert vac03(settings) == []
    notes = query(
        settings,
        "select period_start, period_end, note from indicators.not_computed "
        "where indicator_id = 'VAC03'",
    )
    assert [(str(start), str(end)) for start, end, _ in notes] == [("2024-09-01", "2024-12-31")]
    assert "2024-12 delivery did not carry covid_vaccination_date" in notes[0][2]
    assert [
        r["indicator_id"] for r in status.not_computed(make_engine(settings.warehouse_url))
    ] == ["VAC03"]
