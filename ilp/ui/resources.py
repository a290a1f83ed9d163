"""Process-wide resources every session of the dashboard shares, held outside Streamlit's caches.

``st.cache_resource`` is emptied for the whole process by ``st.cache_resource.clear()`` and by the
``clear_cache`` message any browser can send (Streamlit 1.67, ``AppSession._handle_clear_cache_request``),
and it closes what it held (``on_release``). A read-only DuckDB connection closed that way takes every
cursor made from it down too ("Connection already closed"), in whichever session was using one. So the
snapshot connections and the app-state object live here, in plain module-level registries that nothing
but this module closes:

- ``SnapshotConnections``: one read-only connection per snapshot file, a fresh cursor per use (DuckDB
  refuses concurrent calls on one connection). A connection found closed is reopened. The newest
  ``keep`` stay open; an older one is closed only when it is not the current snapshot and no cursor
  made from it is in use.
- ``shared_state(path)``: one ``State`` per app-state file, so every session appends to the audit log's
  hash chain through the same object (and its lock).

Never imports streamlit: the registries are tested on their own (tests/test_server_holes.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ilp.state import State
from ilp.warehouse import KEEP_SNAPSHOTS, connect_read_only

log = logging.getLogger(__name__)


@dataclass
class _Open:
    connection: duckdb.DuckDBPyConnection
    in_use: int = 0  # cursors handed out by reading() and not yet given back


class SnapshotConnections:
    """Read-only DuckDB connections keyed by snapshot path; thread-safe."""

    def __init__(self, keep: int = KEEP_SNAPSHOTS, current: Callable[[], Path | None] | None = None):
        self.keep = keep
        self._current = current or (lambda: None)
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}  # opening order: oldest first

    def _entry(self, path: str) -> tuple[_Open, duckdb.DuckDBPyConnection]:
        """The open entry for ``path`` and a new cursor on it; opens (or reopens) the file. Hold the lock."""
        entry = self._open.get(path)
        if entry is not None:
            try:
                return entry, entry.connection.cursor()
            except duckdb.ConnectionException:  # closed by someone else: open it again
                log.warning("The connection to %s was closed; reopening it.", path)
                del self._open[path]
        entry = _Open(connect_read_only(Path(path)))  # with the snapshot's segments attached
        self._open[path] = entry
        self._close_old()
        return entry, entry.connection.cursor()

    def _close_old(self) -> None:
        """Close the connections older than the newest ``keep`` (by opening) that are neither the current
        snapshot nor in use. Hold the lock."""
        excess = len(self._open) - self.keep
        if excess <= 0:
            return
        try:
            current = self._current()
        except Exception:  # no CURRENT to read: treat every snapshot as possibly current, close none
            return
        for path, entry in list(self._open.items())[:excess]:
            if entry.in_use or (current is not None and Path(path) == Path(current)):
                continue
            del self._open[path]
            with contextlib.suppress(duckdb.Error):
                entry.connection.close()

    def cursor(self, snapshot_path: str | Path) -> duckdb.DuckDBPyConnection:
        """A new cursor for a caller that closes it itself (untracked: prefer ``reading``)."""
        with self._lock:
            return self._entry(str(snapshot_path))[1]

    @contextlib.contextmanager
    def reading(self, snapshot_path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new cursor on the snapshot's connection for the ``with`` block; closed after it. The connection
        is not closed while the block runs."""
        with self._lock:
            entry, cursor = self._entry(str(snapshot_path))
            entry.in_use += 1
        try:
            yield cursor
        finally:
            with contextlib.suppress(duckdb.Error):
                cursor.close()
            with self._lock:
                entry.in_use -= 1
                self._close_old()

    def paths(self) -> list[str]:
        with self._lock:
            return list(self._open)

    def close_all(self) -> None:
        """Close every connection (tests; a process that stops serving)."""
        with self._lock:
            entries, self._open = list(self._open.values()), {}
        for entry in entries:
            with contextlib.suppress(duckdb.Error):
                entry.connection.close()


_states: dict[str, State] = {}
_states_lock = threading.Lock()


def shared_state(path: str | Path) -> State:
    """The one ``State`` of this process for the app-state file at ``path``."""
    key = str(path)
    with _states_lock:
        found = _states.get(key)
        if found is None:
            found = _states[key] = State(key)
        return found
