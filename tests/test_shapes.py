"""Every page works for every warehouse shape (issue 9): the shape matrix.

Each shape of tests/shapes.py (1, 2, 40 and 200 districts; no area level at all; districts without
beats and beats without districts; no coordinates; month-only and day-only dates; one offence category;
one year and 10 weeks of history; data ending 5 years ago; no population; no boundaries; no location
text; no calls, use of force, survey or victims) is built once, as a real warehouse served to a single
workstation (``ILP_ROLE``), and every page is opened with AppTest as every role allowed to see it: one
run per shape x role x page, shared by the tests below through :func:`page_run`. A failure names the
shape, the page and the role. The CLI's ``status``, ``threats`` and ``brief`` run on every shape too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import shapes
from pagetest import ENTRY_POINT, TIMEOUT, page_file
from streamlit.testing.v1 import AppTest

from ilp import access

REPO = Path(__file__).resolve().parents[1]
SHAPE_NAMES = list(shapes.SHAPES)
ALLOWED = [(role, page.key) for page in access.PAGES for role in access.ROLES if role in page.roles]
MATRIX = [(shape, role, key) for shape in SHAPE_NAMES for role, key in ALLOWED]

pytestmark = pytest.mark.usefixtures("entry_point_has_run")


# ------------------------------------------------------------------------------------------ one run each
@dataclass
class Table:
    """A table as the page drew it: its data, the columns shown (in order), their configuration and the text
    shown for a missing value (Streamlit's default is 'None')."""

    value: object
    shown: list[str]
    config: dict
    placeholder: str | None

    def visible_text(self) -> str:
        """What the reader sees of the shown columns, missing values as the placeholder would draw them."""
        shown = [c for c in self.shown if c in self.value.columns]
        placeholder = self.placeholder if self.placeholder is not None else "None"
        return self.value[shown].astype(object).where(self.value[shown].notna(), placeholder).to_string()


@dataclass
class PageRun:
    """What one AppTest run of a page showed, read once right after the run."""

    shape: str
    role: str
    key: str
    seconds: float
    exceptions: list[str]
    titles: list[str]
    errors: list[str]
    warnings: list[str]
    infos: list[str]
    successes: list[str]
    captions: list[str]
    markdown: list[str]
    headings: list[str]
    metrics: list[tuple[str, str]]
    choices: list[str]  # 'label: shown option' of each selectbox and segmented control
    frames: list = field(repr=False, default_factory=list)
    charts: list[dict] = field(repr=False, default_factory=list)
    decks: int = 0

    @property
    def where(self) -> str:
        return f"{self.key} as {self.role} on shape {self.shape}"

    @property
    def notes(self) -> str:
        """Every message the page showed (errors, warnings, infos, successes), one string."""
        return "\n".join(self.errors + self.warnings + self.infos + self.successes)

    @property
    def text(self) -> str:
        """All the page's words: notes, captions, markdown, headings and chart titles."""
        titles = [_chart_title(spec) for spec in self.charts]
        return "\n".join(
            [self.notes, *self.captions, *self.markdown, *self.headings, *self.titles, *titles, *self.choices]
        )


def _chart_title(spec: dict) -> str:
    title = spec.get("layout", {}).get("title", {})
    return title.get("text", "") if isinstance(title, dict) else str(title)


def _read(at: AppTest, shape: str, role: str, key: str, seconds: float) -> PageRun:
    return PageRun(
        shape=shape,
        role=role,
        key=key,
        seconds=seconds,
        exceptions=[e.message + "\n" + "\n".join(e.proto.stack_trace) for e in at.exception],
        titles=[t.value for t in at.title],
        errors=[e.value for e in at.error],
        warnings=[w.value for w in at.warning],
        infos=[i.value for i in at.info],
        successes=[s.value for s in at.success],
        captions=[c.value for c in at.caption],
        markdown=[m.value for m in at.markdown],
        headings=[h.value for h in [*at.header, *at.subheader]],
        metrics=[(m.label, m.value) for m in at.metric],
        choices=[f"{box.label}: {box.options[box.index]}" for box in at.selectbox if box.index is not None],
        frames=[
            Table(
                frame.value,
                list(frame.proto.column_order) or list(frame.value.columns),
                json.loads(frame.proto.columns or "{}"),
                frame.proto.placeholder if frame.proto.HasField("placeholder") else None,
            )
            for frame in at.dataframe
        ],
        charts=[json.loads(chart.proto.spec) for chart in at.get("plotly_chart")],
        decks=len(at.get("deck_gl_json_chart")),
    )


_SESSIONS: dict[tuple[str, str], AppTest] = {}
_RUNS: dict[tuple[str, str, str], PageRun] = {}


@pytest.fixture
def page_run(tmp_path_factory, monkeypatch):
    """``page_run(shape, role, key)``: the page's one run on that shape as that role (run on first use).

    One AppTest session per shape and role, as one user would click through the pages; the warehouse is
    served to a single workstation as ``role`` (``ILP_ROLE``) on the loopback address."""
    from streamlit import config

    previous = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")

    def session(shape: str, role: str, key: str) -> tuple[AppTest, float]:
        """The shape and role's session switched to the page and run (seconds the run took)."""
        directory = shapes.warehouse(shape, tmp_path_factory)
        monkeypatch.setenv("ILP_WAREHOUSE", str(directory))
        monkeypatch.setenv("ILP_STATE", str(directory.parent / f"state-{role}.sqlite"))
        monkeypatch.setenv("ILP_ROLE", role)
        monkeypatch.chdir(REPO)
        at = _SESSIONS.get((shape, role))
        if at is None:
            at = _SESSIONS[(shape, role)] = AppTest.from_file(str(ENTRY_POINT), default_timeout=TIMEOUT)
            at.run()  # the role's first page
            assert not at.exception, [e.message for e in at.exception]
        at.switch_page(str(page_file(key)))
        started = time.perf_counter()
        at.run()
        return at, time.perf_counter() - started

    def run(shape: str, role: str, key: str) -> PageRun:
        if (shape, role, key) not in _RUNS:
            at, seconds = session(shape, role, key)
            _RUNS[(shape, role, key)] = _read(at, shape, role, key, seconds)
        return _RUNS[(shape, role, key)]

    run.session = session
    yield run
    config.set_option("server.address", previous)


# ------------------------------------------------------------------------------------------ every page
OLD_DATA = "Old data."
FAILED = "could not be shown"  # the error boundary's words (ilp/ui/error_boundary.py)

# What a page must say on a shape that makes one of its views impossible or partial, in its own words:
# (shape, page) -> texts, for every role that sees the page unless a role is named in the key.
SAYS: dict[tuple, list[str]] = {
    ("no_area_levels", "brief"): ["This source records no beats or districts, so threats are ranked citywide"],
    ("districts_no_beats", "brief"): ["This source records no beats, so threats are ranked by district."],
    ("no_location_text", "brief"): ["No location text in this source"],
    ("no_extras", "brief"): ["No victim records in this warehouse"],
    ("month_only", "brief"): ["This source dates offences to the month only"],
    ("ten_weeks", "brief"): ["The data starts on", "covers 5 of its 12 weeks"],
    ("month_only", "trends"): ["This source dates offences to the month only, so there is no weekly series"],
    ("ten_weeks", "trends"): ["need at least 26 complete weeks of history to forecast"],
    ("one_year", "trends"): ["each needs a year of history"],
    ("no_area_levels", "trends", "commander"): ["This source records no districts, so there is no district breakdown"],
    ("beats_no_districts", "trends", "analyst"): ["This source records no districts, so there is no district"],
    ("forty_districts", "trends", "analyst"): ["Districts 1–12 of 40 by harm"],
    ("many_districts", "trends", "commander"): ["Districts 1–12 of 200 by harm"],
    ("no_coordinates", "deployment"): ["records no coordinates for any incident, so there is no map", "Beats by harm"],
    ("month_only", "deployment"): ["records only the day or month of each offence, so there is no shift"],
    ("day_only", "deployment"): ["records only the day or month of each offence, so there is no shift"],
    ("no_boundaries", "deployment"): ["No district or beat boundaries are drawn: none are loaded"],
    ("no_area_levels", "taskings", "commander"): ["This source records no beats or districts, so there is no area"],
    ("no_population", "outcomes"): ["No per-capita rates: no population loaded"],
    ("no_extras", "outcomes", "analyst"): [
        "Not available: no calls-for-service data loaded.",
        "Not available: no use-of-force data loaded.",
        "Not available: no community survey data loaded",
        "Not available: no victim data loaded",
    ],
}


def says(shape: str, key: str, role: str) -> list[str]:
    return SAYS.get((shape, key), []) + SAYS.get((shape, key, role), [])


def shape_ids(matrix) -> list[str]:
    return [f"{shape}-{key}-{role}" for shape, role, key in matrix]


@pytest.mark.parametrize(("shape", "role", "key"), MATRIX, ids=shape_ids(MATRIX))
def test_page_works_for_the_shape(page_run, shape, role, key):
    """The page renders (no exception, no failure message), names itself, and says in its own words what
    the shape makes impossible; data that ends long ago is called old on every page, and only then."""
    run = page_run(shape, role, key)
    assert not run.exceptions, f"{run.where}:\n" + "\n".join(run.exceptions)
    assert not [e for e in run.errors if FAILED in e or "Access refused" in e], f"{run.where}: {run.errors}"
    title = access.PAGE_BY_KEY[key].title.split(":")[0].lower()
    assert run.titles and title in run.titles[0].lower(), f"{run.where}: title {run.titles}"
    for words in says(shape, key, role):
        assert words in run.text, f"{run.where}: does not say {words!r}:\n{run.notes}"
    stale = [w for w in run.warnings if w.startswith(f"**{OLD_DATA}**")]
    if shape == "five_years_old":
        assert stale and "5 years before today" in stale[0], f"{run.where}: no old-data banner: {run.warnings}"
    else:
        assert not stale, f"{run.where}: {stale}"


# ------------------------------------------------------------------------------------------ the known breakages
BEATLESS = [name for name, shape in shapes.SHAPES.items() if not shape.beats]
THREAT_TABLE_PX = 880  # the threat table is at least this wide at 1400 px (tests/test_e2e_browser.py)
BRIEF_RUNS = [(shape, role, "brief") for shape in SHAPE_NAMES for role in ("commander", "analyst")]


@pytest.mark.parametrize("shape", BEATLESS)
def test_brief_ranks_threats_at_the_lowest_level_the_data_has(page_run, shape):
    """Without beats the brief ranks threats by district (or citywide by offence without districts either)
    and says so, instead of 'No candidate threats'; the highest-harm table names no beat."""
    run = page_run(shape, "commander", "brief")
    threats = next(t for t in run.frames if "threat" in t.value.columns and "score" in t.value.columns)
    assert len(threats.value) > 0, f"{run.where}: no threats"
    assert "No candidate threats" not in run.text
    expected = "District " if shapes.SHAPES[shape].districts else "Citywide"
    assert all(expected in threat for threat in threats.value["threat"]), threats.value["threat"].tolist()
    top_harm = next(t for t in run.frames if "share_of_district_harm" in t.value.columns)
    assert "beat" not in top_harm.shown and "No beat recorded" not in top_harm.visible_text()


@pytest.mark.parametrize(("shape", "role", "key"), BRIEF_RUNS, ids=shape_ids(BRIEF_RUNS))
def test_threat_table_fits_a_1400_px_screen(page_run, shape, role, key):
    """Harm, count, z and confidence come before the long columns, every column up to confidence has a
    fixed width, and together they fit the table's width on a 1400 px screen without scrolling sideways:
    at most THREAT_TABLE_PX, the width tests/test_e2e_browser.py measures the table at in Chromium."""
    run = page_run(shape, role, key)
    threats = next(t for t in run.frames if "threat" in t.value.columns and "score" in t.value.columns)
    through = threats.shown[: threats.shown.index("confidence") + 1]
    assert {"harm", "count", "z", "confidence"} <= set(through)
    widths = [threats.config.get(f"{'index' if c == '_index' else c}", {}).get("width") for c in through]
    assert all(isinstance(w, int) for w in widths), dict(zip(through, widths))
    assert sum(widths) <= THREAT_TABLE_PX, dict(zip(through, widths))


DEPLOYMENT_RUNS = [(shape, "commander", "deployment") for shape in SHAPE_NAMES]


@pytest.mark.parametrize(("shape", "role", "key"), DEPLOYMENT_RUNS, ids=shape_ids(DEPLOYMENT_RUNS))
def test_deployment_shows_a_map_only_with_coordinates_and_no_none(page_run, shape, role, key):
    run = page_run(shape, role, key)
    shape_spec = shapes.SHAPES[shape]
    assert run.decks == (1 if shape_spec.coordinates else 0), f"{run.where}: {run.decks} maps"
    for table in run.frames:
        assert "None" not in table.visible_text().split(), f"{run.where}: a table shows None:\n{table.visible_text()}"
        if not shape_spec.beats:
            assert "beat" not in table.shown, f"{run.where}: a beat column without beats: {table.shown}"


TRENDS_RUNS = [(shape, "analyst", "trends") for shape in ("forty_districts", "many_districts", "full", "one_district")]


@pytest.mark.parametrize(("shape", "role", "key"), TRENDS_RUNS, ids=shape_ids(TRENDS_RUNS))
def test_trends_draws_at_most_twelve_district_panels(page_run, shape, role, key):
    """Above 36 districts Plotly refused the grid (ValueError: vertical spacing); now the districts come
    12 panels at a time, heaviest first, with a picker for the next ones."""
    run = page_run(shape, role, key)
    chart = next(c for c in run.charts if "by district" in _chart_title(c))
    panels = {trace.get("xaxis") for trace in chart["data"]}
    districts = shapes.SHAPES[shape].districts
    assert len(panels) == min(districts, 12), (len(panels), districts)


def test_trends_picker_pages_through_two_hundred_districts(page_run):
    """The next page of panels, then districts named in the picker, on the 200-district shape."""
    at, _ = page_run.session("many_districts", "analyst", "trends")
    at.selectbox(key="trends_district_page").select_index(1).run()
    assert not at.exception, [e.message for e in at.exception]
    chart = json.loads(next(c for c in at.get("plotly_chart") if c.key == "trends_district_chart").proto.spec)
    assert "Showing districts 13–24 of 200 by harm." in chart["layout"]["title"]["subtitle"]["text"]
    assert len({trace["xaxis"] for trace in chart["data"]}) == 12
    at.multiselect(key="trends_district_pick").set_value(["007", "150", "199"]).run()
    chart = json.loads(next(c for c in at.get("plotly_chart") if c.key == "trends_district_chart").proto.spec)
    assert "Showing 3 picked districts." in chart["layout"]["title"]["subtitle"]["text"]
    assert {trace["hovertext"][0] for trace in chart["data"]} == {
        shapes.district_name(shapes.SHAPES["many_districts"], d) for d in ("007", "150", "199")
    }


# ------------------------------------------------------------------------------------------ the CLI
CLI_RUNS = [(shape, command) for shape in SHAPE_NAMES for command in ("status", "threats", "brief")]


@pytest.mark.parametrize(("shape", "command"), CLI_RUNS, ids=[f"{s}-{c}" for s, c in CLI_RUNS])
def test_cli_works_for_the_shape(run_cli, tmp_path_factory, tmp_path, shape, command):
    """`ilp status`, `ilp threats` and `ilp brief` exit 0 on every shape and say what they did: threats
    at the lowest level the data has (and why), area names whole, how old the data is when it is old."""
    directory = shapes.warehouse(shape, tmp_path_factory)
    spec = shapes.SHAPES[shape]
    out_file = tmp_path / "brief.html"
    arguments = {
        "status": ("status",),
        "threats": ("threats", "--top", "5"),
        "brief": ("brief", "--out", out_file, "--state", tmp_path / "state.sqlite"),
    }[command]
    code, out, err = run_cli(*arguments, warehouse=directory)
    assert code == 0, f"ilp {command} on {shape}: exit {code}\n{err}"
    level_note = {
        "districts_no_beats": "This source records no beats, so threats are ranked by district.",
        "no_area_levels": "This source records no beats or districts, so threats are ranked citywide",
    }.get(shape)
    stale = "5 years before today" if shape == "five_years_old" else None
    if command == "status":
        assert "Snapshot" in out and f"{spec.incidents:>10,}" in out, out
    elif command == "threats":
        level = "beat" if spec.beats else ("district" if spec.districts else "offence, citywide")
        assert out.startswith("Top threats as of") and f" by {level} (" in out.splitlines()[0], out[:500]
        if level_note:
            assert level_note in out
        if stale:
            assert stale in out
    else:
        text = out_file.read_text(encoding="utf-8")
        assert out.startswith(f"Wrote {out_file}") and "Top threats" in text
        for words in (level_note, stale):
            if words:
                assert words in out and words in text, words
        if not spec.location_text:
            assert "No location text in this source" in text


def test_cli_names_long_areas_whole(run_cli, tmp_path_factory):
    """The terminal table printed area names cut at 12 characters."""
    directory = shapes.warehouse("many_districts", tmp_path_factory)
    code, out, _ = run_cli("threats", "--level", "district", "--top", "3", warehouse=directory)
    assert code == 0
    rows = [line for line in out.splitlines() if line[:3].strip().isdigit()]
    assert len(rows) == 3 and all(
        "North-Eastern Riverside Industrial Estates and Harbour Approaches" in r for r in rows
    )


# ------------------------------------------------------------------------------------------ errors
def test_a_failing_page_says_so_in_its_own_words(tmp_path_factory, tmp_path, monkeypatch):
    """An unexpected exception in a page is logged with its traceback under a reference and shown as the
    page's own message: never Streamlit's exception box (type, traceback, links to outside sites)."""
    from ilp.analytics import brief
    from ilp.ui import error_boundary

    def broken(*args, **kwargs):
        raise RuntimeError("a library bug")

    logged = []
    handler = logging.Handler()
    handler.emit = logged.append
    error_boundary.LOGGER.addHandler(handler)
    monkeypatch.setattr(brief, "build_brief", broken)
    monkeypatch.setenv("ILP_WAREHOUSE", str(shapes.warehouse("full", tmp_path_factory)))
    monkeypatch.setenv("ILP_STATE", str(tmp_path / "state.sqlite"))
    monkeypatch.setenv("ILP_ROLE", "analyst")
    monkeypatch.chdir(REPO)
    from streamlit import config

    previous = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")  # a single workstation
    at = AppTest.from_file(str(ENTRY_POINT), default_timeout=TIMEOUT)
    try:
        at.run()  # an analyst lands on the Command brief
    finally:
        error_boundary.LOGGER.removeHandler(handler)
        config.set_option("server.address", previous)
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith("**Command brief** could not be shown") and "server log, reference" in message
    reference = message.rsplit("reference **", 1)[1].rstrip("*.")
    assert len(logged) == 1 and reference in logged[0].getMessage() and "Command brief" in logged[0].getMessage()
    assert logged[0].exc_info and "a library bug" in str(logged[0].exc_info[1])
    assert "RuntimeError" not in message and "a library bug" not in message
    # the frame still ends with the footer
    assert at.main.children[len(at.main.children) - 1].type == "caption"
    config.set_option("server.address", "127.0.0.1")
    try:
        at.switch_page(str(page_file("workbench")))  # the session goes on working
        at.run()
    finally:
        config.set_option("server.address", previous)
    assert not at.exception and not at.error


def test_streamlit_itself_shows_no_error_details():
    """Should anything escape the pages' boundary, Streamlit shows a generic message only."""
    import tomllib

    from streamlit.config import ShowErrorDetailsConfigOptions

    with open(REPO / ".streamlit" / "config.toml", "rb") as handle:
        value = tomllib.load(handle)["client"]["showErrorDetails"]
    assert value == ShowErrorDetailsConfigOptions.NONE == "none"


# ------------------------------------------------------------------------------------------ what the data cannot say
def _brief(tmp_path_factory, shape: str, **request):
    from ilp.analytics.brief import BriefRequest, build_brief
    from ilp.snapshot import SnapshotReader
    from ilp.warehouse import Warehouse

    with contextlib.closing(Warehouse(shapes.warehouse(shape, tmp_path_factory)).connect()) as con:
        return build_brief(SnapshotReader(con), BriefRequest(**request))


def test_brief_tells_no_location_text_from_no_repeat_location(tmp_path_factory):
    """'No location text in this source' is not 'no location had 3 or more incidents'."""
    from ilp.brief_report import render_html

    without_text = _brief(tmp_path_factory, "no_location_text")
    assert without_text.repeat_locations.empty
    assert without_text.no_locations_text.startswith("No location text in this source")
    # sensitive offences are never listed at a location: none has 3 or more of them
    none_listed = _brief(tmp_path_factory, "full", category="sexual_other")
    assert none_listed.repeat_locations.empty
    assert none_listed.no_locations_text.startswith("No location had 3 or more incidents in the 28 days to")
    assert none_listed.no_locations_text in render_html(none_listed).replace("&#x27;", "'")


def test_brief_tells_no_beats_from_no_candidate_threats(tmp_path_factory):
    """A source without beats ranks by district and says so; a week before any data has no candidates."""
    no_beats = _brief(tmp_path_factory, "districts_no_beats")
    assert no_beats.level == "district" and len(no_beats.threats) == 10
    assert no_beats.level_note == "This source records no beats, so threats are ranked by district."
    spec = shapes.SHAPES["full"]
    before = _brief(tmp_path_factory, "full", week=spec.start - dt.timedelta(weeks=30))
    assert before.threats.empty and before.level == "beat" and before.level_note == ""
    assert before.no_threats_text.startswith("No candidate threats by beat in the 28 days to")


def test_month_only_data_is_as_old_as_its_last_month_ends(tmp_path_factory):
    """A month-only source dates its last month to the 1st: it covers that month to its end, so it is not
    'old' on the 2nd of the next month; and it has no weekly series."""
    from ilp.snapshot import SnapshotInfo
    from ilp.warehouse import Warehouse

    with contextlib.closing(Warehouse(shapes.warehouse("month_only", tmp_path_factory)).connect()) as con:
        info = SnapshotInfo.read(con)
    assert info.time_precision == "month" and not info.weekly
    assert (
        info.last_day.day == 1 and info.covers_through == (pd.Timestamp(info.last_day) + pd.offsets.MonthEnd(0)).date()
    )
    assert info.staleness(info.covers_through + dt.timedelta(days=14)) is None
    assert "before today" in info.staleness(info.covers_through + dt.timedelta(days=15))
