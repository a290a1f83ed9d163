"""Warm a dashboard server's caches before its users arrive: after it starts, and after every new snapshot.

A Streamlit server fills its caches (query results, stored analyses, figures) on the first visits to each
page; until then every page pays its queries. On a 10M-incident warehouse that is 0.5-1.5 s a page, and
20 users arriving together on a freshly started or freshly written server wait 7-11 s (README, "Serving
many users"). ``ilp serve`` therefore starts this helper beside the server (``python -m ilp.warm_up``): it
waits for the server to answer, visits every page as every role at the default filters, and does so again
whenever the warehouse's current snapshot changes (once the write that made it has let go of the warehouse:
on a large warehouse a write's stored analyses come in a second snapshot a minute later). Each visit is a real session over the server's own
websocket (``RawSession``, a bare client with no browser), so the caches it fills are the ones users' page
runs read, and nothing is computed that a user would not have asked for.

**How it gets in.** On the demo city and a single workstation (``--role``) a session needs no sign-in. On a
team server the helper sends the header ``X-ILP-Warm-Up`` with a random token that ``ilp serve`` made for
this run and gave to the server and the helper only (in their environment, never on disk). The dashboard
accepts it from a loopback address only (``ilp.auth.warm_up_role``), as the role the visit names, and
writes no page views for it; the helper writes one ``cache_warm_up`` entry to the audit log per round
instead, naming the snapshot, the pages and the roles. A reverse proxy in front of the servers must drop the
header from outside requests (README's haproxy configuration does).

On shared storage (README, "Several dashboard servers, one warehouse") the write lock is not a cluster lock:
a server on another host than the writer does not see the write in progress, and may warm a large write's
data-only snapshot before its analyses snapshot (one extra round, no harm).

The helper ends when the server process does (its parent: ``ilp serve`` becomes the server by ``exec``).
The bare client is shared with the server-hole tests and ``benchmarks/browser.py --raw``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from ilp import access

HEADER = "X-ILP-Warm-Up"
TOKEN_VARIABLE = "ILP_WARM_UP_TOKEN"
USER = "ilp serve (cache warm-up)"
# Every role's pages: the pages' caches are shared by the roles, but some results depend on the role
# (the aggregate-only roles' suppressed counts, the outcome measures), and a role's visit is cheap once
# another role has filled the shared part.
ROLE_ORDER = ("analyst", *(role for role in access.ROLES if role != "analyst"))  # the analyst sees the most
MAX_WAIT = 600.0  # seconds a round waits for a write in progress before it warms the current snapshot anyway
START_TIMEOUT = 300.0  # with --once: seconds to wait for the server to answer before giving up


class RawSession:
    """A Streamlit session driven by a bare websocket client (no browser)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        from websockets.sync.client import connect

        self.connection = connect(
            url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream",
            subprotocols=["streamlit"],
            additional_headers=headers or None,
            max_size=None,
            max_queue=None,  # unread replies to a flood must not stall the socket (the server then drops it)
            ping_interval=None,  # no keepalives: on a loaded machine their 20 s pong deadline, not the server,
            # failed the connection; run()'s own timeout bounds each wait
        )
        self.lock = threading.Lock()

    def __enter__(self) -> RawSession:
        self.ws = self.connection.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.connection.__exit__(*exc)

    def send(self, message: BackMsg) -> None:
        with self.lock:
            self.ws.send(message.SerializeToString())

    def run(self, query_string: str, page_name: str = "", timeout: float = 120) -> list:
        """Run the app (``rerun_script``) and return the elements its last run drew, following the reruns a
        ``switch_page`` starts (a page asked for by name hands over to the entry point, which opens it)."""
        message = BackMsg()
        message.rerun_script.query_string = query_string
        message.rerun_script.page_name = page_name
        self.send(message)
        elements, deadline = [], time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            forward = ForwardMsg()
            forward.ParseFromString(self.ws.recv(timeout=left))
            kind = forward.WhichOneof("type")
            if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                elements.append(forward.delta.new_element)
            elif kind == "script_finished":
                if forward.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    return elements
                elements = []  # a switch_page or st.rerun: the run that follows draws the page
        raise TimeoutError(f"the script did not finish within {timeout:.0f} s")

    def clear_cache(self) -> None:
        message = BackMsg()
        message.clear_cache = True
        self.send(message)


def problems(elements, title: str | None = None) -> list[str]:
    """What a page run's elements show of a failure: no page title (or not ``title``: the sign-in page's
    instead), an exception, the page boundary's message, a refusal."""
    headings = [e.heading.body for e in elements if e.WhichOneof("type") == "heading" and e.heading.tag == "h1"]
    found = [] if headings else ["no title"]
    if headings and title and not any(title.lower() in heading.lower() for heading in headings):
        found.append(f"drew {headings[0][:60]!r}, not {title!r}")
    for element in elements:
        kind = element.WhichOneof("type")
        if kind == "exception":
            found.append(f"exception: {element.exception.message[:120]}")
        elif kind == "alert" and "could not be shown" in element.alert.body:
            found.append("error boundary: " + element.alert.body[:160].replace("\n", " "))
        elif kind == "alert" and "Access refused" in element.alert.body:
            found.append("access refused")
    return found


@dataclass
class Round:
    """One warm-up of one snapshot: what was visited, how long it took, what went wrong."""

    version: str | None
    seconds: float = 0.0
    visits: list[tuple[str, str, float]] = field(default_factory=list)  # (role, page, seconds)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        roles = sorted({role for role, _, _ in self.visits})
        slowest = max(self.visits, key=lambda visit: visit[2], default=None)
        text = f"warmed snapshot {self.version}" if self.version else "warmed"
        text += f": {len(self.visits)} page visits as {len(roles)} roles in {self.seconds:.1f} s"
        if slowest:
            text += f" (slowest: {slowest[1]} as {slowest[0]}, {slowest[2]:.1f} s)"
        return text + (f"; {len(self.problems)} problems: " + "; ".join(self.problems[:5]) if self.problems else "")


def warm(url: str, token: str | None = None, *, roles=ROLE_ORDER, timeout: float = 300) -> Round:
    """Visit every page of every role in ``roles`` once, at the default filters: one session per role, its
    first page by the home page (as a sign-in lands), the others by name (as the navigation asks)."""
    headers = {HEADER: token} if token else None
    result = Round(version=None)
    began = time.perf_counter()
    for role in roles:
        pages = access.pages_for(role)
        try:
            with RawSession(url, headers) as session:
                for n, page in enumerate(pages):
                    visit_began = time.perf_counter()
                    elements = session.run(f"role={role}", "" if n == 0 else page.key, timeout=timeout)
                    result.visits.append((role, page.key, time.perf_counter() - visit_began))
                    found = problems(elements, page.title)
                    result.problems += [f"{page.key} as {role}: {problem}" for problem in found]
        except Exception as error:  # noqa: BLE001 - a dropped connection or a timeout ends this role's visits
            result.problems.append(f"{role}: {type(error).__name__}: {str(error)[:160]}")
    result.seconds = time.perf_counter() - began
    return result


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def watch(url: str, warehouse_dir: str, token: str | None, *, poll: float = 2.0, once: bool = False) -> int:
    """Warm the server at ``url`` once it answers, then again whenever the warehouse's current snapshot
    changes; return when the parent process (the server) has gone, or after one round with ``once``."""
    from ilp.state import State
    from ilp.warehouse import Warehouse

    parent = os.getppid()
    warehouse = Warehouse(warehouse_dir)
    warmed: str | None = None
    waited_since: float | None = None
    started = time.monotonic()
    while once or os.getppid() == parent:
        version = warehouse.current_version()
        if version is not None and version != warmed:
            # A write still holding the lock is about to make another snapshot (the stored analyses follow a
            # large warehouse's new rows by up to a minute): warm that one, not one that lives for seconds,
            # unless the writer holds on for longer than MAX_WAIT.
            if warehouse.write_in_progress() and time.monotonic() - (waited_since or time.monotonic()) < MAX_WAIT:
                waited_since = waited_since or time.monotonic()
                time.sleep(poll)
                continue
            waited_since = None
            if not healthy(url):
                if once and time.monotonic() - started > START_TIMEOUT:
                    print(f"ilp warm-up: {url} did not answer within {START_TIMEOUT:.0f} s", file=sys.stderr)
                    return 1
                time.sleep(poll / 4)
                continue
            result = warm(url, token)
            result.version = version
            warmed = version
            print(f"ilp warm-up: {result.summary()}", file=sys.stderr, flush=True)
            try:
                State.for_warehouse(warehouse.directory).record(
                    user=USER,
                    role=None,
                    action="cache_warm_up",
                    parameters={
                        "pages": sorted({page for _, page, _ in result.visits}),
                        "roles": sorted({role for role, _, _ in result.visits}),
                        "seconds": round(result.seconds, 1),
                        "problems": result.problems[:10],
                    },
                    data_version=version,
                )
            except Exception as error:  # noqa: BLE001 - the audit log is the server's; say so, keep serving
                print(f"ilp warm-up: could not write the audit entry: {error}", file=sys.stderr, flush=True)
            if once:
                return 1 if result.problems else 0
        time.sleep(poll)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the server's own address, e.g. http://127.0.0.1:8501")
    parser.add_argument("--warehouse", required=True, help="the warehouse folder the server reads")
    parser.add_argument("--once", action="store_true", help="one round, then exit (1 if a page had a problem)")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between looks at the current snapshot")
    args = parser.parse_args(argv)
    try:
        return watch(
            args.url.rstrip("/"), args.warehouse, os.environ.get(TOKEN_VARIABLE), poll=args.poll, once=args.once
        )
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
