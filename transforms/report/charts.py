"""The report's charts: deterministic, accessible SVG drawn with matplotlib.

Each chart is inline SVG with a title that says what it shows, labelled axes with units, its
confidence intervals or limits, and visible reference lines; it is an image with a text
alternative (``role="img"``, ``<title>`` and ``<desc>``), and the report puts its data table
beside it. Meaning never rests on colour alone: every kind of point has its own marker shape,
and the legend names it. Colours have at least 3:1 contrast with the white background.

The same data give the same bytes: matplotlib's SVG ids are salted with a constant, no date
is written, text stays text (``svg.fonttype: none``), and every id is prefixed with the
chart's own name so that many charts can share one page.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.figure import Figure  # noqa: E402

STYLE = {
    "svg.hashsalt": "health-equity-indicators",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
}
INK = "#1b1b1b"
GREY = "#5f6368"  # 6.0:1 on white
BLUE = "#005eb8"  # NHS blue, 6.7:1: improvement
ORANGE = "#b3460f"  # 5.3:1: concern
PURPLE = "#6a1b9a"  # 8.8:1: special cause with no direction
WIDTH_IN = 6.4
TITLE_WIDTH = 70


@dataclass(frozen=True)
class Marker:
    """How one kind of point is drawn and named in the legend."""

    label: str
    shape: str
    colour: str
    filled: bool = True


KINDS = {
    "higher": Marker("significantly higher than the reference", "^", PURPLE),
    "lower": Marker("significantly lower than the reference", "v", PURPLE),
    "no_difference": Marker("no significant difference", "o", GREY),
    "not_enough_data": Marker("not enough data to compare", "o", GREY, filled=False),
    "reference": Marker("reference group", "s", INK),
    "all": Marker("all persons", "D", INK, filled=False),
}
POINTS = {
    "common_cause": Marker("common cause variation", "o", GREY),
    "special_cause_improvement": Marker("special cause: improvement", "s", BLUE),
    "special_cause_concern": Marker("special cause: concern", "D", ORANGE),
    "special_cause_neutral_high": Marker("special cause, high (no better direction)", "^", PURPLE),
    "special_cause_neutral_low": Marker("special cause, low (no better direction)", "v", PURPLE),
}


def _title(axes: plt.Axes, title: str) -> None:
    axes.set_title(textwrap.fill(title, TITLE_WIDTH), loc="left")


def _figure(height: float) -> tuple[Figure, plt.Axes]:
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(WIDTH_IN, height))
    return figure, axes


def _marker(axes: plt.Axes, x: Sequence[float], y: Sequence[float], marker: Marker) -> None:
    axes.scatter(
        x,
        y,
        marker=marker.shape,
        s=36,
        facecolors=marker.colour if marker.filled else "white",
        edgecolors=marker.colour,
        linewidths=1.2,
        zorder=3,
        label=marker.label,
    )


def to_svg(figure: Figure, name: str, title: str, description: str) -> str:
    """The figure as inline SVG: an image named by ``title`` and described by ``description``,
    with every id prefixed by ``name`` (unique on the page)."""
    buffer = io.StringIO()
    with plt.rc_context(STYLE):
        figure.savefig(
            buffer,
            format="svg",
            bbox_inches="tight",
            pad_inches=0.1,
            metadata={"Date": None, "Creator": None},
        )
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    ids = re.findall(r'\bid="([^"]+)"', text)
    for old in sorted(set(ids), key=len, reverse=True):
        text = re.sub(rf'(id="|#){re.escape(old)}(?=["\)])', rf"\g<1>{name}-{old}", text)
    title_id, desc_id = f"{name}-title", f"{name}-desc"
    opening = text[: text.index(">") + 1]
    accessible = opening.replace(
        "<svg ", f'<svg role="img" aria-labelledby="{title_id} {desc_id}" ', 1
    )
    labels = (
        f'<title id="{title_id}">{escape(title)}</title>'
        f'<desc id="{desc_id}">{escape(description)}</desc>'
    )
    return accessible + labels + text[len(opening) :]


@dataclass(frozen=True)
class GroupPoint:
    """One group's value in the latest period: ``kind`` is a key of :data:`KINDS` (or None
    when withheld, drawn as the word "withheld")."""

    label: str
    value: float | None
    lower: float | None
    upper: float | None
    kind: str | None


def group_chart(
    name: str,
    title: str,
    unit: str,
    points: Sequence[GroupPoint],
    reference: float | None,
    everyone: float | None,
    reference_label: str = "reference group value",
) -> str:
    """Dot-and-whisker: each group's value with its 95% confidence interval, a dashed line at
    the reference group's value (or another reference, such as parity) and a dotted one at all
    persons'."""
    figure, axes = _figure(0.45 * len(points) + 1.2)
    rows = list(range(len(points)))[::-1]
    shown = [v for p in points for v in (p.lower, p.upper, p.value) if v is not None]
    left = min(shown, default=0.0)
    for y, point in zip(rows, points, strict=True):
        if point.value is None or point.kind is None:
            axes.text(left, y, "withheld", va="center", ha="left", color=GREY, style="italic")
            continue
        if point.lower is not None and point.upper is not None:
            axes.plot([point.lower, point.upper], [y, y], color=INK, linewidth=1.2, zorder=2)
        _marker(axes, [point.value], [y], KINDS[point.kind])
    if reference is not None:
        axes.axvline(reference, color=INK, linestyle="--", linewidth=1, label=reference_label)
    if everyone is not None:
        axes.axvline(everyone, color=GREY, linestyle=":", linewidth=1.2, label="all persons value")
    axes.set_yticks(rows, [p.label for p in points])
    axes.set_xlabel(unit)
    _title(axes, title)
    _legend(axes)
    description = "; ".join(
        f"{p.label}: " + ("withheld" if p.value is None else f"{p.value:.1f}") for p in points
    )
    return to_svg(figure, name, title, f"Values with 95% confidence intervals. {description}.")


def _legend(axes: plt.Axes) -> None:
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(
        unique.values(),
        unique.keys(),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.18),
        ncol=2,
        frameon=False,
        fontsize=8,
    )


def spc_chart(name: str, title: str, unit: str, chart) -> str:
    """An XmR chart: the points (each kind with its own marker), the mean and the process
    limits. ``chart`` is ``transforms.report.spc.spc`` output."""
    figure, axes = _figure(2.6)
    dates = [d.date() for d in chart["date"]]
    axes.plot(dates, chart["y"], color=GREY, linewidth=1, zorder=1)
    for kind, marker in POINTS.items():
        these = chart[chart["point_type"] == kind]
        if len(these):
            _marker(axes, list(these["date"]), list(these["y"]), marker)
    axes.plot(dates, chart["mean"], color=INK, linewidth=1, label="mean")
    axes.plot(dates, chart["upl"], color=INK, linestyle="--", linewidth=1, label="process limits")
    axes.plot(dates, chart["lpl"], color=INK, linestyle="--", linewidth=1)
    axes.set_ylabel(unit)
    _title(axes, title)
    figure.autofmt_xdate()
    _legend(axes)
    special = int(chart["special_cause_flag"].sum())
    description = (
        f"{len(chart)} points from {dates[0]:%B %Y} to {dates[-1]:%B %Y}; mean "
        f"{chart['mean'].iloc[-1]:.1f}; {special} special-cause point(s)."
    )
    return to_svg(figure, name, title, description)


def trend_chart(name: str, title: str, unit: str, dates: list, values: list) -> str:
    """A plain line of overlapping periods (rolling years), where SPC does not apply."""
    figure, axes = _figure(2.4)
    axes.plot(dates, values, color=INK, linewidth=1.2, marker="o", markersize=4)
    axes.set_ylabel(unit)
    _title(axes, title)
    figure.autofmt_xdate()
    shown = [f"{d:%b %Y} {v:.1f}" for d, v in zip(dates, values, strict=True) if v == v]
    return to_svg(figure, name, title, "Values by period end: " + "; ".join(shown) + ".")


@dataclass(frozen=True)
class FunnelPoint:
    organisation: str
    records: int
    pct_known: float
    below: bool  # below the lower 99.8% limit


def funnel_chart(
    name: str, title: str, points: Sequence[FunnelPoint], average: float, limits
) -> str:
    """Completeness by organisation against the partnership average, with the 95% and 99.8%
    funnel limits; organisations below the 99.8% limit are drawn as crosses and named."""
    figure, axes = _figure(3.2)
    x = [limit.population for limit in limits]
    axes.plot(
        x,
        [limit.lower_95 for limit in limits],
        color=GREY,
        linestyle="--",
        linewidth=1,
        label="95% limits",
    )
    axes.plot(x, [limit.upper_95 for limit in limits], color=GREY, linestyle="--", linewidth=1)
    axes.plot(
        x,
        [limit.lower_998 for limit in limits],
        color=INK,
        linestyle=":",
        linewidth=1.2,
        label="99.8% limits",
    )
    axes.plot(x, [limit.upper_998 for limit in limits], color=INK, linestyle=":", linewidth=1.2)
    axes.axhline(average, color=INK, linewidth=1, label="partnership average")
    inside = [p for p in points if not p.below]
    below = [p for p in points if p.below]
    _marker(
        axes, [p.records for p in inside], [p.pct_known for p in inside], POINTS["common_cause"]
    )
    if below:
        axes.scatter(
            [p.records for p in below],
            [p.pct_known for p in below],
            marker="X",
            s=48,
            color=ORANGE,
            zorder=4,
            label="below the 99.8% limit",
        )
        for p in below:
            axes.annotate(
                p.organisation,
                (p.records, p.pct_known),
                xytext=(4, -10),
                textcoords="offset points",
                fontsize=8,
            )
    axes.set_xlabel("records in the month")
    axes.set_ylabel("% with a known ethnic code")
    _title(axes, title)
    _legend(axes)
    named = ", ".join(p.organisation for p in below) or "none"
    description = (
        f"{len(points)} organisations; average {average:.1f}%; below the 99.8% limit: {named}."
    )
    return to_svg(figure, name, title, description)
