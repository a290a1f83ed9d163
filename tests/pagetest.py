"""Helpers for AppTest page tests: open a page inside dashboard.py as a role, read charts and tables.

Use with the ``entry_point_has_run`` fixture (tests/conftest.py), e.g. at the top of a module::

    pytestmark = pytest.mark.usefixtures("app_env", "entry_point_has_run")
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from ilp.warehouse import connect_read_only

REPO = Path(__file__).resolve().parents[1]
ENTRY_POINT = REPO / "dashboard.py"
TIMEOUT = 120


class EntryPointHasRun(PagesManager):
    """A PagesManager for a server on which some session has already run dashboard.py.

    Streamlit starts every server (and AppTest starts every run) in the old multipage mode when a
    `pages/` folder sits next to the entry point: a request for a page runs that page's file directly,
    outside dashboard.py. The first st.navigation call switches the server to the new mode for good,
    after which every request runs dashboard.py, which runs the page inside the frame (banner, filters,
    footer). AppTest resets that switch before each run, so without this class `switch_page()` would
    run the bare page file with the previous run's session state, never the frame.
    The fresh-server case is tested separately (page files run on their own, tests/test_page_access.py).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


def page_file(key: str) -> Path:
    return REPO / "pages" / f"{key}.py"


def snapshot_path(warehouse: Path) -> Path:
    """The warehouse's current snapshot file (the one its CURRENT file names)."""
    return warehouse / (warehouse / "CURRENT").read_text(encoding="utf-8").strip()


@contextlib.contextmanager
def read_snapshot(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only duckdb connection to the warehouse's current snapshot, for figures computed straight
    from the file (not through ilp.ui or the named queries) to check a page against."""
    con = connect_read_only(snapshot_path(warehouse))  # with its segments attached
    try:
        yield con
    finally:
        con.close()


def last_complete_week(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The Monday of the last complete week (Monday to Sunday) by yesterday and by the data's last day: the
    week the brief and trends pages show by default."""
    from ilp.snapshot import last_complete_week as rule

    return rule(con.execute("SELECT max(occurred_at)::DATE FROM incidents").fetchone()[0])


def dashboard_as(role: str | None, **params) -> AppTest:
    """The entry point run once as ``role`` (demo mode takes the role from the URL) with URL ``params``."""
    at = AppTest.from_file(str(ENTRY_POINT), default_timeout=TIMEOUT)
    if role:
        at.query_params["role"] = role
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, f"dashboard.py as {role}: {[e.message for e in at.exception]}"
    return at


def open_page(key: str, role: str | None, **params) -> AppTest:
    """``pages/<key>.py`` run inside dashboard.py as ``role`` with URL ``params``; no exception allowed."""
    at = dashboard_as(role, **params)
    # the landing page forwards with st.switch_page, which clears the URL's parameters: set them again
    if role:
        at.query_params["role"] = role
    for name, value in params.items():
        at.query_params[name] = value
    at.switch_page(str(page_file(key)))
    at.run()
    assert not at.exception, "\n".join(e.message + "\n" + "\n".join(e.stack) for e in at.exception)
    return at


def switch_refused(role: str, key: str) -> AppTest:
    """``pages/<key>.py`` reached by URL inside dashboard.py as ``role``, a role that may not see it: the
    page is registered (hidden) so its gate runs and refuses; asserts the refusal and that no page content
    ran."""
    at = dashboard_as(role)
    at.query_params["role"] = role
    at.switch_page(str(page_file(key)))
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    refusals = [e.value for e in at.error if e.value.startswith("Access refused")]
    assert len(refusals) == 1, [e.value for e in at.error]
    assert not at.title and not at.dataframe and not at.metric and not at.get("plotly_chart")
    return at


def page_file_as(key: str, role: str | None = None, context: dict | None = None) -> AppTest:
    """``pages/<key>.py`` run on its own, outside dashboard.py, as a fresh server runs ``/<key>``; with a
    session that holds ``role`` and the page ``context`` (e.g. a dashboard_as(role) run's) when given."""
    at = AppTest.from_file(str(page_file(key)), default_timeout=TIMEOUT)
    if role is not None:
        at.session_state["ilp_role"] = role
    if context is not None:
        at.session_state["ilp_context"] = context
    at.run()
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, "\n".join(e.message + "\n" + "\n".join(e.stack) for e in at.exception)
    return at


# ------------------------------------------------------------------------------------------ reading
def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def chart_title(spec: dict) -> str:
    title = spec["layout"].get("title", {})
    return title.get("text", "") if isinstance(title, dict) else str(title)


def chart_spec(at: AppTest, title_contains: str) -> dict:
    """The plotly chart whose title contains ``title_contains``."""
    for spec in chart_specs(at):
        if title_contains in chart_title(spec):
            return spec
    raise AssertionError(f"no chart titled ...{title_contains}...; titles: {[chart_title(s) for s in chart_specs(at)]}")


def trace(spec: dict, name: str) -> dict:
    return next(t for t in spec["data"] if t.get("name") == name)


def values(data) -> list:
    """A trace's x or y: plotly sends numeric arrays as typed arrays ({"dtype", "bdata"} in base64)."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"])).tolist()
    return list(data)


def frames(at: AppTest) -> list[pd.DataFrame]:
    return [frame.value for frame in at.dataframe]


def frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The one dataframe on the page that has all of ``columns``."""
    found = [frame for frame in frames(at) if set(columns) <= set(frame.columns)]
    assert len(found) == 1, f"{len(found)} tables with columns {columns}: {[list(f.columns) for f in frames(at)]}"
    return found[0]


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, [b.label for b in at.button]
    return found[0]
