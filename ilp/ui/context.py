"""The Streamlit side of the library: the per-page gate, warehouse access with caching, shared filters,
banner and footer. Pages call ``page = gate("brief")`` first and use ``page.query(...)`` after.

Caching: one read-only DuckDB connection per snapshot file, held in a process-wide registry that a
cache clear cannot close (ilp.ui.resources), a fresh cursor per query (DuckDB refuses concurrent calls
on one connection), and query results cached on (snapshot version, query name, parameters). Importing
this module installs the server guards (ilp.ui.server_guards): a client cannot clear the shared caches,
and a download's file is served only just after its own click.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitAPIException

from ilp import access, stored_analyses
from ilp.snapshot import HarmIndex, SnapshotInfo
from ilp.state import State
from ilp.ui import resources, server_guards
from ilp.warehouse import Warehouse, query_text, run_query

ALL = "__all__"


# ------------------------------------------------------------------------------------------ warehouse
def warehouse() -> Warehouse:
    return Warehouse(os.environ.get("ILP_WAREHOUSE") or None)


def current_snapshot() -> Path | None:
    """The current snapshot file: a cheap read of CURRENT on every rerun, so a new snapshot is noticed."""
    return warehouse().current_path()


# Not st.cache_resource: any client could clear that for every session and close the connections under
# their queries (ilp.ui.resources). The current snapshot is never closed; older ones when idle.
_connections = resources.SnapshotConnections(current=current_snapshot)
server_guards.install()


def cursor(snapshot_path: Path) -> duckdb.DuckDBPyConnection:
    """A new cursor on the snapshot's shared connection, for a caller that closes it; prefer ``reading``."""
    return _connections.cursor(snapshot_path)


def reading(snapshot_path: Path):
    """``with reading(path) as con:`` a new cursor on the snapshot's shared connection, closed after the
    block; the connection stays open while the block runs. One per query, safe across Streamlit's threads."""
    return _connections.reading(snapshot_path)


@st.cache_data(max_entries=1024, ttl=6 * 3600, show_spinner=False)
def _cached_query(snapshot_path: str, version: str, name: str, parameters: tuple) -> pd.DataFrame:
    del version  # part of the cache key only
    with reading(Path(snapshot_path)) as con:
        return run_query(con, name, dict(parameters))


@st.cache_data(max_entries=256, ttl=6 * 3600, show_spinner=False)
def _cached_analysis(snapshot_path: str, version: str, config: float, name: str, _function, parameters: tuple):
    """``_function(cursor, **parameters)``, cached on (snapshot, version, config, the function's qualified
    name, parameters); the function object itself is not hashed (leading underscore), its name stands for it."""
    del version, config, name  # part of the cache key only
    with reading(Path(snapshot_path)) as con:
        stored = stored_analyses.lookup(con, _function, dict(parameters))  # computed when the snapshot was written
        return stored if stored is not None else _function(con, **dict(parameters))


@st.cache_data(max_entries=128, ttl=6 * 3600, show_spinner=False)
def _cached_derived(snapshot_path: str, version: str, filters: tuple, name: str, _function, _query, parameters: tuple):
    """``_function(_query, **parameters)``, cached on (snapshot, version, the page's filters, the function's
    qualified name, parameters); the function and the page's query function are not hashed."""
    del snapshot_path, version, filters, name  # part of the cache key only
    return _function(_query, **dict(parameters))


@st.cache_data(max_entries=256, ttl=6 * 3600, show_spinner=False)
def _cached_figure(name: str, _build, parameters: tuple) -> dict:
    """``_build(**parameters).to_dict()``, cached on the function's qualified name and the parameters
    (data frames among them are hashed by content); the function object itself is not hashed."""
    del name  # part of the cache key only
    return _build(**dict(parameters)).to_dict()


def figure(build, **parameters) -> go.Figure:
    """The Plotly figure ``build(**parameters)``, built once per distinct parameters and then rebuilt from
    its cached dict without plotly's validation (``_validate=False``): building a faceted figure through
    plotly's validators takes far longer than the page's cached queries (0.2-0.8 s for Trends' small
    multiples), and the cached dict was validated when it was built. ``build`` must depend on its
    parameters only (pass the data frames and every label it draws), so the cache cannot serve a stale
    figure."""
    name = f"{build.__module__}.{build.__qualname__}"
    return go.Figure(_cached_figure(name, build, tuple(sorted(parameters.items()))), _validate=False)


@st.cache_data(max_entries=16, show_spinner=False)
def snapshot_info(snapshot_path: str) -> SnapshotInfo:
    """What the snapshot offers (districts, categories, harm indices, dates, kind), read once per file."""
    with reading(Path(snapshot_path)) as con:
        return SnapshotInfo.read(con)


# ------------------------------------------------------------------------------------------ filters
@dataclass(frozen=True)
class Filters:
    week: dt.date  # Monday of the final week of the period
    weeks: int  # number of weeks in the period, ending with `week`
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
            "start": self.start,
            "end": self.end,
            "week": self.week,
            "district": self.district,
            "category": self.category,
            "harm_index": self.harm_index,
            "harm_version": self.harm_version,
        }


# ------------------------------------------------------------------------------------------ page context
@dataclass
class PageContext:
    key: str
    role: str
    user: str
    snapshot: Path
    version: str
    filters: Filters
    info: SnapshotInfo = field(repr=False)

    @property
    def demo(self) -> bool:
        return self.info.demo

    @property
    def audience(self) -> access.Audience:
        """What this role may be shown of counts (small-count suppression for aggregate-only roles)."""
        return access.Audience(self.role)

    @property
    def harm(self) -> HarmIndex:
        """The harm index the filters chose."""
        return self.info.harm(self.filters.harm_index, self.filters.harm_version)

    @property
    def harm_label(self) -> str:
        return self.harm.label

    def query(self, name: str, **overrides) -> pd.DataFrame:
        """The named query ``queries/<name>.sql`` with the shared filters (and ``overrides``) bound, cached on
        the snapshot version and the parameters the SQL actually uses."""
        _, wanted = query_text(name)
        parameters = {**self.filters.params(), **overrides}
        bound = tuple(sorted((key, value) for key, value in parameters.items() if key in wanted))
        return _cached_query(str(self.snapshot), self.version, name, bound)

    def analysis(self, function, **parameters):
        """``function(con, **parameters)``, a read-only library analysis, on this page's snapshot, cached on
        the data version, the function and the parameters."""
        # The threat matrix is configuration an admin may edit while the server runs: its modification
        # time is part of the key so an edit takes effect on the next rerun.
        from ilp.analytics.threats import matrix_path

        config = matrix_path().stat().st_mtime
        name = f"{function.__module__}.{function.__qualname__}"
        return _cached_analysis(
            str(self.snapshot), self.version, config, name, function, tuple(sorted(parameters.items()))
        )

    def derived(self, function, **parameters):
        """``function(self.query, **parameters)``: a computation over this page's named queries (which carry
        the shared filters), cached on the snapshot, the filters, the function and the parameters, so that one
        session's result serves every session with the same view. ``function`` must depend on the query
        results and its parameters only (pass the role if what it returns depends on it)."""
        name = f"{function.__module__}.{function.__qualname__}"
        filters = tuple(sorted(self.filters.params().items()))
        return _cached_derived(
            str(self.snapshot), self.version, filters, name, function, self.query, tuple(sorted(parameters.items()))
        )

    def audit(self, action: str, parameters: dict | None = None) -> None:
        state().record(
            user=self.user,
            role=self.role,
            action=action,
            page=self.key,
            parameters=parameters or {},
            data_version=self.version,
        )

    def source_note(self) -> str:
        return f"Harm: {self.harm_label}. Data: snapshot {self.version}."


def _state(path: str) -> State:
    """One State per file for the whole process (not st.cache_resource, which a client could clear: two
    State objects on one file would each take their own lock while appending to the audit hash chain)."""
    return resources.shared_state(path)


def state() -> State:
    """The app state of the served warehouse (``<warehouse>/app-state.sqlite``; ``$ILP_STATE`` overrides)."""
    from ilp.state import state_path

    return _state(str(os.environ.get("ILP_STATE") or state_path(warehouse().directory)))


REQUESTED_KEY = "ilp_requested"  # (page key, URL parameters) of a bookmark, until its user has signed in
ENTRY_POINT = "dashboard.py"


def gate(page_key: str) -> PageContext:
    """The first call of every page: refuse, and show nothing else, unless the session's role may see it.

    The role is set only by dashboard.py (picker on the demo city, sign-in or --role on a real
    warehouse). A freshly started Streamlit server runs a page file requested by URL (a bookmark) on its
    own, before any session has run the entry point: the gate remembers the page and its filters and hands
    over to dashboard.py, which signs the user in and then opens that page. A page the role may not see
    stops here with the refusal.
    """
    role = st.session_state.get("ilp_role")
    context = st.session_state.get("ilp_context")
    if context is None and not st.session_state.get("ilp_forwarded"):
        st.session_state["ilp_forwarded"] = True
        parameters = dict(st.query_params)
        st.session_state[REQUESTED_KEY] = (page_key, parameters)
        with contextlib.suppress(StreamlitAPIException):  # no entry point to go to (a page run on its own)
            st.switch_page(ENTRY_POINT, query_params=parameters)
    if not access.allowed(page_key, role) or context is None:
        page = access.PAGE_BY_KEY.get(page_key)
        title = page.title if page else page_key
        if context is not None and st.session_state.get("ilp_last_refusal") != page_key:
            st.session_state["ilp_last_refusal"] = page_key  # a signed-in user tried a page their role may not see
            state().record(
                user=context["user"], role=role, action="page_refused", page=page_key, data_version=context["version"]
            )
        # When the entry point has not run for this session (a bookmark on a freshly started server),
        # the way in is the home page, which resolves the role first.
        home = " [Open the dashboard home page](/)." if context is None else ""
        if context is None:
            # Streamlit's fallback lists the page files (dashboard, brief, ...) in the sidebar: hide it.
            st.html(
                "<style>[data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'] {display: none;}</style>"
            )
        st.error(
            f"Access refused: **{title}** is not available to this session. "
            f"Open the dashboard's home page and sign in with a role that may see it.{home}",
            icon=":material/block:",
        )
        st.stop()
    page_context = PageContext(key=page_key, **context)
    warm_up = st.session_state.get("ilp_warm_up")  # ilp.warm_up audits each of its rounds, not each page
    if not warm_up and st.session_state.get("ilp_last_view") != (page_key, page_context.filters):
        st.session_state["ilp_last_view"] = (page_key, page_context.filters)
        page_context.audit("page_view", {"filters": page_context.filters.params()})
    return page_context


# ------------------------------------------------------------------------------------------ frame
def banner(info: SnapshotInfo) -> None:
    """What every page says first about its data: the demo city is synthetic; data that ends long before
    today is old (SnapshotInfo.staleness)."""
    if info.demo:
        st.warning("**Demo city — synthetic data.** No real person or place is shown.", icon=":material/science:")
    stale = info.staleness()
    if stale:
        st.warning(f"**Old data.** {stale}", icon=":material/history:")


def footer(page: PageContext) -> None:
    st.divider()
    st.caption(
        f"Data snapshot **{page.version}** (created {page.info.created_at}) · "
        f"harm index **{page.harm_label}** · "
        f"generated {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')} · role {access.ROLES[page.role]}"
    )
