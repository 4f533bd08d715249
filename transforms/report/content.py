"""The report's content, worked out from a release: findings, tables and charts per section.

Everything here is built from the release's tables (``inputs.Release``) and the pipeline's
audit (``inputs.Delivery``), and returns plain data for the template (``templates/``). Numbers
are formatted here, once, so that what the report prints is exactly what the tests read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from transforms.core.disclosure import SUPPRESSION_THRESHOLD, round_counts
from transforms.report import charts, findings
from transforms.report.funnel import funnel_limits, funnel_significance
from transforms.report.inputs import Delivery, Release
from transforms.report.spc import MINIMUM_POINTS, VARIATION_LABELS, SpcOptions, spc, summarise

THEMES = {
    1: "Minimising the risks to Black, Asian and minority ethnic people: vaccination",
    2: "Structural racism in the workforce (Workforce Race Equality Standard)",
    3: "Inequalities of access to and outcome of services",
}
DATA_QUALITY_THEME = 0
MEASURE_PREFERENCE = ("dsr", "proportion", "crude_rate")
"""The measure a block shows: the age-standardised rate where there is one."""
GROUP_BREAKDOWN = "ethnicity_5"
ALL = "all"
MONTHLY = "month"
ROLLING = "rolling_12m"
TREND_MONTHS = 24
"""How far back the trend charts and their tables go: two years, enough points for SPC's
limits (Making Data Count asks for 20 or more) and the span a board reads. The release keeps
every month. Without a window the report, and the memory WeasyPrint takes to lay out its PDF
(about 8 MB more for each month of history: README, Figures), would grow without end."""
DIRECTIONS = {"high_is_good": "increase", "low_is_good": "decrease", "none": "neutral"}
BELOW_FUNNEL = "Low (0.001)"
FUNNEL_WORDS = {
    "Low (0.001)": "below the 99.8% limit",
    "Low (0.025)": "below the 95% limit",
    "Not significant": "within the limits",
    "High (0.025)": "above the 95% limit",
    "High (0.001)": "above the 99.8% limit",
}
SYMBOLS = {
    findings.HIGHER: "▲",
    findings.LOWER: "▼",
    findings.NO_DIFFERENCE: "●",
    findings.NOT_ENOUGH: "○",
    findings.WITHHELD: "–",
}


def number(value: object, places: int = 1) -> str:
    """A published number as the report prints it ("" where there is none)."""
    if findings.is_missing(value):
        return ""
    if isinstance(value, int) or (isinstance(value, float) and places == 0):
        return f"{int(value):,}"
    return f"{float(value):,.{places}f}"


def period_label(row: pd.Series) -> str:
    start, end = pd.Timestamp(row["period_start"]), pd.Timestamp(row["period_end"])
    if row["period_type"] == MONTHLY:
        return f"{start:%B %Y}"
    return f"{start:%b %Y} to {end:%b %Y}"


@dataclass
class GroupRow:
    label: str
    value: str
    interval: str
    numerator: str
    denominator: str
    compared: str
    kind: str


@dataclass
class Block:
    """One indicator: its latest period by group, its trend and its notes."""

    indicator_id: str
    title: str
    measure: str
    unit: str
    definition: str
    caveats: str
    polarity: str
    period: str
    known_pct: str
    finding: str
    rows: list[GroupRow]
    group_svg: str
    trend_svg: str | None = None
    trend_note: str = ""
    trend_rows: list[tuple[str, str, str]] = field(default_factory=list)
    variation: str | None = None
    ratio_variation: list[tuple[str, str]] = field(default_factory=list)
    latest_all: str = ""
    cells: dict[str, tuple[str, str]] = field(default_factory=dict)


def blocks(release: Release) -> dict[int, list[Block]]:
    """Every indicator of the catalogue as a block, by theme (data quality apart)."""
    values = release.tables["indicator_values"]
    catalogue = release.tables["indicators"].set_index("indicator_id")
    found: dict[int, list[Block]] = {theme: [] for theme in THEMES}
    for indicator_id, entry in catalogue.iterrows():
        if int(entry["theme"]) == DATA_QUALITY_THEME:
            continue
        rows = values[values["indicator_id"] == indicator_id]
        if rows.empty:
            continue
        measure = next(m for m in MEASURE_PREFERENCE if (rows["measure"] == m).any())
        found.setdefault(int(entry["theme"]), []).append(
            _block(indicator_id, entry, rows[rows["measure"] == measure], measure)
        )
    return found


def _block(indicator_id: str, entry: pd.Series, rows: pd.DataFrame, measure: str) -> Block:
    groups = rows[rows["breakdown"] == GROUP_BREAKDOWN]
    latest_end = groups["period_end"].max()
    latest = rows[rows["period_end"] == latest_end].sort_values("group_order")
    five = latest[latest["breakdown"] == GROUP_BREAKDOWN]
    everyone = latest[latest["breakdown"] == ALL]
    first = five.iloc[0]
    title = str(entry["title"])
    unit = str(first["unit"])
    period = period_label(first)
    records = [r.to_dict() for _, r in five.iterrows()]
    block = Block(
        indicator_id=indicator_id,
        title=title,
        measure=measure,
        unit=unit,
        definition=str(entry["definition"]),
        caveats=str(entry["caveats"] or ""),
        polarity=str(entry["polarity"]),
        period=period,
        known_pct=number(everyone.iloc[0]["ethnicity_known_pct"]) if len(everyone) else "",
        finding=findings.headline(records, title, period),
        rows=[_group_row(r) for r in [*records, *everyone.to_dict("records")]],
        group_svg=_group_svg(indicator_id, title, period, unit, records, everyone),
        latest_all=number(everyone.iloc[0]["value"]) if len(everyone) else "",
        cells={r["group_label"]: _cell(r) for r in records},
    )
    _add_trend(block, rows, entry)
    return block


def _group_row(row: dict) -> GroupRow:
    interval = ""
    if not findings.is_missing(row.get("lower_95")):
        interval = f"{number(row['lower_95'])} to {number(row['upper_95'])}"
    is_all = row["breakdown"] == ALL
    is_reference = row.get("reference_group") == row["group_label"]
    return GroupRow(
        label=row["group_label"],
        value=number(row["value"]) or "withheld",
        interval=interval,
        numerator=number(row["numerator"], 0) or "withheld",
        denominator=number(row["denominator"], 0) or "withheld",
        compared="" if is_all else "reference group" if is_reference else findings.compared(row),
        kind="all" if is_all else findings.kind_of(row),
    )


def _cell(row: dict) -> tuple[str, str]:
    """A tartan-rug cell: its text (value and symbol) and its kind (for colour)."""
    kind = findings.kind_of(row)
    if row.get("reference_group") == row.get("group_label") and kind != findings.WITHHELD:
        return f"{number(row['value'])} ■", "reference"
    judged = str(row.get("significance_vs_reference"))
    colour = {"Better": "better", "Worse": "worse"}.get(judged, kind)
    text = "withheld" if kind == findings.WITHHELD else f"{number(row['value'])} {SYMBOLS[kind]}"
    return text, colour


def _group_svg(
    indicator_id: str, title: str, period: str, unit: str, records: list[dict], everyone
) -> str:
    reference = next((r for r in records if r["group_label"] == r["reference_group"]), None)
    points = [
        charts.GroupPoint(
            r["group_label"],
            None if findings.is_missing(r["value"]) else float(r["value"]),
            None if findings.is_missing(r["lower_95"]) else float(r["lower_95"]),
            None if findings.is_missing(r["upper_95"]) else float(r["upper_95"]),
            _chart_kind(r),
        )
        for r in records
    ]
    all_value = None
    if len(everyone) and not findings.is_missing(everyone.iloc[0]["value"]):
        all_value = float(everyone.iloc[0]["value"])
    reference_value = None
    if reference is not None and not findings.is_missing(reference["value"]):
        reference_value = float(reference["value"])
    return charts.group_chart(
        f"{indicator_id.lower()}-groups",
        f"{title}: by ethnic group, {period}",
        unit,
        points,
        reference_value,
        all_value,
    )


def _chart_kind(row: dict) -> str | None:
    kind = findings.kind_of(row)
    if kind == findings.WITHHELD:
        return None
    if row["group_label"] == row["reference_group"]:
        return "reference"
    return kind


def _add_trend(block: Block, rows: pd.DataFrame, entry: pd.Series) -> None:
    """An SPC chart of the monthly series (all persons), the variation of each group's ratio
    to the reference; a plain line for rolling years, whose overlapping periods SPC cannot
    judge; nothing for a one-period campaign."""
    everyone = rows[rows["breakdown"] == ALL].sort_values("period_start")
    kind = str(everyone["period_type"].iloc[0]) if len(everyone) else ""
    everyone = latest_months(everyone, "period_start" if kind == MONTHLY else "period_end")
    everyone = everyone[everyone["value"].notna()]
    dates = [
        pd.Timestamp(d).date()
        for d in everyone["period_start" if kind == MONTHLY else "period_end"]
    ]
    values = [float(v) for v in everyone["value"]]
    block.trend_rows = [
        (period_label(r), number(r["value"]), f"{number(r['lower_95'])} to {number(r['upper_95'])}")
        for _, r in everyone.iterrows()
    ]
    name = f"{block.indicator_id.lower()}-trend"
    title = f"{block.title}: all persons"
    if kind == MONTHLY and len(values) >= MINIMUM_POINTS:
        options = SpcOptions(improvement_direction=DIRECTIONS[block.polarity])
        chart = spc(dates, values, options)
        block.trend_svg = charts.spc_chart(
            name, f"{title}, by month (XmR chart)", block.unit, chart
        )
        block.variation = VARIATION_LABELS[summarise(chart, options).variation_icon]
        block.ratio_variation = _ratio_variation(rows, options)
        block.trend_note = "Limits: mean ± 2.66 × mean moving range (Making Data Count)."
    elif kind == ROLLING and len(values) > 1:
        block.trend_svg = charts.trend_chart(
            name, f"{title}, rolling 12 months", block.unit, dates, values
        )
        block.trend_note = (
            "Rolling 12-month periods overlap (each shares 11 months with the next), so they "
            "are shown as a line without SPC limits."
        )
    elif len(values) < MINIMUM_POINTS and kind == MONTHLY:
        block.trend_note = f"Fewer than {MINIMUM_POINTS} months: too few for an SPC chart."


def latest_months(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows whose ``column`` lies in the latest ``TREND_MONTHS`` calendar months of it."""
    if rows.empty:
        return rows
    days = pd.to_datetime(rows[column])
    first = (days.max().to_period("M") - (TREND_MONTHS - 1)).start_time
    return rows[days >= first]


def _ratio_variation(rows: pd.DataFrame, options: SpcOptions) -> list[tuple[str, str]]:
    """Each group's monthly ratio to the reference, judged by SPC where every month of it is
    published (a gap would join months that are not consecutive)."""
    found = []
    groups = rows[
        (rows["breakdown"] == GROUP_BREAKDOWN) & rows["reference_group"].ne(rows["group_label"])
    ]
    groups = latest_months(groups, "period_start")
    for label, series in groups.sort_values("period_start").groupby("group_label", sort=False):
        ratios = series["ratio_to_reference"]
        if ratios.isna().any() or len(ratios) < MINIMUM_POINTS:
            found.append((str(label), "not enough published months to judge"))
            continue
        dates = [pd.Timestamp(d).date() for d in series["period_start"]]
        chart = spc(dates, [float(v) for v in ratios], options)
        found.append((str(label), VARIATION_LABELS[summarise(chart, options).variation_icon]))
    return found


@dataclass
class Completeness:
    """One source's completeness: its monthly SPC chart and its organisations' funnel plot,
    each with the rows of its data table."""

    source: str
    latest: str
    variation: str
    svg: str | None
    months: list[tuple[str, str, str]]
    funnel_svg: str | None
    organisations: list[tuple[str, str, str, str]]
    below: list[str]
    withheld_organisations: list[str]


def completeness(release: Release) -> list[Completeness]:
    """Recorded completeness per source: an SPC chart of the source's monthly total, and a
    funnel plot of its organisations in the latest month."""
    table = release.tables["ethnicity_completeness"]
    found = []
    for source, rows in table.groupby("source", sort=True):
        total = latest_months(rows[rows["organisation"] == "ALL"].sort_values("month"), "month")
        total = total[total["pct_known"].notna()]
        dates = [pd.Timestamp(d).date() for d in total["month"]]
        values = [float(v) for v in total["pct_known"]]
        svg, variation, kinds = None, "too few months for SPC", [""] * len(values)
        if len(values) >= MINIMUM_POINTS:
            options = SpcOptions(improvement_direction="increase")
            chart = spc(dates, values, options)
            title = f"{source}: % of records with a known ethnic code, by month"
            svg = charts.spc_chart(f"dq-{source}", title, "%", chart)
            variation = VARIATION_LABELS[summarise(chart, options).variation_icon]
            kinds = [charts.POINTS[kind].label for kind in chart["point_type"]]
        months = [
            (f"{day:%B %Y}", number(value), kind)
            for day, value, kind in zip(dates, values, kinds, strict=True)
        ]
        latest_month = rows["month"].max()
        funnel_svg, organisations, below, withheld = _funnel(
            str(source), rows[rows["month"] == latest_month]
        )
        latest = number(values[-1]) if values else ""
        found.append(
            Completeness(
                str(source),
                latest,
                variation,
                svg,
                months,
                funnel_svg,
                organisations,
                below,
                withheld,
            )
        )
    return found


def _funnel(
    source: str, month: pd.DataFrame
) -> tuple[str | None, list[tuple[str, str, str, str]], list[str], list[str]]:
    """The funnel plot of the month's organisations whose counts are published, its table
    rows (organisation, records, % known, where it lies), the organisations below its 99.8%
    limit, and those whose counts are withheld."""
    organisations = month[month["organisation"] != "ALL"]
    published = organisations["records"].notna() & organisations["known"].notna()
    shown = organisations[published]
    withheld = sorted(str(o) for o in organisations.loc[~published, "organisation"])
    if len(shown) < 3:
        return None, [], [], withheld
    known = [int(v) for v in shown["known"]]
    records = [int(v) for v in shown["records"]]
    average, limits = funnel_limits(known, records)
    points, table = [], []
    for organisation, k, n in zip(shown["organisation"], known, records, strict=True):
        lies = funnel_significance(k, n, average)
        points.append(charts.FunnelPoint(str(organisation), n, 100 * k / n, lies == BELOW_FUNNEL))
        table.append((str(organisation), number(n, 0), number(100 * k / n), FUNNEL_WORDS[lies]))
    title = f"{source}: completeness by organisation, {pd.Timestamp(month['month'].iloc[0]):%B %Y}"
    svg = charts.funnel_chart(f"funnel-{source}", title, points, average, limits)
    return svg, table, [p.organisation for p in points if p.below], withheld


@dataclass
class HealthRow:
    source: str
    status: str
    rows: str
    quarantined: str
    reasons: str
    received: str
    timeliness: str
    error: str


def rows_shown(count: int | None) -> str:
    """A count of rows as the board sees it: the rules of published counts (1 to 7 withheld,
    others rounded to 5), since a month's rows of a small source are people (deaths)."""
    if count is None:
        return ""
    if 1 <= count <= SUPPRESSION_THRESHOLD:
        return f"fewer than {SUPPRESSION_THRESHOLD + 1}"
    return f"{round_counts(pd.Series([count])).iloc[0]:,}"


def health(deliveries: list[Delivery]) -> list[HealthRow]:
    """Pipeline health per source for the report's month."""
    return [
        HealthRow(
            source=d.title,
            status=d.status.replace("_", " "),
            rows=""
            if d.rows_read is None
            else f"{rows_shown(d.rows_loaded)} of {rows_shown(d.rows_read)}",
            quarantined=rows_shown(d.rows_quarantined),
            reasons=", ".join(f"{reason} ({rows_shown(rows)})" for reason, rows in d.top_reasons),
            received=_day(d.received_on),
            timeliness=_timeliness(d),
            error=d.error or "",
        )
        for d in deliveries
    ]


def _day(day: date | None) -> str:
    return "" if day is None else f"{day:%d %b %Y}"


def _timeliness(delivery: Delivery) -> str:
    if delivery.status == "missing":
        return f"missing (due {_day(delivery.due_on)})"
    late = delivery.late_days
    return "on time" if late is None else f"{late} day(s) late (due {_day(delivery.due_on)})"


WRES_TITLES = {
    "WRES2": "Relative likelihood of White applicants being appointed from shortlisting "
    "compared with BME applicants",
    "WRES3": "Relative likelihood of BME staff entering the formal disciplinary process "
    "compared with White staff (two-year rolling)",
    "WRES4": "Relative likelihood of White staff accessing non-mandatory training compared "
    "with BME staff",
}
PARITY = 1.0


@dataclass
class WresBlock:
    """One WRES relative likelihood of the latest year, by organisation against parity."""

    indicator_id: str
    title: str
    year: str
    finding: str
    svg: str
    rows: list[tuple[str, str, str, str]]


@dataclass
class BoardGap:
    organisation: str
    voting: str
    executive: str


def wres_blocks(release: Release) -> tuple[list[WresBlock], list[BoardGap]]:
    """WRES 2, 3 and 4 of the latest financial year by organisation, each against the parity
    line of 1.00, and the WRES 9 board gaps."""
    table = release.tables.get("wres")
    if table is None or table.empty:
        return [], []
    latest = table[table["period_end"] == table["period_end"].max()]
    year = f"year to {pd.Timestamp(latest['period_end'].iloc[0]):%B %Y}"
    comparisons = latest[latest["group_label"].isna()]
    blocks = []
    for indicator, title in WRES_TITLES.items():
        rows = comparisons[comparisons["indicator_id"] == indicator].sort_values(
            "organisation_code", key=lambda codes: codes.eq("ALL").map({True: 1, False: 0})
        )
        if rows.empty:
            continue
        points = [
            charts.GroupPoint(
                _organisation_label(r["organisation_code"]),
                None if findings.is_missing(r["value"]) else float(r["value"]),
                None if findings.is_missing(r["lower_95"]) else float(r["lower_95"]),
                None if findings.is_missing(r["upper_95"]) else float(r["upper_95"]),
                None if findings.is_missing(r["value"]) else _against_parity(r),
            )
            for _, r in rows.iterrows()
        ]
        svg = charts.group_chart(
            f"{indicator.lower()}-organisations",
            f"{indicator}: {title}, {year}",
            "relative likelihood (1.00: parity)",
            points,
            PARITY,
            None,
            reference_label="parity (1.00)",
        )
        table_rows = [
            (
                _organisation_label(r["organisation_code"]),
                number(r["value"], 2) or "not shown",
                ""
                if findings.is_missing(r["lower_95"])
                else f"{r['lower_95']:.2f} to {r['upper_95']:.2f}",
                "" if findings.is_missing(r["note"]) else str(r["note"]),
            )
            for _, r in rows.iterrows()
        ]
        blocks.append(
            WresBlock(indicator, title, year, _wres_finding(rows, title), svg, table_rows)
        )
    return blocks, _board_gaps(comparisons[comparisons["indicator_id"] == "WRES9"])


def _organisation_label(code: str) -> str:
    return "Partnership" if code == "ALL" else code


def _against_parity(row: pd.Series) -> str:
    if findings.is_missing(row["lower_95"]):
        return findings.NOT_ENOUGH
    if row["lower_95"] > PARITY:
        return findings.HIGHER
    if row["upper_95"] < PARITY:
        return findings.LOWER
    return findings.NO_DIFFERENCE


def _wres_finding(rows: pd.DataFrame, title: str) -> str:
    """The partnership's figure in words: significant only where its CI excludes parity."""
    partnership = rows[rows["organisation_code"] == "ALL"]
    if partnership.empty or findings.is_missing(partnership.iloc[0]["value"]):
        return f"{title}: not published for the partnership (too few staff to show)."
    row = partnership.iloc[0]
    interval = ""
    if not findings.is_missing(row["lower_95"]):
        interval = f" (95% CI {row['lower_95']:.2f}–{row['upper_95']:.2f})"
    kind = _against_parity(row)
    verdict = {
        findings.HIGHER: "significantly above parity",
        findings.LOWER: "significantly below parity",
        findings.NO_DIFFERENCE: "no significant difference from parity",
        findings.NOT_ENOUGH: "not enough data to judge against parity",
    }[kind]
    return f"{title}, partnership: {row['value']:.2f}{interval}: {verdict}."


def _board_gaps(rows: pd.DataFrame) -> list[BoardGap]:
    gaps: dict[str, dict[str, str]] = {}
    for _, r in rows.iterrows():
        kind = "voting" if "voting" in str(r["population"]) else "executive"
        value = "withheld" if findings.is_missing(r["value"]) else f"{r['value']:+.1f} points"
        gaps.setdefault(_organisation_label(r["organisation_code"]), {})[kind] = value
    return [
        BoardGap(organisation, found.get("voting", ""), found.get("executive", ""))
        for organisation, found in gaps.items()
    ]
