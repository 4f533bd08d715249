from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from transforms.config.catalogue import load

INDICATOR_IDS = {
    "ACC01",
    "ACC02",
    "ACC03",
    "ACC04",
    "ACC05",
    "ACC06",
    "ACC07",
    "OUT01",
    "OUT02",
    "OUT03",
    "OUT04",
    "VAC01",
    "VAC02",
    "VAC03",
    "VAC04",
    "DQ01",
}


def test_catalogue_holds_every_indicator_and_validates_against_the_sources():
    indicators = load()
    assert set(indicators) == INDICATOR_IDS
    assert indicators["ACC02"].denominator.where == {"appointment_status": ["Attended", "DNA"]}
    assert indicators["OUT01"].reference_groups["ethnicity_16"] == "White - British"


def write(tmp_path: Path, entry: dict) -> Path:
    path = tmp_path / "indicators.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"breakdowns": ["all"], "reference_groups": {}},
                "indicators": [entry],
            }
        )
    )
    return path


ENTRY = {
    "id": "TST01",
    "theme": 3,
    "title": "t",
    "definition": "d",
    "measures": ["proportion"],
    "multiplier": 100,
    "periods": ["month"],
    "polarity": "none",
    "numerator": {
        "source": "gp_appointments",
        "count": "events",
        "where": {"appointment_status": "DNA"},
    },
    "denominator": {"source": "gp_appointments", "count": "events"},
}

STAFF = {
    "source": "workforce",
    "count": "staff",
    "where": {"staff_group": "Clinical"},
    "snapshot": "period_end",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"numerator": {"source": "gp_apointments", "count": "events"}}, "unknown source"),
        (
            {
                "numerator": {
                    "source": "gp_appointments",
                    "count": "events",
                    "where": {"appointment_state": "DNA"},
                }
            },
            "has no column 'appointment_state'",
        ),
        (
            {
                "numerator": {
                    "source": "gp_appointments",
                    "count": "events",
                    "where": {"appointment_status": "Did not attend"},
                }
            },
            "not in its code set",
        ),
        (
            {
                "numerator": {
                    "source": "gp_appointments",
                    "count": "events",
                    "where": {"age_min": 18},
                }
            },
            "needs an age column",
        ),
        ({"measures": ["dsr"]}, "a DSR needs a person_years denominator"),
        (
            {"numerator": {"source": "vaccinations", "count": "persons", "of_denominator": True}},
            "of_denominator needs a denominator with snapshot: campaign_start",
        ),
        (
            {"numerator": STAFF | {"source": "gp_register"}, "denominator": STAFF},
            "gp_register is not a staff snapshot source",
        ),
        (
            {"numerator": STAFF | {"snapshot": None}, "denominator": STAFF},
            "a staff count needs snapshot: period_end",
        ),
        (
            {"numerator": STAFF | {"date_in_period": "pay_band"}, "denominator": STAFF},
            "workforce has no date column 'pay_band'",
        ),
        (
            {"numerator": ENTRY["numerator"] | {"date_in_period": "appointment_date"}},
            "date_in_period need count: staff",
        ),
        ({"numerator": STAFF}, "a staff count needs a staff numerator and denominator"),
    ],
)
def test_a_mistyped_entry_fails_to_load_naming_the_indicator(tmp_path, change, message):
    with pytest.raises(ValidationError, match=message) as raised:
        load(write(tmp_path, ENTRY | change))
    assert "TST01" in str(raised.value)
