"""End-to-end sign-in on a real server in Debian's Chromium: single sign-on against a real OIDC provider
started here (oidc-provider-mock, on the loopback address), local accounts with lockout, bookmarks that
survive a server restart, refusals, and a demo and a real warehouse served side by side that keep
separate app state.

Each test starts its own servers: a "fresh server" is one no session has used yet. The real warehouse is
a copy of the demo city marked real (kind 'real' in its snapshot), which is what switches sign-in on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import duckdb
import pytest
from test_e2e_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LOAD_TIMEOUT_MS,
    REPO,
    SCREENSHOTS,
    NetworkGuard,
    StreamlitServer,
    free_port,
    load,
    new_guarded_context,
    open_url,
    settle,
)

from ilp.state import State
from ilp.warehouse import Warehouse

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]

PASSWORD = "correct horse battery staple"


# ---------------------------------------------------------------------------------------- fixtures
def copy_warehouse(source: Path, target: Path, *, kind: str) -> Path:
    """A private copy of a warehouse folder (snapshots only), its current snapshot marked ``kind``."""
    target.mkdir(parents=True)
    current = (source / "CURRENT").read_text(encoding="utf-8").strip()
    shutil.copy2(source / current, target / current)
    shutil.copytree(source / "segments", target / "segments")  # the large tables, shared by snapshots
    (target / "CURRENT").write_text(current + "\n", encoding="utf-8")
    with duckdb.connect(str(target / current)) as con:
        con.execute("UPDATE snapshot_meta SET value = ? WHERE key = 'kind'", [kind])
    return target


class Server(StreamlitServer):
    """A dashboard server whose app state lives with its warehouse (no ILP_STATE), with extra options."""

    def __init__(self, warehouse: Path, log: Path, *options: str, arguments: tuple[str, ...] = ()):
        super().__init__(warehouse, warehouse / "app-state.sqlite", log)
        self.options, self.arguments = options, arguments

    def start(self, timeout: float = 90):
        env = {k: v for k, v in os.environ.items() if k not in ("ILP_STATE", "ILP_ROLE")}
        env["ILP_WAREHOUSE"] = str(self.warehouse)
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard.py",
            "--server.port",
            str(self.port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            *self.options,
        ]
        if self.arguments:
            command += ["--", *self.arguments]
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
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        pytest.fail(f"no answer from {self.url}:\n{self.log_tail()}")


@pytest.fixture(scope="module")
def chromium_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def real_warehouse_copy(demo_warehouse, tmp_path) -> Path:
    return copy_warehouse(demo_warehouse, tmp_path / "real", kind="real")


def open_tab(context, url: str):
    page = context.new_page()
    open_url(page, url)
    return page


def heading(page) -> str:
    """The page's title. A bookmark on a fresh server goes through a hand-over or two before its page draws:
    wait for a title (every page, the sign-in page included, has one) before reading it."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=LOAD_TIMEOUT_MS)
    settle(page)
    found = page.locator('[data-testid="stMain"] h1').all_inner_texts()
    return found[0].strip() if found else ""


def sign_in(page, user: str, password: str) -> None:
    page.get_by_role("textbox", name="User name").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_timeout(500)
    settle(page)


# ---------------------------------------------------------------------------------------- local accounts
def test_local_accounts_sign_in_lockout_bookmarks_and_refusals(chromium_browser, real_warehouse_copy, tmp_path):
    store = State.for_warehouse(real_warehouse_copy)
    store.add_user("cmdr", PASSWORD, "commander", by="test")
    store.add_user("mayor", PASSWORD, "city_leader", by="test")
    store.add_user("victim", PASSWORD, "analyst", by="test")
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("[ilp]\nidle_minutes = 0.25\n", encoding="utf-8")  # 15 s, so the test can wait it out
    server = Server(real_warehouse_copy, tmp_path / "streamlit.log", "--secrets.files", str(secrets)).start()
    second = None
    guard = NetworkGuard()
    context = new_guarded_context(chromium_browser, guard)
    try:
        # A bookmark opened first on the fresh server: sign in, then land on the page asked for, filters kept.
        week = "2026-10-26"
        page = open_tab(context, f"{server.url}/deployment?week={week}&district=3")
        assert heading(page) == "Sign in", page.inner_text("body")[:400]
        assert not page.locator('[data-testid="stDataFrame"], [data-testid="stDeckGlJsonChart"]').count()
        sign_in(page, "cmdr", PASSWORD)
        assert "Deployment map" in heading(page), page.inner_text("body")[:600]
        url = urlparse(page.url)
        assert url.path == "/deployment" and parse_qs(url.query)["week"] == [week], page.url
        assert parse_qs(url.query)["district"] == ["3"]
        assert "Signed in as cmdr" in page.locator('[data-testid="stSidebar"]').inner_text()
        page.screenshot(path=str(SCREENSHOTS / "signin-local-bookmark.png"), full_page=True)
        # 15 s without use: the next click ends the session instead of showing the page
        page.wait_for_timeout(16_000)
        page.locator('[data-testid="stTopNavSection"]').first.click()
        page.locator('[data-testid="stTopNavDropdownLink"]').filter(has_text="Command brief").click()
        page.wait_for_timeout(500)
        settle(page)
        assert heading(page) == "Sign in" and "without use" in page.inner_text("body"), page.inner_text("body")[:400]
        sign_in(page, "cmdr", PASSWORD)
        assert heading(page) == "Command brief"
        # sign out: back to the sign-in form
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_timeout(500)
        settle(page)
        assert heading(page) == "Sign in" and "You have signed out" in page.inner_text("body"), page.inner_text("body")[
            :800
        ]
        page.close()

        # Wrong password five times: locked, even with the right password afterwards.
        page = open_tab(context, server.url + "/")
        for _ in range(5):
            sign_in(page, "victim", "not the password at all")
            assert heading(page) == "Sign in"
        assert "locked" in page.inner_text("body")
        sign_in(page, "victim", PASSWORD)
        assert heading(page) == "Sign in" and "locked" in page.inner_text("body")
        page.close()

        # A city leader reaches no person-level page: by URL on a fresh server, by navigation, by typed URL.
        second = Server(real_warehouse_copy, tmp_path / "second.log").start()
        page = open_tab(context, second.url + "/brief")
        sign_in(page, "mayor", PASSWORD)
        text = page.locator('[data-testid="stMain"]').inner_text()
        assert "Access refused" in text and "Command brief" in text, text[:500]
        assert not page.locator('[data-testid="stDataFrame"], [data-testid="stPlotlyChart"]').count()
        shown = []
        for section in page.locator('[data-testid="stTopNavSection"]').all():
            section.click()
            page.wait_for_timeout(300)
            shown += [
                t.split("\n")[-1].strip()
                for t in page.locator('[data-testid="stTopNavDropdownLink"]').all_inner_texts()
            ]
            page.keyboard.press("Escape")
        assert "Trends and forecasts" in shown and "Outcomes" in shown, shown
        assert not {"Command brief", "Deployment map", "Taskings", "Analyst workbench"} & set(shown), shown
        page.close()
    finally:
        context.close()
        server.stop()
        if second is not None:
            second.stop()
    assert not guard.blocked, guard.blocked

    audit = State.for_warehouse(real_warehouse_copy).audit_log(limit=1000)
    actions = audit["action"].tolist()
    assert actions.count("sign_in_failed") == 6 and actions.count("lockout") == 1
    assert {"sign_in", "sign_out", "page_view", "session_expired"} <= set(actions)
    assert set(audit.loc[audit["action"] == "page_view", "user"]) == {"cmdr"}
    refused = audit[audit["action"] == "page_refused"]
    assert list(zip(refused["user"], refused["page"], refused["role"])) == [("mayor", "brief", "city_leader")]
    everything = " ".join(str(value) for value in audit.to_numpy().ravel())
    assert PASSWORD not in everything and "not the password at all" not in everything
    assert State.for_warehouse(real_warehouse_copy).verify_audit().ok


def test_real_warehouse_on_the_network_without_sign_in_refuses(real_warehouse_copy, tmp_path, run_cli):
    """`ilp serve` refuses a --role server on a non-loopback address (exit 2, how to configure sign-in),
    and accepts it on the loopback address."""
    code, _, err = run_cli(
        "serve", "--role", "analyst", "--address", "0.0.0.0", "--check", warehouse=real_warehouse_copy
    )
    assert code == 2 and "Refusing to serve a real warehouse" in err and "ilp users add" in err
    code, _, err = run_cli("serve", "--role", "analyst", "--check", warehouse=real_warehouse_copy)
    assert code == 0 and "sign-in: workstation" in err
    State.for_warehouse(real_warehouse_copy).add_user("cmdr", PASSWORD, "commander", by="test")
    code, _, err = run_cli("serve", "--address", "0.0.0.0", "--check", warehouse=real_warehouse_copy)
    assert code == 0 and "sign-in: local" in err


# ---------------------------------------------------------------------------------------- single sign-on
@pytest.fixture
def oidc_provider(tmp_path):
    """oidc-provider-mock on the loopback address with a commander (group ilp-commanders) and a user with
    no dashboard group."""
    port = free_port()
    users = [
        {"sub": "cmdr-1", "email": "cmdr@police.example", "name": "Ch. Insp. Vale", "groups": ["ilp-commanders"]},
        {"sub": "nobody-1", "email": "nobody@police.example", "name": "A. Nobody", "groups": ["staff"]},
    ]
    command = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--host", "127.0.0.1"]
    for user in users:
        command += ["--user-claims", json.dumps(user)]
    log = open(tmp_path / "oidc.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/.well-known/openid-configuration", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.25)
    else:
        process.kill()
        pytest.fail("the OIDC provider did not start:\n" + (tmp_path / "oidc.log").read_text())
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_single_sign_on_role_from_claim_sign_out_and_no_role(
    chromium_browser, real_warehouse_copy, tmp_path, oidc_provider
):
    port = free_port()
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a-test-cookie-secret-of-enough-length"\n'
        'client_id = "ilp-dashboard"\n'
        'client_secret = "ilp-dashboard-secret"\n'
        f'server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"\n'
        "[ilp]\n"
        'role_claim = "groups"\n'
        "[ilp.role_map]\n"
        '"ilp-commanders" = "commander"\n',
        encoding="utf-8",
    )
    server = Server(real_warehouse_copy, tmp_path / "streamlit.log", "--secrets.files", str(secrets))
    server.port = port
    server.start()
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    # the provider's own page asks a CDN for a stylesheet: not ours, and this machine has no network
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost") else route.abort()
        ),
    )
    try:
        page = open_tab(context, server.url + "/")
        assert heading(page) == "Sign in", page.inner_text("body")[:400]
        page.get_by_role("button", name="Sign in with single sign-on").click()
        page.wait_for_url(f"{oidc_provider}/**", timeout=LOAD_TIMEOUT_MS)
        page.get_by_role("button", name="cmdr-1").click()
        page.wait_for_url(f"{server.url}/**", timeout=LOAD_TIMEOUT_MS)
        settle(page)
        assert heading(page) == "Command brief", page.inner_text("body")[:600]
        assert "Signed in as cmdr@police.example" in page.locator('[data-testid="stSidebar"]').inner_text()
        page.screenshot(path=str(SCREENSHOTS / "signin-sso-commander.png"), full_page=False)
        # Sign out ends the provider's session too (RP-initiated logout), then comes back signed out.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{oidc_provider}/**", timeout=LOAD_TIMEOUT_MS)
        page.get_by_role("button", name="End session").click()
        page.wait_for_url(f"{server.url}/**", timeout=LOAD_TIMEOUT_MS)
        settle(page)
        assert heading(page) == "Sign in", page.inner_text("body")[:400]
        page.close()

        page = open_tab(context, server.url + "/")
        page.get_by_role("button", name="Sign in with single sign-on").click()
        page.wait_for_url(f"{oidc_provider}/**", timeout=LOAD_TIMEOUT_MS)
        page.get_by_role("button", name="nobody-1").click()
        page.wait_for_url(f"{server.url}/**", timeout=LOAD_TIMEOUT_MS)
        settle(page)
        assert heading(page) == "No access" and "nobody@police.example" in page.inner_text("body")
        assert not page.locator('[data-testid="stDataFrame"], [data-testid="stPlotlyChart"]').count()
        page.close()
    finally:
        context.close()
        server.stop()
    audit = State.for_warehouse(real_warehouse_copy).audit_log(limit=100)
    rows = audit[audit["action"].isin(["sign_in", "sign_in_failed", "sign_out"])]
    assert ("cmdr@police.example", "sign_in", "commander") in set(zip(rows["user"], rows["action"], rows["role"]))
    assert ("cmdr@police.example", "sign_out") in set(zip(rows["user"], rows["action"]))
    assert ("nobody@police.example", "sign_in_failed") in set(zip(rows["user"], rows["action"]))


# ---------------------------------------------------------------------------------------- side by side
def test_demo_and_real_warehouses_side_by_side_keep_separate_state(chromium_browser, demo_warehouse, tmp_path):
    demo = copy_warehouse(demo_warehouse, tmp_path / "demo", kind="demo")
    real = copy_warehouse(demo_warehouse, tmp_path / "real", kind="real")
    demo_server = Server(demo, tmp_path / "demo.log").start()
    real_server = Server(real, tmp_path / "real.log", arguments=("--role", "analyst")).start()
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        # bookmarks opened first on fresh servers land on their page with their filters
        demo_page = open_tab(context, f"{demo_server.url}/trends?role=analyst&district=2")
        assert "Trends" in heading(demo_page) and urlparse(demo_page.url).path == "/trends"
        assert parse_qs(urlparse(demo_page.url).query).get("district") == ["2"]
        real_page = open_tab(context, f"{real_server.url}/governance")
        assert heading(real_page) == "Data and governance", real_page.inner_text("body")[:400]
        # the demo's anyone-may-pick admin role sees the demo's audit log only
        admin = load(context, f"{demo_server.url}/governance?role=admin")
        assert "Access refused" not in admin.text
    finally:
        context.close()
        demo_server.stop()
        real_server.stop()
    assert (demo / "app-state.sqlite").exists() and (real / "app-state.sqlite").exists()
    demo_versions = set(State.for_warehouse(demo).audit_log(limit=1000)["data_version"].dropna())
    real_versions = set(State.for_warehouse(real).audit_log(limit=1000)["data_version"].dropna())
    assert demo_versions == {Warehouse(demo).current_version()}
    assert real_versions == {Warehouse(real).current_version()}
    # copies of one snapshot keep its name: the users tell the two logs apart
    assert set(State.for_warehouse(demo).audit_log(limit=1000)["user"]) <= {"analyst (demo)", "admin (demo)"}
    assert set(State.for_warehouse(real).audit_log(limit=1000)["user"]) == {"analyst (workstation)"}
