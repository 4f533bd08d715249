"""From aggregated counts to indicator values: groups, periods, statistics, comparisons.

``transforms.aggregation`` returns small frames (month x best-known ethnic code x age band);
this module rolls them up to reporting periods and ethnic groups, applies the PHE methods
(``transforms.statistics``), compares every group with its reference group and with all
persons, and applies disclosure control (``transforms.disclosure``) so that each row carries
both its exact values and the values partners may see. Pure functions on DataFrames: the
warehouse reads and writes are in ``transforms.indicator_store``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from transforms import statistics as st
from transforms.catalogue import Indicator
from transforms.completeness import ALL_ORGANISATIONS
from transforms.disclosure import Partition, apply_sdc, check_publishable
from transforms.ethnicity import dimension_rows
from transforms.periods import Period

ALL_PERSONS = "All persons"
NOT_STATED, NOT_KNOWN = "Not stated", "Not known"
UNKNOWN_GROUPS = (NOT_STATED, NOT_KNOWN)
PERIOD_KEYS = ["period_type", "period_start", "period_end"]
GROUP_KEYS = ["breakdown", "group_code", "group_label", "group_order"]
SET_KEYS = ["indicator_id", "measure", *PERIOD_KEYS]
GROUP_5_CODES = {
    "White": "white",
    "Mixed": "mixed",
    "Asian or Asian British": "asian",
    "Black or Black British": "black",
    "Other ethnic group": "other",
    NOT_STATED: "not_stated",
    NOT_KNOWN: "not_known",
}


def ethnic_groups() -> pd.DataFrame:
    """Ethnic code -> group per breakdown: one row per code x breakdown, in display order."""
    rows = []
    for dim in dimension_rows():
        code, order = str(dim["ethnic_code"]), int(dim["group_16_order"])
        group_5 = str(dim["group_5"])
        rows += [
            ("all", code, "all", ALL_PERSONS, 0, None),
            ("ethnicity_5", code, GROUP_5_CODES[group_5], group_5, _order_5(group_5), None),
            ("ethnicity_16", code, code, str(dim["group_16"]), order, group_5),
        ]
    return pd.DataFrame(
        rows, columns=["breakdown", "ethnic_code", "group_code", "group_label", "group_order",
                       "parent_5"],
    )  # fmt: skip


def _order_5(label: str) -> int:
    return list(GROUP_5_CODES).index(label) + 1


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
    a period with no events at all) shows as 0 and disclosure sets are complete.
    """
    groups = ethnic_groups()
    groups = groups[groups["breakdown"].isin(breakdowns)]
    keys = [*PERIOD_KEYS, *GROUP_KEYS, "age_band"]
    counts = [
        frame.merge(groups, on="ethnic_code").groupby(keys, dropna=False)["n"].sum().rename(name)
        for name, frame in (("numerator", numerator), ("denominator", denominator))
    ]
    grid = _grid(periods, groups, with_age)
    table = grid.join(counts[0], on=keys).join(counts[1], on=keys)
    return table.fillna({"numerator": 0, "denominator": 0})


def _grid(periods: Sequence[Period], groups: pd.DataFrame, with_age: bool) -> pd.DataFrame:
    keys = pd.DataFrame([(p.kind, p.start, p.end) for p in periods], columns=PERIOD_KEYS)
    bands = pd.DataFrame({"age_band": list(st.ESP2013) if with_age else ["all"]})
    distinct = groups.drop(columns="ethnic_code").drop_duplicates()
    return keys.merge(distinct, how="cross").merge(bands, how="cross")


# --- statistics ----------------------------------------------------------------------------


def estimate(table: pd.DataFrame, indicator: Indicator, measure: str) -> pd.DataFrame:
    """Value, 95% and 99.8% limits, method and note for each period x group."""
    keys = [*PERIOD_KEYS, *GROUP_KEYS, "parent_5"]
    if measure == "dsr":
        return _dsr(table, keys, indicator.multiplier)
    totals = table.groupby(keys, dropna=False)[["numerator", "denominator"]].sum().reset_index()
    has_base = totals["denominator"] > 0
    method = st.proportion if measure == "proportion" else st.crude_rate
    stats = method(
        totals.loc[has_base, "numerator"],
        totals.loc[has_base, "denominator"],
        multiplier=indicator.multiplier,
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
    """Per period: % of the denominator whose best-known ethnicity is known (the linkage
    completeness shown beside every value of the indicator)."""
    five = values[values["breakdown"] == "ethnicity_5"]
    known = five["denominator"].where(~five["group_label"].isin(UNKNOWN_GROUPS), 0)
    sums = (
        pd.DataFrame({"known": known, "all": five["denominator"]})
        .groupby([five[k] for k in PERIOD_KEYS])
        .sum()
    )
    share = (sums["known"] / sums["all"].where(sums["all"] > 0) * 100).rename("ethnicity_known_pct")
    return share.reset_index()


# --- comparisons ---------------------------------------------------------------------------


def compare(values: pd.DataFrame, indicator: Indicator, measure: str) -> pd.DataFrame:
    """Ratio to the reference group (95% CI, log scale) and significance flags at 95% and
    99.8% against the reference group and against all persons.

    Not stated / Not known are not ethnic groups, so they are not compared; neither is the
    reference group with itself (ratio 1) nor all persons with itself.
    """
    polarity = None if indicator.polarity == "none" else indicator.polarity
    out = values.copy()
    out["reference_group"] = out["breakdown"].map(indicator.reference_groups)
    out = out.merge(_comparator(out, "ref_", out["group_label"] == out["reference_group"]),
                    on=[*PERIOD_KEYS, "breakdown"], how="left")  # fmt: skip
    allp = _comparator(out, "all_", out["breakdown"] == "all").drop(columns="breakdown")
    out = out.merge(allp, on=PERIOD_KEYS, how="left")
    compared = (out["breakdown"] != "all") & ~out["group_label"].isin(UNKNOWN_GROUPS)
    is_reference = out["group_label"] == out["reference_group"]
    ratios = _ratios(out, measure, compared & ~is_reference & out["reference_group"].notna())
    out = out.join(ratios)
    out.loc[is_reference & out["value"].notna(), "ratio"] = 1.0
    for level in ("95_0", "99_8"):
        out[f"significance_vs_reference_{level}"] = np.where(
            compared & ~is_reference,
            st.significance(out["ratio"], out[f"ratio_lower{level}cl"],
                            out[f"ratio_upper{level}cl"], 1.0, polarity=polarity),
            st.NOT_COMPARED,
        )  # fmt: skip
        out[f"significance_vs_all_{level}"] = np.where(
            compared,
            st.significance(out["value"], out[f"lower{level}cl"], out[f"upper{level}cl"],
                            out["all_value"], polarity=polarity),
            st.NOT_COMPARED,
        )  # fmt: skip
    return out.drop(columns=[c for c in out if c.startswith(("ref_", "all_"))])


def _comparator(values: pd.DataFrame, prefix: str, rows: pd.Series) -> pd.DataFrame:
    columns = ["numerator", "denominator", "value", "variance"]
    chosen = values.loc[rows, [*PERIOD_KEYS, "breakdown", *columns]]
    return chosen.rename(columns={c: prefix + c for c in columns})


def _ratios(out: pd.DataFrame, measure: str, rows: pd.Series) -> pd.DataFrame:
    levels = (0.95, 0.998)
    if measure == "dsr":
        chosen = out[rows]
        ratio = st.dsr_ratio(chosen["value"], chosen["variance"], chosen["ref_value"],
                             chosen["ref_variance"], confidence=levels)  # fmt: skip
    else:
        rows = rows & (out["denominator"] > 0) & (out["ref_denominator"] > 0)
        chosen = out[rows]
        method = st.proportion_ratio if measure == "proportion" else st.rate_ratio
        ratio = method(chosen["numerator"], chosen["denominator"], chosen["ref_numerator"],
                       chosen["ref_denominator"], confidence=levels)  # fmt: skip
    ratio = ratio.rename(columns=lambda c: c if c == "ratio" else f"ratio_{c}")
    return ratio.reindex(out.index)


# --- disclosure ----------------------------------------------------------------------------

DERIVED = (
    "value", "lower95_0cl", "upper95_0cl", "lower99_8cl", "upper99_8cl", "variance",
    "ratio", "ratio_lower95_0cl", "ratio_upper95_0cl", "ratio_lower99_8cl", "ratio_upper99_8cl",
    "significance_vs_reference_95_0", "significance_vs_reference_99_8",
    "significance_vs_all_95_0", "significance_vs_all_99_8",
)  # fmt: skip


def protect(
    values: pd.DataFrame, top: pd.Series, nested: list[Partition], total: str
) -> pd.DataFrame:
    """Add the published counts and suppression flags; refuse a table that would leak.

    ``top`` keys the first partition into sets (rows sharing a key add up to the row labelled
    ``total``); ``nested`` partitions protect groups within groups. Person-year denominators
    are rounded to whole people first. Exact values stay in the table; the published ones are
    ``published_numerator``/``published_denominator`` and every derived value of a
    ``suppressed`` row is withheld by the ``mart`` views.
    """
    table = values.assign(sdc_top=top, sdc_denominator=values["denominator"].round())
    options = dict(
        numerator="numerator", denominator="sdc_denominator", derived=DERIVED,
        total_label=total, label_col="group_label", nested=nested,
    )  # fmt: skip
    shown = apply_sdc(table, [*SET_KEYS, "sdc_top"], statistic="statistic", **options)
    problems = check_publishable(shown, [*SET_KEYS, "sdc_top"], **options)
    if problems:
        raise ValueError("disclosure check failed: " + "; ".join(problems[:5]))
    return values.assign(
        published_numerator=shown["numerator"],
        published_denominator=shown["sdc_denominator"],
        suppressed=shown["suppressed"],
        suppression_reason=shown["suppression_reason"],
    )


def with_reference_flag(values: pd.DataFrame) -> pd.DataFrame:
    """``reference_suppressed``: the row's reference group is withheld, so its ratio (which
    with the row's own value would give the reference's value away) is withheld too."""
    reference = values.loc[
        values["group_label"] == values["reference_group"], [*SET_KEYS, "breakdown", "suppressed"]
    ].rename(columns={"suppressed": "reference_suppressed"})
    flagged = values.merge(reference, on=[*SET_KEYS, "breakdown"], how="left")
    return flagged.fillna({"reference_suppressed": False}).astype({"reference_suppressed": bool})


def protect_ethnic_groups(values: pd.DataFrame) -> pd.DataFrame:
    """Sets: all persons = Σ 5 groups; each 5 group = Σ its 16 groups."""
    sixteen = values["breakdown"] == "ethnicity_16"
    five = values["breakdown"] == "ethnicity_5"
    top = pd.Series("top", index=values.index).where(~sixteen, "own:" + values["group_code"])
    parent = values["parent_5"].where(sixteen, values["group_label"].where(five))
    table = values.assign(sdc_parent=parent, sdc_parent_total=five)
    nested = [Partition((*SET_KEYS, "sdc_parent"), "sdc_parent_total")]
    protected = protect(table, top, nested, ALL_PERSONS)
    return with_reference_flag(protected.drop(columns=["sdc_parent", "sdc_parent_total"]))


# --- whole indicators ----------------------------------------------------------------------


def unit(indicator: Indicator, measure: str) -> str:
    if measure == "proportion":
        return "%"
    per = f"per {indicator.multiplier:,}"
    return f"{per}, age-standardised (ESP2013)" if measure == "dsr" else per


def indicator_values(
    indicator: Indicator,
    measure: str,
    numerator: pd.DataFrame,
    denominator: pd.DataFrame,
    periods: Sequence[Period],
) -> pd.DataFrame:
    """Every period x group of one indicator and measure, from per-period counts by ethnic
    code and age band (``in_periods`` output), with statistics, comparisons and disclosure."""
    with_age = measure == "dsr"
    if not with_age:
        numerator, denominator = (_collapse_bands(f) for f in (numerator, denominator))
    table = by_group(numerator, denominator, periods, indicator.breakdowns, with_age)
    values = estimate(table, indicator, measure)
    values = values.merge(known_share(values), on=PERIOD_KEYS, how="left")
    values = compare(values, indicator, measure)
    values = values.assign(
        indicator_id=indicator.id, measure=measure, unit=unit(indicator, measure)
    )
    return protect_ethnic_groups(values)


def _collapse_bands(frame: pd.DataFrame) -> pd.DataFrame:
    summed = frame.groupby([*PERIOD_KEYS, "ethnic_code"], dropna=False)["n"].sum()
    return summed.reset_index().assign(age_band="all")


def completeness_values(indicator: Indicator, counts: pd.DataFrame) -> pd.DataFrame:
    """DQ01 from recorded completeness (period keys, source, organisation, known, records):
    one row per source x organisation and the source's ``ALL`` row as its total (the only row
    of a source without organisations, such as deaths)."""
    is_total = counts["organisation"] == ALL_ORGANISATIONS
    rows = counts.assign(
        is_total=is_total,
        breakdown="source_organisation",
        group_code=counts["source"] + ":" + counts["organisation"].where(~is_total, "all"),
        group_label=counts["source"]
        + ": "
        + counts["organisation"].where(~is_total, "all organisations"),
        group_order=0,
        parent_5=None,
        numerator=counts["known"],
        denominator=counts["records"],
    )
    values = estimate(rows, indicator, "proportion").merge(
        rows[[*PERIOD_KEYS, "group_code", "source", "is_total"]], on=[*PERIOD_KEYS, "group_code"]
    )
    values = values.assign(
        indicator_id=indicator.id,
        measure="proportion",
        unit="%",
        ethnicity_known_pct=np.nan,
        reference_group=None,
        **{c: np.nan for c in DERIVED if c.startswith("ratio")},
        **{c: st.NOT_COMPARED for c in DERIVED if c.startswith("significance")},
    )
    nested = [Partition((*SET_KEYS, "source"), "is_total")]
    top = "own:" + values["group_code"]
    protected = protect(values, top, nested, None).drop(columns=["source", "is_total"])
    return protected.assign(reference_suppressed=False)
