import pyarrow as pa

from transforms.core.ethnicity import classify, dimension_rows, snomed_to_code


def test_codes_are_normalised_from_the_forms_extracts_send():
    raw = pa.array(["A", " b ", "c - White other", "H \u2013 Indian", "r", None], pa.string())
    codes, statuses = classify(raw)
    assert codes.to_pylist() == ["A", "B", "C", "H", "R", "99"]
    assert statuses.to_pylist() == ["known"] * 5 + ["not_known"]


def test_z_is_not_stated_99_and_blank_not_known_anything_else_invalid():
    codes, statuses = classify(pa.array(["z", "99", "", "Q", "X", "9", "White"], pa.string()))
    assert statuses.to_pylist() == [
        "not_stated",
        "not_known",
        "not_known",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
    ]
    assert codes.to_pylist() == ["Z", "99", "99", "99", "99", "99", "99"]


def test_gp_snomed_concepts_map_through_the_codelist_when_no_category_is_sent():
    concept = next(c for c, code in snomed_to_code().items() if code == "N")
    codes, statuses = classify(
        pa.array([None, None, "A"], pa.string()), pa.array([concept, "123456", concept])
    )
    assert codes.to_pylist() == ["N", "99", "A"]
    assert statuses.to_pylist() == ["known", "not_known", "known"]


def test_dimension_uses_nhs_2001_headings_with_chinese_in_other():
    groups = {r["ethnic_code"]: r["group_5"] for r in dimension_rows()}
    assert groups["R"] == "Other ethnic group"
    assert groups["J"] == "Asian or Asian British"
    assert (groups["Z"], groups["99"]) == ("Not stated", "Not known")
    assert len(groups) == 18
