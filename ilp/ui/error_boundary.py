"""A page that fails says so in its own words: never Streamlit's exception box, which shows the error's
type and offers links to outside search sites (wrong for an offline product, and no help to a commander).

``with error_boundary("Command brief"):`` around a page's body catches any unexpected exception, writes
it with its traceback to the server's log under a short reference, and shows ``st.error`` naming the
page, what to do, and the reference an analyst can find in the log. Streamlit's own control flow
(``st.stop``, ``st.rerun``, ``st.switch_page``) raises BaseException subclasses and passes through.
``client.showErrorDetails = "none"`` in .streamlit/config.toml is the second line of defence.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import streamlit as st
from streamlit.logger import get_logger

LOGGER = get_logger("ilp.dashboard")


def failure_message(what: str, reference: str) -> str:
    """The words a user sees when ``what`` (a page's title) failed."""
    return (
        f"**{what}** could not be shown: something unexpected went wrong while preparing it. "
        "Try again, or change the filters in the sidebar. If it happens again, tell your analyst or "
        f"administrator: the details are in the server log, reference **{reference}**."
    )


@contextlib.contextmanager
def error_boundary(what: str) -> Iterator[None]:
    """Run the block; on an unexpected exception, log it with its traceback and show a clear message."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - the boundary: everything unexpected ends here
        reference = uuid.uuid4().hex[:8]
        LOGGER.error("%s failed (reference %s)", what, reference, exc_info=error)
        st.error(failure_message(what, reference), icon=":material/error:")
