"""The ``ilp`` command's ingest, status and rejects output (in-process through ``ilp.cli.main``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ilp.cli import main

BAD_INPUT = Path(__file__).resolve().parent / "bad_input"
MAPPING = BAD_INPUT / "mapping.toml"


def test_ingest_prints_the_counts(real_warehouse, run_cli):
    code, out, err = run_cli(
        "ingest", "--mapping", MAPPING, BAD_INPUT / "unparseable_date.csv", warehouse=real_warehouse
    )
    assert code == 0, err
    numbers = {
        label: int(value.replace(",", ""))
        for label, value in re.findall(r"^\s+(rows read|loaded|updated|unchanged|rejected)\s+([\d,]+)", out, flags=re.M)
    }
    assert numbers == {"rows read": 7, "loaded": 1, "updated": 0, "unchanged": 0, "rejected": 6}
    assert "see `ilp rejects --ingest 1`" in out
    assert f"snapshot {real_warehouse.current_version()}" in out


def test_ingest_json_is_one_object_with_the_counts(real_warehouse, run_cli):
    code, out, err = run_cli(
        "ingest", "--mapping", MAPPING, "--json", BAD_INPUT / "zero_coords.csv", warehouse=real_warehouse
    )
    assert code == 0, err
    result = json.loads(out)  # the whole of stdout is one JSON document
    assert isinstance(result, dict)
    assert {"rows_read", "loaded", "updated", "unchanged", "rejected", "snapshot"} <= result.keys()
    assert result["snapshot"] == real_warehouse.current_version()
    assert result["files"] == [str(BAD_INPUT / "zero_coords.csv")]
    assert (result["source"], result["missing_location"]) == ("bad_input", 2)


def test_ingest_by_preset_name_resolves_the_mapping(real_warehouse, run_cli):
    # the chicago preset needs columns the corpus file lacks: the message names them and the file
    code, out, err = run_cli("ingest", "--mapping", "chicago", BAD_INPUT / "good.csv", warehouse=real_warehouse)
    assert code == 1 and out == ""
    assert "good.csv: missing required columns" in err and "'Beat'" in err and "(mapping chicago.toml)" in err


def test_status_lists_unmapped_codes(real_warehouse, run_cli):
    run_cli("ingest", "--mapping", MAPPING, BAD_INPUT / "unknown_offence_code.csv", warehouse=real_warehouse)
    code, out, err = run_cli("status", warehouse=real_warehouse)
    assert code == 0, err
    assert "Unmapped offence codes" in out
    section = out.split("Unmapped offence codes", 1)[1]
    assert re.search(r"bad_input\s+9999\s+1\s+MYSTERY", section)
    assert re.search(r"bad_input\s+ZZ99\s+1\s+MYSTERY", section)
    assert "0486" not in section

    code, out, _ = run_cli("status", "--json", warehouse=real_warehouse)
    report = json.loads(out)
    assert {(u["offense_code"], u["incidents"]) for u in report["unmapped_codes"]} == {("9999", 1), ("ZZ99", 1)}
    (source,) = report["sources"]
    assert (source["source"], source["incidents"], source["unmapped"]) == ("bad_input", 3, 2)
    assert report["ingests"][0]["rejected"] == 1
    assert report["snapshot"]["kind"] == "real"
    assert [Path(p).name for p in report["snapshot"]["source_files"]] == ["unknown_offence_code.csv"]


def test_status_counts_locations_that_are_not_usable(real_warehouse, run_cli):
    for name in ("zero_coords.csv", "out_of_bbox.csv"):
        run_cli("ingest", "--mapping", MAPPING, BAD_INPUT / name, warehouse=real_warehouse)
    report = json.loads(run_cli("status", "--json", warehouse=real_warehouse)[1])
    (source,) = report["sources"]
    # ids 1001-1003 of out_of_bbox.csv replace those of zero_coords.csv (updated), 1004 is new
    assert (source["incidents"], source["without_location"]) == (4, 3)
    assert [(i["loaded"], i["updated"]) for i in report["ingests"]] == [(1, 3), (3, 0)]


def test_rejects_filter_by_ingest(real_warehouse, run_cli):
    run_cli("ingest", "--mapping", MAPPING, BAD_INPUT / "missing_id.csv", warehouse=real_warehouse)
    run_cli("ingest", "--mapping", MAPPING, BAD_INPUT / "mixed_date_formats.csv", warehouse=real_warehouse)
    all_rejects = json.loads(run_cli("rejects", "--json", warehouse=real_warehouse)[1])
    first = json.loads(run_cli("rejects", "--json", "--ingest", "1", warehouse=real_warehouse)[1])
    second = json.loads(run_cli("rejects", "--json", "--ingest", "2", warehouse=real_warehouse)[1])
    assert len(all_rejects) == 5
    assert [(Path(r["file"]).name, r["line_number"], r["field"]) for r in first] == [
        ("missing_id.csv", 2, "ID"),
        ("missing_id.csv", 3, "ID"),
    ]
    assert [r["line_number"] for r in second] == [3, 4, 5]
    limited = json.loads(run_cli("rejects", "--json", "--limit", "2", warehouse=real_warehouse)[1])
    assert len(limited) == 2
    code, out, _ = run_cli("rejects", "--ingest", "99", warehouse=real_warehouse)
    assert code == 0 and out.strip() == "No rejected rows."


def test_commands_on_a_missing_warehouse_say_how_to_make_one(tmp_path, run_cli):
    for command in ("status", "rejects"):
        code, out, err = run_cli(command, warehouse=tmp_path / "nothing")
        assert code == 1 and out == ""
        assert "No warehouse in" in err and "ilp ingest" in err and "Traceback" not in err


def test_debug_raises_instead_of_printing(real_warehouse, capsys):
    from ilp.ingest import IngestError

    with pytest.raises(IngestError, match="empty.csv"):
        main(
            [
                "--warehouse",
                str(real_warehouse.directory),
                "ingest",
                "--debug",
                "--mapping",
                str(MAPPING),
                str(BAD_INPUT / "empty.csv"),
            ]
        )
    capsys.readouterr()


def test_ingest_requires_a_mapping_and_files(run_cli, tmp_path):
    with pytest.raises(SystemExit) as caught:
        run_cli("ingest", BAD_INPUT / "good.csv", warehouse=tmp_path / "w")
    assert caught.value.code == 2
    with pytest.raises(SystemExit):
        run_cli("ingest", "--mapping", MAPPING, warehouse=tmp_path / "w")


def test_demo_prints_the_city_rows_and_planted_truth_for_a_person_and_clean_json(tmp_path, run_cli):
    small = ("--years", "1", "--incidents-per-year", "20000")
    code, out, err = run_cli("demo", *small, warehouse=tmp_path / "text")
    assert code == 0, err
    assert re.match(r"Built the demo city \S.* \(seed 7\) in [\d.]+ s: snapshot s00001-", out)
    assert re.search(r"^Rows: areas \d+, incidents [\d,]+, ", out, flags=re.M)
    assert re.search(
        r"^  - emerging_series, beat 3D, robbery, \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d: A street robbery", out, flags=re.M
    )
    assert "np.float64" not in out and "{" not in out

    code, out, err = run_cli("demo", "--json", *small, warehouse=tmp_path / "json")
    assert code == 0, err
    summary = json.loads(out)
    series = next(t for t in summary["truth"] if t["kind"] == "emerging_series")
    assert isinstance(series["details"]["baseline_per_week"], float) and series["area_id"] == "3D"
