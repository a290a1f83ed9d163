"""Analyst workbench: read-only SQL over the current snapshot, a results table, a quick chart and a
formula-safe CSV download. The SQL runs on a hardened connection (ilp.analytics.workbench) whose row,
byte and time limits cover the whole path to the screen; every query is audited with its text, outcome
and row count, and the download is audited when it is built (ilp.ui.downloads)."""

import time

import streamlit as st

from ilp.analytics import workbench
from ilp.ui.context import gate
from ilp.ui.downloads import csv_download

page = gate("workbench")

st.title("Analyst workbench")
st.caption(
    f"Read-only SQL (DuckDB dialect) over snapshot **{page.version}**. One SELECT at a time; nothing can be "
    f"written, attached, copied to or from files, installed or re-configured. Results stop at "
    f"{workbench.ROW_LIMIT:,} rows or {workbench.RESULT_BYTE_LIMIT // 1024 // 1024} MB and queries at "
    f"{workbench.TIME_LIMIT_S:g} seconds. Every query is recorded "
    "in the audit log. The sidebar filters do not apply here: write them into the query."
)

with st.expander("Tables and columns in this snapshot"):
    schema = workbench.schema(str(page.snapshot))
    table = st.selectbox(
        "Table",
        schema["table"].unique().tolist(),
        key="workbench_schema_table",
        index=schema["table"].unique().tolist().index("incidents") if "incidents" in set(schema["table"]) else 0,
    )
    chosen = schema[schema["table"] == table]
    st.caption(f"**{table}**: {int(chosen['rows'].iloc[0]):,} rows, {len(chosen)} columns.")
    st.dataframe(
        chosen[["column", "type"]], width="stretch", hide_index=True, column_config={"column": "Column", "type": "Type"}
    )
    st.caption(
        "Offence categories are codes in incidents.offense_category; join offence_categories for labels. "
        "For harm, read incidents through the table macro `incident_harm('cchi', '2016')` (one column `harm` "
        "per incident, proactive offences 0): the one definition every page uses. See the README's warehouse schema."
    )


def use_example() -> None:
    st.session_state["workbench_sql"] = workbench.EXAMPLE_QUERIES[st.session_state["workbench_example"]]


st.selectbox(
    "Start from an example",
    list(workbench.EXAMPLE_QUERIES),
    index=None,
    key="workbench_example",
    placeholder="Choose an example query…",
    on_change=use_example,
)

with st.form("workbench_form"):
    sql = st.text_area(
        "SQL",
        key="workbench_sql",
        height=180,
        placeholder="SELECT offense_category, count(*) AS incidents FROM incidents GROUP BY ALL",
    )
    run = st.form_submit_button("Run query", type="primary", icon=":material/play_arrow:", key="workbench_run")

OUTCOMES = {
    workbench.QueryRefused: "refused",
    workbench.QueryTimedOut: "timed out",
    workbench.ResultTooLarge: "too large",
}

if run:
    # The previous result goes first: a session never holds two, and a failed query leaves none.
    st.session_state.pop("workbench_result", None)
    started = time.perf_counter()
    audited = {"sql": sql, "outcome": "failed", "rows": 0}
    try:
        result = workbench.run_query(page.snapshot, sql)
    except workbench.WorkbenchError as error:
        audited["outcome"] = next((v for k, v in OUTCOMES.items() if isinstance(error, k)), "error")
        st.error(
            str(error), icon=":material/block:" if isinstance(error, workbench.QueryRefused) else ":material/error:"
        )
    else:
        st.session_state["workbench_result"] = (page.version, sql, result)
        audited.update(outcome="ok", rows=len(result.frame), truncated=result.truncated)
    finally:
        # after the run, so the entry has the row count; written whatever happened
        page.audit("workbench_query", {**audited, "seconds": round(time.perf_counter() - started, 2)})

stored = st.session_state.get("workbench_result")
if stored:
    version, ran_sql, result = stored
    frame = result.frame
    st.subheader("Result")
    if version != page.version:
        st.warning(f"This result is from snapshot {version}; the current snapshot is {page.version}. Run it again.")
    (st.warning if result.truncated else st.caption)(result.summary)
    st.dataframe(frame, width="stretch", hide_index=True)
    csv_download(page, "Download CSV", frame, "workbench_result.csv", key="workbench_download", sql=ran_sql)

    if len(frame.columns) >= 2 and len(frame):
        st.subheader("Quick chart")
        columns = frame.columns.tolist()
        numeric = frame.select_dtypes("number").columns.tolist()
        c1, c2, c3, c4 = st.columns(4)
        kind = c1.selectbox("Chart type", workbench.CHART_KINDS, key="workbench_chart_kind")
        x = c2.selectbox("x", columns, key="workbench_chart_x")
        y_options = numeric or columns
        y_default = next((c for c in y_options if c != x), y_options[0])
        y = c3.selectbox("y", y_options, index=y_options.index(y_default), key="workbench_chart_y")
        colour = c4.selectbox(
            "Colour", [None, *columns], format_func=lambda c: "(none)" if c is None else c, key="workbench_chart_colour"
        )
        t1, t2 = st.columns([3, 1])
        title = t1.text_input("Chart title (say what it shows)", key="workbench_chart_title", placeholder=f"{y} by {x}")
        unit = t2.text_input("Unit of y", key="workbench_chart_unit", placeholder="e.g. incidents per week")
        try:
            fig = workbench.chart_figure(frame, kind=kind, x=x, y=y, colour=colour, title=title or None, y_unit=unit)
        except (ValueError, TypeError) as error:
            st.info(f"Cannot draw that chart: {error}")
        else:
            st.plotly_chart(fig, width="stretch", theme="streamlit")
        st.caption(
            f"Ad-hoc chart of the query above. Data: snapshot {page.version}; harm weighting only if the "
            "query applies one." + (" Only the first rows shown above are charted." if result.truncated else "")
        )
