"""The browser's floor on this machine: what Streamlit and its chart libraries cost a new tab before any
dashboard code runs, so that benchmarks/browser.py's page times can be read against it.

    .venv/bin/python benchmarks/browser_floor.py [--visits 3]

Serves a one-file Streamlit app (written to a temporary folder) that draws a title and then, by its URL:
nothing, one or four small Plotly charts, one Vega-Lite chart (st.line_chart), or one deck.gl map of 1,000
squares drawn filled, stroked, or as lines. Each variant is loaded --visits times in new tabs of one
Chromium context (Debian's /usr/bin/chromium, headless, as benchmarks/browser.py: the first with an empty
cache, the next ones as a second visit) and timed from navigation start until the chart has drawn and the
main thread has been free of long tasks (over 50 ms) for 1 s; the longest long task is printed too (for a
chart library, mostly the evaluation of its bundle). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, free_port, wait_healthy  # noqa: E402

APP = """
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pydeck as pdk
import streamlit as st

st.title("Floor")
kind = st.query_params.get("kind", "none")
frame = pd.DataFrame({"x": range(100), "y": [i % 7 for i in range(100)]})
if kind.startswith("plotly"):
    for i in range(int(kind[-1])):
        st.plotly_chart(go.Figure(go.Scatter(x=frame.x, y=frame.y), layout=dict(title="Chart")), key=f"c{i}")
elif kind == "vega":
    st.line_chart(frame, x="x", y="y")
elif kind.startswith("deck"):
    side, d = 32, 0.0015
    x, y = np.meshgrid(np.arange(side), np.arange(side))
    cells = pd.DataFrame({"x": x.ravel()[:1000], "y": y.ravel()[:1000]})
    square = f"[[x*{d},y*{d}],[(x+0.96)*{d},y*{d}],[(x+0.96)*{d},(y+0.96)*{d}],[x*{d},(y+0.96)*{d}]]"
    if kind == "deck-lines":
        edges = pd.DataFrame({"s": [[float(a * d), 0.0] for a in range(side)], "t": [[float(a * d), side * d] for a in range(side)]})
        layer = pdk.Layer("LineLayer", data=edges, get_source_position="s", get_target_position="t",
                          get_color=[31, 58, 95, 255], get_width=2, width_units="'pixels'")
    else:
        layer = pdk.Layer("PolygonLayer", data=cells, get_polygon=square, get_fill_color=[200, 50, 50, 200],
                          filled=True, stroked=kind == "deck-stroked", get_line_color=[90, 90, 90, 60],
                          line_width_min_pixels=0.5)
    st.pydeck_chart(pdk.Deck(layers=[layer], initial_view_state=pdk.ViewState(latitude=0.024, longitude=0.024,
                    zoom=12), map_provider=None), height=500)
"""

DRAWN = {
    "none": "h1",
    "plotly1": ".main-svg",
    "plotly4": ".main-svg",
    "vega": "canvas, svg.marks",
    "deck-filled": "canvas",
    "deck-stroked": "canvas",
    "deck-lines": "canvas",
}
PROBE = """window.__tasks = []; new PerformanceObserver(list => { for (const e of list.getEntries())
  window.__tasks.push([e.startTime, e.duration]); }).observe({type: 'longtask', buffered: true});"""
QUIET = """(() => { const t = window.__tasks, now = performance.now();
  const end = t.length ? Math.max(...t.map(([s, d]) => s + d)) : 0; return now - end > 1000 ? end : null; })()"""


async def measure(url: str, visits: int) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            for kind, selector in DRAWN.items():
                context = await browser.new_context(viewport=VIEWPORT, service_workers="block")
                times = []
                for _ in range(visits):
                    page = await context.new_page()
                    await page.add_init_script(PROBE)
                    await page.goto(f"{url}/?kind={kind}", wait_until="commit")
                    await page.wait_for_selector(selector, timeout=60_000)
                    drawn = await page.evaluate("performance.now()")
                    handle = await page.wait_for_function(QUIET, timeout=60_000, polling=100)
                    quiet = await handle.json_value()
                    longest = await page.evaluate("Math.max(0, ...window.__tasks.map(([s, d]) => d))")
                    times.append((max(drawn, quiet) / 1000, longest / 1000))
                    await page.close()
                await context.close()
                text = ", ".join(f"{t:.2f} s (longest task {m:.2f} s)" for t, m in times)
                print(f"  {kind:<13} first, then again: {text}", flush=True)
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visits", type=int, default=3)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit("Debian's chromium is not at /usr/bin/chromium (`make browser` installs it)")
    with tempfile.TemporaryDirectory(prefix="ilp-bench-floor-") as scratch:
        app = Path(scratch) / "floor.py"
        app.write_text(APP)
        port = free_port()
        command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port)]
        command += ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        server = subprocess.Popen(command, cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, 60, server)
            print(f"Streamlit's floor in headless Chromium ({url}); time until drawn and 1 s without long tasks:")
            asyncio.run(measure(url, args.visits))
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    main()
