"""What a test session builds once, shared by the run's pytest-xdist workers (``make test`` runs two)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder ``name`` made by ``build(folder)`` once per test run, shared by the run's xdist workers.

    ``make test`` runs the suite in two worker processes (pytest-xdist); a session fixture runs in each, so
    what it builds would be built twice. Here the first worker to ask builds it in the run's shared temporary
    folder under a file lock while the other waits, then both read it. Without xdist it is the session's own
    temporary folder. Readers must not write to what is returned (copy it first)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    root = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's own
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that died mid-build left a partial folder
            folder.mkdir()
            build(folder)
            done.touch()
    return folder
