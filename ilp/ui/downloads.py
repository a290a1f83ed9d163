"""The one way table data leaves the dashboard as a file: an audited, formula-neutralised CSV download.

Tables show no download or copy action of their own (``client.disableDataExport`` in
.streamlit/config.toml). A download button here is deferred: the CSV is built only when the button is
clicked (on Streamlit's download thread, ``on_click="ignore"`` so the page does not rerun), written to
the audit log as an ``export`` with what and how many rows, and stored for that browser only briefly
(ilp.ui.server_guards). Nothing is stored on the server before the click.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from ilp.export import csv_bytes

FORMULA_HELP = "Text that a spreadsheet would run as a formula (starting =, +, -, @) is prefixed with an apostrophe."


def audited_csv(audit: Callable[[str, dict], None], frame: pd.DataFrame, what: str, **details) -> Callable[[], bytes]:
    """Deferred ``data=`` for ``st.download_button``: on the click, the formula-safe CSV of ``frame``, audited
    as ``audit("export", {"what": what, "rows": ..., **details})`` once it is built."""

    def render() -> bytes:
        data = csv_bytes(frame)
        audit("export", {"what": what, "rows": len(frame), **details})
        return data

    return render


def csv_download(
    page, label: str, frame: pd.DataFrame, file_name: str, *, key: str, help: str = FORMULA_HELP, **details
):
    """An audited, formula-safe CSV download button for ``frame`` on ``page`` (a PageContext)."""
    return st.download_button(
        label,
        data=audited_csv(page.audit, frame, file_name, **details),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        key=key,
        on_click="ignore",
        help=help,
    )
