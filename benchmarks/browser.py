"""Browser-side page time: every dashboard page loaded in headless Chromium from a real Streamlit server.

    .venv/bin/python benchmarks/browser.py WAREHOUSE [--pages brief,trends]
    .venv/bin/python benchmarks/browser.py WAREHOUSE --sessions 20 [--rounds 2] [--servers 2]
    .venv/bin/python benchmarks/browser.py --url http://127.0.0.1:8600 --sessions 20   # a running server or proxy
    .venv/bin/python benchmarks/browser.py WAREHOUSE --sessions 20 --raw [--think 10] [--servers 2]  # no browser
    .venv/bin/python benchmarks/browser.py WAREHOUSE ... --warm-up   # each server warmed first, as `ilp serve` does

WAREHOUSE is a warehouse folder (`ilp --warehouse DIR demo` builds the demo city). The script starts
`streamlit run dashboard.py` on a free port over it, with a private app-state file, and drives Debian's
Chromium (/usr/bin/chromium) through Playwright, as tests/test_e2e_browser.py does. On the demo city the
role comes from `?role=`; on a real warehouse pass `--server-role analyst` (a single workstation's role).

**When a page is complete.** Timing starts when the browser starts the navigation (a URL load: the
document's time origin) or at the click (in-app navigation). The page is complete at the last moment
all of these became true together, and they then stay true for 0.6 s with no websocket message arriving:

- `[data-testid="stApp"]` has `data-test-script-state="notRunning"` (Streamlit's running indicator is
  off: the script run, and any rerun it triggered, has finished);
- the main area has an `h1` with the page's title (the page drew, not only the frame);
- no `stSkeleton` placeholder is left;
- every Plotly chart has drawn its SVG (`.main-svg`) and every deck.gl map its canvas;
- the server has sent the end of a script run (`script_finished`) since the action. Counted from the
  websocket's messages, not from the running indicator: on a busy browser React may never draw the
  indicator's 'running' state of a short run, and a run counted from it was missed (in an earlier version
  of this script, 4-10 of 63 navigations under 10 sessions never counted as complete, although their pages
  had drawn).

The time is measured in the browser (`performance.now()`); the quiet 0.6 s is not counted.

**Single mode** (the default): for each page, as a role that may see it (analyst; commander for taskings):

- *first*: the first load of the page in a new browser context (empty browser cache, new Streamlit
  session; the server's caches hold only what earlier pages filled);
- *second*: the same URL again in a new tab of that context (new session, warm caches);
- *navigate*: in that second tab's session, a click on another page's link in the top navigation and
  back on this page's link; the time of the click back.

A warm-up load of `/workbench?role=analyst` runs first (the server's first session: Python imports,
the entry point's registration), so the workbench's own *first* is not a cold figure.

Per load it prints when the first websocket message arrived (`ws`) and when the last script run ended
(`ran`), both from the same start, the CPU seconds the server process used meanwhile (from /proc), the
websocket messages and bytes received (Streamlit's ForwardMsgs), the number of script runs
(`script_finished` messages), of elements and blocks drawn, and the bytes of Plotly figure JSON, deck.gl
JSON and dataframes in the messages.

**Sessions mode** (`--sessions N`): N browser contexts at once in one Chromium, each with one tab and
one Streamlit session. Session i takes role i of --roles in turn, loads its first page by URL and then
visits its role's pages through the top navigation (starting at page i, so sessions spread over the
pages), --rounds times over. It prints p50, p95 and max of every page time, and the errors: a page that
did not complete within --timeout seconds, an exception element, an error message from the page's
boundary ("could not be shown"), a page error in the browser. Chromium shares the machine with the
server: on 2 cores, 20 browser tabs drawing charts take CPU the server would use. `--servers K` starts K
server processes on one app-state file behind haproxy (`balance leastconn`, a cookie keeps each browser
on its process; README, "Serving many users") and prints each process's CPU.

**Raw sessions** (`--sessions N --raw [--think S]`): the same sessions without a browser, so that on a small
machine the server has the cores to itself: each is a bare websocket client (ilp/warm_up.py) that asks
for its pages by name as the navigation does and times each from the request to the end of its script run
(following the reruns a first load's hand-over to the entry point makes). This is the server's share of a
page time only: the browser's own drawing (above) comes on top. `--think S` makes each session pause 0.5-1.5
x S seconds (seeded) between pages, as a user reading them; without it every session clicks again at once.

**Warm-up** (`--warm-up`): each server gets a token and one round of `ilp.warm_up.warm` (every page as every
role, all servers at once) before anything is measured, as `ilp serve` runs after a start; without it the
first loads fill the server's caches themselves.

Prints figures; asserts nothing. Target (issue 10): first under 3 s, second under 1.5 s; 20 sessions
with 0 errors and p95 under 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import importlib.util
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ilp import access, warm_up  # noqa: E402
from ilp.warm_up import RawSession, problems  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
QUIET_MS = 600
POLL_MS = 200  # how often Playwright asks whether the page is complete; the time itself is taken in the browser
WARM_UP = ("workbench", "analyst")

# In every page before its scripts run: record websocket message times and when the page became complete.
PROBE = """
(() => {
  const probe = window.__ilp = {messages: 0, lastMessage: 0, start: 0, completeAt: null, title: null,
    firstMessage: null, finishedAt: null};
  const Native = window.WebSocket;
  function Probed(...args) {
    const ws = new Native(...args);
    ws.addEventListener('message', () => {
      probe.messages++; probe.lastMessage = performance.now();
      if (probe.firstMessage === null) probe.firstMessage = probe.lastMessage;
    });
    return ws;
  }
  Probed.prototype = Native.prototype;
  Object.assign(Probed, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Probed;
  probe.complete = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) return false;
    if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    const heading = document.querySelector('[data-testid="stMain"] h1');
    if (!heading || (probe.title && !heading.textContent.toLowerCase().includes(probe.title))) return false;
    if (document.querySelector('[data-testid="stSkeleton"]')) return false;
    for (const chart of document.querySelectorAll('[data-testid="stPlotlyChart"]'))
      if (!chart.querySelector('.main-svg')) return false;
    for (const map of document.querySelectorAll('[data-testid="stDeckGlJsonChart"]'))
      if (!map.querySelector('canvas')) return false;
    return true;
  };
  const check = (records) => {
    // A run ended wherever the script state changed away from 'running' (read from the mutation records: a
    // short run can start and end between two callbacks on a busy browser). Whether a run ended after the
    // action at all is counted from the websocket's script_finished (Tab._measure).
    for (const record of records)
      if (record.attributeName === 'data-test-script-state' && record.oldValue === 'running')
        probe.finishedAt = performance.now();
    if (probe.complete()) { if (probe.completeAt === null) probe.completeAt = performance.now(); }
    else probe.completeAt = null;
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true,
    attributeOldValue: true});
})();
"""
WHY_NOT = """(() => { const p = window.__ilp, app = document.querySelector('[data-testid="stApp"]');
  const h = document.querySelector('[data-testid="stMain"] h1');
  return JSON.stringify({state: app && app.getAttribute('data-test-script-state'), title: p.title, h1: h && h.textContent.slice(0, 60), complete: p.complete(),
    completeAt: p.completeAt, quietFor: Math.round(performance.now() - p.lastMessage),
    skeletons: document.querySelectorAll('[data-testid="stSkeleton"]').length,
    url: location.pathname}); })()"""
SETTLED = f"""() => {{
  const p = window.__ilp; if (!p || p.completeAt === null) return false;
  const now = performance.now();
  return p.complete() && now - p.completeAt >= {QUIET_MS} && now - p.lastMessage >= {QUIET_MS};
}}"""


def _page_benchmark():
    """benchmarks/pages.py, for its choice of role per page (one definition)."""
    spec = importlib.util.spec_from_file_location("page_benchmark", REPO / "benchmarks" / "pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


role_for = _page_benchmark().role_for


# ------------------------------------------------------------------------------------------ server
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {process.returncode}")
        if warm_up.healthy(url):
            return
        time.sleep(0.25)
    raise SystemExit(f"{url}/_stcore/health did not answer within {timeout:.0f} s")


class Server:
    """`streamlit run dashboard.py` in its own process group on a free port."""

    def __init__(self, warehouse: Path, state: Path, log: Path, role: str | None = None, token: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ILP_WAREHOUSE": str(warehouse), "ILP_STATE": str(state)}
        env.pop("ILP_ROLE", None)
        env.pop(warm_up.TOKEN_VARIABLE, None)
        if token:  # as `ilp serve` does for its warm-up (ilp.warm_up)
            env[warm_up.TOKEN_VARIABLE] = token
        command = [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(self.port)]
        command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
        if role:
            command += ["--", "--role", role]
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_healthy(self.url, 90, self.process)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class ServerCPU:
    """CPU seconds (user + system, all threads) the server processes have used, read from /proc."""

    def __init__(self, pids: list[int]):
        self.pids = pids

    def per_process(self) -> list[float] | None:
        used = []
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            used.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
        return used if self.pids else None

    def seconds(self) -> float | None:
        used = self.per_process()
        return sum(used) if used is not None else None

    def memory(self) -> str | None:
        """Each server process's resident memory now and its peak since it started (VmRSS, VmHWM)."""
        parts = []
        for pid in self.pids:
            try:
                status = dict(
                    line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
                )
            except OSError:
                return None
            now, peak = (int(status[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM"))
            parts.append(f"{now:,} MiB now, peak {peak:,} MiB")
        return "; ".join(parts) if parts else None


HAPROXY_CONFIG = """global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend dashboard
    bind 127.0.0.1:{port}
    http-request del-header X-ILP-Warm-Up
    default_backend streamlit
backend streamlit
    balance leastconn
    cookie ILP_SERVER insert indirect nocache httponly
    option httpchk GET /_stcore/health
{servers}
"""


class Proxy:
    """haproxy (Debian's package) in front of several servers, sticky by cookie (README, "Serving many users")."""

    def __init__(self, servers: list[Server], folder: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        lines = [
            f"    server s{i} 127.0.0.1:{server.port} check cookie s{i}" for i, server in enumerate(servers, start=1)
        ]
        config = folder / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=self.port, servers="\n".join(lines)))
        with open(folder / "haproxy.log", "w") as out:
            self.process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_healthy(self.url, 30, self.process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


# ------------------------------------------------------------------------------------------ messages
@dataclass
class Traffic:
    """What the server sent to one tab: counted from the websocket's binary ForwardMsgs."""

    messages: int = 0
    bytes: int = 0
    sent: int = 0
    runs: int = 0
    elements: int = 0
    blocks: int = 0
    plotly_bytes: int = 0
    deck_bytes: int = 0
    dataframe_bytes: int = 0
    unparsed: int = 0

    def received(self, payload: bytes | str) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        data = payload.encode() if isinstance(payload, str) else payload
        self.messages += 1
        self.bytes += len(data)
        message = ForwardMsg()
        try:
            message.ParseFromString(data)
        except Exception:
            self.unparsed += 1
            return
        kind = message.WhichOneof("type")
        if kind == "script_finished":
            self.runs += 1
        elif kind == "delta":
            delta = message.delta
            if delta.HasField("add_block"):
                self.blocks += 1
            elif delta.HasField("new_element"):
                self.elements += 1
                element = delta.new_element
                which = element.WhichOneof("type")
                if which == "plotly_chart":
                    self.plotly_bytes += len(element.plotly_chart.spec) + len(element.plotly_chart.config)
                elif which == "deck_gl_json_chart":
                    self.deck_bytes += len(element.deck_gl_json_chart.json)
                elif which == "dataframe":
                    self.dataframe_bytes += element.dataframe.ByteSize()

    def minus(self, before: Traffic) -> Traffic:
        return Traffic(**{name: getattr(self, name) - getattr(before, name) for name in self.__dataclass_fields__})


@dataclass
class Load:
    page: str
    role: str
    kind: str  # first, second, navigate
    seconds: float | None  # until the page was complete
    traffic: Traffic
    errors: list[str] = field(default_factory=list)
    connected: float | None = None  # until the first websocket message
    finished: float | None = None  # until the last script run ended (the running indicator went off)
    server_cpu: float | None = None  # CPU seconds the server processes used meanwhile (single mode)


class Tab:
    """One browser tab with its websocket traffic and page errors recorded."""

    def __init__(self, page):
        self.page = page
        self.traffic = Traffic()
        self.errors: list[str] = []
        page.on("websocket", self._websocket)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _websocket(self, ws) -> None:
        ws.on("framereceived", self.traffic.received)
        ws.on("framesent", lambda _: setattr(self.traffic, "sent", self.traffic.sent + 1))

    @classmethod
    async def open(cls, context) -> Tab:
        page = await context.new_page()
        await page.add_init_script(PROBE)
        return cls(page)

    async def _problems(self) -> list[str]:
        found = []
        if await self.page.locator('[data-testid="stException"]').count():
            found.append("exception element")
        text = await self.page.locator('[data-testid="stMain"]').inner_text()
        if "could not be shown" in text:
            found.append("error boundary: " + text[text.find("could not be shown") - 40 :][:160].replace("\n", " "))
        if "Access refused" in text:
            found.append("access refused")
        return found

    async def _measure(self, key: str, role: str, kind: str, timeout: float, action) -> Load:
        """Run ``action`` (a URL load or a click) and wait until ``key``'s page is complete (module docstring)."""
        before, errors_before = copy.copy(self.traffic), len(self.errors)
        load = Load(key, role, kind, None, Traffic())
        try:
            await action(access.PAGE_BY_KEY[key].title.lower())
            deadline = time.monotonic() + timeout
            while True:
                left = max(deadline - time.monotonic(), 0.5)
                await self.page.wait_for_function(SETTLED, timeout=left * 1000, polling=POLL_MS)
                if self.traffic.runs > before.runs:  # a script run ended after the action (its script_finished)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("the page looked complete but no script run ended after the action")
                await asyncio.sleep(POLL_MS / 1000)
            times = await self.page.evaluate(
                "(() => { const p = window.__ilp; return [p.completeAt - p.start, p.firstMessage - p.start,"
                " p.finishedAt - p.start]; })()"
            )
            load.seconds, load.connected, load.finished = (t / 1000 if t is not None else None for t in times)
            problems = await self._problems()
        except Exception as error:  # a timeout, or the page closed under it
            problems = [f"not complete within {timeout:.0f} s: {type(error).__name__}: {str(error)[:80]}"]
            problems.append(f"script runs ended since the action: {self.traffic.runs - before.runs}")
            with contextlib.suppress(Exception):  # what the page showed: which condition never held
                problems.append("page: " + await self.page.evaluate(WHY_NOT))
        load.traffic = self.traffic.minus(before)
        load.errors = [*self.errors[errors_before:], *problems]
        return load

    async def visit(self, url: str, key: str, role: str, kind: str, timeout: float) -> Load:
        """Load ``url`` in this tab (a new document, so a new Streamlit session), timed from navigation start."""

        async def load_url(title: str) -> None:
            await self.page.goto(url, wait_until="commit", timeout=timeout * 1000)
            await self.page.evaluate(f"window.__ilp.title = {title!r}")

        return await self._measure(key, role, kind, timeout, load_url)

    async def navigate(self, key: str, role: str, timeout: float) -> Load:
        """Click the top navigation's link to ``key`` in this tab's session (opening its section's menu
        first, untimed), timed from the click."""

        async def click(title: str) -> None:
            link = self.page.locator(f'[data-testid="stTopNavLink"][href$="/{key}"]')
            if not await link.count():
                section = access.PAGE_BY_KEY[key].section
                await self.page.locator('[data-testid="stTopNavSection"]', has_text=section).first.click()
                link = self.page.locator(f'[data-testid="stTopNavDropdownLink"][href$="/{key}"]')
            await self.page.evaluate(
                f"(() => {{ const p = window.__ilp; p.title = {title!r}; p.completeAt = null;"
                " p.firstMessage = null; p.start = performance.now(); })()"
            )
            await link.first.click(timeout=timeout * 1000)

        return await self._measure(key, role, "navigate", timeout, click)


# ------------------------------------------------------------------------------------------ modes
def url_for(base: str, key: str, role: str | None) -> str:
    return f"{base}/{key}" + (f"?role={role}" if role else "")


async def with_cpu(cpu: ServerCPU, measure) -> Load:
    before = cpu.seconds()
    load = await measure
    after = cpu.seconds()
    load.server_cpu = after - before if before is not None and after is not None else None
    print(line(load), flush=True)
    return load


async def single(
    browser, base: str, pages: list[access.PageSpec], demo: bool, timeout: float, cpu: ServerCPU
) -> list[Load]:
    loads = []
    context = await browser.new_context(viewport=VIEWPORT, service_workers="block")
    tab = await Tab.open(context)
    warm_url = url_for(base, WARM_UP[0], WARM_UP[1] if demo else None)
    await with_cpu(cpu, tab.visit(warm_url, *WARM_UP, "warm-up", timeout))
    await context.close()
    for page in pages:
        role = role_for(page)
        url = url_for(base, page.key, role if demo else None)
        context = await browser.new_context(viewport=VIEWPORT, service_workers="block")
        try:
            first = await with_cpu(cpu, (await Tab.open(context)).visit(url, page.key, role, "first", timeout))
            second_tab = await Tab.open(context)
            second = await with_cpu(cpu, second_tab.visit(url, page.key, role, "second", timeout))
            loads += [first, second]
            others = [p for p in access.pages_for(role) if p.key != page.key]
            if others and second.seconds is not None:
                await second_tab.navigate(others[0].key, role, timeout)
                loads.append(await with_cpu(cpu, second_tab.navigate(page.key, role, timeout)))
        finally:
            await context.close()
    return loads


async def one_session(browser, base: str, index: int, role: str, demo: bool, rounds: int, timeout: float):
    pages = access.pages_for(role)
    order = [pages[(index + i) % len(pages)] for i in range(len(pages))] * rounds
    context = await browser.new_context(viewport=VIEWPORT, service_workers="block")
    loads = []
    try:
        tab = await Tab.open(context)
        loads.append(
            await tab.visit(url_for(base, order[0].key, role if demo else None), order[0].key, role, "first", timeout)
        )
        for page in order[1:]:
            if loads[-1].seconds is None:  # the tab is stuck: close it, start a new session on the next page
                await tab.page.close()
                tab = await Tab.open(context)
                loads.append(
                    await tab.visit(url_for(base, page.key, role if demo else None), page.key, role, "first", timeout)
                )
            else:
                loads.append(await tab.navigate(page.key, role, timeout))
    finally:
        await context.close()
    return loads


async def sessions(browser, base: str, count: int, roles: list[str], demo: bool, rounds: int, timeout: float):
    started = time.perf_counter()
    results = await asyncio.gather(
        *(one_session(browser, base, i, roles[i % len(roles)], demo, rounds, timeout) for i in range(count))
    )
    return [load for result in results for load in result], time.perf_counter() - started


def raw_session(
    base: str, index: int, role: str, demo: bool, rounds: int, timeout: float, start, think: float = 0.0
) -> list[Load]:
    """One session of ``sessions`` without a browser: a bare websocket client (ilp/warm_up.py) asks for
    each page in turn (``rerun_script`` with the page's name, as a click in the navigation does) and times it
    from the request to the run's ``script_finished``. The first is the session's first page (a URL load)."""
    pages = access.pages_for(role)
    order = [pages[(index + i) % len(pages)] for i in range(len(pages))] * rounds
    loads = []
    pause = random.Random(index)
    with RawSession(base) as session:
        start.wait()
        for n, page in enumerate(order):
            if think and n:  # a user reading the page before the next click: 0.5-1.5x the mean, seeded
                time.sleep(think * pause.uniform(0.5, 1.5))
            load = Load(page.key, role, "first" if n == 0 else "navigate", None, Traffic())
            began = time.perf_counter()
            try:
                elements = session.run(f"role={role}" if demo else "", page.key, timeout=timeout)
                load.seconds = load.finished = time.perf_counter() - began
                load.traffic.elements = len(elements)
                load.errors = problems(elements)
            except Exception as error:  # noqa: BLE001 - a timeout or a dropped connection is this load's error
                load.errors = [f"not complete within {timeout:.0f} s: {type(error).__name__}: {str(error)[:160]}"]
            loads.append(load)
    return loads


def raw_sessions(base: str, count: int, roles: list[str], demo: bool, rounds: int, timeout: float, think: float = 0.0):
    """``count`` raw sessions at once, each in its own thread, all starting together once connected, each
    pausing ``think`` seconds on average between its pages."""
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(count)
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [
            pool.submit(raw_session, base, i, roles[i % len(roles)], demo, rounds, timeout, start, think)
            for i in range(count)
        ]
        results = [future.result() for future in futures]
    return [load for result in results for load in result], time.perf_counter() - began


# ------------------------------------------------------------------------------------------ report
def line(load: Load) -> str:
    t = load.traffic
    time_text = f"{load.seconds:6.2f} s" if load.seconds is not None else "  FAILED"
    if load.seconds is not None:
        time_text += f" (ws {load.connected or 0:5.2f}, ran {load.finished or 0:5.2f})"
    if load.server_cpu is not None:
        time_text += f"  server CPU {load.server_cpu:5.2f} s"
    text = (
        f"  {load.page:<20} {load.role:<11} {load.kind:<8} {time_text}  runs {t.runs}  "
        f"ws {t.messages:4d} msgs {t.bytes / 1024:8.0f} KiB  elements {t.elements:3d} blocks {t.blocks:3d}  "
        f"plotly {t.plotly_bytes / 1024:6.0f} KiB  deck {t.deck_bytes / 1024:5.0f} KiB  "
        f"dataframes {t.dataframe_bytes / 1024:5.0f} KiB"
    )
    return text + ("  ERRORS: " + "; ".join(load.errors) if load.errors else "")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(loads: list[Load], label: str) -> str:
    times = [load.seconds for load in loads if load.seconds is not None]
    errors = sum(1 for load in loads if load.errors)
    if not times:
        return f"{label}: {len(loads)} loads, none complete, {errors} with errors"
    ran = [load.finished for load in loads if load.seconds is not None and load.finished is not None]
    return (
        f"{label}: {len(loads)} loads, p50 {statistics.median(times):.2f} s, p95 {percentile(times, 0.95):.2f} s, "
        f"max {max(times):.2f} s, {errors} with errors"
        + (
            f"; script runs ended by p50 {statistics.median(ran):.2f} s, p95 {percentile(ran, 0.95):.2f} s"
            if ran
            else ""
        )
    )


# ------------------------------------------------------------------------------------------ main
def report_sessions(loads: list[Load], wall: float, cpu: ServerCPU, cpu_before, each_before) -> None:
    cpu_used = cpu.seconds() - cpu_before if cpu_before is not None else None
    for load in loads:
        if load.errors:
            print(line(load))
    print(summary(loads, "all page loads"))
    print(summary([x for x in loads if x.kind == "first"], "  first load (URL)"))
    print(summary([x for x in loads if x.kind == "navigate"], "  navigation (click)"))
    print(f"wall time {wall:.1f} s; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if cpu_used is not None:
        each = [f"{b - a:.1f}" for a, b in zip(each_before, cpu.per_process(), strict=True)]
        print(
            f"server CPU {cpu_used:.1f} s over {len(loads)} page loads ({cpu_used / len(loads):.2f} s a "
            f"load; by process {', '.join(each)} s)"
        )
    if cpu.memory():
        print(f"server memory (resident; the peak is while the sessions ran): {cpu.memory()}")


def run_raw(args, base: str, demo: bool, cpu: ServerCPU) -> None:
    """Sessions mode with bare websocket clients: no browser is started."""
    with RawSession(base) as session:  # a warm-up run (Python imports, the entry point's registration)
        session.run(f"role={WARM_UP[1]}" if demo else "", WARM_UP[0], timeout=args.timeout)
    roles = args.roles.split(",")
    print(
        f"{args.sessions} raw sessions at once, roles {', '.join(roles)}, {args.rounds} round(s) each"
        + (f", {args.think:g} s between pages" if args.think else "")
    )
    cpu_before, each_before = cpu.seconds(), cpu.per_process()
    loads, wall = raw_sessions(base, args.sessions, roles, demo, args.rounds, args.timeout, args.think)
    report_sessions(loads, wall, cpu, cpu_before, each_before)


async def run(args, base: str, demo: bool, cpu: ServerCPU) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            if args.sessions:
                roles = args.roles.split(",")
                print(f"{args.sessions} sessions at once, roles {', '.join(roles)}, {args.rounds} round(s) each")
                cpu_before, each_before = cpu.seconds(), cpu.per_process()
                loads, wall = await sessions(browser, base, args.sessions, roles, demo, args.rounds, args.timeout)
                report_sessions(loads, wall, cpu, cpu_before, each_before)
            else:
                pages = [access.PAGE_BY_KEY[k] for k in args.pages.split(",")] if args.pages else list(access.PAGES)
                pages = [p for p in pages if p.key != WARM_UP[0]] + [p for p in pages if p.key == WARM_UP[0]]
                loads = await single(browser, base, pages, demo, args.timeout, cpu)
                for kind in ("first", "second", "navigate"):
                    print(summary([x for x in loads if x.kind == kind], f"{kind:<8}"))
                print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
                if cpu.memory():
                    print(f"server memory (resident): {cpu.memory()}")
        finally:
            await browser.close()


def warm_servers(servers: list[Server], token: str) -> None:
    """What `ilp serve` does after a start: one warm-up round (ilp.warm_up) per server, all at once."""
    from concurrent.futures import ThreadPoolExecutor

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        rounds = list(pool.map(lambda server: warm_up.warm(server.url, token), servers))
    for server, result in zip(servers, rounds):
        print(f"warm-up {server.url}: {result.summary()}")
    print(f"warm-up of {len(servers)} server(s): {time.perf_counter() - began:.1f} s")


def measure(args, base: str, demo: bool, cpu: ServerCPU) -> None:
    if args.raw:
        run_raw(args, base, demo, cpu)
    else:
        asyncio.run(run(args, base, demo, cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse", type=Path, nargs="?", help="warehouse folder to serve")
    parser.add_argument("--url", help="use this running server (or proxy) instead of starting one")
    parser.add_argument("--real", action="store_true", help="with --url: not the demo city (no ?role= in URLs)")
    parser.add_argument("--server-role", help="a real warehouse: the workstation role the server is started with")
    parser.add_argument("--pages", help="comma-separated page keys (default: all)")
    parser.add_argument("--sessions", type=int, default=0, help="N concurrent browser sessions")
    parser.add_argument("--raw", action="store_true", help="with --sessions: bare websocket clients, no browser")
    parser.add_argument("--think", type=float, default=0.0, help="with --raw: mean seconds between a session's pages")
    parser.add_argument("--roles", default="analyst,commander,city_leader", help="sessions' roles, in turn")
    parser.add_argument("--rounds", type=int, default=1, help="times each session goes through its pages")
    parser.add_argument("--servers", type=int, default=1, help="K server processes behind haproxy (K > 1)")
    parser.add_argument("--server-pid", type=int, action="append", help="with --url: count this process's CPU")
    parser.add_argument("--timeout", type=float, default=120, help="seconds before a page load counts as failed")
    parser.add_argument(
        "--warm-up", action="store_true", help="warm each server's caches first, as `ilp serve` does (ilp.warm_up)"
    )
    args = parser.parse_args()
    if args.raw and not args.sessions:
        raise SystemExit("--raw goes with --sessions N")
    if not args.raw and not CHROMIUM.exists():
        raise SystemExit("Debian's chromium is not at /usr/bin/chromium (`make browser` installs it)")
    if args.url:
        wait_healthy(args.url, 30)
        measure(args, args.url.rstrip("/"), demo=not args.real, cpu=ServerCPU(args.server_pid or []))
        return
    if args.warehouse is None:
        raise SystemExit("give a warehouse folder, or --url of a running server")
    from ilp.warehouse import Warehouse

    if Warehouse(args.warehouse).current_path() is None:
        raise SystemExit(f"no warehouse snapshot in {args.warehouse} (build one with `ilp --warehouse DIR demo`)")
    if args.servers > 1 and not shutil.which("haproxy"):
        raise SystemExit("--servers needs haproxy (apt-get install haproxy)")
    with tempfile.TemporaryDirectory(prefix="ilp-bench-browser-") as scratch:
        folder = Path(scratch)
        servers: list[Server] = []
        proxy = None
        try:
            token = secrets.token_urlsafe(32) if args.warm_up else None
            for i in range(args.servers):  # one app-state file for all: SQLite in WAL mode, as in production
                log = folder / f"streamlit-{i + 1}.log"
                servers.append(Server(args.warehouse, folder / "state.sqlite", log, role=args.server_role, token=token))
                print(f"server {servers[-1].url} over {args.warehouse} (log {log})")
            if token:
                warm_servers(servers, token)
            base = servers[0].url
            if args.servers > 1:
                proxy = Proxy(servers, folder)
                base = proxy.url
                print(f"haproxy {proxy.url} in front of {args.servers} servers, sticky by cookie")
            cpu = ServerCPU([server.process.pid for server in servers])
            measure(args, base, demo=args.server_role is None, cpu=cpu)
        finally:
            if proxy is not None:
                proxy.stop()
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
