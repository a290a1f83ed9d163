"""Two ways Streamlit (1.67) lets one client reach what belongs to every session, closed in the server.

Both are replacements of one Streamlit method each, installed once per process when ilp.ui.context is
imported (every page imports it). tests/test_server_holes.py pins the Streamlit code they rely on, so an
upgrade that renames or moves it fails the suite; ``install`` itself refuses to run half-installed.

1. **Clearing every session's caches.** The ``clear_cache`` BackMsg (the toolbar's "Clear cache", which
   ``client.toolbarMode = "minimal"`` already hides) reaches ``AppSession._handle_clear_cache_request``,
   which clears ``st.cache_data`` and ``st.cache_resource`` for the whole process. Any websocket client
   can send it. The replacement clears nothing: it logs the attempt and writes it to the audit log once
   per session (action ``clear_cache_refused``). The shared connections and app state do not live in
   Streamlit's caches anyway (ilp.ui.resources); this keeps one client from emptying the query caches
   of every other user at will.

2. **Download files served to anyone who has the URL.** ``/media/<id>`` serves a stored file to any
   client, with no session check. Every download in the dashboard is deferred (``data=`` a callable,
   ``on_click="ignore"``): nothing is stored before the click. On the click Streamlit runs the callable
   (``MediaFileManager.execute_deferred``), stores the bytes and returns their URL to that browser, which
   fetches it at once; Streamlit itself would keep the file until two later script runs have passed.
   The replacement deletes the file ``DOWNLOAD_LINK_SECONDS`` after it was generated, so a URL seen
   later (browser history, a proxy log, another client) fetches nothing. A response already under way
   is not cut short: it holds the bytes.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from streamlit.runtime.app_session import AppSession
from streamlit.runtime.media_file_manager import MediaFileManager

log = logging.getLogger(__name__)

DOWNLOAD_LINK_SECONDS = 10.0
CLEAR_CACHE_REFUSED = "clear_cache_refused"

_install_lock = threading.Lock()


# ------------------------------------------------------------------------------------------ clear cache
def refuse_clear_cache(self: AppSession) -> None:
    """Replacement for ``AppSession._handle_clear_cache_request``: clear nothing, record the attempt."""
    attempts = getattr(self, "_ilp_clear_cache_attempts", 0) + 1
    self._ilp_clear_cache_attempts = attempts
    if attempts > 1:
        log.debug("clear_cache refused again (session %s, attempt %d)", self.id, attempts)
        return
    context = _session_value(self, "ilp_context") or {}
    log.warning("A client asked to clear the server's caches (session %s): refused.", self.id)
    try:
        from ilp.ui.context import state  # not at import time: context imports this module

        state().record(
            user=str(context.get("user") or "(not signed in)"),
            role=context.get("role"),
            action=CLEAR_CACHE_REFUSED,
            parameters={"session": self.id},
            data_version=context.get("version"),
        )
    except Exception:  # the refusal stands even when the audit log cannot be written
        log.exception("Could not write the refused clear_cache to the audit log")


def _session_value(session: AppSession, key: str):
    try:
        state = session.session_state
        return state[key] if key in state else None
    except Exception:
        return None


# ------------------------------------------------------------------------------------------ downloads
_expiry_lock = threading.Lock()
_expiry: dict[tuple[int, str], object] = {}  # (manager, stored file id) -> token of the newest generation


def execute_deferred_then_expire(self: MediaFileManager, file_id: str) -> str:
    """Replacement for ``MediaFileManager.execute_deferred``: the same, and the stored file expires."""
    url = _STREAMLIT_EXECUTE_DEFERRED(self, file_id)
    stored_id = os.path.splitext(url.rsplit("/", 1)[-1])[0]
    token = object()
    with _expiry_lock:
        _expiry[(id(self), stored_id)] = token  # a second click on identical content extends the link
    timer = threading.Timer(DOWNLOAD_LINK_SECONDS, _expire, args=(self, stored_id, token))
    timer.daemon = True
    timer.start()
    return url


def _expire(manager: MediaFileManager, stored_id: str, token: object) -> None:
    with _expiry_lock:
        if _expiry.get((id(manager), stored_id)) is not token:
            return
        del _expiry[(id(manager), stored_id)]
    with manager._lock:
        manager._storage.delete_file(stored_id)
        manager._file_metadata.pop(stored_id, None)
    log.debug("download %s expired at %s", stored_id, time.strftime("%H:%M:%S"))


# ------------------------------------------------------------------------------------------ install
GUARDED = ((AppSession, "_handle_clear_cache_request"), (MediaFileManager, "execute_deferred"))
for _owner, _name in GUARDED:
    if not callable(getattr(_owner, _name, None)):
        raise RuntimeError(
            f"Streamlit changed: {_owner.__name__}.{_name} is gone, so ilp.ui.server_guards cannot guard it. "
            "Review the guards against this Streamlit version (tests/test_server_holes.py)."
        )
# Streamlit's own method, kept before install() replaces it (a reloaded module finds the guard already
# installed and takes the original from it).
_STREAMLIT_EXECUTE_DEFERRED = getattr(
    MediaFileManager.execute_deferred, "streamlit_original", MediaFileManager.execute_deferred
)
refuse_clear_cache.streamlit_original = getattr(
    AppSession._handle_clear_cache_request, "streamlit_original", AppSession._handle_clear_cache_request
)
execute_deferred_then_expire.streamlit_original = _STREAMLIT_EXECUTE_DEFERRED


def installed() -> bool:
    return all(hasattr(getattr(owner, name), "streamlit_original") for owner, name in GUARDED)


def install() -> None:
    """Install both replacements, once per process."""
    with _install_lock:
        if installed():
            return
        AppSession._handle_clear_cache_request = refuse_clear_cache
        MediaFileManager.execute_deferred = execute_deferred_then_expire
