"""The cache warm-up that `ilp serve` runs beside the server (ilp.warm_up): it gets past sign-in only with
this server run's token, from this machine; it visits every page as every role after the start and again
after each new snapshot, writes one audit entry a round and no page views, and ends with the server."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_e2e_browser import REPO, free_port
from test_e2e_signin import PASSWORD, copy_warehouse

from ilp import access, auth, stored_analyses
from ilp.state import State
from ilp.warehouse import Warehouse
from ilp.warm_up import HEADER, TOKEN_VARIABLE, RawSession, healthy, problems

TOKEN = "t" * 43
WARMED = re.compile(r"ilp warm-up: warmed snapshot (\S+): (\d+) page visits as (\d+) roles in ([\d.]+) s(.*)")


# ------------------------------------------------------------------------------------------ the rule
@pytest.mark.parametrize(
    "presented, expected, address, requested, server_address, role",
    [
        (TOKEN, TOKEN, "127.0.0.1", "analyst", "127.0.0.1", "analyst"),
        (TOKEN, TOKEN, "::ffff:127.0.0.1", "city_leader", "0.0.0.0", "city_leader"),  # a dual-stack server's view
        (TOKEN, TOKEN, "::1", "admin", "::", "admin"),
        (TOKEN, TOKEN, "10.1.2.3", "analyst", "10.1.2.3", "analyst"),  # the one address the server listens on
        (TOKEN, TOKEN, "10.1.2.4", "analyst", "10.1.2.3", None),  # another machine
        (TOKEN, TOKEN, "10.1.2.4", "analyst", "0.0.0.0", None),
        (TOKEN[:-1] + "u", TOKEN, "127.0.0.1", "analyst", "127.0.0.1", None),  # a wrong token
        (None, TOKEN, "127.0.0.1", "analyst", "127.0.0.1", None),  # no header
        ("short", "short", "127.0.0.1", "analyst", "127.0.0.1", None),  # a server token too short to be one
        (TOKEN, None, "127.0.0.1", "analyst", "127.0.0.1", None),  # a server started without a warm-up
        (TOKEN, TOKEN, "127.0.0.1", "superuser", "127.0.0.1", None),  # no such role
        (TOKEN, TOKEN, "127.0.0.1", None, "127.0.0.1", None),
    ],
)
def test_warm_up_role_needs_this_runs_token_from_this_machine(
    presented, expected, address, requested, server_address, role
):
    found = auth.warm_up_role(
        presented=presented, expected=expected, address=address, requested=requested, server_address=server_address
    )
    assert found == role


def test_an_ipv4_mapped_loopback_client_is_loopback():
    assert auth.is_loopback("::ffff:127.0.0.1") and not auth.is_loopback("::ffff:10.0.0.1")


# ------------------------------------------------------------------------------------------ on a server
def read_log(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def wait_for_round(log: Path, version: str, timeout: float = 240) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for match in WARMED.finditer(read_log(log)):
            if match.group(1) == version:
                return match
        time.sleep(0.5)
    pytest.fail(f"no warm-up round for {version} within {timeout:.0f} s:\n{read_log(log)[-3000:]}")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.e2e
def test_ilp_serve_warms_every_page_past_sign_in_and_again_after_a_write(demo_warehouse, tmp_path, monkeypatch):
    warehouse = copy_warehouse(demo_warehouse, tmp_path / "real", kind="real")
    state = State.for_warehouse(warehouse)
    state.add_user("ana", PASSWORD, "analyst", by="test")  # local accounts: every session must sign in
    first = Warehouse(warehouse).current_version()
    port, log = free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("ILP_STATE", "ILP_ROLE", "ILP_WARM_UP_TOKEN")}
    command = [sys.executable, "-m", "ilp", "--warehouse", str(warehouse), "serve", "--port", str(port)]
    with open(log, "w") as out:
        server = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url, helpers = f"http://127.0.0.1:{port}", []
    try:
        started = wait_for_round(log, first)
        assert "sign-in: local" in read_log(log)
        every_visit = sum(len(access.pages_for(role)) for role in access.ROLES)
        assert (int(started.group(2)), int(started.group(3))) == (every_visit, len(access.ROLES))
        assert "problems" not in started.group(5), started.group(0)  # every page drew its title, past sign-in

        # The audit log has the round (snapshot, pages, roles), and no page views for its visits.
        audit = state.audit_log(limit=None)
        rounds = audit[audit.action == "cache_warm_up"]
        assert len(rounds) == 1 and rounds.data_version.iloc[0] == first
        parameters = rounds.parameters.iloc[0]
        parameters = json.loads(parameters) if isinstance(parameters, str) else parameters
        assert parameters["pages"] == sorted(page.key for page in access.PAGES)
        assert parameters["roles"] == sorted(access.ROLES) and parameters["problems"] == []
        assert set(audit.action) == {"user_add", "cache_warm_up"}, "the warm-up's visits wrote page views"

        # Without this run's token a bare session is an anonymous visitor: the sign-in page, whatever it asks.
        for headers in ({HEADER: TOKEN}, None):
            with RawSession(url, headers) as session:
                elements = session.run("role=analyst", "trends")
            found = problems(elements, "Trends and forecasts")
            assert found and "Sign in" in found[-1], found

        # This run's token (from the server's environment, which only its user may read) does let a session in
        # from this machine; through the README's haproxy configuration, which drops the header, it does not.
        token = _environment(server.pid)[TOKEN_VARIABLE]
        with RawSession(url, {HEADER: token}) as session:
            assert problems(session.run("role=analyst", "trends"), "Trends and forecasts") == []
        if shutil.which("haproxy"):
            sys.path.insert(0, str(REPO / "benchmarks"))
            from browser import Proxy

            proxy = Proxy([SimpleNamespace(port=port)], tmp_path)
            try:
                with RawSession(proxy.url, {HEADER: token}) as session:
                    found = problems(session.run("role=analyst", "trends"), "Trends and forecasts")
                assert found and "Sign in" in found[-1], found
            finally:
                proxy.stop()

        # A new snapshot (any write) is warmed too, without a restart; a write that goes on to store the pages'
        # analyses in a second snapshot (as on a large warehouse) is warmed once, at that second snapshot. The
        # analyses are made to take 8 s, so that the first snapshot is current long enough to be warmed in error.
        monkeypatch.setenv("ILP_STORE_ANALYSES_FROM", "0")
        store = stored_analyses.store
        monkeypatch.setattr(stored_analyses, "store", lambda con, today=None: time.sleep(8) or store(con, today))
        with Warehouse(warehouse).write(kind="real", note="test: a new snapshot for the warm-up") as con:
            con.execute("SELECT 1")
        versions = [path.stem for path in Warehouse(warehouse).snapshots()]
        data_only, second = versions[-2], versions[-1]
        assert second == Warehouse(warehouse).current_version() and first not in (data_only, second)
        again = wait_for_round(log, second)
        assert "problems" not in again.group(5), again.group(0)
        assert data_only not in [match.group(1) for match in WARMED.finditer(read_log(log))]

        # The helper ends with the server (its parent), not only when its process group is killed.
        helpers += children(server.pid)
        assert helpers, "ilp serve started no warm-up process beside the server"
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_state(pid) not in ("gone", "Z") for pid in helpers):
            time.sleep(0.5)
        alive = [pid for pid in helpers if _state(pid) not in ("gone", "Z")]
        assert not alive, f"the warm-up outlived its server: {alive}"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        for pid in helpers:
            if _state(pid) not in ("gone", "Z"):
                os.kill(pid, signal.SIGKILL)


def _environment(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace")
    return dict(item.split("=", 1) for item in text.split("\0") if "=" in item)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_write_in_progress_is_seen_by_a_reader_without_waiting(tmp_path):
    warehouse = Warehouse(tmp_path / "w")
    assert not warehouse.write_in_progress()  # never written: no lock file
    warehouse.directory.mkdir()
    with warehouse._writer_lock():
        assert warehouse.write_in_progress()
    assert not warehouse.write_in_progress()  # and the probe left no lock behind
    with warehouse._writer_lock():
        pass


@pytest.mark.e2e
def test_ilp_serve_finds_a_relative_warehouse_from_any_folder(demo_warehouse, tmp_path):
    """`ilp --warehouse NAME serve` from the folder holding NAME serves that warehouse (the server runs from
    the project folder, so the path is made absolute first)."""
    port, log = free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("ILP_STATE", "ILP_ROLE", "ILP_WAREHOUSE")}
    env["ILP_STATE"] = str(tmp_path / "state.sqlite")
    command = [sys.executable, "-m", "ilp", "--warehouse", demo_warehouse.name, "serve", "--port", str(port)]
    with open(log, "w") as out:
        server = subprocess.Popen(
            command + ["--no-warm-up"],
            cwd=demo_warehouse.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not healthy(url):
            assert server.poll() is None and time.monotonic() < deadline, read_log(log)
            time.sleep(0.25)
        with RawSession(url) as session:
            assert problems(session.run("role=analyst", "trends"), "Trends and forecasts") == [], read_log(log)
        assert "ilp warm-up" not in read_log(log)  # --no-warm-up
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_the_workbench_cannot_read_the_servers_environment(demo_warehouse, monkeypatch):
    """The token lives in the server's environment; the analysts' SQL runs in that process. DuckDB's CLI has a
    getenv(); the hardened connection must not (nor any way to read a file such as /proc/self/environ)."""
    import duckdb

    from ilp.analytics import workbench

    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    con = workbench.hardened_connection(Warehouse(demo_warehouse).require_current())
    try:
        for sql in (
            f"SELECT getenv('{TOKEN_VARIABLE}')",
            "SELECT content FROM read_text('/proc/self/environ')",
            "SELECT * FROM read_csv('/proc/self/environ')",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql).fetchall()
    finally:
        con.close()
