"""The report's WRES section: each relative likelihood against parity, in words and charts."""

from __future__ import annotations

from tests.support.releases import table_of, wres_rows
from transforms.report import content
from transforms.report.inputs import Release


def release_with(rows: list[dict]) -> Release:
    tables = {"wres": table_of("wres", rows).to_pandas()}
    return Release("2025-03", {"covers": {"last_month": "2025-03"}}, "0" * 64, tables)


def test_a_likelihood_whose_interval_excludes_parity_is_called_significant():
    blocks, gaps = content.wres_blocks(release_with(wres_rows()))
    (block,) = blocks
    assert block.indicator_id == "WRES4" and block.year == "year to March 2025"
    # White 160/300 = 53.3%, BME 50/110 = 45.5%: 1.17; no interval published in the rows
    assert block.finding.startswith(
        "Relative likelihood of White staff accessing non-mandatory training compared with BME "
        "staff, partnership: 1.17: not enough data to judge against parity"
    )
    assert [row[0] for row in block.rows] == ["O1", "O2", "Partnership"]
    assert 'role="img"' in block.svg and "parity (1.00)" in block.svg
    assert gaps == []


def test_the_partnership_withheld_says_so_rather_than_guessing():
    rows = [
        r | {"value": None} if (r["organisation_code"], r["group_label"]) == ("ALL", None) else r
        for r in wres_rows()
    ]
    (block,) = content.wres_blocks(release_with(rows))[0]
    assert block.finding.endswith("not published for the partnership (too few staff to show).")


def test_an_interval_above_parity_is_significantly_above():
    rows = [
        r | {"lower_95": 1.05, "upper_95": 1.31}
        if (r["organisation_code"], r["group_label"]) == ("ALL", None)
        else r
        for r in wres_rows()
    ]
    (block,) = content.wres_blocks(release_with(rows))[0]
    assert block.finding.endswith("1.17 (95% CI 1.05–1.31): significantly above parity.")
    assert block.rows[-1][:3] == ("Partnership", "1.17", "1.05 to 1.31")
