"""The report's charts are deterministic, accessible SVG that can share one page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date

import pandas as pd

from transforms.report import charts
from transforms.report.spc import SpcOptions, spc

SVG = "{http://www.w3.org/2000/svg}"
POINTS = [
    charts.GroupPoint("White", 4.1, 4.0, 4.2, "reference"),
    charts.GroupPoint("Mixed", 5.7, 4.6, 6.9, "higher"),
    charts.GroupPoint("Asian or Asian British", 3.0, 2.1, 3.9, "lower"),
    charts.GroupPoint("Black or Black British", 4.3, 3.5, 5.2, "no_difference"),
    charts.GroupPoint("Other ethnic group", None, None, None, None),
]


def groups(name: str = "acc02-groups") -> str:
    return charts.group_chart(name, "DNA by ethnic group, October 2026", "%", POINTS, 4.1, 4.2)


def monthly() -> pd.DataFrame:
    dates = [date(2024, m, 1) for m in range(1, 13)] + [date(2025, m, 1) for m in range(1, 7)]
    values = [
        4.0,
        4.2,
        4.1,
        3.9,
        4.3,
        4.0,
        4.1,
        4.2,
        4.0,
        3.8,
        4.1,
        4.2,
        4.1,
        4.0,
        6.5,
        4.1,
        4.0,
        4.2,
    ]
    return spc(dates, values, SpcOptions(improvement_direction="decrease"))


def test_the_same_data_give_the_same_bytes():
    assert groups() == groups()
    chart = monthly()
    assert charts.spc_chart("c", "t", "%", chart) == charts.spc_chart("c", "t", "%", chart)


def test_a_chart_is_an_image_with_its_title_and_a_description_of_its_data():
    root = ET.fromstring(groups())
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title.text == "DNA by ethnic group, October 2026"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert "Mixed: 5.7" in desc.text and "Other ethnic group: withheld" in desc.text


def test_text_stays_text_with_axis_labels_and_the_withheld_group_named():
    text = groups()
    for shown in ("%", "White", "withheld", "reference group value", "all persons value"):
        assert f">{shown}<" in text or shown in re.sub(r"<[^>]+>", " ", text), shown


def test_every_id_is_the_charts_own_so_two_charts_share_a_page():
    first, second = groups("one"), groups("two")
    ids = [re.findall(r'\bid="([^"]+)"', svg) for svg in (first, second)]
    assert ids[0] and all(i.startswith("one-") for i in ids[0])
    assert not set(ids[0]) & set(ids[1])
    references = re.findall(r"(?:href=\"|url\()#([^\")]+)", first)
    assert references and set(references) <= set(ids[0])


def test_special_causes_have_their_own_marker_and_legend_entry():
    svg = charts.spc_chart("c", "DNA, all persons", "%", monthly())
    assert "special cause: concern" in svg and "common cause variation" in svg
