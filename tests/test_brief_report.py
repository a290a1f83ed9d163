"""The printable command brief: self-contained HTML and a PDF printed by Chromium, stamped and audited."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess

import pytest

from ilp import brief_report
from ilp.analytics.brief import BriefRequest
from ilp.cli import main
from ilp.state import State
from ilp.warehouse import Warehouse


@pytest.fixture
def state(tmp_path):
    return State(tmp_path / "state.sqlite")


def test_html_brief_is_self_contained_and_stamped(demo_warehouse, state, tmp_path):
    warehouse = Warehouse(demo_warehouse)
    out = tmp_path / "brief.html"
    brief = brief_report.generate(warehouse, out, user="tester", role="commander", state=state)
    text = out.read_text(encoding="utf-8")
    assert brief.snapshot == warehouse.current_version()
    assert f"Snapshot {brief.snapshot}" in text and "harm index CCHI 2016" in text
    assert f"threat matrix {brief.matrix_version}" in text
    # nothing to fetch: no scripts, no external references of any kind (the SVG namespace is not a request)
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", text, re.I)
    assert "@import" not in text and "url(" not in text
    # the brief's week is the last complete week of the data, and the chart covers 52 weeks
    assert brief.as_of - brief.week == dt.timedelta(days=6) and brief.week.weekday() == 0
    assert len(brief.weekly) == 52 and brief.weekly["week"].iloc[-1].date() == brief.week
    assert len(brief.threats) == 10 and list(brief.threats["rank"]) == list(range(1, 11))
    for explanation in brief.threats["explanation"]:
        assert explanation and explanation in text.replace("&#x27;", "'").replace("&amp;", "&")
    audit = state.audit_log(action="brief_generated")
    assert len(audit) == 1 and audit.iloc[0]["data_version"] == brief.snapshot and audit.iloc[0]["user"] == "tester"


def test_threats_show_their_tasking(demo_warehouse, state, tmp_path):
    warehouse = Warehouse(demo_warehouse)
    first = brief_report.build_from_warehouse(warehouse, state=state).threats.iloc[0]
    state.create_tasking(
        by="cmdr",
        offense_category=first["offense_category"],
        area_level=first["level"],
        area_id=str(first["area"]),
        owner="Insp. Okafor",
        action="Plain-clothes patrols",
        due_date=dt.date(2026, 11, 20),
    )
    spot = brief_report.build_from_warehouse(warehouse, state=state).repeat_locations.iloc[1]
    state.create_tasking(
        by="cmdr",
        offense_category=spot["top_category"],
        area_level="location",
        area_id=spot["location"],
        owner="Sgt. Reyes",
        action="Problem-solving visit",
        due_date=dt.date(2026, 11, 21),
        status="in_progress",
    )
    brief = brief_report.build_from_warehouse(warehouse, state=state)
    row = brief.threats.iloc[0]
    assert (row["tasking_owner"], row["tasking_status"]) == ("Insp. Okafor", "open")
    assert list(brief.taskings_due["owner"]) == ["Insp. Okafor", "Sgt. Reyes"]
    assert brief.repeat_locations["tasking_owner"].tolist()[:3] == [None, "Sgt. Reyes", None]

    # printed with labels, not codes: offence label, area in words, status in words
    text = brief_report.render_html(brief)
    due_table = text[text.index("Owner</th><th>Action") :]
    assert f"<td>{row['category_label']}</td><td>Beat {row['area']}" in due_table
    assert f"<td>Location {spot['location']}</td><td>Sgt. Reyes</td>" in due_table
    assert ">In progress</td>" in due_table and "in_progress" not in text and "burglary_residential" not in text
    assert "<td>Sgt. Reyes (In progress)</td>" in text


@pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("pdftoppm") is None,
    reason="needs Debian's chromium and poppler-utils (make test installs them)",
)
def test_pdf_brief_has_pages_and_the_stamp(demo_warehouse, tmp_path, capsys):
    out = tmp_path / "brief.pdf"
    code = main(["--warehouse", str(demo_warehouse), "brief", "--out", str(out), "--state", str(tmp_path / "s.sqlite")])
    assert code == 0, capsys.readouterr().err
    stamp = capsys.readouterr().out.splitlines()[-1]
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 1 and all(p.stat().st_size > 5_000 for p in pages)
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], check=True, capture_output=True, text=True).stdout
    version = Warehouse(demo_warehouse).current_version()
    assert f"Snapshot {version}" in stamp and version in text
    assert "Command brief" in text and "Top threats" in text


def test_brief_refuses_unknown_output_type(demo_warehouse, tmp_path, capsys):
    code = main(
        [
            "--warehouse",
            str(demo_warehouse),
            "brief",
            "--out",
            str(tmp_path / "brief.docx"),
            "--state",
            str(tmp_path / "s.sqlite"),
        ]
    )
    assert code == 1 and "written as .html or .pdf" in capsys.readouterr().err


def test_download_bytes_are_the_same_brief_and_are_audited(demo_warehouse, state):
    """What the page's download buttons return: the brief for the page's filters, audited per download."""
    warehouse = Warehouse(demo_warehouse)
    week = dt.date(2026, 10, 26)
    brief = brief_report.build_from_warehouse(warehouse, BriefRequest(week=week, district="3"), state=state)
    data = brief_report.render_bytes(brief, "html", user="chief", role="commander", state=state)
    with pytest.raises(brief_report.BriefError, match="html or pdf"):
        brief_report.render_bytes(brief, "docx", user="chief", role="commander", state=state)
    text = data.decode("utf-8")
    assert "Command brief: week 26 Oct 2026 – 01 Nov 2026 (district 3)" in text
    assert f"Snapshot {warehouse.current_version()}" in text
    audit = state.audit_log(action="brief_generated")
    assert len(audit) == 1
    parameters = json.loads(audit.iloc[0]["parameters"])
    assert (parameters["week"], parameters["district"], parameters["out"]) == ("2026-10-26", "3", "download.html")


def test_brief_lists_the_five_highest_harm_repeat_locations(demo_warehouse, state):
    warehouse = Warehouse(demo_warehouse)
    brief = brief_report.build_from_warehouse(warehouse, state=state)
    text = brief_report.render_html(brief)
    with warehouse.connect() as con:
        # counted here: blocks with 3+ harm-bearing, non-sensitive, non-domestic incidents in the brief's 28 days
        expected = con.execute(
            """
            SELECT i.location_text, count(*) AS n, sum(h.weight) AS harm
            FROM incidents i
            JOIN offence_categories c ON c.category = i.offense_category
            JOIN harm_weights h ON h.category = i.offense_category AND h.index_name = 'cchi' AND h.version = '2016'
            WHERE i.occurred_at >= ?::DATE - 27 AND i.occurred_at < ?::DATE + 1 AND h.weight > 0
              AND NOT c.sensitive AND NOT c.proactive AND NOT coalesce(i.domestic, false)
            GROUP BY 1 HAVING count(*) >= 3 ORDER BY harm DESC, n DESC, 1 LIMIT 5
            """,
            [brief.as_of, brief.as_of],
        ).fetchall()
    printed = brief.repeat_locations.head(brief_report.LOCATIONS_PRINTED)
    assert printed["location"].tolist() == [location for location, _, _ in expected]
    assert printed["incidents"].tolist() == [n for _, n, _ in expected]
    section = text[text.index("Repeat locations: the 5 highest-harm blocks") : text.index("2. What changed")]
    assert section.count("<tr>") == 1 + 5  # header and five blocks
    for location, _, harm in expected:
        assert f"<td>{location}</td>" in section and f"<td class='num'>{harm:,.0f}</td>" in section
    assert "homes" in section
    assert text.index("1. Top threats") < text.index("Repeat locations") < text.index("2. What changed")


def test_weekly_chart_has_round_ticks_above_the_peak_and_labels_its_axes():
    import pandas as pd

    weeks = pd.date_range("2025-11-17", periods=52, freq="7D")
    weekly = pd.DataFrame({"week": weeks, "harm": [150_000 + (i % 7) * 2_000 for i in range(51)] + [163_744]})
    svg = brief_report.weekly_chart_svg(
        weekly, unit="days of imprisonment (starting point)", highlight=weeks[-1].date()
    )
    ticks = [int(t.replace(",", "")) for t in re.findall(r'text-anchor="end">([\d,]+)</text>', svg)]
    assert ticks == [0, 50_000, 100_000, 150_000, 200_000]
    assert "Harm per week (days of imprisonment)</text>" in svg and "Week starting (Monday)" in svg
    assert f"{weeks[-1]:%d %b %y}</text>" in svg and svg.count("<circle") == 1
