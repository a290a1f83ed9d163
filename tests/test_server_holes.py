"""Holes found by probing a running server (issue 8), each closed and pinned here.

1. **Any connection could clear every session's caches.** A raw websocket client sending Streamlit's
   ``clear_cache`` BackMsg cleared ``st.cache_data`` and ``st.cache_resource`` for the whole process, which
   closed the shared DuckDB connections under other users' queries ("Connection already closed"). Now the
   connections and the app state live in registries no cache clear reaches (ilp.ui.resources), and the server
   ignores the message and audits the attempt (ilp.ui.server_guards). The toolbar never offered it
   (``client.toolbarMode = "minimal"``).
2. **Exports that bypassed the audit.** Every table's own "Download as CSV" exported data unaudited and
   un-neutralised: ``client.disableDataExport`` removes it. Every download button is deferred (nothing stored
   before the click), audited when built, and its ``/media/`` file expires seconds after the click, so another
   client holding the URL gets nothing.

The workbench's limits (hole 3) are tested in tests/test_workbench.py and tests/test_page_workbench.py.

Library tests first (no server); then a real ``streamlit run dashboard.py`` driven by a raw websocket client
and by Debian's Chromium through Playwright, as in tests/test_e2e_browser.py.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
import streamlit as st
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.media_file_storage import MediaFileStorageError
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from test_e2e_browser import CHROMIUM, CHROMIUM_ARGS, LOAD_TIMEOUT_MS, StreamlitServer, load, open_url, settle

from ilp.state import State
from ilp.ui import context as ui
from ilp.ui import resources, server_guards
from ilp.warm_up import RawSession

REPO = Path(__file__).resolve().parents[1]


def snapshot_of(warehouse: Path) -> Path:
    return warehouse / (warehouse / "CURRENT").read_text(encoding="utf-8").strip()


def small_snapshot(path: Path, value: int) -> Path:
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE t AS SELECT {value} AS v")
    con.close()
    return path


# ======================================================================== 1. shared resources survive a clear
def test_a_cursor_survives_streamlit_cache_clears(demo_warehouse, monkeypatch):
    """Before: the connection was an st.cache_resource with on_release=close, so a clear closed it and every
    cursor made from it ("Connection already closed")."""
    monkeypatch.setenv("ILP_WAREHOUSE", str(demo_warehouse))
    con = ui.cursor(snapshot_of(demo_warehouse))
    try:
        st.cache_resource.clear()
        st.cache_data.clear()
        assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] > 100_000
    finally:
        con.close()


def test_the_app_state_is_one_object_that_survives_a_cache_clear(tmp_path, monkeypatch):
    """Two State objects on one file would each take their own lock while appending to the audit hash chain."""
    monkeypatch.setenv("ILP_STATE", str(tmp_path / "state.sqlite"))
    first = ui.state()
    st.cache_resource.clear()
    assert ui.state() is first


def test_the_registry_reopens_a_connection_closed_under_it(tmp_path):
    path = small_snapshot(tmp_path / "a.duckdb", 1)
    connections = resources.SnapshotConnections()
    try:
        with connections.reading(path) as con:
            assert con.execute("SELECT v FROM t").fetchone() == (1,)
        connections._open[str(path)].connection.close()  # as a cache clear used to
        with connections.reading(path) as con:
            assert con.execute("SELECT v FROM t").fetchone() == (1,)
    finally:
        connections.close_all()


def test_the_registry_keeps_the_newest_and_never_closes_the_current_or_one_in_use(tmp_path):
    a, b, c, d, e, f = (small_snapshot(tmp_path / f"{name}.duckdb", i) for i, name in enumerate("abcdef"))
    current = [a]
    connections = resources.SnapshotConnections(keep=2, current=lambda: current[0])

    def use(path: Path) -> None:
        with connections.reading(path) as con:
            assert con.execute("SELECT v FROM t").fetchone() == (ord(path.stem) - ord("a"),)

    try:
        for path in (a, b, c):
            use(path)
        assert connections.paths() == [str(a), str(b), str(c)]  # a is older than the newest two, but current
        current[0] = c  # a new snapshot is published
        use(d)
        assert connections.paths() == [str(c), str(d)]
        with connections.reading(c) as in_use:
            current[0] = e
            use(e)
            use(f)
            assert connections.paths() == [str(c), str(e), str(f)]  # c is old, but a query is using it
            assert in_use.execute("SELECT v FROM t").fetchone() == (2,)  # and it was not closed under it
        assert connections.paths() == [str(e), str(f)]  # closed once free
    finally:
        connections.close_all()


def test_the_registry_under_concurrent_use_and_turnover(tmp_path):
    paths = [small_snapshot(tmp_path / f"s{i}.duckdb", i) for i in range(5)]
    connections = resources.SnapshotConnections(keep=2, current=lambda: paths[0])
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(40):
                path = paths[(worker + i) % len(paths)]
                with connections.reading(path) as con:
                    assert con.execute("SELECT v FROM t").fetchone()[0] == paths.index(path)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    connections.close_all()
    assert not errors, errors[:3]


# ======================================================================== 1. the clear_cache message is refused
def test_streamlit_routes_the_clear_cache_message_to_the_guarded_method():
    """Pins the Streamlit code the guard replaces: if an upgrade renames or reroutes it, this fails loudly."""
    dispatch = inspect.getsource(AppSession.handle_backmsg)
    assert 'msg_type == "clear_cache"' in dispatch and "self._handle_clear_cache_request()" in dispatch
    original = inspect.getsource(server_guards.refuse_clear_cache.streamlit_original)
    assert "caching.cache_data.clear()" in original and "caching.cache_resource.clear()" in original
    assert "clear_cache" in BackMsg.DESCRIPTOR.fields_by_name
    assert AppSession._handle_clear_cache_request is server_guards.refuse_clear_cache  # installed by ilp.ui.context


def test_a_clear_cache_request_clears_nothing_and_is_audited_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ILP_STATE", str(tmp_path / "state.sqlite"))
    computed = []

    @st.cache_data
    def cached(x):
        computed.append(x)
        return x

    cached(1)
    session_state = {"ilp_context": {"user": "mallory", "role": "analyst", "version": "s00001"}}
    session = SimpleNamespace(id="session-1", session_state=session_state, _session_state=dict(session_state))
    for _ in range(3):
        AppSession._handle_clear_cache_request(session)  # what a clear_cache BackMsg calls
    cached(1)
    assert computed == [1], "the clear_cache message cleared st.cache_data"
    audit = State(tmp_path / "state.sqlite").audit_log(action=server_guards.CLEAR_CACHE_REFUSED)
    assert len(audit) == 1 and audit["user"].tolist() == ["mallory"] and audit["role"].tolist() == ["analyst"]
    assert json.loads(audit["parameters"].iloc[0])["session"] == "session-1"


# ======================================================================== 2. download files expire
def test_streamlit_download_machinery_the_guard_relies_on():
    """Pins what ilp.ui.server_guards assumes of Streamlit's media files: a deferred download is generated by
    MediaFileManager.execute_deferred, stored in the manager's storage under the id its URL ends with, and the
    /media route serves whatever the storage holds, to any client (no session check)."""
    from streamlit.web.server.starlette import starlette_routes

    assert MediaFileManager.execute_deferred is server_guards.execute_deferred_then_expire
    original = inspect.getsource(server_guards.execute_deferred_then_expire.streamlit_original)
    assert "load_and_get_id" in original and "get_url(actual_file_id)" in original
    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    assert {"_lock", "_storage", "_file_metadata", "_deferred_callables"} <= set(vars(manager))
    media_route = inspect.getsource(starlette_routes.create_media_routes)
    assert "media_storage.get_file(file_id)" in media_route and "session" not in media_route


def test_a_generated_download_expires_after_the_link_lifetime(monkeypatch):
    monkeypatch.setattr(server_guards, "DOWNLOAD_LINK_SECONDS", 0.3)
    storage = MemoryMediaFileStorage("/media")
    manager = MediaFileManager(storage)
    file_id = manager.add_deferred(lambda: b"a,b\r\n1,2\r\n", "text/csv", "coordinates", file_name="x.csv")
    url = manager.execute_deferred(file_id)  # the click
    stored = url.rsplit("/", 1)[-1]
    assert storage.get_file(stored).content == b"a,b\r\n1,2\r\n"  # the clicking browser fetches it at once
    time.sleep(1.0)
    with pytest.raises(MediaFileStorageError):
        storage.get_file(stored)
    assert manager.execute_deferred(file_id) == url  # a second click builds it again
    assert storage.get_file(stored).content == b"a,b\r\n1,2\r\n"


# ======================================================================== against a real server
@pytest.fixture(scope="module")
def served(demo_warehouse, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("server_holes")
    server = StreamlitServer(demo_warehouse, folder / "state.sqlite", folder / "streamlit.log")
    try:
        server.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
                home = load(context, f"{server.url}/?role=analyst")  # deep links reach dashboard.py from now on
                assert not home.exceptions, home.exceptions
                yield SimpleNamespace(server=server, context=context, url=server.url, state=server.state)
            finally:
                browser.close()
    finally:
        server.stop()


@pytest.mark.e2e
def test_a_raw_websocket_clear_cache_is_refused_while_other_sessions_keep_their_data(served):
    """A bare websocket session runs the app, then sends clear_cache every 10 ms while another user opens three
    data pages in Chromium. Each page shows its tables with no error; the attempt is audited once; the caches and
    the shared connections are untouched (before the fix: every clear emptied both, closing connections
    under the other user's queries, and nothing recorded the attempt)."""
    stop, sent = threading.Event(), []

    def flood() -> None:
        while not stop.is_set():
            attacker.clear_cache()
            sent.append(1)
            time.sleep(0.01)

    with RawSession(served.url) as attacker:
        assert attacker.run("role=analyst"), "the raw session drew nothing"
        flooding = threading.Thread(target=flood, daemon=True)
        flooding.start()
        try:
            loads = [
                load(served.context, f"{served.url}/{key}?role=analyst") for key in ("brief", "trends", "outcomes")
            ]
        finally:
            stop.set()
            flooding.join(timeout=10)
        again = attacker.run("role=analyst")  # the attacker's own session still works too
    assert len(sent) > 50 and again
    for result in loads:
        assert not result.exceptions, f"{result.url}: {result.exceptions}"
        assert "Connection already closed" not in result.text
        assert result.data_elements.get('[data-testid="stDataFrame"]'), f"{result.url}: no table"
    audit = State(served.state).audit_log(action=server_guards.CLEAR_CACHE_REFUSED)
    assert len(audit) == 1, f"{len(audit)} audit entries for one session's clear_cache attempts"
    assert audit["role"].tolist() == ["analyst"]
    assert "asked to clear the server's caches" in served.server.log.read_text(errors="replace")


@pytest.mark.e2e
def test_the_toolbar_offers_no_clear_cache(served):
    """The "c" shortcut opens the clear-cache dialog only in the developer toolbar modes."""
    page = served.context.new_page()
    try:
        open_url(page, f"{served.url}/brief?role=analyst")
        page.locator('[data-testid="stMain"] h1').first.click()
        page.keyboard.press("c")
        page.wait_for_timeout(700)
        assert page.get_by_text("Clear caches").count() == 0 and page.locator('[role="dialog"]').count() == 0
        assert page.locator('[data-testid="stMainMenu"]').count() == 0
    finally:
        page.close()


@pytest.mark.e2e
def test_tables_offer_no_download_or_copy_of_their_own(served):
    """Hovering a table shows its toolbar (search, fullscreen) but no "Download as CSV" (before: an unaudited,
    un-neutralised export of every table)."""
    page = served.context.new_page()
    try:
        open_url(page, f"{served.url}/governance?role=analyst")
        tables = page.locator('[data-testid="stDataFrame"]:visible')
        assert tables.count() >= 2
        labels = []
        for index in range(2):
            tables.nth(index).hover()
            page.wait_for_timeout(500)
            labels += page.locator('[data-testid="stElementToolbar"] button[aria-label]').evaluate_all(
                "buttons => buttons.map(b => b.getAttribute('aria-label'))"
            )
    finally:
        page.close()
    assert "Search" in labels and "Fullscreen" in labels, labels  # the toolbar was shown
    assert not [label for label in labels if "download" in label.lower() or "copy" in label.lower()], labels


@pytest.mark.e2e
def test_every_download_button_stores_nothing_before_its_click(served):
    """Every download button a page draws is deferred: a file id to generate on the click, no /media/ URL."""
    buttons = []
    for query, page_name in (("role=admin", "governance"), ("role=commander", "brief")):
        with RawSession(served.url) as session:
            elements = session.run(query, page_name)
        buttons += [e.download_button for e in elements if e.WhichOneof("type") == "download_button"]
    labels = sorted(b.label for b in buttons)
    assert {"Download brief (HTML)", "Download brief (PDF)", "Download these entries (CSV)"} <= set(labels), labels
    eager = [b.label for b in buttons if b.url or not b.deferred_file_id]
    assert not eager, f"downloads stored on the server before any click: {eager}"


def fetch_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def click_download(page, label: str, save_to: Path):
    with page.expect_download(timeout=LOAD_TIMEOUT_MS) as download:
        page.get_by_role("button", name=label).click()
    download.value.save_as(save_to)
    return download.value.url, save_to.read_text(encoding="utf-8")


@pytest.mark.e2e
def test_a_download_url_is_dead_for_every_other_client(served, tmp_path):
    """An analyst downloads a workbench result and an administrator the audit log. Each gets a formula-safe CSV
    and an 'export' audit entry; afterwards a plain HTTP client fetching the same /media/ URL gets 404 once the
    link's few seconds are up (before: the workbench CSV was stored at render time and served to anyone)."""
    sql = "SELECT '=1+1' AS formula, 42 AS answer"
    page = served.context.new_page()
    try:
        open_url(page, f"{served.url}/workbench?role=analyst")
        page.get_by_label("SQL").fill(sql)
        page.get_by_role("button", name="Run query").click()
        settle(page)
        page.get_by_role("button", name="Download CSV").wait_for(timeout=LOAD_TIMEOUT_MS)
        workbench_url, workbench_csv = click_download(page, "Download CSV", tmp_path / "result.csv")
    finally:
        page.close()
    page = served.context.new_page()
    try:
        open_url(page, f"{served.url}/governance?role=admin")
        page.get_by_role("tab", name="Audit log").click()
        page.wait_for_timeout(500)
        audit_url, audit_csv = click_download(page, "Download these entries (CSV)", tmp_path / "audit.csv")
    finally:
        page.close()
    clicked = time.monotonic()

    assert workbench_csv.splitlines()[:2] == ["formula,answer", "'=1+1,42"]
    assert audit_csv.startswith("id,") or "action" in audit_csv.splitlines()[0]
    exports = State(served.state).audit_log(action="export")
    details = [json.loads(p) for p in exports["parameters"]]
    assert {"workbench_result.csv", "audit_log.csv"} <= {d["what"] for d in details}
    assert any(d.get("sql") == sql and d["rows"] == 1 for d in details)

    for url in (workbench_url, audit_url):
        assert "/media/" in url
        deadline = clicked + server_guards.DOWNLOAD_LINK_SECONDS + 10
        while fetch_status(url) == 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert fetch_status(url) == 404, f"{url} is still served to another client"
