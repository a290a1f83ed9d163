"""Shipped reference data: harm indices and offence taxonomies (data/harm, data/taxonomy).

Loads everything through ilp.reference into an in-memory warehouse and checks it against the published
figures (see ../shared/reference/harm-and-evaluation.md) and against the real exports under
../shared/data, so a source code the data contains but the taxonomy lacks fails here, not in an ingest.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import ilp.reference
from ilp import paths

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"real exports folder {SHARED_DATA} is absent (it sits beside the project checkout as ../shared/data)",
)

# CCHI 2016 subgroup medians in days, exactly as in the reference document.
CCHI_REFERENCE = {
    "homicide": 5475,
    "rape": 2555,
    "robbery": 365,
    "violence_with_injury": 365,
    "weapons_possession": 273.75,
    "burglary_residential": 273.5,
    "arson": 185,
    "burglary_non_residential": 183.5,
    "sexual_other": 182.25,
    "violence_without_injury": 10,
    "stalking_harassment": 10,
    "society_other": 10,
    "public_order": 7.5,
    "vehicle_offences": 5,
    "drug_trafficking": 5,
    "drug_possession": 3,
    "criminal_damage": 2,
    "theft_other": 2,
    "theft_from_person": 2,
    "shoplifting": 1,
}

# CSI 2009 weights quoted in the reference document, for the categories that map to them directly.
CSI_QUOTED = {
    "homicide": 7042,
    "robbery": 583,
    "burglary_residential": 187,
    "burglary_non_residential": 187,
    "vehicle_theft": 84,
    "violence_with_injury": 77,
    "theft_other": 37,
    "criminal_damage": 30,
    "violence_without_injury": 23,
}
CSI_QUOTED_VALUES = {7042, 988, 583, 405, 187, 139, 84, 77, 37, 30, 23}


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    connection.execute((paths.PACKAGE_DIR / "schema.sql").read_text(encoding="utf-8"))
    ilp.reference.load_all(connection)
    yield connection
    connection.close()


def weights(con, index_name: str, version: str) -> dict[str, float]:
    return dict(
        con.execute(
            "SELECT category, weight FROM harm_weights WHERE index_name = ? AND version = ?", [index_name, version]
        ).fetchall()
    )


def taxonomy(con, source: str) -> dict[str, str]:
    return dict(
        con.execute("SELECT offense_code, category FROM offence_taxonomy WHERE source = ?", [source]).fetchall()
    )


# ------------------------------------------------------------------------------------------ harm indices


def test_indices_registered_with_cchi_default(con):
    rows = con.execute(
        "SELECT index_name, version, is_default, unit, provenance FROM harm_indices ORDER BY index_name"
    ).fetchall()
    by_name = {(r[0], r[1]): r for r in rows}
    assert ("cchi", "2016") in by_name and ("csi", "2009") in by_name
    assert [key for key, r in by_name.items() if r[2]] == [("cchi", "2016")]
    assert "1810/254901" in by_name[("cchi", "2016")][4]
    assert "85-004-X" in by_name[("csi", "2009")][4]
    assert by_name[("cchi", "2016")][3].startswith("days of imprisonment")


def test_cchi_weights_equal_reference_figures(con):
    cchi = weights(con, "cchi", "2016")
    assert {category: cchi[category] for category in CCHI_REFERENCE} == CCHI_REFERENCE


def test_cchi_non_crimes_weigh_zero(con):
    cchi = weights(con, "cchi", "2016")
    assert cchi["anti_social_behaviour"] == 0
    assert cchi["non_criminal"] == 0
    assert cchi["unmapped"] == 0


def test_csi_quoted_weights(con):
    csi = weights(con, "csi", "2009")
    assert csi["homicide"] == 7042
    assert csi["robbery"] == 583
    assert {category: csi[category] for category in CSI_QUOTED} == CSI_QUOTED


def test_every_category_has_a_weight_in_both_indices(con):
    categories = ilp.reference.known_categories(con)
    assert "unmapped" in categories
    for index_name, version in [("cchi", "2016"), ("csi", "2009")]:
        assert set(weights(con, index_name, version)) == categories, index_name


def test_every_weight_states_its_provenance(con):
    rows = con.execute("SELECT index_name, category, weight, provenance FROM harm_weights").fetchall()
    missing = [(r[0], r[1]) for r in rows if not (r[3] or "").strip()]
    assert missing == []
    # CSI weights that are not one of the quoted figures must be labelled as approximations.
    unlabelled = [
        r[1]
        for r in rows
        if r[0] == "csi" and r[2] > 0 and r[2] not in CSI_QUOTED_VALUES and "approximation" not in r[3].lower()
    ]
    assert unlabelled == []
    # ... and so must CSI rows that borrow a quoted figure from another offence as a proxy.
    proxies = [r[1] for r in rows if r[0] == "csi" and "proxy" in r[3].lower() and "approximation" not in r[3].lower()]
    assert proxies == []


# ------------------------------------------------------------------------------------------ taxonomies


def test_taxonomy_rows_have_provenance_and_known_categories(con):
    categories = ilp.reference.known_categories(con)
    rows = con.execute("SELECT source, offense_code, category, provenance FROM offence_taxonomy").fetchall()
    assert {r[0] for r in rows} >= {"chicago_iucr", "uk_police", "lapd"}
    assert [r for r in rows if r[2] not in categories or r[2] == "unmapped"] == []
    assert [r[:2] for r in rows if not (r[3] or "").strip()] == []


def test_chicago_codes_are_four_character_strings(con):
    codes = taxonomy(con, "chicago_iucr")
    assert [code for code in codes if len(code) != 4] == []


@pytest.mark.realdata
@needs_shared_data
def test_chicago_taxonomy_covers_code_list_and_crime_files(con):
    codes = taxonomy(con, "chicago_iucr")
    chicago = SHARED_DATA / "chicago"
    listed = {
        row[0]
        for row in duckdb.sql(
            f"SELECT DISTINCT lpad(trim(IUCR), 4, '0') FROM read_csv('{chicago / 'iucr-codes.csv'}', all_varchar=true)"
        ).fetchall()
    }
    crime_files = sorted(chicago.glob("crimes_*.csv.gz"))
    assert len(crime_files) == 3
    in_crimes = set()
    for path in crime_files:
        in_crimes |= {
            row[0]
            for row in duckdb.sql(
                f"SELECT DISTINCT IUCR FROM read_csv('{path}', all_varchar=true) WHERE IUCR IS NOT NULL"
            ).fetchall()
        }
    assert len(listed) >= 400 and len(in_crimes) >= 300
    assert sorted(listed - set(codes)) == []
    assert sorted(in_crimes - set(codes)) == []


@pytest.mark.realdata
@needs_shared_data
def test_uk_taxonomy_covers_every_crime_type(con):
    codes = taxonomy(con, "uk_police")
    crime_types = {
        row[0]
        for row in duckdb.sql(
            f"SELECT DISTINCT \"Crime type\" FROM read_csv('{SHARED_DATA / 'uk_police'}/*.csv.gz', all_varchar=true)"
        ).fetchall()
    }
    assert len(crime_types) >= 14
    assert sorted(crime_types - set(codes)) == []


@pytest.mark.realdata
@needs_shared_data
def test_lapd_taxonomy_covers_every_crime_code(con):
    codes = taxonomy(con, "lapd")
    crime_codes = {
        row[0]
        for row in duckdb.sql(
            'SELECT DISTINCT trim("Crm Cd") FROM '
            f"read_csv('{SHARED_DATA / 'la_west' / 'crime_2020_2021_west_la.csv'}', all_varchar=true)"
        ).fetchall()
    }
    assert len(crime_codes) >= 90
    assert sorted(crime_codes - set(codes)) == []


# Hand-verified against the code descriptions.
SPOT_CHECKS = [
    ("chicago_iucr", "0110", "homicide"),  # HOMICIDE - FIRST DEGREE MURDER
    ("chicago_iucr", "0281", "rape"),  # CRIM SEXUAL ASSAULT - NON-AGGRAVATED
    ("chicago_iucr", "031A", "robbery"),  # ROBBERY - ARMED: HANDGUN
    ("chicago_iucr", "041A", "violence_with_injury"),  # BATTERY - AGGRAVATED: HANDGUN
    ("chicago_iucr", "0486", "violence_without_injury"),  # BATTERY - DOMESTIC BATTERY SIMPLE
    ("chicago_iucr", "0610", "burglary_residential"),  # BURGLARY - FORCIBLE ENTRY (no premise; majority residential)
    ("chicago_iucr", "0820", "theft_other"),  # THEFT - $500 AND UNDER
    ("chicago_iucr", "0860", "shoplifting"),  # THEFT - RETAIL THEFT
    ("chicago_iucr", "0870", "theft_from_person"),  # THEFT - POCKET-PICKING
    ("chicago_iucr", "0910", "vehicle_theft"),  # MOTOR VEHICLE THEFT - AUTOMOBILE
    ("chicago_iucr", "1811", "drug_possession"),  # NARCOTICS - POSS: CANNABIS 30GMS OR LESS
    ("chicago_iucr", "2014", "drug_trafficking"),  # NARCOTICS - MANU/DELIVER: HEROIN (WHITE)
    ("chicago_iucr", "143A", "weapons_possession"),  # WEAPONS VIOLATION - UNLAWFUL POSS OF HANDGUN
    ("chicago_iucr", "1153", "fraud"),  # DECEPTIVE PRACTICE - FINANCIAL IDENTITY THEFT OVER $ 300
    ("chicago_iucr", "5093", "non_criminal"),  # NON-CRIMINAL - LOST PASSPORT (only in the crime files)
    ("uk_police", "Shoplifting", "shoplifting"),
    ("uk_police", "Anti-social behaviour", "anti_social_behaviour"),
    ("uk_police", "Bicycle theft", "theft_other"),
    ("uk_police", "Possession of weapons", "weapons_possession"),
    ("lapd", "624", "violence_without_injury"),  # BATTERY - SIMPLE ASSAULT
    ("lapd", "230", "violence_with_injury"),  # ASSAULT WITH DEADLY WEAPON, AGGRAVATED ASSAULT
    ("lapd", "110", "homicide"),  # CRIMINAL HOMICIDE
    ("lapd", "330", "theft_from_vehicle"),  # BURGLARY FROM VEHICLE
    ("lapd", "510", "vehicle_theft"),  # VEHICLE - STOLEN
    ("lapd", "442", "shoplifting"),  # SHOPLIFTING - PETTY THEFT
]


@pytest.mark.parametrize(("source", "code", "category"), SPOT_CHECKS)
def test_spot_check_mappings(con, source, code, category):
    assert taxonomy(con, source).get(code) == category
