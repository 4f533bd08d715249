"""From aggregated counts to indicator values: groups, periods, statistics, comparisons.

``transforms.indicators.counts`` returns small frames (month x best-known ethnic code x age band);
this module rolls them up to reporting periods and ethnic groups, applies the PHE methods
(``transforms.core.statistics``), compares every group with its reference group and with all
persons, and applies disclosure control (``transforms.core.disclosure``). It gives two tables:
the data team's rows (exact values, the published counts and the reasons behind every
withheld one) and the partners' rows (published counts, and statistics recomputed from those
alone), which the attacking audit (``transforms.core.disclosure_audit``) must pass before they are
kept. Pure functions on DataFrames: the warehouse reads and writes are in
``transforms.indicators.store``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from transforms.config.catalogue import Indicator
from transforms.core import statistics as st
from transforms.core.disclosure import (
    DERIVED_COLUMNS,
    ROUNDING_BASE,
    STATISTIC_NAMES,
    Partition,
    apply_sdc,
    withhold_derived,
)
from transforms.core.disclosure_audit import COMPLEMENT, Finding, attack
from transforms.core.ethnicity import NOT_KNOWN_LABEL, NOT_STATED_LABEL, dimension_rows
from transforms.core.periods import Period
from transforms.quality.completeness import ALL_ORGANISATIONS
from transforms.warehouse.tables import indicators_published

ALL_PERSONS = "All persons"
UNKNOWN_GROUPS = (NOT_STATED_LABEL, NOT_KNOWN_LABEL)
PERIOD_KEYS = ["period_type", "period_start", "period_end"]
GROUP_KEYS = ["breakdown", "group_code", "group_label", "group_order"]
SET_KEYS = ["indicator_id", "measure", *PERIOD_KEYS]
INDICATOR_PERIOD = ["indicator_id", *PERIOD_KEYS]
WRES_GROUP_CODES = {"White": "white", "BME": "bme", "Unknown": "unknown"}
"""The ``wres_group`` breakdown's groups: White = the 5-group White, BME = Mixed + Asian +
Black + Other, Unknown = Not stated + Not known (``transforms.core.ethnicity``)."""
WRES_OF_5 = {
    "White": "White",
    "Mixed": "BME",
    "Asian or Asian British": "BME",
    "Black or Black British": "BME",
    "Other ethnic group": "BME",
    NOT_STATED_LABEL: "Unknown",
    NOT_KNOWN_LABEL: "Unknown",
}
"""The WRES group each 5-group row adds up to."""
NOT_COMPARED_GROUPS = (*UNKNOWN_GROUPS, "Unknown")
"""Labels that are not ethnic groups, so are never compared."""
GROUP_5_CODES = {
    "White": "white",
    "Mixed": "mixed",
    "Asian or Asian British": "asian",
    "Black or Black British": "black",
    "Other ethnic group": "other",
    NOT_STATED_LABEL: "not_stated",
    NOT_KNOWN_LABEL: "not_known",
}


@dataclass(frozen=True)
class Method:
    """What a measure's statistics depend on besides its counts: the indicators that share
    one are computed in one pass (the fixed cost of each frame operation, not the rows, is
    most of the compute's time)."""

    measure: str
    multiplier: int
    polarity: st.Polarity
    reference_groups: tuple[tuple[str, str], ...]

    @staticmethod
    def of(indicator: Indicator, measure: str) -> Method:
        polarity = None if indicator.polarity == "none" else indicator.polarity
        groups = tuple(sorted(indicator.reference_groups.items()))
        return Method(measure, indicator.multiplier, polarity, groups)


def ethnic_groups() -> pd.DataFrame:
    """Ethnic code -> group per breakdown: one row per code x breakdown, in display order."""
    columns = ["breakdown", "ethnic_code", "group_code", "group_label", "group_order"]
    return pd.DataFrame(_ethnic_group_rows(), columns=[*columns, "parent_5"])


@cache
def _ethnic_group_rows() -> tuple[tuple[object, ...], ...]:
    """Read from the reference file once per process: every statistic of the catalogue
    needs them."""
    rows: list[tuple[object, ...]] = []
    for dim in dimension_rows():
        code, order = str(dim["ethnic_code"]), int(dim["group_16_order"])
        group_5 = str(dim["group_5"])
        wres = str(dim["wres_group"])
        rows += [
            ("all", code, "all", ALL_PERSONS, 0, None),
            ("ethnicity_5", code, GROUP_5_CODES[group_5], group_5, _order_5(group_5), None),
            ("ethnicity_16", code, code, str(dim["group_16"]), order, group_5),
            ("wres_group", code, WRES_GROUP_CODES[wres], wres, _order_wres(wres), None),
        ]
    return tuple(rows)


def _order_5(label: str) -> int:
    return list(GROUP_5_CODES).index(label) + 1


def _order_wres(label: str) -> int:
    return list(WRES_GROUP_CODES).index(label) + 1


# --- periods -------------------------------------------------------------------------------


def in_periods(monthly: pd.DataFrame, periods: Sequence[Period], mean: bool) -> pd.DataFrame:
    """Monthly counts summed over each period (divided by its months for person-years)."""
    spans = pd.DataFrame(
        [(p.kind, p.start, p.end, m, len(p.months)) for p in periods for m in p.months],
        columns=[*PERIOD_KEYS, "month", "months"],
    )
    keys = [*PERIOD_KEYS, "months", "ethnic_code", "age_band"]
    summed = monthly.merge(spans, on="month").groupby(keys, dropna=False)["n"].sum().reset_index()
    if mean:
        summed["n"] = summed["n"] / summed["months"]
    return summed.drop(columns="months")


# --- groups --------------------------------------------------------------------------------


def by_group(
    numerator: pd.DataFrame,
    denominator: pd.DataFrame,
    periods: Sequence[Period],
    breakdowns: Sequence[str],
    with_age: bool,
) -> pd.DataFrame:
    """Numerator and denominator per period x breakdown group (x age band), zeros included.

    Every group of each breakdown appears in every period asked for, so an empty group (or
    a period with no events at all) shows as 0 and disclosure sets are complete. Counts of
    other periods, codes or bands (an event without an age, in a table by age) are left
    out. Summed by position in the grid (period, group, band) rather than grouped by its
    eight label columns, which cost more than the rest of an indicator's statistics.
    """
    groups = ethnic_groups()
    groups = groups[groups["breakdown"].isin(breakdowns)].reset_index(drop=True)
    group = groups.groupby(GROUP_KEYS, sort=False).ngroup().to_numpy()
    distinct = groups.drop(columns="ethnic_code").drop_duplicates(GROUP_KEYS)
    bands = pd.Index(list(st.ESP2013) if with_age else ["all"])
    spans = pd.MultiIndex.from_tuples([(p.kind, p.start, p.end) for p in periods])
    grid = pd.DataFrame(spans.to_list(), columns=PERIOD_KEYS).merge(distinct, how="cross")
    grid = grid.merge(pd.DataFrame({"age_band": bands}), how="cross")
    sizes = (len(spans), len(distinct), len(bands))
    months = np.array([len(p.months) for p in periods], dtype=float)
    code_groups = [
        pd.Series(group[chosen], index=groups.loc[chosen, "ethnic_code"])
        for chosen in (groups["breakdown"] == b for b in dict.fromkeys(groups["breakdown"]))
    ]
    return grid.assign(
        numerator=_summed(numerator, spans, months, code_groups, bands, sizes),
        denominator=_summed(denominator, spans, months, code_groups, bands, sizes),
    )


def _summed(
    frame: pd.DataFrame,
    spans: pd.MultiIndex,
    months: np.ndarray,
    code_groups: list[pd.Series],
    bands: pd.Index,
    sizes: tuple[int, int, int],
) -> np.ndarray:
    """``frame``'s counts summed into the grid of :func:`by_group`, cell by position: each
    row adds to its code's group in every breakdown (``code_groups``, one per breakdown).

    Every count is a whole number, or person-years: a period's monthly counts divided by
    its ``months``. So each is summed as the whole number it stands for (times ``months``),
    exactly, and divided once: a floating-point sum of the fractions depends on the order of
    its terms, and pandas' on the other cells summed beside them, so a period's total would
    differ in its last bits with the periods computed with it (``store.CHUNK_MONTHS``), and
    a total of 16,457.5 that comes out a hair under is published as 16,455, not 16,460."""
    period = spans.get_indexer(pd.MultiIndex.from_frame(frame[PERIOD_KEYS]))
    band = bands.get_indexer(frame["age_band"])
    scaled = frame["n"].to_numpy(dtype=float) * months[period]
    whole = np.rint(scaled)
    if (np.abs(scaled - whole)[period >= 0] > 1e-6).any() or (months < 1).any():
        raise ValueError("counts must be whole numbers, or person-years over a period's months")
    total = np.zeros(sizes[0] * sizes[1] * sizes[2])
    for groups in code_groups:
        group = groups.reindex(frame["ethnic_code"]).to_numpy(dtype=float, na_value=np.nan)
        kept = (period >= 0) & (band >= 0) & ~np.isnan(group) & ~np.isnan(whole)
        cell = (period[kept] * sizes[1] + group[kept].astype(int)) * sizes[2] + band[kept]
        total += np.bincount(cell, weights=whole[kept], minlength=len(total))
    return total / np.repeat(months, sizes[1] * sizes[2])


# --- statistics ----------------------------------------------------------------------------


def estimate(table: pd.DataFrame, method: Method) -> pd.DataFrame:
    """Value, 95% and 99.8% limits, method and note for each indicator x period x group."""
    keys = ["indicator_id", "measure", *PERIOD_KEYS, *GROUP_KEYS, "parent_5"]
    if method.measure == "dsr":
        return _dsr(table, keys, method.multiplier)
    totals = table.groupby(keys, dropna=False)[["numerator", "denominator"]].sum().reset_index()
    has_base = totals["denominator"] > 0
    statistic = st.proportion if method.measure == "proportion" else st.crude_rate
    stats = statistic(
        totals.loc[has_base, "numerator"],
        totals.loc[has_base, "denominator"],
        multiplier=method.multiplier,
    )
    out = totals.join(stats)
    out["note"] = pd.Series(np.where(has_base, None, "no denominator"), dtype=object)
    out["variance"] = np.nan
    return out


def _dsr(table: pd.DataFrame, keys: list[str], multiplier: int) -> pd.DataFrame:
    aged = table[table["age_band"].isin(list(st.ESP2013))].copy()
    aged["group_id"] = aged.groupby(keys, dropna=False).ngroup()
    result = st.dsr(
        aged, "group_id", count="numerator", population="denominator", multiplier=multiplier
    )
    firsts = aged.drop_duplicates("group_id").set_index("group_id")[keys]
    out = firsts.join(result.set_index("group_id")).reset_index(drop=True)
    out = out.rename(columns={"total_count": "numerator", "total_pop": "denominator"})
    out["note"] = out["statistic"].where(out["value"].isna(), None).astype(object)
    return out


def known_share(values: pd.DataFrame) -> pd.DataFrame:
    """Per indicator and period: % of the denominator whose best-known ethnicity is known
    (the linkage completeness shown beside every value of the indicator)."""
    five = values[values["breakdown"] == "ethnicity_5"]
    known = five["denominator"].where(~five["group_label"].isin(UNKNOWN_GROUPS), 0)
    sums = (
        pd.DataFrame({"known": known, "all": five["denominator"]})
        .groupby([five[k] for k in INDICATOR_PERIOD])
        .sum()
    )
    share = (sums["known"] / sums["all"].where(sums["all"] > 0) * 100).rename("ethnicity_known_pct")
    return share.reset_index()


# --- comparisons ---------------------------------------------------------------------------


def compare(values: pd.DataFrame, method: Method) -> pd.DataFrame:
    """Ratio to the reference group (95% CI, log scale) and significance flags at 95% and
    99.8% against the reference group and against all persons.

    Not stated / Not known (and the WRES group Unknown) are not ethnic groups, so they are not
    compared; neither is the reference group with itself (ratio 1) nor all persons with itself.
    """
    out = values.reset_index(drop=True)
    out["reference_group"] = out["breakdown"].map(dict(method.reference_groups))
    period = out.groupby(INDICATOR_PERIOD, sort=False).ngroup().to_numpy()
    per_breakdown = period * 8 + pd.Categorical(out["breakdown"]).codes
    columns = ["numerator", "denominator", "value", "variance"]
    reference = (out["group_label"] == out["reference_group"]).fillna(False).to_numpy()
    out = out.join(_lookup(out, per_breakdown, reference, columns).add_prefix("ref_"))
    everyone = out["breakdown"].eq("all").to_numpy()
    out = out.join(_lookup(out, period, everyone, columns).add_prefix("all_"))
    compared = (out["breakdown"] != "all") & ~out["group_label"].isin(NOT_COMPARED_GROUPS)
    is_reference = out["group_label"] == out["reference_group"]
    ratios = _ratios(out, method.measure, compared & ~is_reference & out["reference_group"].notna())
    out = out.join(ratios)
    out.loc[is_reference & out["value"].notna(), "ratio"] = 1.0
    for level in ("95_0", "99_8"):
        out[f"significance_vs_reference_{level}"] = np.where(
            compared & ~is_reference,
            st.significance(
                out["ratio"],
                out[f"ratio_lower{level}cl"],
                out[f"ratio_upper{level}cl"],
                1.0,
                polarity=method.polarity,
            ),
            st.NOT_COMPARED,
        )
        out[f"significance_vs_all_{level}"] = np.where(
            compared,
            st.significance(
                out["value"],
                out[f"lower{level}cl"],
                out[f"upper{level}cl"],
                out["all_value"],
                polarity=method.polarity,
            ),
            st.NOT_COMPARED,
        )
    return out.drop(columns=[c for c in out if c.startswith(("ref_", "all_"))])


def _lookup(
    values: pd.DataFrame, keys: np.ndarray, rows: np.ndarray, columns: Sequence[str] = ()
) -> pd.DataFrame:
    """For every row, ``columns`` (default all) of the one row among ``rows`` with the same
    key (NaN if none): the comparator of each group, without a merge."""
    position = np.full(keys.max(initial=-1) + 1, -1)
    position[keys[rows]] = np.flatnonzero(rows)
    found = position[keys]
    picked = {
        c: np.where(found >= 0, values[c].to_numpy(dtype=float)[found], np.nan)
        for c in (columns or values.columns)
    }
    return pd.DataFrame(picked, index=values.index)


def _ratios(out: pd.DataFrame, measure: str, rows: pd.Series) -> pd.DataFrame:
    levels = (0.95, 0.998)
    if measure == "dsr":
        chosen = out[rows]
        ratio = st.dsr_ratio(
            chosen["value"],
            chosen["variance"],
            chosen["ref_value"],
            chosen["ref_variance"],
            confidence=levels,
        )
    else:
        rows = rows & (out["denominator"] > 0) & (out["ref_denominator"] > 0)
        chosen = out[rows]
        method = st.proportion_ratio if measure == "proportion" else st.rate_ratio
        ratio = method(
            chosen["numerator"],
            chosen["denominator"],
            chosen["ref_numerator"],
            chosen["ref_denominator"],
            confidence=levels,
        )
    ratio = ratio.rename(columns=lambda c: c if c == "ratio" else f"ratio_{c}")
    return ratio.reindex(out.index)


# --- disclosure ----------------------------------------------------------------------------

Withhold = dict[str, pd.Series]
"""Count column -> rows whose count the attacking audit asked to withhold."""
Protector = Callable[[pd.DataFrame, Withhold], pd.DataFrame]
Rows = tuple[pd.DataFrame, pd.DataFrame]
"""The data team's rows and the partners' rows of the same values, row for row."""


def protect(
    values: pd.DataFrame,
    top: pd.Series,
    nested: list[Partition],
    total: str | None,
    withhold: Withhold,
) -> pd.DataFrame:
    """Add the published counts and suppression flags (``transforms.core.disclosure``).

    ``top`` keys the first partition into sets (rows sharing a key add up to the row labelled
    ``total``); ``nested`` partitions protect groups within groups; ``withhold`` names counts
    to withhold besides the small ones. Person-year denominators are rounded to whole people
    first. Exact values stay in the table; the published counts are ``published_numerator``
    and ``published_denominator``, and the reason codes are for the data team.
    """
    table = values.assign(sdc_top=top, sdc_denominator=values["denominator"].round())
    asked = {"numerator": withhold["numerator"], "sdc_denominator": withhold["denominator"]}
    options = dict(
        numerator="numerator",
        denominator="sdc_denominator",
        derived=DERIVED_COLUMNS,
        total_label=total,
        label_col="group_label",
        nested=nested,
    )
    shown = apply_sdc(
        table, [*SET_KEYS, "sdc_top"], statistic="statistic", also_withhold=asked, **options
    )
    return values.assign(
        published_numerator=shown["numerator"],
        published_denominator=shown["sdc_denominator"],
        suppressed=shown["suppressed"],
        suppression_reason=shown["suppression_reason"],
    )


def with_reference_flag(values: pd.DataFrame) -> pd.DataFrame:
    """``reference_suppressed``: the row's reference group is withheld, so its ratio (which
    with the row's own value would give the reference's value away) is withheld too."""
    values = values.reset_index(drop=True)
    keys = values.groupby([*SET_KEYS, "breakdown"], sort=False).ngroup().to_numpy()
    reference = (values["group_label"] == values["reference_group"]).fillna(False).to_numpy()
    flag = _lookup(pd.DataFrame({"flag": values["suppressed"].astype(float)}), keys, reference)
    values["reference_suppressed"] = flag["flag"].eq(1.0).to_numpy()
    return values


def protect_ethnic_groups(values: pd.DataFrame, withhold: Withhold) -> pd.DataFrame:
    """Sets: all persons = Σ 5 groups; each 5 group = Σ its 16 groups; and, where the WRES
    groups are published, all persons = White + BME + Unknown, each the total of its 5
    groups (White's only member is the 5-group White, the same people). The WRES sets are
    only those of indicators that publish the WRES groups: elsewhere the 5 groups of Unknown
    are not a total anyone sees."""
    sixteen = values["breakdown"] == "ethnicity_16"
    wres = values["breakdown"] == "wres_group"
    with_wres = values["indicator_id"].isin(values.loc[wres, "indicator_id"].unique())
    five = values["breakdown"] == "ethnicity_5"
    everyone = values["breakdown"] == "all"
    top = pd.Series("top", index=values.index).where(
        ~(sixteen | wres), "own:" + values["group_code"]
    )
    parent = values["parent_5"].where(sixteen, values["group_label"].where(five))
    table = values.assign(
        sdc_parent=parent,
        sdc_parent_total=five,
        sdc_wres_top=pd.Series("wres", index=values.index).where((wres | everyone) & with_wres),
        sdc_wres_parent=values["group_label"]
        .map(WRES_OF_5)
        .where(five & with_wres)
        .fillna(values["group_label"].where(wres)),
        sdc_wres_total=wres,
        sdc_is_all=everyone,
    )
    nested = [Partition((*SET_KEYS, "sdc_parent"), "sdc_parent_total")]
    if wres.any():
        nested += [
            Partition((*SET_KEYS, "sdc_wres_top"), "sdc_is_all"),
            Partition((*SET_KEYS, "sdc_wres_parent"), "sdc_wres_total"),
        ]
    protected = protect(table, top, nested, ALL_PERSONS, withhold)
    helpers = [c for c in protected.columns if c.startswith("sdc_")]
    return with_reference_flag(protected.drop(columns=helpers))


def protect_organisations(values: pd.DataFrame, withhold: Withhold) -> pd.DataFrame:
    """Sets: a source's ``all organisations`` row = Σ its organisations."""
    source, organisation = (values["group_code"].str.split(":", n=1).str[i] for i in (0, 1))
    table = values.assign(sdc_source=source, sdc_is_total=organisation == "all")
    nested = [Partition((*SET_KEYS, "sdc_source"), "sdc_is_total")]
    protected = protect(table, "own:" + values["group_code"], nested, None, withhold)
    return protected.drop(columns=["sdc_source", "sdc_is_total"]).assign(reference_suppressed=False)


# --- what partners see ---------------------------------------------------------------------

WITHHELD, UNRELIABLE = "withheld", "unreliable"
"""The only reasons partners see: primary and secondary suppression look alike to them."""
DSR_SHOWN_FROM = -(-(st.DSR_MIN_COUNT + ROUNDING_BASE // 2) // ROUNDING_BASE) * ROUNDING_BASE
"""The smallest published count whose DSR is shown (15): a published count stands for any
count within 2 of it, so 10 may be 8 and only 15 assures PHE's minimum of 10 events. Judged
on the published count, so that a withheld DSR tells partners nothing the count does not."""
PARTNER_COLUMNS = tuple(
    c.name for c in indicators_published.columns if c.name not in ("run_id", "computed_at")
)
"""The columns of partners' rows: ``indicators.published`` but for its lineage."""
MAX_AUDIT_ROUNDS = 10


class DisclosureRefused(Exception):
    """The attacking audit still narrows counts down after every remedy: publish nothing."""


def partner_rows(protected: pd.DataFrame, indicators: Mapping[str, Indicator]) -> pd.DataFrame:
    """What partners see of each row: the published counts, and every statistic recomputed
    from them alone (``docs/methods.md`` §7, rule 3), so that no value or limit tells more
    than the rounded counts do. A DSR keeps the value of its exact age-specific rates, but
    its limits are Dobson's for the published count (see :func:`_published_dsr`)."""
    keys = list(zip(protected["indicator_id"], protected["measure"], strict=True))
    methods = {key: Method.of(indicators[key[0]], key[1]) for key in dict.fromkeys(keys)}
    by_method = pd.Series([methods[key] for key in keys], index=protected.index)
    parts = [
        _partner_rows(rows, method).set_axis(rows.index)
        for method, rows in protected.groupby(by_method, sort=False)
    ]
    return pd.concat(parts).sort_index()


def _partner_rows(protected: pd.DataFrame, method: Method) -> pd.DataFrame:
    protected = protected.reset_index(drop=True)
    shown = (
        protected["published_numerator"].notna() & protected["published_denominator"].notna()
    ).to_numpy()
    rows = protected[PARTNER_IDENTITY].assign(
        numerator=protected["published_numerator"].astype(float),
        denominator=protected["published_denominator"].astype(float),
    )
    if method.measure == "dsr":
        rows = rows.join(_published_dsr(protected, shown))
    else:
        rows = rows.join(_published_estimates(rows, shown, method))
    if rows["breakdown"].eq("source_organisation").all():
        rows = rows.assign(
            reference_group=None,
            ethnicity_known_pct=np.nan,
            **{c: np.nan for c in DERIVED_COLUMNS if c.startswith("ratio")},
            **{c: st.NOT_COMPARED for c in DERIVED_COLUMNS if c.startswith("significance")},
        )
    else:
        rows = compare(rows, method)
        rows["ethnicity_known_pct"] = _published_known_share(rows)
    unreliable = shown & rows["value"].isna().to_numpy() & (method.measure == "dsr")
    reason = pd.Series(np.select([~shown, unreliable], [WITHHELD, UNRELIABLE], ""), dtype=object)
    rows["suppression_reason"] = reason.where(reason != "", None)
    rows["suppressed"] = reason.ne("").to_numpy()
    rows = with_reference_flag(rows).rename(columns=STATISTIC_NAMES)
    rows = withhold_derived(rows, pd.Series(~shown, index=rows.index))
    return rows[list(PARTNER_COLUMNS)]


PARTNER_IDENTITY = ["indicator_id", "measure", "unit", *PERIOD_KEYS, *GROUP_KEYS, "parent_5"]


def _published_estimates(counts: pd.DataFrame, shown: np.ndarray, method: Method) -> pd.DataFrame:
    """Proportions and crude rates of the published counts."""
    has_base = shown & (counts["denominator"] > 0).to_numpy()
    statistic = st.proportion if method.measure == "proportion" else st.crude_rate
    stats = statistic(
        counts.loc[has_base, "numerator"],
        counts.loc[has_base, "denominator"],
        multiplier=method.multiplier,
    )
    out = stats.drop(columns="statistic").reindex(counts.index)
    out["note"] = pd.Series(np.where(shown & ~has_base, "no denominator", None), dtype=object)
    out["variance"] = np.nan
    return out


def _published_dsr(protected: pd.DataFrame, shown: np.ndarray) -> pd.DataFrame:
    """The exact DSR where its published count O' is at least :data:`DSR_SHOWN_FROM`, with
    Dobson limits for O': the variance is rescaled to var(DSR) · O / O', keeping the DSR's
    precision per event, so value and limits reveal O' and nothing of the exact count O."""
    published = protected["published_numerator"].astype(float)
    reliable = shown & (published >= DSR_SHOWN_FROM).to_numpy() & protected["value"].notna()
    value = protected["value"].where(reliable)
    variance = (protected["variance"] * protected["numerator"] / published).where(reliable)
    out = st.dobson_limits(value, variance, published.where(reliable))
    empty_band = protected["statistic"].eq(st.NO_DSR_EMPTY_BAND)
    few = (
        f"not shown: a published count below {DSR_SHOWN_FROM} may stand for fewer than "
        f"{st.DSR_MIN_COUNT} events"
    )
    note = pd.Series(np.where(empty_band, st.NO_DSR_EMPTY_BAND, few), index=protected.index)
    return out.assign(
        value=value,
        variance=variance,
        method=f"{st.DOBSON}, limits for the published count",
        note=note.where(~reliable, None),
    )


def _published_known_share(rows: pd.DataFrame) -> pd.Series:
    """Linkage completeness from the published denominators: All persons less Not stated
    and Not known, over All persons; none where any of those is withheld."""
    period = rows.groupby(INDICATOR_PERIOD, sort=False).ngroup().to_numpy()
    denominator = rows["denominator"].to_numpy(dtype=float)
    unknown = (
        rows["breakdown"].eq("ethnicity_5") & rows["group_label"].isin(UNKNOWN_GROUPS)
    ).to_numpy()
    unknown_sum = np.bincount(period[unknown], denominator[unknown], minlength=period.max() + 1)
    everyone = _lookup(rows[["denominator"]], period, rows["breakdown"].eq("all").to_numpy())
    total = everyone["denominator"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        share = 100 * (total - unknown_sum[period]) / np.where(total > 0, total, np.nan)
    return pd.Series(np.round(share, 1), index=rows.index, name="ethnicity_known_pct")


def disclose(
    values: pd.DataFrame, indicators: Mapping[str, Indicator], protector: Protector
) -> Rows:
    """Disclosure control, then the partners' rows, attacked (``transforms.core.disclosure_audit``)
    until the attack narrows nothing down: each round withholds what the last one could pin
    or confine, and redoes only the periods concerned. An indicator's measures (a DSR counts
    the events of its crude rate that have an age) are protected and attacked together.
    ``values`` may hold any of ``indicators``: no set spans two indicators or periods, so
    each period is protected as if alone, and the whole catalogue goes through each round
    at once (per indicator, the fixed cost of the frame operations and linear programmes
    was most of the compute's time). Returns the data team's rows (exact, with reasons) and
    the partners'."""
    values = values.reset_index(drop=True)
    period = values.groupby(INDICATOR_PERIOD, sort=False).ngroup().to_numpy()
    multipliers = {i: indicators[i].multiplier for i in values["indicator_id"].unique()}
    withhold = {c: np.zeros(len(values), dtype=bool) for c in ("numerator", "denominator")}
    chosen = np.arange(len(values))
    team = partners = pd.DataFrame()
    for _ in range(MAX_AUDIT_ROUNDS):
        part = values.iloc[chosen].reset_index(drop=True)
        protected = _protect_measures_alike(part, protector, withhold, chosen)
        partner = partner_rows(protected, indicators)
        team, partners = _splice(team, protected, chosen), _splice(partners, partner, chosen)
        findings = attack(partner, multipliers)
        if not findings:
            return team, partners
        for column, position in _remedies(protected, findings, withhold, chosen):
            withhold[column][chosen[position]] = True
        chosen = np.flatnonzero(np.isin(period, period[chosen[[f.row for f in findings]]]))
    refused = sorted({str(partner["indicator_id"].iloc[f.row]) for f in findings})
    listed = "; ".join(str(f) for f in findings[:5])
    raise DisclosureRefused(f"{', '.join(refused)}: the disclosure audit still finds {listed}")


def _protect_measures_alike(
    part: pd.DataFrame, protector: Protector, withhold: dict[str, np.ndarray], chosen: np.ndarray
) -> pd.DataFrame:
    """Disclosure control, with a count withheld in one measure withheld in the others too
    (their counts nearly coincide, so one shown would give the other away); repeated until
    the measures agree. ``withhold`` gains the counts withheld so."""
    cell_keys = [*INDICATOR_PERIOD, "breakdown", "group_code"]
    cell = part.groupby(cell_keys, sort=False).ngroup().to_numpy()
    while True:
        protected = protector(part, {c: pd.Series(w[chosen]) for c, w in withhold.items()})
        grown = False
        for column in ("numerator", "denominator"):
            hidden = protected[f"published_{column}"].isna().to_numpy()
            alike = np.isin(cell, cell[hidden]) & ~hidden
            if alike.any():
                withhold[column][chosen[alike]] = True
                grown = True
        if not grown:
            return protected


def _splice(whole: pd.DataFrame, part: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``whole`` with the rows at ``positions`` replaced by ``part`` (all of it at first)."""
    if whole.empty:
        return part
    kept = whole.drop(index=positions)
    return pd.concat([kept, part.set_axis(positions)]).sort_index()


def _remedies(
    protected: pd.DataFrame,
    findings: list[Finding],
    withhold: dict[str, np.ndarray],
    chosen: np.ndarray,
) -> list[tuple[str, int]]:
    """More counts to withhold, as (column, row of ``protected``): a shown count that is
    pinned; for a withheld one that is confined, the smallest shown count beside it in its
    set (else the set's total); for a small complement, the numerator. Only the sets can be
    remedied: a statistic that does not follow from the published counts is a bug."""
    more = []
    same_set = protected.groupby(SET_KEYS, sort=False).ngroup().to_numpy()
    for finding in findings:
        if finding.kind != "sets":
            raise DisclosureRefused(f"{finding} (a bug: statistics must use published counts)")
        column = "numerator" if finding.column == COMPLEMENT else finding.column
        shown = pd.notna(protected[f"published_{column}"].iloc[finding.row])
        if shown:
            position = finding.row
        else:
            members = np.flatnonzero(same_set == same_set[finding.row])
            position = _beside(protected.iloc[members].set_axis(members), finding.row, column)
        if not withhold[column][chosen[position]]:
            more.append((column, position))
    if not more:
        raise DisclosureRefused(f"no remedy for {findings[0]}")
    return more


def _beside(rows: pd.DataFrame, row: int, column: str) -> int:
    """Among ``rows`` (one set's, labelled by position), the position of the smallest shown
    non-zero count beside ``row``, or of the set's total."""
    this = rows.loc[row]
    breakdown = rows["breakdown"]
    if this["breakdown"] == "source_organisation":
        prefix = this["group_code"].split(":", 1)[0] + ":"
        in_source = rows["group_code"].str.startswith(prefix)
        members, total = in_source & ~rows["group_code"].str.endswith(":all"), in_source
        total &= rows["group_code"].str.endswith(":all")
    elif this["breakdown"] == "ethnicity_16":
        members = (breakdown == "ethnicity_16") & (rows["parent_5"] == this["parent_5"])
        total = (breakdown == "ethnicity_5") & (rows["group_label"] == this["parent_5"])
    elif this["breakdown"] == "wres_group":
        members, total = breakdown == "wres_group", breakdown == "all"
    else:
        members, total = breakdown == "ethnicity_5", breakdown == "all"
    published = rows[f"published_{column}"].astype(float)
    candidates = published.where(members & (published > 0)).drop(index=row).dropna()
    if len(candidates):
        return int(candidates.idxmin())
    return int(total.index[total.to_numpy()][0])


# --- whole indicators ----------------------------------------------------------------------


def unit(measure: str, multiplier: int) -> str:
    """The unit of a measure's values, as ``indicators.values.unit`` states it."""
    if measure == "proportion":
        return "%"
    per = f"per {multiplier:,}"
    return f"{per}, age-standardised (ESP2013)" if measure == "dsr" else per


Counts = tuple[Indicator, pd.DataFrame, pd.DataFrame, Sequence[Period]]
"""An indicator, its numerator's and its denominator's counts per period, ethnic code and
age band (``in_periods`` output), and the periods they are for."""


def indicator_values(
    indicator: Indicator,
    numerator: pd.DataFrame,
    denominator: pd.DataFrame,
    periods: Sequence[Period],
) -> Rows:
    """Every measure, period and group of one indicator, with statistics, comparisons and
    disclosure: the data team's rows and the partners' (see :func:`disclose`)."""
    exact = exact_indicator_values([(indicator, numerator, denominator, periods)])
    return disclose(exact, {indicator.id: indicator}, protect_ethnic_groups)


def exact_indicator_values(counts: Sequence[Counts]) -> pd.DataFrame:
    """Every measure, period and group of each indicator, with statistics and comparisons,
    before disclosure control: each indicator's rows in turn, measure by measure. The
    measures that share a :class:`Method` are computed together."""
    tables = [
        (indicator.id, Method.of(indicator, measure), _by_group(indicator, measure, *rest))
        for indicator, *rest in counts
        for measure in indicator.measures
    ]
    computed = {}
    for method in dict.fromkeys(method for _, method, _ in tables):
        same = [table for _, other, table in tables if other == method]
        values = _statistics(pd.concat(same, ignore_index=True), method)
        computed[method] = dict(tuple(values.groupby("indicator_id", sort=False)))
    parts = [computed[method][indicator_id] for indicator_id, method, _ in tables]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _by_group(
    indicator: Indicator,
    measure: str,
    numerator: pd.DataFrame,
    denominator: pd.DataFrame,
    periods: Sequence[Period],
) -> pd.DataFrame:
    with_age = measure == "dsr"
    if not with_age:
        numerator, denominator = (_collapse_bands(f) for f in (numerator, denominator))
    table = by_group(numerator, denominator, periods, indicator.breakdowns, with_age)
    return table.assign(indicator_id=indicator.id, measure=measure)


def _statistics(table: pd.DataFrame, method: Method) -> pd.DataFrame:
    """One measure's exact statistics and comparisons, for any indicators of its method."""
    values = estimate(table, method)
    values = values.merge(known_share(values), on=INDICATOR_PERIOD, how="left")
    return compare(values, method).assign(unit=unit(method.measure, method.multiplier))


def _collapse_bands(frame: pd.DataFrame) -> pd.DataFrame:
    summed = frame.groupby([*PERIOD_KEYS, "ethnic_code"], dropna=False)["n"].sum()
    return summed.reset_index().assign(age_band="all")


def organisation_values(indicator: Indicator, counts: pd.DataFrame) -> Rows:
    """Values by organisation (``source_organisation``) from counts per period key, source,
    organisation, numerator and denominator, disclosure-controlled (see
    :func:`exact_organisation_values`)."""
    exact = exact_organisation_values(indicator, counts)
    return disclose(exact, {indicator.id: indicator}, protect_organisations)


def exact_organisation_values(indicator: Indicator, counts: pd.DataFrame) -> pd.DataFrame:
    """One row per source x organisation and the source's ``ALL`` row as its total (the
    only row of a source without organisations, such as deaths), before disclosure control.
    Organisations are not compared with one another here (the report's funnel plots do
    that)."""
    is_total = counts["organisation"] == ALL_ORGANISATIONS
    rows = counts.assign(
        indicator_id=indicator.id,
        measure="proportion",
        breakdown="source_organisation",
        group_code=counts["source"] + ":" + counts["organisation"].where(~is_total, "all"),
        group_label=counts["source"]
        + ": "
        + counts["organisation"].where(~is_total, "all organisations"),
        group_order=0,
        parent_5=None,
    )
    return estimate(rows, Method.of(indicator, "proportion")).assign(
        unit="%",
        ethnicity_known_pct=np.nan,
        reference_group=None,
        **{c: np.nan for c in DERIVED_COLUMNS if c.startswith("ratio")},
        **{c: st.NOT_COMPARED for c in DERIVED_COLUMNS if c.startswith("significance")},
    )


def disclose_catalogue(
    by_group: pd.DataFrame, by_organisation: pd.DataFrame, indicators: Mapping[str, Indicator]
) -> dict[str, Rows]:
    """The data team's and the partners' rows of every indicator, from the exact rows of
    any number of them by ethnic group and by organisation (either may be empty): each
    breakdown family goes through :func:`disclose` once for the whole catalogue, then the
    rows are handed back per indicator, those with both joined by :func:`with_organisations`."""
    protectors = ((by_group, protect_ethnic_groups), (by_organisation, protect_organisations))
    families = [
        _per_indicator(disclose(exact, indicators, protector))
        for exact, protector in protectors
        if len(exact)
    ]
    rows: dict[str, Rows] = {}
    for indicator_id in dict.fromkeys(i for family in families for i in family):
        found = [family[indicator_id] for family in families if indicator_id in family]
        rows[indicator_id] = found[0] if len(found) == 1 else with_organisations(*found)
    return rows


def _per_indicator(rows: Rows) -> dict[str, Rows]:
    """The rows of a whole-catalogue :func:`disclose`, split by indicator (row for row)."""
    team, partners = rows
    return {
        str(indicator_id): (
            team.loc[positions].reset_index(drop=True),
            partners.loc[positions].reset_index(drop=True),
        )
        for indicator_id, positions in team.groupby("indicator_id", sort=False).groups.items()
    }


def with_organisations(by_group: Rows, by_organisation: Rows) -> Rows:
    """An indicator's rows by ethnic group and by organisation, protected apart: their totals
    (All persons; ``<source>:all``) count the same people, so one shown beside the other
    withheld would give it away. Refused rather than published so (a total of a whole
    partnership's staff is never small in practice)."""
    team = pd.concat([by_group[0], by_organisation[0]], ignore_index=True)
    partners = pd.concat([by_group[1], by_organisation[1]], ignore_index=True)
    totals = partners[
        partners["breakdown"].eq("all") | partners["group_code"].astype(str).str.endswith(":all")
    ]
    shown = totals.assign(
        numerator_shown=totals["numerator"].notna(), denominator_shown=totals["denominator"].notna()
    )
    mixed = shown.groupby(SET_KEYS)[["numerator_shown", "denominator_shown"]].nunique().gt(1)
    if mixed.any(axis=None):
        first = mixed[mixed.any(axis=1)].index[0]
        raise DisclosureRefused(
            f"{first}: All persons and the organisations' total count the same staff, and one "
            "is withheld while the other is shown"
        )
    return team, partners
