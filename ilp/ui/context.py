"""The Streamlit side of the library: the per-page gate, warehouse access with caching, shared filters,
banner and footer. Pages call ``page = gate("brief")`` first and use ``page.query(...)`` after.

Caching follows CONVENTIONS.md: one read-only DuckDB connection per snapshot file (cache_resource,
closed on release), a fresh cursor per query (DuckDB refuses concurrent calls on one connection),
and query results cached on (snapshot version, query name, parameters).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from ilp import access
from ilp.state import State
from ilp.warehouse import Warehouse, read_meta, run_query

ALL = "__all__"


# ------------------------------------------------------------------------------------------ warehouse
def warehouse() -> Warehouse:
    return Warehouse(os.environ.get("ILP_WAREHOUSE") or None)


def current_snapshot() -> Path | None:
    """The current snapshot file: a cheap read of CURRENT on every rerun, so a new snapshot is noticed."""
    return warehouse().current_path()


@st.cache_resource(max_entries=2, on_release=lambda con: con.close(), show_spinner=False)
def _connection(snapshot_path: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(snapshot_path, read_only=True)


def cursor(snapshot_path: Path) -> duckdb.DuckDBPyConnection:
    """A new cursor on the cached connection: one per query, safe across Streamlit's threads."""
    return _connection(str(snapshot_path)).cursor()


@st.cache_data(max_entries=1024, ttl=6 * 3600, show_spinner=False)
def _cached_query(snapshot_path: str, version: str, name: str, parameters: tuple) -> pd.DataFrame:
    del version  # part of the cache key only
    con = cursor(Path(snapshot_path))
    try:
        return run_query(con, name, dict(parameters))
    finally:
        con.close()


# Library analyses a page may run on the snapshot: each takes a connection (a cursor) first and keyword
# parameters, reads only, and returns a DataFrame. Cached like named queries, on (snapshot, version,
# analysis, parameters). Add one here to make it available as ``page.analysis(name, ...)``.
def _analyses() -> dict:
    from ilp.analytics import changes, threats

    return {
        "threats": threats.rank_threats,
        "repeat_locations": threats.repeat_locations,
        "repeat_victims": threats.repeat_victims,
        "changes": changes.changes,
        "control_chart": changes.control_chart,
    }


@st.cache_data(max_entries=256, ttl=6 * 3600, show_spinner=False)
def _cached_analysis(snapshot_path: str, version: str, config: float, name: str, parameters: tuple) -> pd.DataFrame:
    del version, config  # part of the cache key only
    con = cursor(Path(snapshot_path))
    try:
        return _analyses()[name](con, **dict(parameters))
    finally:
        con.close()


@st.cache_data(max_entries=16, show_spinner=False)
def _meta(snapshot_path: str) -> dict:
    con = cursor(Path(snapshot_path))
    try:
        meta = read_meta(con)
        harm = con.execute(
            "SELECT index_name, version, title, unit, provenance, is_default FROM harm_indices "
            "ORDER BY is_default DESC, index_name, version"
        ).df()
        bounds = con.execute("SELECT min(occurred_at), max(occurred_at) FROM incidents").fetchone()
        districts = con.execute(
            "SELECT DISTINCT d.district AS area_id, coalesce(a.name, d.district) AS name FROM "
            "(SELECT DISTINCT district FROM incidents WHERE district IS NOT NULL) d "
            "LEFT JOIN areas a ON a.level = 'district' AND a.area_id = d.district ORDER BY 1"
        ).df()
        categories = con.execute(
            "SELECT c.category, c.label FROM offence_categories c "
            "WHERE c.category IN (SELECT DISTINCT offense_category FROM incidents) ORDER BY c.label"
        ).df()
        areas = con.execute("SELECT level, count(*) AS n, count(population) AS with_population, "
                            "count(geometry_geojson) AS with_geometry FROM areas GROUP BY level").df()
    finally:
        con.close()
    return {"meta": meta, "harm": harm, "first": bounds[0], "last": bounds[1], "districts": districts,
            "categories": categories, "areas": areas}


# ------------------------------------------------------------------------------------------ filters
@dataclass(frozen=True)
class Filters:
    week: dt.date            # Monday of the final week of the period
    weeks: int               # number of weeks in the period, ending with `week`
    district: str | None
    category: str | None
    harm_index: str
    harm_version: str

    @property
    def start(self) -> dt.date:
        return self.week - dt.timedelta(weeks=self.weeks - 1)

    @property
    def end(self) -> dt.date:
        """Exclusive end: the Monday after the final week."""
        return self.week + dt.timedelta(weeks=1)

    def params(self) -> dict:
        """The named-query parameters every page shares."""
        return {
            "start": self.start, "end": self.end, "week": self.week, "district": self.district,
            "category": self.category, "harm_index": self.harm_index, "harm_version": self.harm_version,
        }


def last_complete_week(last_data_day: dt.date, today: dt.date | None = None) -> dt.date:
    """Monday of the last Monday-Sunday week that is complete both in the calendar and in the data."""
    today = today or dt.date.today()
    as_of = min(today - dt.timedelta(days=1), last_data_day)
    monday = as_of - dt.timedelta(days=as_of.weekday())
    return monday if as_of.weekday() == 6 else monday - dt.timedelta(weeks=1)


# ------------------------------------------------------------------------------------------ page context
@dataclass
class PageContext:
    key: str
    role: str
    user: str
    snapshot: Path
    version: str
    filters: Filters
    info: dict = field(repr=False)

    @property
    def demo(self) -> bool:
        return self.info["meta"].get("kind") == "demo"

    @property
    def aggregate_only(self) -> bool:
        return self.role in access.AGGREGATE_ONLY

    @property
    def harm_label(self) -> str:
        harm = self.info["harm"]
        row = harm[(harm.index_name == self.filters.harm_index) & (harm.version == self.filters.harm_version)]
        title = row.iloc[0]["title"] if len(row) else self.filters.harm_index
        return f"{title} ({self.filters.harm_index.upper()} {self.filters.harm_version})"

    def query(self, name: str, **overrides) -> pd.DataFrame:
        parameters = {**self.filters.params(), **overrides}
        return _cached_query(str(self.snapshot), self.version, name, tuple(sorted(parameters.items())))

    def analysis(self, name: str, **parameters) -> pd.DataFrame:
        """A library analysis (see ``_analyses``) on this page's snapshot, cached on the data version."""
        # The threat matrix is configuration an admin may edit while the server runs: its modification
        # time is part of the key so an edit takes effect on the next rerun.
        from ilp.analytics.threats import matrix_path

        config = matrix_path().stat().st_mtime
        return _cached_analysis(str(self.snapshot), self.version, config, name, tuple(sorted(parameters.items())))

    def audit(self, action: str, parameters: dict | None = None) -> None:
        state().record(user=self.user, role=self.role, action=action, page=self.key,
                       parameters=parameters or {}, data_version=self.version)

    def source_note(self) -> str:
        return f"Harm: {self.harm_label}. Data: snapshot {self.version}."


@st.cache_resource(show_spinner=False)
def _state(path: str) -> State:
    return State(path)


def state() -> State:
    from ilp.state import default_path

    return _state(str(os.environ.get("ILP_STATE") or default_path()))


def gate(page_key: str) -> PageContext:
    """The first call of every page: refuse, and show nothing else, unless the session's role may see it.

    The role is set only by dashboard.py (picker on the demo city, sign-in or --role on a real
    warehouse). A page file requested directly on a fresh server, before any session has run the
    entry point, finds no role and stops here.
    """
    role = st.session_state.get("ilp_role")
    context = st.session_state.get("ilp_context")
    if not access.allowed(page_key, role) or context is None:
        page = access.PAGE_BY_KEY.get(page_key)
        title = page.title if page else page_key
        # When the entry point has not run for this session (a bookmark on a freshly started server),
        # the way in is the home page, which resolves the role first.
        home = " [Open the dashboard home page](/)." if context is None else ""
        if context is None:
            # Streamlit's fallback lists the page files (dashboard, brief, ...) in the sidebar: hide it.
            st.html("<style>[data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'] "
                    "{display: none;}</style>")
        st.error(
            f"Access refused: **{title}** is not available to this session. "
            f"Open the dashboard's home page and sign in with a role that may see it.{home}",
            icon=":material/block:",
        )
        st.stop()
    page_context = PageContext(key=page_key, **context)
    if st.session_state.get("ilp_last_view") != (page_key, page_context.filters):
        st.session_state["ilp_last_view"] = (page_key, page_context.filters)
        page_context.audit("page_view", {"filters": page_context.filters.params()})
    return page_context


# ------------------------------------------------------------------------------------------ frame
def banner(info: dict) -> None:
    if info["meta"].get("kind") == "demo":
        st.warning("**Demo city — synthetic data.** No real person or place is shown.", icon=":material/science:")


def footer(page: PageContext) -> None:
    meta = page.info["meta"]
    st.divider()
    st.caption(
        f"Data snapshot **{page.version}** (created {meta.get('created_at', '?')}) · "
        f"harm index **{page.harm_label}** · "
        f"generated {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')} · role {access.ROLES[page.role]}"
    )
