"""Outcomes: harm-reduction metrics instead of arrest counts, each with a definition, its current value,
its trend and honest uncertainty. Every role may see it. The measures and what each role may see of them
(city leaders: aggregates only, small counts shown as "<threshold", rates from them blanked, no
person-level data, no locations) are in ilp.analytics.outcome_measures; this page only draws them.
"""

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ilp.analytics import evaluation, outcome_measures, outcomes
from ilp.ui import context as ui
from ilp.ui.context import gate, state

page = gate("outcomes")
filters = page.filters

NOT_AVAILABLE = ":material/do_not_disturb_on:"
NOTHING = ":material/info:"

district_label = page.info.district_name(filters.district) if filters.district else "All districts"
last_data_day = page.info.last_day
window = outcomes.reporting_window(filters.end, page.info.first_day, last_data_day)
context = outcome_measures.OutcomeContext.load(
    page.query,
    window=window,
    last_data_day=last_data_day,
    scope=district_label,
    district=filters.district,
    category_label=page.info.category_label(filters.category) if filters.category else None,
    harm_unit=page.harm.unit_name,
    harm_unit_short=page.harm.unit_short,
)

st.title("Outcomes: is harm going down, and at what cost?")
st.caption(
    f"{district_label} · calendar months {window.month_from:%b %Y} – {window.last_month:%b %Y} (the last complete "
    f"month on or before the period chosen in the sidebar). The offence-category filter applies to the harm rate "
    f"only. Shaded bands are 95% intervals: where they overlap, a change may be noise."
)
if role_note := outcome_measures.role_note(page.role):
    st.caption(role_note)


def trend_chart(
    frame: pd.DataFrame,
    y: str,
    lo: str,
    hi: str,
    title: str,
    y_title: str,
    *,
    x: str = "month",
    x_title: str = "Month",
    scale: float = 1.0,
    provisional: pd.Series | None = None,
    name: str = "",
    colour: str = "#0072B2",
    legend: bool | None = None,
    figure: go.Figure | None = None,
) -> go.Figure:
    """A line with its 95% band; ``provisional`` points drawn hollow and dashed."""
    figure = figure or go.Figure()
    data = frame.dropna(subset=[y])
    xs = pd.concat([data[x], data[x].iloc[::-1]])
    band = pd.concat([data[hi], data[lo].iloc[::-1]]) * scale
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=band,
            fill="toself",
            fillcolor=colour,
            opacity=0.18,
            line=dict(width=0),
            hoverinfo="skip",
            showlegend=False,
            name=f"{name} 95% interval",
        )
    )
    settled = data if provisional is None else data[~provisional.loc[data.index].to_numpy(dtype=bool)]
    figure.add_trace(
        go.Scatter(
            x=settled[x],
            y=settled[y] * scale,
            mode="lines+markers",
            name=name or y_title,
            line=dict(color=colour),
            marker=dict(size=5),
        )
    )
    if provisional is not None and provisional.any():
        recent = data[provisional.loc[data.index].to_numpy(dtype=bool)]
        joined = pd.concat([settled.tail(1), recent])
        figure.add_trace(
            go.Scatter(
                x=joined[x],
                y=joined[y] * scale,
                mode="lines+markers",
                name="not yet settled",
                line=dict(color=colour, dash="dot"),
                marker=dict(size=7, symbol="circle-open"),
            )
        )
    if legend is None:
        legend = name != "" or (provisional is not None and bool(provisional.any()))
    figure.update_layout(
        title=dict(text=title, font=dict(size=15)),
        height=290,
        margin=dict(t=50, b=40, l=60, r=10),
        xaxis_title=x_title,
        yaxis_title=y_title,
        showlegend=legend,
        legend=dict(orientation="h", y=-0.3),
    )
    return figure


def chart_figure(chart: outcome_measures.ChartView) -> go.Figure:
    """A measure's chart: its traces with their bands, over grey lines if it has them."""
    figure = None
    if chart.lines is not None:  # grey background lines, one per name (e.g. each district)
        figure = px.line(
            chart.lines, x=chart.x, y="pct", line_group="name", hover_name="name", color_discrete_sequence=["#9aa5b1"]
        )
        figure.update_traces(line=dict(width=1), hovertemplate="%{hovertext}: %{y:.0f}%<extra></extra>")
    for trace in chart.traces:
        figure = trend_chart(
            chart.frame,
            trace.y,
            trace.lo,
            trace.hi,
            chart.title,
            chart.y_title,
            x=chart.x,
            x_title=chart.x_title,
            scale=chart.scale,
            provisional=chart.provisional,
            name=trace.name,
            colour=trace.colour,
            legend=chart.legend,
            figure=figure,
        )
    return figure


def draw_chart(chart: outcome_measures.ChartView) -> None:
    # built once per distinct chart, for every session (ilp.ui.context.figure)
    st.plotly_chart(ui.figure(chart_figure, chart=chart), width="stretch", theme="streamlit")
    st.caption(page.source_note() if chart.uses_harm else f"Data: snapshot {page.version} (no harm weighting).")
    if chart.note:
        st.caption(chart.note)


def draw_table(table: outcome_measures.TableView) -> None:
    config = {}
    for name, column in table.columns.items():
        if column.kind == "month":
            config[name] = st.column_config.DateColumn(column.label, format=column.format)
        elif column.kind == "count":
            config[name] = st.column_config.NumberColumn(column.label, format="localized", help=column.help)
        elif column.kind == "text":
            config[name] = st.column_config.TextColumn(column.label, help=column.help)
        else:
            config[name] = st.column_config.NumberColumn(column.label, format=column.format, help=column.help)
    if table.monthly:
        with st.expander("Monthly figures"):
            st.dataframe(
                table.frame,
                width="stretch",
                hide_index=True,
                placeholder="—",
                column_order=list(table.columns),
                column_config=config,
            )
    else:
        st.dataframe(
            table.frame, width="stretch", hide_index=True, column_order=list(table.columns), column_config=config
        )


# The measures, then harm prevented by taskings (each evaluated against an untreated comparison area).
store = state()
recorded = evaluation.recorded_comparisons(store)
tasking_evaluations = evaluation.evaluate_taskings(
    page.analysis,
    store.taskings(),
    recorded=recorded,
    harm_index=page.harm.name,
    harm_version=page.harm.version,
    quarter_before=window.month_to,
)
evaluation.record_comparisons(store, tasking_evaluations, user=page.user, role=page.role, recorded=recorded)
taskings_view = evaluation.taskings_outcome(
    tasking_evaluations,
    page.query,
    role=page.role,
    month_to=window.month_to,
    harm_index=page.harm.name,
    harm_version=page.harm.version,
    harm_unit=page.harm.unit_name,
    harm_unit_short=page.harm.unit_short,
)
measure_views = page.derived(outcome_measures.measures, context=context, role=page.role)
for view in [*measure_views, taskings_view]:
    with st.container(border=True):
        st.subheader(view.title)
        st.markdown(view.definition)
        if view.unavailable:
            st.info(view.unavailable, icon=NOT_AVAILABLE)
            continue
        if view.warning:
            st.warning(view.warning, icon=":material/group_off:")
        if view.notice and not view.notice_beside:
            st.info(view.notice, icon=NOTHING)
        else:
            left, right = st.columns([2, 3])
            for metric in view.metrics:
                left.metric(
                    metric.label, metric.value, delta=metric.delta, delta_color=metric.delta_color, help=metric.help
                )
            if view.caption:
                left.caption(view.caption)
            if view.chart:
                with right:
                    draw_chart(view.chart)
            if view.notice:
                right.info(view.notice, icon=NOTHING)
        if view.table:
            draw_table(view.table)
