"""End-to-end: a real `streamlit run dashboard.py` server driven by Debian's Chromium through Playwright.

- every page for every role allowed to see it loads from its URL (`/<page>?role=<role>`): the script
  finishes, no exception element, no console error, a title, the demo banner; a full-page screenshot is
  saved to test-artifacts/screenshots/<role>-<page>.png;
- no request leaves the machine: every request to a host other than 127.0.0.1/localhost is recorded and
  aborted, and the list must be empty once every page has been visited;
- a fresh server (no session has run dashboard.py yet) asked for a page URL shows only a refusal.

Playwright drives /usr/bin/chromium (installed by `make test` with apt-get); it never downloads a browser.
One browser serves the whole module; each page load is a new tab, hence a new Streamlit session.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ilp import access

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TITLE = '[data-testid="stMain"] h1'
DRAWN = f'{TITLE}, [data-testid="stException"], [data-testid="stAlert"]:has-text("Access refused")'
SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'  # attribute checked in 1.67's bundle
DATA_SELECTORS = (
    '[data-testid="stDataFrame"]',
    '[data-testid="stPlotlyChart"]',
    '[data-testid="stDeckGlJsonChart"]',
    '[data-testid="stMetric"]',
    '[data-testid="stTable"]',
)
DEMO_BANNER = "Demo city — synthetic data"
LOAD_TIMEOUT_MS = 90_000
VIEWPORT = {"width": 1400, "height": 1000}

ALLOWED = [(role, page.key) for page in access.PAGES for role in access.ROLES if role in page.roles]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (`make test` installs it)",
    ),
]


# ---------------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StreamlitServer:
    """`streamlit run dashboard.py` in its own process group, on a free port, over a given warehouse."""

    def __init__(self, warehouse: Path, state: Path, log: Path, *, as_make_run: bool = False, role: str | None = None):
        self.warehouse, self.state, self.log = warehouse, state, log
        self.as_make_run = as_make_run  # exactly `make run`'s command line: the rest from .streamlit/config.toml
        self.role = role  # a single workstation's role (`-- --role`), for a real warehouse
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> StreamlitServer:
        env = {**os.environ, "ILP_WAREHOUSE": str(self.warehouse), "ILP_STATE": str(self.state)}
        env.pop("ILP_ROLE", None)
        command = [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(self.port)]
        if self.as_make_run:  # the Makefile's `run` line: `ilp serve` (and its warm-up) on every interface
            command = [sys.executable, "-m", "ilp", "--warehouse", str(self.warehouse), "serve"]
            command += ["--address", "0.0.0.0", "--port", str(self.port)]
        else:
            command += [
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ]
        if self.role:
            command += ["--", "--role", self.role]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"streamlit exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        pytest.fail(f"streamlit did not answer {self.url}/_stcore/health within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


# ---------------------------------------------------------------------------------------- browser
@dataclass
class PageLoad:
    url: str
    final_url: str
    heading: str
    text: str
    sidebar: str
    sidebar_visible: bool
    exceptions: list[str]
    console_errors: list[str]
    data_elements: dict[str, int]


def _is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("data", "blob", "about") or parsed.hostname in LOCAL_HOSTS


def _ignorable(message) -> bool:
    """Console errors that are not the page's fault:

    - Streamlit's frontend probes `/<page>/_stcore/health` and `/<page>/_stcore/host-config` before the
      right `/_stcore/...` when a page URL is opened directly, and logs the two 404s
      (https://github.com/streamlit/streamlit/issues/7074, open);
    - a request to another host that the network guard aborted shows up as `net::ERR_FAILED`; the
      network test reports those, with their URLs.
    """
    text = message.text
    source = (message.location or {}).get("url", "")
    if (
        text.startswith("Failed to load resource")
        and urlparse(source).path.endswith(("/_stcore/health", "/_stcore/host-config"))
        and "404" in text
    ):
        return True
    return text.startswith("Failed to load resource") and source and not _is_local(source)


def settle(page) -> None:
    """Wait until the script run has finished and the frontend has drawn what it sent."""
    page.wait_for_selector(SCRIPT_DONE, timeout=LOAD_TIMEOUT_MS)
    page.wait_for_timeout(300)
    page.wait_for_selector(SCRIPT_DONE, timeout=LOAD_TIMEOUT_MS)  # a rerun triggered on load has ended too
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0", timeout=LOAD_TIMEOUT_MS
    )
    page.evaluate("document.fonts.ready.then(() => true)")
    page.wait_for_timeout(400)  # plotly and deck.gl draw after the elements mount


def open_url(page, url: str) -> None:
    """Load ``url`` in ``page`` and wait until the page has drawn. The app reads
    as not running between the runs of a hand-over (a page's gate switching to the entry point), so under
    load ``settle`` alone could pass before the page has drawn: wait first for what every outcome draws, a
    title (every page and the sign-in form), a refusal, or an exception."""
    page.goto(url, wait_until="domcontentloaded", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(DRAWN, timeout=LOAD_TIMEOUT_MS)
    settle(page)


def save_screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside stMain, so grow the viewport to its height first."""
    height = page.evaluate("(document.querySelector('[data-testid=\"stMain\"]') || document.body).scrollHeight")
    page.set_viewport_size(
        {"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(int(height) + 40, 16_000))}
    )
    page.wait_for_timeout(500)  # charts re-layout to the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def load(context, url: str, screenshot: Path | None = None) -> PageLoad:
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not _ignorable(m)
            and errors.append(f"console: {m.text} (at {(m.location or {}).get('url', '?')})")
        ),
    )
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    try:
        open_url(page, url)
        main = page.locator('[data-testid="stMain"]')
        sidebar = page.locator('[data-testid="stSidebar"]')
        headings = page.locator('[data-testid="stMain"] h1').all_inner_texts()
        result = PageLoad(
            url=url,
            final_url=page.url,
            heading=headings[0].strip() if headings else "",
            text=main.inner_text() if main.count() else page.locator("body").inner_text(),
            sidebar=sidebar.inner_text() if sidebar.count() else "",
            sidebar_visible=sidebar.count() > 0 and sidebar.first.is_visible(),
            exceptions=page.locator('[data-testid="stException"]').all_inner_texts(),
            console_errors=errors,
            data_elements={s: page.locator(s).count() for s in DATA_SELECTORS if page.locator(s).count()},
        )
        if screenshot is not None:
            save_screenshot(page, screenshot)
        return result
    finally:
        page.close()


@dataclass
class NetworkGuard:
    """Aborts and records every request to a host other than the local server."""

    blocked: list[str] = field(default_factory=list)

    def route(self, route) -> None:
        url = route.request.url
        if _is_local(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def websocket(self, ws) -> None:
        if not _is_local(ws.url.replace("ws://", "http://").replace("wss://", "https://")):
            self.blocked.append(ws.url)


def new_guarded_context(browser, guard: NetworkGuard):
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    context.route("**/*", guard.route)
    context.on("page", lambda page: page.on("websocket", guard.websocket))
    return context


@pytest.fixture(scope="module")
def chromium_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Site:
    server: StreamlitServer
    context: object
    guard: NetworkGuard
    loads: dict[tuple[str, str], PageLoad] = field(default_factory=dict)

    def visit(self, role: str, key: str) -> PageLoad:
        result = load(self.context, f"{self.server.url}/{key}?role={role}", SCREENSHOTS / f"{role}-{key}.png")
        self.loads[(role, key)] = result
        return result


@pytest.fixture(scope="module")
def site(chromium_browser, demo_warehouse, tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e_server")
    server = StreamlitServer(demo_warehouse, folder / "state.sqlite", folder / "streamlit.log")
    guard = NetworkGuard()
    context = None
    try:
        server.start()
        context = new_guarded_context(chromium_browser, guard)
        # On a fresh server Streamlit runs a page URL's file directly (see the fresh-server test below):
        # deep links only reach dashboard.py once some session has run it. Open the home page once first,
        # as a user would after a restart.
        home = load(context, f"{server.url}/?role=analyst")
        assert not home.exceptions, home.exceptions
        yield Site(server, context, guard)
    finally:
        if context is not None:
            context.close()
        server.stop()


# ---------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize(("role", "key"), ALLOWED, ids=[f"{r}-{k}" for r, k in ALLOWED])
def test_page_loads_in_chromium(site, role, key):
    result = site.visit(role, key)
    where = f"{key} as {role} ({result.url})"
    assert not result.exceptions, f"{where}: exception on the page:\n" + "\n".join(result.exceptions)
    assert "Access refused" not in result.text, f"{where}: refused:\n{result.text[:500]}"
    title = access.PAGE_BY_KEY[key].title
    assert title.lower() in result.heading.lower(), f"{where}: page title {result.heading!r} does not name {title!r}"
    assert DEMO_BANNER in result.text, f"{where}: no demo banner"
    assert urlparse(result.final_url).path == f"/{key}", (
        f"{where}: the browser ended on {result.final_url}: Streamlit found no page at /{key} and ran the main "
        "page (st.navigation serves its default page at '/', whatever that page's url_path)"
    )
    assert not result.console_errors, f"{where}: browser console errors:\n" + "\n".join(result.console_errors)


def test_threat_table_is_wide_enough_at_1400_px(site):
    """The brief's ranked threat table is at least THREAT_TABLE_PX wide at 1400 px, the width its columns
    up to confidence may add up to (tests/test_shapes.py): harm, count, z and confidence show without
    scrolling sideways."""
    from test_shapes import THREAT_TABLE_PX

    page = site.context.new_page()
    try:
        open_url(page, f"{site.server.url}/brief?role=commander")
        table = page.locator('.st-key-top_threats [data-testid="stDataFrame"]').first
        box = table.bounding_box()
    finally:
        page.close()
    assert box is not None and box["width"] >= THREAT_TABLE_PX, box


def test_no_request_leaves_the_machine(site):
    for role, key in ALLOWED:
        if (role, key) not in site.loads:
            site.visit(role, key)
    hosts = sorted({urlparse(url).hostname or url for url in site.guard.blocked})
    assert not site.guard.blocked, (
        f"{len(site.guard.blocked)} request(s) to other hosts {hosts} while visiting every page:\n"
        + "\n".join(sorted(set(site.guard.blocked)))
    )


def test_brief_downloads_as_html_and_pdf_and_is_audited(site, tmp_path):
    """The commander clicks the brief's download buttons: Chromium saves a self-contained HTML brief and
    a PDF, both stamped with the server's snapshot, and each download is in the audit log."""
    from ilp.state import State
    from ilp.warehouse import Warehouse

    version = Warehouse(site.server.warehouse).current_version()
    page = site.context.new_page()
    try:
        open_url(page, f"{site.server.url}/brief?role=commander")
        saved = {}
        for label, suffix in (("Download brief (HTML)", "html"), ("Download brief (PDF)", "pdf")):
            with page.expect_download(timeout=LOAD_TIMEOUT_MS) as download:
                page.get_by_role("button", name=label).click()
            saved[suffix] = tmp_path / download.value.suggested_filename
            download.value.save_as(saved[suffix])
            assert saved[suffix].suffix == f".{suffix}"
    finally:
        page.close()
    text = saved["html"].read_text(encoding="utf-8")
    assert f"Snapshot {version}" in text and "<script" not in text.lower() and "Top threats" in text
    assert saved["pdf"].read_bytes().startswith(b"%PDF")
    pdf_text = subprocess.run(["pdftotext", str(saved["pdf"]), "-"], capture_output=True, text=True, check=True).stdout
    assert version in pdf_text
    audit = State(site.server.state).audit_log(action="brief_generated")
    assert sorted(json.loads(p)["out"] for p in audit["parameters"]) == ["download.html", "download.pdf"]
    assert set(audit["role"]) == {"commander"} and set(audit["data_version"]) == {version}


def test_fresh_server_refuses_page_urls_without_a_role(chromium_browser, demo_warehouse, tmp_path):
    """What Streamlit 1.67 does, observed: a server that has not yet run dashboard.py in any session
    serves `/<page>` in the old multipage mode, running pages/<page>.py directly. The page's gate hands over
    to dashboard.py (keeping the page and its URL parameters), which resolves the role (here the demo's role
    picker; on a real warehouse sign-in) and opens the page asked for. So the outcome is always framed: the
    page itself for a role that may see it, or the refusal inside the frame; never a bare page file's
    content and never the sidebar of auto-discovered page files.

    Only the first request finds the server fresh; after it, the pages a role may see are loaded in the
    frame by ``test_page_loads_in_chromium``. So here: the first page, every page the demo's default role
    (commander) may not see, and a role in the URL.
    """
    server = StreamlitServer(demo_warehouse, tmp_path / "state.sqlite", tmp_path / "streamlit.log")
    guard = NetworkGuard()
    context = None
    try:
        server.start()
        context = new_guarded_context(chromium_browser, guard)
        # Every page without a role; then one with a role in the URL, which grants nothing by itself.
        first = access.PAGES[0]
        refused = [page for page in access.PAGES if "commander" not in page.roles]
        assert refused, "the default role sees every page: this test would load no refusal"
        urls = [f"/{page.key}" for page in [first, *refused]] + [f"/{first.key}?role={sorted(first.roles)[0]}"]
        for path in urls:  # the first request of the server's life is the first page's URL
            result = load(
                context, server.url + path, SCREENSHOTS / f"fresh-server-{path.strip('/').replace('?', '-')}.png"
            )
            assert not result.exceptions, f"{path}: {result.exceptions}"
            framed = result.heading == "Sign in" or "View as role" in result.sidebar
            assert framed, f"{path} on a fresh server was not framed by dashboard.py:\n{result.text[:500]}"
            if "Access refused" in result.text:
                assert not result.data_elements, f"{path}: refused, yet shows data elements {result.data_elements}"
            else:  # the page asked for, with its URL kept
                assert urlparse(result.final_url).path == path.split("?")[0], (path, result.final_url)
    finally:
        if context is not None:
            context.close()
        server.stop()


def test_make_run_server_starts_without_looking_up_its_external_ip(demo_warehouse, tmp_path):
    """Started as `make run` starts it (port only; .streamlit/config.toml decides the rest), the server does
    not ask checkip.amazonaws.com for an external IP, which headless Streamlit does to print its welcome
    URLs: the log would say 'External URL' (network up) or 'Did not auto detect external IP' (air-gapped)."""
    server = StreamlitServer(demo_warehouse, tmp_path / "state.sqlite", tmp_path / "streamlit.log", as_make_run=True)
    try:
        server.start()
        time.sleep(3)  # the welcome message (and any lookup) follows the server's start
        with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=5) as response:
            assert response.status == 200
        # and, as `ilp serve`, it fills its caches before the first visitor's pages (ilp.warm_up)
        deadline = time.monotonic() + 180
        while "ilp warm-up:" not in server.log_tail() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    assert "External URL" not in log and "external IP" not in log, log
    warmed = [line for line in log.splitlines() if line.startswith("ilp warm-up:")]
    assert warmed and "warmed snapshot" in warmed[0] and "problems" not in warmed[0], log[-3000:]


# ---------------------------------------------------------------------------------------- many districts
MANY_DISTRICT_PAGES = [page.key for page in access.PAGES if "analyst" in page.roles]


@pytest.fixture(scope="module")
def many_districts_site(chromium_browser, tmp_path_factory):
    """The 200-district shape (tests/shapes.py: long names) served to a single analyst workstation."""
    import shapes

    warehouse = shapes.warehouse("many_districts", tmp_path_factory)
    folder = tmp_path_factory.mktemp("e2e_many_districts")
    server = StreamlitServer(warehouse, folder / "state.sqlite", folder / "streamlit.log", role="analyst")
    guard = NetworkGuard()
    context = None
    try:
        server.start()
        context = new_guarded_context(chromium_browser, guard)
        home = load(context, f"{server.url}/")
        assert not home.exceptions, home.exceptions
        yield Site(server, context, guard)
    finally:
        if context is not None:
            context.close()
        server.stop()


@pytest.mark.parametrize("key", MANY_DISTRICT_PAGES)
def test_page_with_two_hundred_districts_loads_in_chromium(many_districts_site, key):
    """Where a layout breaks with many districts (trends' small multiples, long names in pickers and
    tables): every page loads, with no exception, no console error and no request leaving the machine."""
    site = many_districts_site
    result = load(site.context, f"{site.server.url}/{key}", SCREENSHOTS / f"many-districts-{key}.png")
    where = f"{key} on the 200-district warehouse"
    assert not result.exceptions, f"{where}: exception on the page:\n" + "\n".join(result.exceptions)
    assert "could not be shown" not in result.text, f"{where}: {result.text[:800]}"
    title = access.PAGE_BY_KEY[key].title
    assert title.lower() in result.heading.lower(), f"{where}: page title {result.heading!r}"
    assert not result.console_errors, f"{where}: browser console errors:\n" + "\n".join(result.console_errors)
    assert not site.guard.blocked, f"{where}: requests to other hosts: {site.guard.blocked}"
    if key == "trends":
        assert "Showing districts 1–12 of 200 by harm" in result.text, result.text[-2000:]
