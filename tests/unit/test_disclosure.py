"""transforms.core.disclosure: the partnership's disclosure rules and the final publishing gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transforms.core.disclosure import (
    AUDIT,
    DENOMINATOR_SUPPRESSED,
    NUMERATOR_SUPPRESSED,
    REASONS,
    ROUNDING_BASE,
    SECONDARY,
    SMALL_COUNT,
    SUPPRESSION_THRESHOLD,
    UNRELIABLE_RATE,
    Partition,
    apply_sdc,
    check_publishable,
    round_counts,
    suppress_counts,
)
from transforms.core.statistics import NO_DSR_SMALL_COUNT

KEYS = ["indicator_id", "period_start", "breakdown"]
TOTAL = "All persons"
GROUPS = ["White", "Mixed", "Asian", "Black", "Other", "Not stated", "Not known"]


def table(numerators, denominators=None, *, labels=None, total=True, period="2024-04-01"):
    """One set: an optional All persons row (the sums) followed by one row per group."""
    labels = list(labels or GROUPS[: len(numerators)])
    denominators = list(denominators or [1000] * len(numerators))
    numerators = list(numerators)
    if total:
        labels.insert(0, TOTAL)
        numerators.insert(0, sum(numerators))
        denominators.insert(0, sum(denominators))
    num, den = np.array(numerators, float), np.array(denominators, float)
    value = num / den * 100
    return pd.DataFrame(
        {
            "indicator_id": "VAC01",
            "period_start": period,
            "breakdown": "ethnicity_5",
            "group_label": labels,
            "numerator": numerators,
            "denominator": denominators,
            "value": value,
            "lower95_0cl": value * 0.9,
            "upper95_0cl": value * 1.1,
            "lower99_8cl": value * 0.8,
            "upper99_8cl": value * 1.2,
        }
    )


def sdc(frame, **kwargs):
    return apply_sdc(frame, KEYS, total_label=TOTAL, **kwargs)


def row(out, label):
    return out.set_index("group_label").loc[label]


def reasons(out, label):
    return set(row(out, label)["suppression_reason"].split(";"))


# --- primary suppression and rounding --------------------------------------------------------


def test_thresholds_are_seven_and_five():
    assert (SUPPRESSION_THRESHOLD, ROUNDING_BASE) == (7, 5)


def test_zero_is_not_suppressed_and_one_to_seven_are():
    counts = pd.Series([0, 1, 2, 5, 7, 8, 100])
    assert suppress_counts(counts).tolist() == [False, True, True, True, True, False, False]


def test_threshold_can_be_overridden():
    assert suppress_counts(pd.Series([5, 6]), threshold=5).tolist() == [True, False]


@pytest.mark.parametrize(
    ("count", "rounded"),
    [(0, 0), (8, 10), (10, 10), (12, 10), (13, 15), (17, 15), (18, 20), (1002, 1000)],
)
def test_counts_round_to_nearest_five(count, rounded):
    assert round_counts(pd.Series([count])).tolist() == [rounded]


def test_ties_round_up_for_an_even_base():
    # With base 5 an integer count is never half-way; with base 10, 15 and 25 are.
    assert round_counts(pd.Series([14, 15, 25]), base=10).tolist() == [10, 20, 30]


def test_rounding_keeps_missing_values_missing():
    assert round_counts(pd.Series([12, None], dtype="Int64")).isna().tolist() == [False, True]


@pytest.mark.parametrize("bad", [[-1], [2.5], ["many"]])
def test_counts_must_be_non_negative_whole_numbers(bad):
    with pytest.raises(ValueError):
        round_counts(pd.Series(bad))


def test_apply_sdc_refuses_missing_counts():
    frame = table([100, 50, 40]).astype({"numerator": "Int64"})
    frame.loc[1, "numerator"] = pd.NA
    with pytest.raises(ValueError, match="missing"):
        sdc(frame)


def test_shown_counts_are_rounded_and_small_counts_withheld():
    out = sdc(table([8, 12, 13, 1, 7, 0], [1000, 1000, 1000, 1000, 1000, 1000]))
    assert out["numerator"].tolist()[:4] == [40, 10, 10, 15]  # total 41 → 40
    assert row(out, "Not stated")["numerator"] == 0
    assert out.loc[out["group_label"].isin(["Black", "Other"]), "numerator"].isna().all()
    assert out["denominator"].tolist()[1:] == [1000] * 6
    assert reasons(out, "Black") == {SMALL_COUNT, NUMERATOR_SUPPRESSED}


def test_no_exact_count_is_left_in_the_count_columns():
    out = sdc(table([123, 47, 88, 301], [4001, 999, 1234, 5678]))
    for col in ("numerator", "denominator"):
        assert (out[col].dropna() % 5 == 0).all()


# --- derived values --------------------------------------------------------------------------

DERIVED = ["value", "lower95_0cl", "upper95_0cl", "lower99_8cl", "upper99_8cl"]


def test_derived_values_withheld_when_numerator_suppressed():
    out = sdc(table([500, 3, 400, 300]))
    assert row(out, "Mixed")[DERIVED].isna().all()
    assert NUMERATOR_SUPPRESSED in reasons(out, "Mixed")
    assert row(out, "White")[DERIVED].notna().all()


def test_derived_values_withheld_when_denominator_suppressed():
    # Five people in the group, none with the event: numerator 0 is shown, the rate is not.
    out = sdc(table([100, 0, 90, 80], [1000, 5, 900, 800]))
    mixed = row(out, "Mixed")
    assert mixed["numerator"] == 0
    assert pd.isna(mixed["denominator"])
    assert mixed[DERIVED].isna().all()
    assert reasons(out, "Mixed") == {SMALL_COUNT, DENOMINATOR_SUPPRESSED}


def test_derived_values_withheld_for_secondarily_suppressed_cells_too():
    out = sdc(table([500, 3, 40, 300]))
    asian = row(out, "Asian")
    assert pd.isna(asian["numerator"])
    assert asian[DERIVED].isna().all()
    assert reasons(out, "Asian") == {SECONDARY, NUMERATOR_SUPPRESSED}


def test_text_derived_columns_can_be_named():
    frame = table([500, 3, 400, 300]).assign(significance95_0cl="Similar")
    out = sdc(frame, derived=[*DERIVED, "significance95_0cl"])
    assert pd.isna(row(out, "Mixed")["significance95_0cl"])
    assert row(out, "White")["significance95_0cl"] == "Similar"


def test_unreliable_dsr_gets_its_reason():
    frame = table([500, 9, 400, 300], [1000] * 4).assign(statistic="dsr per 100,000")
    mixed_row = frame["group_label"] == "Mixed"
    frame.loc[mixed_row, "statistic"] = NO_DSR_SMALL_COUNT
    frame.loc[mixed_row, DERIVED] = np.nan
    out = sdc(frame)
    mixed = row(out, "Mixed")
    assert mixed["numerator"] == 10
    assert mixed["suppressed"]
    assert mixed["suppression_reason"] == UNRELIABLE_RATE
    assert check_publishable(out, KEYS, total_label=TOTAL) == []


def test_withheld_small_dsr_row_does_not_say_its_count_is_below_ten():
    frame = table([500, 3, 9, 300], [1000] * 4).assign(statistic="dsr per 100,000")
    small = frame["group_label"].isin(["Mixed", "Asian"])
    frame.loc[small, "statistic"] = NO_DSR_SMALL_COUNT
    out = sdc(frame)
    asian = row(out, "Asian")  # 9: withheld as the secondary cell, not as an unreliable rate
    assert asian["suppressed"] and UNRELIABLE_RATE not in asian["suppression_reason"]


# --- secondary suppression -------------------------------------------------------------------


def test_one_suppressed_cell_makes_the_smallest_nonzero_cell_suppressed():
    # Not stated (0) is a cell but a zero: hiding it would protect nothing.
    out = sdc(table([500, 3, 40, 300, 20, 0, 25]))
    hidden = out.loc[out["numerator"].isna(), "group_label"].tolist()
    assert hidden == ["Mixed", "Other"]
    assert reasons(out, "Other") == {SECONDARY, NUMERATOR_SUPPRESSED}
    assert row(out, TOTAL)["numerator"] == 890


def test_a_count_the_audit_names_is_withheld_and_protected_like_a_small_one():
    frame = table([500, 30, 40, 300, 20, 0, 25])
    asked = pd.Series(frame["group_label"].eq("Asian").to_numpy(), index=frame.index)
    out = sdc(frame, also_withhold={"numerator": asked})
    hidden = out.loc[out["numerator"].isna(), "group_label"].tolist()
    assert hidden == ["Asian", "Other"]  # and the smallest other cell, by the set rule
    assert reasons(out, "Asian") == {AUDIT, NUMERATOR_SUPPRESSED}
    assert check_publishable(out, KEYS, total_label=TOTAL) == []


def test_not_stated_and_not_known_rows_count_as_cells():
    out = sdc(table([500, 3, 400, 300, 200, 9, 60]))
    assert out.loc[out["numerator"].isna(), "group_label"].tolist() == ["Mixed", "Not stated"]


def test_total_minus_shown_cells_no_longer_reveals_the_suppressed_cell():
    out = sdc(table([500, 3, 40, 300]))
    cells = out[out["group_label"] != TOTAL]
    assert cells["numerator"].isna().sum() == 2
    # What differencing gives is the sum of two hidden cells, not the small one.
    total = row(out, TOTAL)["numerator"]
    assert total - cells["numerator"].sum() != 3


def test_no_secondary_suppression_when_two_cells_already_suppressed():
    out = sdc(table([500, 3, 5, 300]))
    assert out.loc[out["numerator"].isna(), "group_label"].tolist() == ["Mixed", "Asian"]
    assert not out["suppression_reason"].fillna("").str.contains(SECONDARY).any()


def test_no_secondary_suppression_when_nothing_is_suppressed():
    out = sdc(table([500, 30, 40, 300]))
    assert not out["suppressed"].any()
    assert out["suppression_reason"].isna().all()


def test_secondary_suppression_applies_to_denominators():
    out = sdc(table([100, 0, 90, 80], [1000, 5, 900, 800]))
    assert out.loc[out["denominator"].isna(), "group_label"].tolist() == ["Mixed", "Black"]
    assert reasons(out, "Black") == {SECONDARY, DENOMINATOR_SUPPRESSED}
    assert row(out, "Black")["numerator"] == 80
    assert row(out, "Black")[DERIVED].isna().all()


def test_sets_are_separated_by_group_cols():
    frame = pd.concat(
        [table([500, 3, 40, 300]), table([500, 30, 40, 300], period="2024-05-01")],
        ignore_index=True,
    )
    out = sdc(frame)
    may = out[out["period_start"] == "2024-05-01"]
    assert not may["suppressed"].any()
    assert out["numerator"].isna().sum() == 2


def test_a_set_without_a_total_row_is_still_protected():
    # Its total may be published elsewhere (another table, or the report text).
    out = sdc(table([500, 3, 40, 300], total=False))
    assert out.loc[out["numerator"].isna(), "group_label"].tolist() == ["Mixed", "Asian"]


def test_a_single_shown_cell_beside_its_total_hides_the_total():
    frame = table([9, 3], labels=["White", "Mixed"]).iloc[[0, 2]]  # total 12 and Mixed 3
    out = sdc(frame)
    assert out["numerator"].isna().all()
    assert reasons(out, TOTAL) == {SECONDARY, NUMERATOR_SUPPRESSED}


def test_a_small_total_with_all_cells_shown_hides_a_cell():
    # Total 5 but the cells known to the table are zeros (the rest unrecorded): two hidden.
    frame = table([0, 0, 0]).assign(numerator=[5, 0, 0, 0])
    out = sdc(frame)
    assert out["numerator"].isna().sum() == 2


def test_ties_for_the_secondary_cell_go_to_the_first_row():
    out = sdc(table([500, 3, 40, 40]))
    assert out.loc[out["numerator"].isna(), "group_label"].tolist() == ["Mixed", "Asian"]


def test_two_total_rows_in_one_set_are_refused():
    frame = table([500, 3, 40])
    frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="more than one"):
        sdc(frame)


def test_counts_only_tables_need_no_denominator():
    frame = table([500, 3, 40]).drop(columns=["denominator"])
    out = sdc(frame, denominator=None)
    assert out["numerator"].isna().sum() == 2
    assert check_publishable(out, KEYS, total_label=TOTAL, denominator=None) == []


# --- reasons ---------------------------------------------------------------------------------


def test_every_suppressed_value_has_a_reason():
    frame = pd.concat(
        [
            table([500, 3, 40, 300, 20, 0, 25]),
            table([100, 0, 90, 80], [1000, 5, 900, 800], period="2024-05-01"),
            table([2, 3, 1], [10, 20, 30], period="2024-06-01"),
        ],
        ignore_index=True,
    )
    out = sdc(frame)
    withheld = out["numerator"].isna() | out["denominator"].isna() | out["value"].isna()
    assert withheld.any()
    assert out.loc[withheld, "suppressed"].all()
    assert out.loc[withheld, "suppression_reason"].notna().all()
    assert out.loc[~out["suppressed"], "suppression_reason"].isna().all()
    for text in out["suppression_reason"].dropna():
        codes = text.split(";")
        assert set(codes) <= set(REASONS)
        assert codes == sorted(codes, key=REASONS.index)  # distinct, in the documented order


def test_duplicate_index_labels_are_handled_by_position():
    frame = table([500, 3, 40, 300])
    frame.index = [0] * len(frame)
    out = sdc(frame)
    assert out["numerator"].isna().tolist() == [False, False, True, True, False]
    assert gate(out) == []


def test_input_table_is_not_modified():
    frame = table([500, 3, 40, 300])
    before = frame.copy()
    sdc(frame)
    pd.testing.assert_frame_equal(frame, before)


# --- the final gate --------------------------------------------------------------------------


def gate(frame, **kwargs):
    return check_publishable(frame, KEYS, total_label=TOTAL, **kwargs)


def unpublished():
    return pd.concat(
        [
            table([500, 3, 40, 300, 20, 0, 25]),
            table([100, 0, 90, 80], [1000, 5, 900, 800], period="2024-05-01"),
            table([500, 3, 5, 300], period="2024-06-01"),
            table([512, 33, 47, 301], period="2024-07-01"),
        ],
        ignore_index=True,
    )


def published():
    return sdc(unpublished())


def test_gate_passes_apply_sdc_output():
    assert gate(published()) == []


def test_gate_flags_a_visible_small_count():
    bad = published()
    bad.loc[bad.index[-1], "numerator"] = 5  # a multiple of 5, but 1–7
    problems = gate(bad)
    assert len(problems) == 1 and "count of 1–7 shown" in problems[0]


def test_gate_flags_an_unrounded_count():
    bad = published()
    bad.loc[bad.index[-1], "denominator"] = 1001
    problems = gate(bad)
    assert len(problems) == 1 and "not a multiple of 5" in problems[0]


def test_gate_flags_a_derived_value_shown_for_a_withheld_count():
    bad = published()
    hidden = bad.index[bad["numerator"].isna()][0]
    bad.loc[hidden, "upper99_8cl"] = 1.0
    problems = gate(bad)
    assert len(problems) == 1 and "upper99_8cl: shown although" in problems[0]


def test_gate_flags_a_recoverable_cell():
    bad = published()
    secondary = bad.index[bad["suppression_reason"].str.startswith(SECONDARY, na=False)][0]
    bad.loc[secondary, "numerator"] = 40
    bad.loc[secondary, ["suppressed", "suppression_reason"]] = [False, None]
    bad.loc[secondary, DERIVED] = 4.0
    problems = gate(bad)
    assert len(problems) == 1 and "recoverable" in problems[0]


def test_gate_flags_a_recoverable_cell_in_a_set_without_a_total_row():
    bad = table([500, 3, 40, 300], total=False).assign(suppressed=False, suppression_reason=None)
    bad["numerator"] = bad["numerator"].astype("Int64")
    bad.loc[0, "numerator"] = 500
    bad.loc[1, "numerator"] = pd.NA
    bad.loc[1, DERIVED] = np.nan
    bad.loc[1, ["suppressed", "suppression_reason"]] = [True, "small_count;numerator_suppressed"]
    bad.loc[2, "numerator"] = 40
    problems = gate(bad)
    assert len(problems) == 1 and "recoverable" in problems[0]


def test_gate_flags_a_withheld_count_without_a_reason():
    bad = published()
    hidden = bad.index[bad["numerator"].isna()][0]
    bad.loc[hidden, "suppression_reason"] = NUMERATOR_SUPPRESSED
    problems = gate(bad)
    assert len(problems) == 1 and "without a small_count/audit/secondary reason" in problems[0]


def test_gate_flags_suppressed_rows_without_reasons_and_unknown_codes():
    bad = published()
    first, last = bad.index[0], bad.index[-1]
    bad.loc[first, "suppressed"] = True
    bad.loc[last, ["suppressed", "suppression_reason"]] = [True, "too_small"]
    problems = gate(bad)
    assert any("disagree" in p and str(first) in p for p in problems)
    assert any("unknown reason code" in p and str(last) in p for p in problems)


def test_gate_flags_a_withheld_count_not_marked_suppressed():
    bad = published()
    hidden = bad.index[bad["numerator"].isna()][0]
    bad.loc[hidden, ["suppressed", "suppression_reason"]] = [False, None]
    problems = gate(bad)
    assert any("not marked suppressed" in p for p in problems)


def test_gate_flags_raw_input_and_missing_columns():
    raw = table([500, 3, 40, 300])
    assert gate(raw) == ["missing column(s) ['suppressed', 'suppression_reason']"]
    raw = raw.assign(suppressed=False, suppression_reason=None)
    problems = gate(raw)
    assert any("count of 1–7 shown" in p for p in problems)
    assert any("not a multiple of 5" in p for p in problems)


def test_gate_uses_the_same_overridable_thresholds():
    out = sdc(table([500, 30, 40, 300]), threshold=10, base=10)
    assert out["numerator"].dropna().mod(10).eq(0).all()
    assert gate(out, threshold=10, base=10) == []


# --- nested breakdowns -----------------------------------------------------------------------
# Two levels, as 16 ethnic groups within 5: All persons, the 5-groups A, B, C, and their
# children A1, A2, ... The caller adds the key and total columns that name the sets:
# parent_5 (a row's 5-group; NA on All persons) with is_parent_total, and set_5 (the same
# value on All persons and the 5-group rows; NA on the children) with is_all_persons.

PARENTS = Partition(("indicator_id", "period_start", "parent_5"), total_col="is_parent_total")
TOP = Partition(("indicator_id", "period_start", "set_5"), total_col="is_all_persons")
LAYOUTS = {
    # The 5-group sets as group_cols (All persons alone in its own), All persons' set nested.
    "parents_first": {
        "group_cols": ["indicator_id", "period_start", "parent_5"],
        "label_col": "breakdown",
        "total_label": "ethnicity_5",
        "nested": [TOP],
    },
    # Both levels nested; group_cols make every row a set of its own, which adds nothing.
    "both_nested": {"group_cols": [*KEYS, "group_label"], "nested": [TOP, PARENTS]},
}


def two_levels(numerators, denominators=None, *, period="2024-04-01"):
    """All persons, the 5-group rows (sums of their children), then the children; numerators
    and denominators map each 5-group to its children's counts (denominators 1000 each)."""
    denominators = denominators or {p: [1000] * len(c) for p, c in numerators.items()}
    children = [
        (f"{parent}{i}", parent, num, den)
        for parent in numerators
        for i, (num, den) in enumerate(
            zip(numerators[parent], denominators[parent], strict=True), 1
        )
    ]
    parents = [(p, p, sum(numerators[p]), sum(denominators[p])) for p in numerators]
    everyone = [(TOTAL, None, sum(r[2] for r in parents), sum(r[3] for r in parents))]
    frame = pd.DataFrame(
        everyone + parents + children,
        columns=["group_label", "parent_5", "numerator", "denominator"],
    )
    breakdown = ["all"] + ["ethnicity_5"] * len(parents) + ["ethnicity_16"] * len(children)
    return frame.assign(
        indicator_id="VAC01",
        period_start=period,
        breakdown=breakdown,
        set_5=[*["ethnicity_5"] * (1 + len(parents)), *[None] * len(children)],
        is_parent_total=[False, *[True] * len(parents), *[False] * len(children)],
        is_all_persons=[True, *[False] * (len(parents) + len(children))],
    )


def layout_sdc(frame, layout):
    options = dict(LAYOUTS[layout])
    return apply_sdc(frame, options.pop("group_cols"), **options)


def layout_gate(frame, layout):
    options = dict(LAYOUTS[layout])
    return check_publishable(frame, options.pop("group_cols"), **options)


def hidden_labels(out):
    return out.loc[out["numerator"].isna(), "group_label"].tolist()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nested_cell_withheld_in_child_set_forces_one_more_in_same_parent(layout):
    # B1 (10) is the smallest shown child, but only a sibling of A1 protects A1.
    out = layout_sdc(two_levels({"A": [3, 40], "B": [10, 20], "C": [9, 50]}), layout)
    assert hidden_labels(out) == ["A1", "A2"]
    assert reasons(out, "A2") == {SECONDARY, NUMERATOR_SUPPRESSED}
    assert layout_gate(out, layout) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nested_withheld_parent_forces_another_parent_and_then_one_of_its_children(layout):
    # A (5) and A1 (5) are small: A's own set is safe, but All persons' set has A alone, so
    # B (30, the smallest other 5-group) is withheld, which leaves B alone in its own set.
    out = layout_sdc(two_levels({"A": [5, 0], "B": [10, 20], "C": [30, 40]}), layout)
    assert hidden_labels(out) == ["A", "B", "A1", "B1"]
    assert reasons(out, "B") == reasons(out, "B1") == {SECONDARY, NUMERATOR_SUPPRESSED}
    assert layout_gate(out, layout) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nested_single_child_is_withheld_with_its_parent(layout):
    # Like "Not stated", B has one child equal to it: once All persons' set needs B hidden,
    # B1 would reveal it, so B1 is hidden too.
    out = layout_sdc(two_levels({"A": [5, 0], "B": [60], "C": [80, 90]}), layout)
    assert hidden_labels(out) == ["A", "B", "A1", "B1"]
    assert reasons(out, "B1") == {SECONDARY, NUMERATOR_SUPPRESSED}
    assert layout_gate(out, layout) == []


def shown(frame, hidden):
    """``frame`` as published with the rows labelled ``hidden`` withheld and nothing else."""
    out = frame.assign(suppressed=frame["group_label"].isin(hidden), suppression_reason=None)
    out["numerator"] = out["numerator"].astype("Int64").mask(out["suppressed"])
    out.loc[out["suppressed"], "suppression_reason"] = "small_count;numerator_suppressed"
    return out


SINGLETONS = [*KEYS, "group_label"]
"""group_cols that make every row a set of its own, so that only ``nested`` partitions count."""


@pytest.mark.parametrize(
    ("hidden", "flagged", "fine"), [(["A1"], PARENTS, TOP), (["B", "B1"], TOP, PARENTS)]
)
def test_gate_flags_a_lone_withheld_value_in_any_partition(hidden, flagged, fine):
    # A1 alone in A's set, All persons' set fine; B alone in All persons' set, B's set fine.
    frame = shown(two_levels({"A": [10, 40], "B": [10, 20], "C": [30, 40]}), hidden)
    assert check_publishable(frame, SINGLETONS, nested=[fine]) == []
    for nested in ([flagged], [TOP, PARENTS]):
        problems = check_publishable(frame, SINGLETONS, nested=nested)
        assert len(problems) == 1 and "recoverable" in problems[0]
        assert str(list(flagged.key_cols)) in problems[0]


def test_rows_with_a_missing_key_are_outside_a_nested_partition():
    # The children have no set_5, so A1 (3) alone among them is no set with one withheld.
    frame = two_levels({"A": [3, 40], "B": [10, 20], "C": [30, 40]})
    out = apply_sdc(frame, SINGLETONS, nested=[TOP])
    assert hidden_labels(out) == ["A1"]
    assert check_publishable(out, SINGLETONS, nested=[TOP]) == []
    # Given a key, the children form a set, and A1 needs a companion.
    keyed = apply_sdc(
        frame.assign(set_5=frame["set_5"].fillna("ethnicity_16")), SINGLETONS, nested=[TOP]
    )
    assert hidden_labels(keyed) == ["A1", "B1"]


def test_a_nested_partition_repeating_group_cols_changes_nothing():
    again = sdc(unpublished(), nested=[Partition(tuple(KEYS))])
    pd.testing.assert_frame_equal(again, published())


def test_two_totals_in_a_nested_set_are_refused():
    frame = two_levels({"A": [20, 40], "B": [10, 20]})
    frame.loc[frame["group_label"] == "A1", "is_parent_total"] = True
    with pytest.raises(ValueError, match="more than one 'is_parent_total' row"):
        layout_sdc(frame, "both_nested")


def test_nested_columns_must_exist():
    frame = two_levels({"A": [20, 40], "B": [10, 20]}).drop(columns=["set_5"])
    with pytest.raises(KeyError, match="set_5"):
        layout_sdc(frame, "both_nested")
    finished = frame.assign(suppressed=False, suppression_reason=None)
    assert layout_gate(finished, "both_nested") == ["missing column(s) ['set_5']"]


def test_partition_keys_must_be_a_sequence_of_columns():
    with pytest.raises(ValueError, match="key_cols"):
        Partition("parent_5")
    assert Partition(["parent_5"]).key_cols == ("parent_5",)


def random_two_levels(rng, period):
    """Random counts 0–30 for 1–3 children of each of 2–5 five-groups."""
    parents = "ABCDE"[: rng.integers(2, 6)]
    sizes = {parent: int(rng.integers(1, 4)) for parent in parents}
    numerators = {p: rng.integers(0, 31, n).tolist() for p, n in sizes.items()}
    denominators = {p: rng.integers(0, 31, n).tolist() for p, n in sizes.items()}
    return two_levels(numerators, denominators, period=period)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_random_two_level_tables_leave_no_recoverable_set(layout):
    rng = np.random.default_rng(20240401)
    frame = pd.concat(
        [random_two_levels(rng, f"period {i}") for i in range(300)], ignore_index=True
    )
    frame = frame.iloc[rng.permutation(len(frame))]
    out = layout_sdc(frame, layout)
    assert layout_gate(out, layout) == []
    # Not vacuous: one partition alone leaves cells recoverable through the other.
    options = {**LAYOUTS[layout], "nested": LAYOUTS[layout]["nested"][:-1]}
    one_level = apply_sdc(frame, options.pop("group_cols"), **options)
    assert layout_gate(one_level, layout) != []
