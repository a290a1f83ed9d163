"""The README's worked example runs as printed: its export, mapping and taxonomy are taken from the
README's "Onboarding an agency's export" section, written into a folder, and the command it prints is
run there. Before issue 9 the mapping named columns the sample row lacked and a taxonomy that does not
exist, so it could not run."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shlex
from pathlib import Path

import pytest

from ilp.warehouse import Warehouse

README = Path(__file__).resolve().parents[1] / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Onboarding an agency's export: the mapping file")
    return text[start : text.index("\n## ", start + 1)]


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced code block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)


@pytest.fixture
def example(tmp_path, monkeypatch) -> dict:
    """The example's files, written where the README says, and the command it prints."""
    found = blocks(section())
    export = next(body for language, body in found if language == "text")
    mapping = next(body for language, body in found if language == "toml")
    taxonomy = next(body for language, body in found if language == "csv")
    command = next(body for language, body in found if language == "sh" and " ingest " in body).strip()
    names = re.search(r"--mapping (\S+) (\S+)$", command)
    taxonomy_name = re.search(r'^taxonomy = "([^"]+)"', mapping, flags=re.M).group(1)
    (tmp_path / names.group(2)).write_bytes(export.encode("latin-1"))  # the mapping says latin-1
    (tmp_path / names.group(1)).write_text(mapping, encoding="utf-8")
    (tmp_path / taxonomy_name).write_text(taxonomy, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return {"command": command, "export_rows": len(export.strip().splitlines()) - 1, "folder": tmp_path}


def test_the_worked_example_runs_as_printed(example, run_cli):
    argv = shlex.split(example["command"])
    assert argv[:3] == ["ilp", "--warehouse", "data/riverton"] and argv[3] == "ingest"
    code, out, err = run_cli(*argv[1:])
    assert code == 0, err
    numbers = dict(re.findall(r"^\s+(rows read|loaded|rejected)\s+([\d,]+)", out, flags=re.M))
    assert (
        numbers
        == {"rows read": "3", "loaded": "3", "rejected": "0"}
        == {
            "rows read": str(example["export_rows"]),
            "loaded": str(example["export_rows"]),
            "rejected": "0",
        }
    )
    assert "loaded 3, rejected 0" in section().replace("rows read 3, ", "")  # what the README says it does
    assert "WARNING" not in out

    warehouse = Warehouse(example["folder"] / "data" / "riverton")
    with contextlib.closing(warehouse.connect()) as con:
        rows = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT source_id, occurred_at, reported_at, offense_category, district, beat, other_areas['ward'], "
                "location_text, domestic, arrest, clearance_status, round(latitude, 3), round(longitude, 3), "
                "location_status FROM incidents ORDER BY source_id"
            ).fetchall()
        }
        taxonomies = con.execute("SELECT DISTINCT source FROM offence_taxonomy").fetchall()
    assert rows["24-000187"] == (
        dt.datetime(2024, 2, 3, 23, 15),
        dt.datetime(2024, 2, 4),
        "robbery",
        "North",
        "N4",
        "Riverside",
        "Bridge Street",
        False,
        True,
        "cleared_arrest",
        51.506,
        -0.121,
        "ok",
    )
    assert rows["24-000188"][0] == dt.datetime(2024, 2, 3, 7, 40)  # "740": the leading zero dropped
    assert rows["24-000188"][2] == "violence_without_injury"  # the broad "Assault", as the guide chose
    assert rows["24-000189"][2] == "burglary_residential" and rows["24-000189"][9] == "cleared_other"
    assert taxonomies == [("riverton_offences",)]  # only the taxonomy the warehouse uses

    code, out, err = run_cli("--warehouse", "data/riverton", "status")
    assert code == 0, err
    assert "Unmapped offence codes" not in out and "WARNINGS" not in out


def test_every_mapping_key_is_documented_in_the_example():
    from ilp.mapping import SPEC

    mapping = next(body for language, body in blocks(section()) if language == "toml")
    for table, keys in SPEC.items():
        assert f"[{table}]" in mapping, table
        for key in keys:
            assert re.search(rf"^#? ?{key} = ", mapping, flags=re.M), f"[{table}] {key} is not in the README example"
