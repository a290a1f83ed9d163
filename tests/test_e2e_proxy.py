"""End-to-end: two dashboard processes behind haproxy with sticky sessions (README, "Serving many users").

Two `streamlit run dashboard.py` servers share one warehouse and one app-state file; haproxy (Debian's
package) sits in front with the configuration benchmarks/browser.py writes: `balance leastconn` and a
cookie that keeps each browser on one process. Two browsers open the brief through the proxy:

- each is served, without an exception, by a different process (the cookie names s1 for one, s2 for
  the other);
- a download works through the proxy: its file lives only in the process that holds the session, so
  the browser's request for it must reach that process (with round-robin and no cookie it would not);
- both processes wrote to the one audit log, and its hash chain is intact.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from test_e2e_browser import (
    CHROMIUM,
    LOAD_TIMEOUT_MS,
    NetworkGuard,
    StreamlitServer,
    chromium_browser,  # noqa: F401 - the module's browser fixture
    load,
    new_guarded_context,
    settle,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
    pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy is not installed (apt-get install haproxy)"),
]


def test_two_processes_behind_haproxy_keep_each_browser_on_its_own(chromium_browser, demo_warehouse, tmp_path):  # noqa: F811
    from browser import Proxy

    from ilp.state import State

    state = tmp_path / "state.sqlite"
    servers = [StreamlitServer(demo_warehouse, state, tmp_path / f"streamlit-{i}.log") for i in (1, 2)]
    proxy = None
    contexts = []
    try:
        for server in servers:
            server.start()
        proxy = Proxy(servers, tmp_path)
        guard = NetworkGuard()
        chosen = []
        for _ in servers:
            context = new_guarded_context(chromium_browser, guard)
            contexts.append(context)
            result = load(context, f"{proxy.url}/brief?role=commander")
            assert not result.exceptions, result.exceptions
            assert "Command brief" in result.heading, result.heading
            cookies = {c["name"]: c["value"] for c in context.cookies(proxy.url)}
            chosen.append(cookies.get("ILP_SERVER"))
        assert sorted(chosen) == ["s1", "s2"], f"the two browsers went to {chosen}, not one process each"

        page = contexts[1].new_page()
        page.goto(f"{proxy.url}/brief?role=commander", wait_until="domcontentloaded", timeout=LOAD_TIMEOUT_MS)
        settle(page)
        with page.expect_download(timeout=LOAD_TIMEOUT_MS) as download:
            page.get_by_role("button", name="Download brief (HTML)").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert "Top threats" in saved.read_text(encoding="utf-8")
        assert not guard.blocked, guard.blocked
    finally:
        for context in contexts:
            context.close()
        if proxy is not None:
            proxy.stop()
        for server in servers:
            server.stop()
    store = State(state)
    views = store.audit_log(action="page_view")
    assert len(views) >= 3 and set(views["page"]) == {"brief"}
    check = store.verify_audit()
    assert check.ok, check.reason
