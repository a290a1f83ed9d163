"""Forecast scoreboard: every issued hot-spot forecast, scored once its week has data, against the two naive
baselines (last year's map and the last 4 weeks' map) on the same week and the same number of cells.

Forecasts are recorded by `ilp forecast hotspots`, by `ilp ingest` (the week after the new data) and by a
downloaded patrol plan; `ilp score` (run by `ilp ingest` too) scores them. Reads app state only.
"""

import plotly.graph_objects as go
import streamlit as st

from ilp.analytics import hotspot_forecast as forecasting
from ilp.ui.context import gate, state

page = gate("forecast_scoreboard")

st.title("Forecast scoreboard: do the forecasts beat last year's map?")
views = st.columns([1, 1.4, 1, 4])
views[0].page_link("pages/deployment.py", label="History")
views[1].page_link("pages/deployment_forecast.py", label="Next week (forecast)")
views[2].page_link("pages/forecast_scoreboard.py", label="Scoreboard")

scores = state().forecast_scoreboard()
hours = forecasting.ShiftHours()
if scores.empty:
    waiting = len(state().forecasts(unscored=True))
    st.info(
        "No forecast has been scored yet. "
        + (
            f"{waiting} recorded forecast(s) wait for their week's data. "
            if waiting
            else "None has been recorded yet. "
        )
        + "Forecasts are recorded by `ilp forecast hotspots`, by every `ilp ingest` (for the week after the new "
        "data) and by each patrol plan downloaded from the Next-week view; `ilp score` (run by `ilp ingest` too) "
        "scores each once its week has data.",
        icon=":material/scoreboard:",
    )
else:
    scores = scores.assign(
        scope=scores["category"].fillna("all offences").map(lambda c: page.info.category_label(c, all_label=c))
        + " · "
        + scores["district"].fillna("all districts").map(lambda d: page.info.district_name(d) if d else d)
        + " · "
        + scores["measure"]
        + "-weighted"
    )
    controls = st.columns([2, 3, 2])
    shifts = [s for s in forecasting.SHIFT_SCOPES if s in set(scores["shift"])]
    shift = controls[0].selectbox("Shift", shifts, format_func=hours.label, key="scoreboard_shift")
    scopes = sorted(set(scores.loc[scores["shift"] == shift, "scope"]))
    scope = controls[1].selectbox("Forecasts of", scopes, key="scoreboard_scope")
    chosen = scores[(scores["shift"] == shift) & (scores["scope"] == scope)]
    coverages = sorted(set(chosen["coverage"].round(6)))
    default = forecasting.SELECTION_COVERAGE if forecasting.SELECTION_COVERAGE in coverages else coverages[0]
    coverage = controls[2].selectbox(
        "Area flagged",
        coverages,
        index=coverages.index(default),
        format_func="{:.1%}".format,
        key="scoreboard_coverage",
        help="Forecasts from the CLI and ingest are scored at 1%, 5% and 10% of the area; a downloaded plan at "
        "its own size.",
    )
    board = forecasting.scoreboard(chosen, coverage)
    issued = board[board["map"] == "issued"]
    naive = board[board["map"] == "naive_last_year"]
    if len(issued):
        last, last_naive = issued.iloc[-1], naive.iloc[-1] if len(naive) else None
        ratio = last["running_pai"] / last_naive["running_pai"] if last_naive is not None else float("nan")
        st.subheader(
            f"Over {int(last['weeks'])} scored weeks the issued maps found "
            + (
                f"{ratio:.1f}x the harm per km² that last year's map would have"
                if ratio == ratio and ratio >= 1.05
                else (
                    "about what last year's map would have"
                    if ratio == ratio and ratio > 0.95
                    else "less than last year's map would have"
                )
            )
            + f" (mean PAI {last['running_pai']:.2f}"
            + (f" against {last_naive['running_pai']:.2f})" if last_naive is not None else ")")
        )
        metrics = st.columns(3)
        interval = (
            f"95% interval {last['running_low']:.2f}–{last['running_high']:.2f}"
            if last["weeks"] > 1
            else "one week: no interval yet"
        )
        metrics[0].metric("Issued forecasts: mean PAI", f"{last['running_pai']:.2f}", help=interval)
        metrics[1].metric(
            "Last year's map: mean PAI", f"{last_naive['running_pai']:.2f}" if last_naive is not None else "—"
        )
        metrics[2].metric("Issued forecasts: mean hit rate", f"{issued['hit_rate'].mean():.1%}")
        st.caption(f"Issued forecasts' running mean PAI: {interval}.")

    labels = {
        "issued": "Issued forecast",
        "naive_last_year": "Last year's map",
        "naive_last_4_weeks": "Last 4 weeks' map",
    }
    colours = {"issued": "#b2182b", "naive_last_year": "#2166ac", "naive_last_4_weeks": "#7f7f7f"}
    figure = go.Figure()
    for name, group in board.groupby("map", sort=False):
        if name == "issued" and len(group) > 1:
            figure.add_trace(
                go.Scatter(
                    x=list(group["week"]) + list(group["week"])[::-1],
                    y=list(group["running_high"]) + list(group["running_low"])[::-1],
                    fill="toself",
                    fillcolor="rgba(178,24,43,0.12)",
                    line={"width": 0},
                    name="Issued: running mean, 95% interval",
                    hoverinfo="skip",
                )
            )
            figure.add_trace(
                go.Scatter(
                    x=group["week"],
                    y=group["running_pai"],
                    name="Issued: running mean",
                    line={"color": colours[name], "dash": "dot"},
                )
            )
        figure.add_trace(
            go.Scatter(
                x=group["week"],
                y=group["pai"],
                mode="lines+markers",
                name=labels.get(name, name),
                line={"color": colours.get(name)},
                customdata=group[["method", "hit_rate"]],
                hovertemplate="%{x|%d %b %Y}: PAI %{y:.2f}, hit rate %{customdata[1]:.1%} (%{customdata[0]})"
                "<extra></extra>",
            )
        )
    figure.update_layout(
        title=f"PAI week by week, {hours.label(shift).lower()}, {scope}, {coverage:.1%} of the area flagged",
        xaxis_title="Week forecast (Monday)",
        yaxis_title="PAI (hit rate / area share)",
        height=420,
        margin=dict(t=60, b=40),
    )
    st.plotly_chart(figure, width="stretch", theme="streamlit")
    st.caption(
        "Each point is the first forecast issued for its week (re-issues of the same week are left out), scored "
        "on that week's incidents; the baselines are scored on the same week with the same number of cells. "
        "PAI above the baselines' means the method earns its place."
    )
    st.dataframe(
        board.assign(map=board["map"].map(labels)),
        width="stretch",
        hide_index=True,
        column_config={
            "week": st.column_config.DateColumn("Week", format="DD MMM YYYY"),
            "map": st.column_config.TextColumn("Map"),
            "method": st.column_config.TextColumn("Method"),
            "coverage": st.column_config.NumberColumn("Area flagged", format="percent"),
            "hit_rate": st.column_config.NumberColumn("Hit rate", format="percent"),
            "pai": st.column_config.NumberColumn("PAI", format="%.2f"),
            "running_pai": st.column_config.NumberColumn("Running mean PAI", format="%.2f"),
            "running_low": st.column_config.NumberColumn("95% low", format="%.2f"),
            "running_high": st.column_config.NumberColumn("95% high", format="%.2f"),
            "weeks": st.column_config.NumberColumn("Weeks", format="%d"),
        },
    )
st.caption("From app state: forecasts recorded and scored in this warehouse.")
