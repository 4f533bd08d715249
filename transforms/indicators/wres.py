"""Workforce Race Equality Standard: indicators 1, 2, 3, 4 and 9 (``docs/methods.md`` §11).

Pure functions on the DataFrames the engine fetches from staging (``staging.stg_workforce``
March snapshots, ``staging.stg_recruitment`` rows shortlisted in the year): :func:`wres`
computes the exact rows of one financial year for every organisation and for the
partnership (``ALL``), :func:`protect_wres` gives what partners may see of them, and
:func:`financial_years` says which years are complete enough to report.

The output is long, one row per figure, in the shape of the analysts' view ``mart.wres``:

* a *group row* (``measure`` ``percentage``, ``group_label`` White, BME or Unknown) carries
  the counts, ``numerator`` of ``denominator`` (``population`` says what the denominator
  counts), with the percentage and its Wilson 95% limits;
* WRES1 has a ``count`` row beside each percentage (the same numerator, no denominator);
* a *comparison row* (``group_label`` null, ``comparison`` saying which way round) holds a
  relative likelihood (WRES2–4) or a percentage-point difference (WRES9), computed from its
  group rows, whose counts it does not repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from transforms.core import statistics as st
from transforms.core.disclosure import Partition, apply_sdc
from transforms.core.disclosure_audit import COMPLEMENT, Finding
from transforms.core.ethnicity import KNOWN_CODES, WHITE_CODES, WRES_GROUPS
from transforms.core.periods import Period, periods
from transforms.core.wres_audit import attack_wres
from transforms.indicators.assembly import MAX_AUDIT_ROUNDS, WITHHELD, DisclosureRefused

GROUPS = WRES_GROUPS
WHITE, BME, UNKNOWN = GROUPS
PARTNERSHIP = "ALL"
ALL = "All"
"""``band`` and ``staff_group`` of WRES1's totals over bands or staff groups."""
PAY_BANDS = (*(f"Band {n}" for n in range(1, 10)), "VSM", "Medical", "Other")
STAFF_GROUPS = ("Clinical", "Non-clinical")

STAFF = "staff"
STAFF_TWO_YEARS = "staff in the two March snapshots"
SHORTLISTED = "shortlisted applicants"
VOTING_BOARD = "voting board members"
EXECUTIVE_BOARD = "executive board members"

COLUMNS = [
    "indicator_id",
    "organisation_code",
    "period_end",
    "measure",
    "population",
    "group_label",
    "comparison",
    "band",
    "staff_group",
    "value",
    "lower_95",
    "upper_95",
    "numerator",
    "denominator",
    "note",
]
"""The exact rows (the table behind ``mart.wres``); :func:`protect_wres` adds
``suppressed`` and ``suppression_reason``."""


@dataclass(frozen=True)
class Likelihood:
    """A WRES relative likelihood: (``top``'s events ÷ headcount) ÷ (``bottom``'s)."""

    indicator_id: str
    top: str
    bottom: str
    noun: str
    counted: str
    event: str
    population: str


LIKELIHOODS = {
    "WRES2": Likelihood(
        "WRES2", WHITE, BME, "applicants", "were shortlisted", "were appointed", SHORTLISTED
    ),
    "WRES3": Likelihood(
        "WRES3",
        BME,
        WHITE,
        "staff",
        "were in post in the two March snapshots",
        "entered the formal disciplinary process",
        STAFF_TWO_YEARS,
    ),
    "WRES4": Likelihood(
        "WRES4", WHITE, BME, "staff", "were in post", "accessed non-mandatory training", STAFF
    ),
}


# --- reporting years -------------------------------------------------------------------------


def financial_years(
    snapshot_months: Sequence[str], recruitment_months: Sequence[str]
) -> list[Period]:
    """The reportable financial years, oldest first: April–March windows whose twelve months
    of recruitment are loaded and whose March workforce snapshot is loaded.

    A year with a month of shortlisting missing would understate WRES2, and one without its
    March snapshot has no headcount. WRES3 also wants the previous March, but a year without
    it is still reported (WRES3 then carries a note, see :func:`wres`).
    """
    snapshots = set(snapshot_months)
    return [
        p for p in periods("financial_year", list(recruitment_months)) if p.months[-1] in snapshots
    ]


def wres_group(codes: pd.Series) -> pd.Series:
    """White, BME or Unknown for each NHS ethnic code (anything not A–S is Unknown)."""
    bme_codes = [c for c in KNOWN_CODES if c not in WHITE_CODES]
    group = np.select([codes.isin(WHITE_CODES), codes.isin(bme_codes)], [WHITE, BME], UNKNOWN)
    return pd.Series(group, index=codes.index, dtype=object)


# --- the exact rows --------------------------------------------------------------------------


def wres(staff: pd.DataFrame, applicants: pd.DataFrame, period_end: date) -> pd.DataFrame:
    """Every WRES row of the financial year ending ``period_end`` (31 March).

    ``staff`` holds the March snapshot of that year (``period`` ``YYYY-03``) and, for
    WRES3's two-year rolling basis, the previous March's; ``applicants`` the recruitment
    rows shortlisted in the year. Without the previous snapshot WRES3 is not computed: one
    row per organisation with a null value and a note, never a one-year figure passed off
    as the two-year one. Zero counts never raise: the figure is null with a note.
    """
    if (period_end.month, period_end.day) != (3, 31):
        raise ValueError(f"a financial year ends on 31 March, not {period_end}")
    current, previous = f"{period_end.year}-03", f"{period_end.year - 1}-03"
    staff = staff.assign(group=wres_group(staff["ethnic_code"]))
    applicants = applicants.assign(group=wres_group(applicants["ethnic_code"]))
    now = staff[staff["period"] == current]
    if now.empty:
        raise ValueError(f"no workforce snapshot for {current}")
    organisations = sorted({*now["organisation_code"], *applicants["organisation_code"]})
    organisations.append(PARTNERSHIP)
    two_years = staff[staff["period"].isin([current, previous])]
    parts = [
        _wres1(now, organisations),
        _likelihood_rows(LIKELIHOODS["WRES2"], applicants, "appointed", organisations),
        _wres3(two_years, previous in set(staff["period"]), organisations, previous),
        _likelihood_rows(
            LIKELIHOODS["WRES4"], now, "accessed_non_mandatory_training", organisations
        ),
        _wres9(now, organisations),
    ]
    rows = pd.concat(parts, ignore_index=True).assign(period_end=period_end)
    rows[["numerator", "denominator"]] = rows[["numerator", "denominator"]].astype("Int64")
    return rows.reindex(columns=COLUMNS)


def _with_partnership(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows twice: as they are, and as the partnership's (``ALL``), so ALL = Σ organisations."""
    return pd.concat([rows, rows.assign(organisation_code=PARTNERSHIP)], ignore_index=True)


def _tally(
    rows: pd.DataFrame, levels: dict[str, Sequence[str]], flag: str | None = None
) -> pd.Series:
    """Rows (only those with ``flag`` true, if given) per combination of ``levels``, every
    combination present (zero when empty), with the partnership's ``ALL``."""
    rows = _with_partnership(rows)
    counted = rows[flag].fillna(False).astype(bool) if flag else pd.Series(True, index=rows.index)
    summed = counted.astype(int).groupby([rows[k] for k in levels]).sum()
    grid = pd.MultiIndex.from_product(list(levels.values()), names=list(levels))
    return summed.reindex(grid, fill_value=0)


def _percentages(numerator: pd.Series, denominator: pd.Series, empty: str) -> pd.DataFrame:
    """Group rows: counts, percentage and Wilson 95% limits; null with ``empty`` where the
    denominator is 0 (or either count is withheld, NA)."""
    rows = pd.DataFrame({"numerator": numerator, "denominator": denominator}).reset_index()
    rows = rows.assign(measure="percentage").join(_proportion(rows))
    rows["note"] = pd.Series(np.where(rows["denominator"].eq(0), empty, None), dtype=object)
    return rows


def _proportion(rows: pd.DataFrame) -> pd.DataFrame:
    """Percentage and Wilson 95% limits where both counts are known and the base is not 0."""
    numerator = rows["numerator"].astype(float)
    denominator = rows["denominator"].astype(float)
    usable = numerator.notna() & (denominator > 0)
    stats = st.proportion(numerator[usable], denominator[usable], confidence=0.95)
    stats = stats.rename(columns={"lower95_0cl": "lower_95", "upper95_0cl": "upper_95"})
    return stats[["value", "lower_95", "upper_95"]].reindex(rows.index)


def _wres1(now: pd.DataFrame, organisations: list[str]) -> pd.DataFrame:
    """Headcount by band × group × staff group, with totals over bands and staff groups
    (``All``), each as a count and as a % of its band's headcount."""
    now = pd.concat([now, now.assign(pay_band=ALL)], ignore_index=True)
    now = pd.concat([now, now.assign(staff_group=ALL)], ignore_index=True)
    levels = {
        "organisation_code": organisations,
        "staff_group": [*STAFF_GROUPS, ALL],
        "pay_band": [*PAY_BANDS, ALL],
        "group": list(GROUPS),
    }
    counts = _tally(now, levels)
    totals = counts.groupby(level=[0, 1, 2]).transform("sum")
    shares = _percentages(counts, totals, "no staff in this band and staff group")
    tallies = shares.assign(measure="count", value=shares["numerator"].astype(float))
    tallies = tallies.assign(denominator=pd.NA, lower_95=np.nan, upper_95=np.nan, note=None)
    rows = pd.concat([shares, tallies], ignore_index=True)
    return rows.rename(columns={"group": "group_label", "pay_band": "band"}).assign(
        indicator_id="WRES1", population=STAFF
    )


def _likelihood_rows(
    spec: Likelihood, rows: pd.DataFrame, flag: str, organisations: list[str]
) -> pd.DataFrame:
    """The two groups' rows (events of headcount) and the comparison row of a likelihood."""
    levels = {"organisation_code": organisations, "group": [spec.top, spec.bottom]}
    groups = _percentages(_tally(rows, levels, flag), _tally(rows, levels), "")
    empty = "no " + groups["group"] + f" {spec.noun} {spec.counted}"
    groups["note"] = groups["note"].where(groups["note"].isna(), empty)
    groups = groups.rename(columns={"group": "group_label"}).assign(
        indicator_id=spec.indicator_id, population=spec.population
    )
    return pd.concat([groups, relative_likelihoods(groups, spec)], ignore_index=True)


def relative_likelihoods(groups: pd.DataFrame, spec: Likelihood) -> pd.DataFrame:
    """Comparison rows of one likelihood from its group rows (exact or published counts):
    (a/n1) ÷ (c/n2) with ``top`` a/n1 and ``bottom`` c/n2, 95% CI on the log scale,
    SE(ln RR) = sqrt(1/a − 1/n1 + 1/c − 1/n2) (Katz; ``st.proportion_ratio``).

    A headcount of 0 or no ``bottom`` events leave the ratio undefined; no ``top`` events
    make it 0 with no interval. Each says why in ``note``; a withheld count (NA) leaves it
    null without one (``protect_wres`` gives the reason).
    """
    keys = ["organisation_code", "period_end"] if "period_end" in groups else ["organisation_code"]
    wide = groups.pivot_table(
        index=keys, columns="group_label", values=["numerator", "denominator"], dropna=False
    )
    a, n1 = (wide[c][spec.top].astype(float) for c in ("numerator", "denominator"))
    c, n2 = (wide[c][spec.bottom].astype(float) for c in ("numerator", "denominator"))
    known = a.notna() & n1.notna() & c.notna() & n2.notna()
    usable = known & (n1 > 0) & (n2 > 0)
    ratio = st.proportion_ratio(a[usable], n1[usable], c[usable], n2[usable], confidence=0.95)
    out = ratio.reindex(a.index).rename(
        columns={"ratio": "value", "lower95_0cl": "lower_95", "upper95_0cl": "upper_95"}
    )
    event = f"{spec.noun} {spec.event}"
    notes = np.select(
        [~known, n1.eq(0), n2.eq(0), c.eq(0), a.eq(0)],
        [
            None,
            f"no {spec.top} {spec.noun} {spec.counted}: relative likelihood undefined",
            f"no {spec.bottom} {spec.noun} {spec.counted}: relative likelihood undefined",
            f"no {spec.bottom} {event}: relative likelihood undefined",
            f"no {spec.top} {event}: relative likelihood 0, confidence interval undefined",
        ],
        None,
    )
    return out.assign(
        note=pd.Series(notes, index=out.index, dtype=object),
        indicator_id=spec.indicator_id,
        measure="relative_likelihood",
        population=spec.population,
        comparison=f"{spec.top} ÷ {spec.bottom}",
    ).reset_index()


def _wres3(
    two_years: pd.DataFrame, has_previous: bool, organisations: list[str], previous: str
) -> pd.DataFrame:
    """WRES3 on the two-year rolling basis, or a note per organisation without the previous
    March snapshot."""
    spec = LIKELIHOODS["WRES3"]
    if has_previous:
        return _likelihood_rows(spec, two_years, "in_disciplinary_process", organisations)
    return pd.DataFrame(
        {
            "organisation_code": organisations,
            "indicator_id": spec.indicator_id,
            "measure": "relative_likelihood",
            "population": spec.population,
            "comparison": f"{spec.top} ÷ {spec.bottom}",
            "note": f"the previous March snapshot ({previous}) is not loaded: the two-year "
            "rolling WRES3 is not computed",
        }
    )


WRES9_POPULATIONS = {
    STAFF: None,
    VOTING_BOARD: "is_voting_board_member",
    EXECUTIVE_BOARD: "is_executive",
}
"""Each WRES9 population and the flag that picks it from the staff (executive members are
board members marked executive)."""


def _wres9(now: pd.DataFrame, organisations: list[str]) -> pd.DataFrame:
    """Each group's % of all staff, of voting board members and of executive board
    members, and the BME percentage-point gap of each board population to all staff."""
    parts = []
    for population, flag in WRES9_POPULATIONS.items():
        members = now
        if flag is not None:
            members = now[now[flag].fillna(False).astype(bool)]
            if flag == "is_executive":
                members = members[members["is_board_member"].fillna(False).astype(bool)]
        levels = {"organisation_code": organisations, "group": list(GROUPS)}
        counts = _tally(members, levels)
        totals = counts.groupby(level=0).transform("sum")
        parts.append(_percentages(counts, totals, f"no {population}").assign(population=population))
    groups = pd.concat(parts, ignore_index=True).rename(columns={"group": "group_label"})
    groups = groups.assign(indicator_id="WRES9")
    return pd.concat([groups, board_gaps(groups)], ignore_index=True)


def board_gaps(groups: pd.DataFrame) -> pd.DataFrame:
    """WRES9 comparison rows from its group rows (exact or published counts): % BME of voting
    (executive) board members − % BME of all staff, in percentage points.

    No confidence interval (``lower_95``/``upper_95`` null). The board is a subset of the
    staff, so the two percentages are not independent samples and the usual intervals for a
    difference of two proportions (Newcombe's, or a Wald interval) do not apply; and the
    board is the whole population of interest, not a sample of it. A sound interval would
    compare board members with the staff not on the board (disjoint, so independent) and
    scale by (1 − board share); that is left unconfirmed (``docs/methods.md`` §11).
    """
    keys = ["organisation_code", "period_end"] if "period_end" in groups else ["organisation_code"]
    bme = groups[groups["group_label"] == BME].set_index([*keys, "population"])
    value, base = (bme[c].astype(float).unstack("population") for c in ("value", "denominator"))
    rows = [
        pd.DataFrame(
            {
                "value": value[population] - value[STAFF],
                "note": pd.Series(
                    np.where(base[population].eq(0), f"no {population}", None),
                    index=value.index,
                    dtype=object,
                ),
                "population": population,
                "comparison": f"% {BME} of {population} − % {BME} of {STAFF}",
            }
        ).reset_index()
        for population in (VOTING_BOARD, EXECUTIVE_BOARD)
    ]
    return pd.concat(rows, ignore_index=True).assign(
        indicator_id="WRES9", measure="percentage_point_difference"
    )


# --- disclosure control ----------------------------------------------------------------------

COUNTED = {
    ("WRES1", STAFF): ("staff", "staff"),
    ("WRES2", SHORTLISTED): ("appointed", "shortlisted"),
    ("WRES3", STAFF_TWO_YEARS): ("disciplinary, two years", "staff, two years"),
    ("WRES4", STAFF): ("training", "staff"),
    ("WRES9", STAFF): ("staff", "staff"),
    ("WRES9", VOTING_BOARD): ("voting board", "voting board"),
    ("WRES9", EXECUTIVE_BOARD): ("executive board", "executive board"),
}
"""What the numerator and denominator of each indicator's group rows count: one quantity in
two places (the White headcount is WRES1's whole-workforce White count and WRES4's White
denominator) must be withheld in both or in neither."""


def _quantities(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """A key naming the quantity each group row's numerator and denominator count, the same
    wherever the same people are counted (WRES4's White headcount is WRES1's White count of
    the whole workforce). A relative likelihood's denominator is its group's headcount; the
    others' are every group's."""
    what = [COUNTED[k] for k in zip(rows["indicator_id"], rows["population"], strict=True)]
    place = (
        "|"
        + pd.to_datetime(rows["period_end"]).dt.strftime("%Y-%m-%d")
        + "|"
        + rows["organisation_code"]
        + "|"
        + rows["staff_group"].fillna(ALL)
        + "|"
        + rows["band"].fillna(ALL)
        + "|"
    )
    by_group = rows["indicator_id"].isin(list(LIKELIHOODS))
    numerator = pd.Series([w[0] for w in what], index=rows.index) + place + rows["group_label"]
    denominator = (
        pd.Series([w[1] for w in what], index=rows.index)
        + place
        + rows["group_label"].where(by_group, ALL)
    )
    return numerator, denominator


def protect_wres(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows partners may see (``mart.wres``), with ``suppressed`` and
    ``suppression_reason`` (``transforms.core.disclosure``, ``docs/methods.md`` §7 and §11).

    ``suppression_reason`` is ``withheld`` on every withheld row: which rule withheld a cell
    (a small count, or one protecting another) would itself tell partners a count of 1-7.

    The counts of the group rows are protected together (:func:`_protect_counts`), then
    attacked (``transforms.core.wres_audit``) until the attack narrows nothing down: each
    round withholds what the last one could pin, or the smallest count beside one it could
    confine. Every value and limit is then recomputed from the published counts (rule 3), so
    none is shown where a count it uses is withheld: WRES1's count rows, relative
    likelihoods and WRES9 gaps follow their group rows.
    """
    groups = _with_sets(frame[frame["measure"] == "percentage"])
    withhold = {c: pd.Series(False, index=groups.index) for c in ("numerator", "denominator")}
    for _ in range(MAX_AUDIT_ROUNDS):
        shown = _protect_counts(groups, withhold)
        published = frame.loc[groups.index].assign(
            numerator=shown["numerator"],
            denominator=shown["denominator"],
            suppressed=shown["suppressed"],
            suppression_reason=shown["suppression_reason"],
        )
        findings = attack_wres(published)
        if not findings:
            return _partner_rows(frame, published)
        withhold = _remedied(groups, shown, findings, withhold)
    listed = "; ".join(str(f) for f in findings[:5])
    raise DisclosureRefused(f"WRES: the disclosure audit still finds {listed}")


SET_DIMENSIONS = ("organisation_code", "group_label", "sdc_band", "sdc_staff_group")
"""A group row's place; two rows of one figure that differ in one of these share a set."""


def _with_sets(groups: pd.DataFrame) -> pd.DataFrame:
    return groups.assign(
        sdc_band=groups["band"].fillna("-"),
        sdc_staff_group=groups["staff_group"].fillna("-"),
        sdc_is_all=groups["organisation_code"].eq(PARTNERSHIP),
        sdc_over_bands=groups["staff_group"].where(groups["indicator_id"] == "WRES1"),
        sdc_is_all_bands=groups["band"].eq(ALL),
        sdc_over_staff_groups=groups["band"].where(groups["indicator_id"] == "WRES1"),
        sdc_is_all_staff=groups["staff_group"].eq(ALL),
    )


def _protect_counts(groups: pd.DataFrame, withhold: dict[str, pd.Series]) -> pd.DataFrame:
    """1–7 withheld, the rest rounded to 5, and secondary suppression over every additive
    set: the groups of a headcount add up to its denominator, the organisations to ``ALL``,
    WRES1's bands to ``All`` bands and its staff groups to ``All``. A quantity counted in two
    places (see :func:`_quantities`) is withheld in both, and the sets gone through again,
    until nothing changes."""
    numerator_key, denominator_key = _quantities(groups)
    figure = ["indicator_id", "period_end", "population"]
    nested = [
        Partition((*figure, "group_label", "sdc_band", "sdc_staff_group"), "sdc_is_all"),
        Partition(
            (*figure, "organisation_code", "group_label", "sdc_over_bands"), "sdc_is_all_bands"
        ),
        Partition(
            (*figure, "organisation_code", "group_label", "sdc_over_staff_groups"),
            "sdc_is_all_staff",
        ),
    ]
    while True:
        shown = apply_sdc(
            groups,
            [*figure, "organisation_code", "sdc_band", "sdc_staff_group"],
            derived=(),
            nested=nested,
            also_withhold=withhold,
        )
        hidden = set(numerator_key[shown["numerator"].isna()])
        hidden |= set(denominator_key[shown["denominator"].isna()])
        hidden |= _two_years_hidden(denominator_key, hidden)
        more = {
            "numerator": numerator_key.isin(hidden) & shown["numerator"].notna(),
            "denominator": denominator_key.isin(hidden) & shown["denominator"].notna(),
        }
        if not any(m.any() for m in more.values()):
            return shown
        withhold = {c: withhold[c] | more[c] for c in withhold}


def _two_years_hidden(denominator_key: pd.Series, hidden: set[str]) -> set[str]:
    """WRES3's headcount of a group is this March's plus last March's (WRES1's whole-workforce
    count, a year apart): with either of those withheld, it is withheld too, or it and the
    other would give the withheld one away."""
    two_years = denominator_key[
        denominator_key.str.startswith(COUNTED[("WRES3", STAFF_TWO_YEARS)][1])
    ]
    found = set()
    for key in two_years.unique():
        _, year, place = key.split("|", 2)
        last = date.fromisoformat(year).replace(year=int(year[:4]) - 1).isoformat()
        if {f"{STAFF}|{y}|{place}" for y in (year, last)} & hidden:
            found.add(key)
    return found


def _remedied(
    groups: pd.DataFrame,
    shown: pd.DataFrame,
    findings: list[Finding],
    withhold: dict[str, pd.Series],
) -> dict[str, pd.Series]:
    """``withhold`` with more counts: a shown count the attack pinned; for a withheld count
    it confined, the smallest shown count of a row sharing a set with it; for a small
    complement, the row's numerator, else its denominator."""
    more = {c: w.copy() for c, w in withhold.items()}
    for finding in findings:
        column = "numerator" if finding.column == COMPLEMENT else finding.column
        if finding.column == COMPLEMENT and pd.isna(shown.at[finding.row, column]):
            column = "denominator"
        if pd.notna(shown.at[finding.row, column]):
            more[column].at[finding.row] = True
        else:
            label, beside = _smallest_beside(groups, shown, finding.row)
            more[beside].at[label] = True
    if all((more[c] == withhold[c]).all() for c in withhold):
        raise DisclosureRefused(f"WRES: no remedy for {findings[0]}")
    return more


def _smallest_beside(groups: pd.DataFrame, shown: pd.DataFrame, row: object) -> tuple[object, str]:
    """The smallest shown count greater than 0 of the nearest rows of ``row``'s figure: those
    sharing a set with it (one place apart), else two places apart, and so on."""
    this = groups.loc[row]
    figure = ["indicator_id", "period_end", "population"]
    same_figure = (groups[figure] == this[figure]).all(axis=1)
    apart = sum((groups[d] != this[d]).astype(int) for d in SET_DIMENSIONS)
    counts = shown[["numerator", "denominator"]].astype("Float64").where(lambda c: c > 0)
    for distance in range(1, len(SET_DIMENSIONS) + 1):
        near = counts[same_figure & (apart <= distance)].astype(float)
        if near.notna().any().any():
            column = near.min().idxmin()
            return near[column].idxmin(), column
    raise DisclosureRefused(f"WRES: nothing shown in the figure of row {row} to withhold with it")


def _partner_rows(frame: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Every row from the protected group rows: values and limits recomputed from the
    published counts, one reason ``withheld`` on every withheld row (a ``small_count``
    beside a cell would say it is 1-7)."""
    published = published.drop(columns=["value", "lower_95", "upper_95"]).join(
        _proportion(published)
    )
    parts = [
        published,
        _published_counts(frame[frame["measure"] == "count"], published),
        *_published_comparisons(frame, published),
    ]
    out = pd.concat(parts).sort_index()
    out["suppression_reason"] = out["suppressed"].map({True: WITHHELD, False: None})
    return out.reindex(columns=[*COLUMNS, "suppressed", "suppression_reason"])


def _published_counts(counts: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """WRES1's count rows: the published numerator of the percentage row beside each."""
    keys = ["organisation_code", "staff_group", "band", "group_label"]
    beside = published[published["indicator_id"] == "WRES1"].set_index(keys)
    found = beside[["numerator", "suppressed", "suppression_reason"]].reindex(
        pd.MultiIndex.from_frame(counts[keys])
    )
    found = found.set_axis(counts.index)
    return counts.assign(
        numerator=found["numerator"],
        value=found["numerator"].astype(float),
        suppressed=found["suppressed"],
        suppression_reason=found["suppression_reason"],
    )


def _published_comparisons(frame: pd.DataFrame, published: pd.DataFrame) -> list[pd.DataFrame]:
    """Relative likelihoods and WRES9 gaps recomputed from the published group rows, withheld
    (with the reason) where any count they use is withheld."""
    comparisons = frame[
        frame["measure"].isin(["relative_likelihood", "percentage_point_difference"])
    ]
    keys = ["indicator_id", "organisation_code", "period_end", "population"]
    recomputed = [
        relative_likelihoods(published[published["indicator_id"] == spec.indicator_id], spec)
        for spec in LIKELIHOODS.values()
        if (published["indicator_id"] == spec.indicator_id).any()
    ]
    recomputed.append(board_gaps(published[published["indicator_id"] == "WRES9"]))
    stats = pd.concat(recomputed, ignore_index=True).set_index(keys)
    stats = stats[["value", "lower_95", "upper_95", "note"]]
    uses = published[(published["indicator_id"] != "WRES9") | (published["group_label"] == BME)]
    hidden = (
        uses.assign(
            numerator_suppressed=uses["numerator"].isna(),
            denominator_suppressed=uses["denominator"].isna(),
        )
        .groupby(keys)[["numerator_suppressed", "denominator_suppressed"]]
        .any()
    )
    at = pd.MultiIndex.from_frame(comparisons[keys])
    staff = pd.MultiIndex.from_frame(comparisons[keys].assign(population=STAFF))
    own = hidden.reindex(at, fill_value=False).to_numpy()
    of_staff = hidden.reindex(staff, fill_value=False).to_numpy()
    is_gap = (comparisons["indicator_id"] == "WRES9").to_numpy()[:, None]
    flags = pd.DataFrame(own | (of_staff & is_gap), columns=hidden.columns, index=comparisons.index)
    found = stats.reindex(at).set_axis(comparisons.index)
    computed = found["note"].notna() | found["value"].notna()
    out = comparisons.assign(
        value=found["value"],
        lower_95=found["lower_95"],
        upper_95=found["upper_95"],
        note=found["note"].where(computed, comparisons["note"]),
        suppressed=flags.any(axis=1),
        suppression_reason=_reasons(flags),
    )
    withheld = out["suppressed"]
    out.loc[withheld, ["value", "lower_95", "upper_95"]] = np.nan
    out.loc[withheld, "note"] = None
    return [out]


def _reasons(flags: pd.DataFrame) -> pd.Series:
    """``numerator_suppressed;denominator_suppressed`` as they apply, None when neither."""
    joined = [
        ";".join(c for c in flags.columns if row[c]) or None for row in flags.to_dict("records")
    ]
    return pd.Series(joined, index=flags.index, dtype=object)
