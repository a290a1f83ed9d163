"""Command brief: what does the most harm this week, and what changed (commander, analyst).

Sections, top to bottom: Top threats (for now the ten highest-harm offence x beat combinations of the
last 28 days; the threat ranking with reasons, significance and "create tasking" replaces the body of
that section), this week against the prior 4-week average and the same week last year (Poisson z beside
every change), and weekly harm over the last 52 weeks.
"""

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from ilp.analytics import brief
from ilp.ui.context import gate

page = gate("brief")
f = page.filters
harm_row = page.info["harm"].query("index_name == @f.harm_index and version == @f.harm_version")
unit = brief.short_harm_unit(harm_row["unit"].iloc[0] if len(harm_row) else None)
index_tag = f"{f.harm_index.upper()} {f.harm_version}"
district_names = dict(zip(page.info["districts"]["area_id"], page.info["districts"]["name"]))
category_labels = dict(zip(page.info["categories"]["category"], page.info["categories"]["label"]))
scope = district_names.get(f.district, f.district) if f.district else "Citywide"
category_scope = category_labels.get(f.category, f.category) if f.category else "all offence categories"
week_text = f"{f.week:%d %b %Y} – {f.week + dt.timedelta(days=6):%d %b %Y}"
PROACTIVE_NOTE = ("Harm excludes proactive categories (drug possession and trafficking, weapons possession, "
                  "vehicle offences): their counts measure police activity, not harm, as in the CCHI.")

st.title("Command brief")
st.markdown(f"**Week {week_text}** · {scope} · {category_scope}")

# ------------------------------------------------------------------------------------------ Top threats
# The threat-ranking issue replaces the body of this container (ranking, reasons, significance,
# "create tasking"); it keeps the key so the section stays first on the page.
with st.container(border=True, key="top_threats"):
    st.header("Top threats", anchor="top-threats")
    st.caption(
        "Threat ranking (reasons, significance, *create tasking*) is not built yet. Until it is, this is the "
        "ten highest-harm offence × beat combinations over the 28 days ending with the selected week."
    )
    top = brief.top_harm_combinations(page.query("brief_top_combinations"))
    if top.empty:
        st.info(f"No harm recorded in the 28 days to {f.week + dt.timedelta(days=6):%d %b %Y} for this selection.")
    else:
        st.dataframe(
            top.round({"harm": 0}), width="stretch", hide_index=True,
            column_config={
                "rank": st.column_config.NumberColumn("Rank", width="small"),
                "offence": st.column_config.TextColumn("Offence"),
                "beat": st.column_config.TextColumn("Beat"),
                "district": st.column_config.TextColumn("District"),
                "harm": st.column_config.NumberColumn(f"Harm, 28 days ({unit})", format="localized"),
                "incidents": st.column_config.NumberColumn("Incidents, 28 days", format="localized"),
                "share_of_district_harm": st.column_config.ProgressColumn(
                    "Share of the district's harm", format="percent", min_value=0.0, max_value=1.0,
                    help="This offence in this beat as a share of all harm in its district over the same 28 days."),
            },
        )
    st.caption(f"{PROACTIVE_NOTE} {page.source_note()}")

# ------------------------------------------------------------------------------------------ this week
st.header("This week against its baselines")
changes = brief.district_changes(page.query("brief_district_week"))
row = brief.headline(changes, f.district)


def metric(column, label: str, measure: str, baseline: str, baseline_text: str, value_unit: str) -> None:
    current, base = row[measure], row[f"{baseline}_{measure}"]
    z = row[f"{baseline}_{measure}_z"]
    column.metric(
        label, f"{current:,.0f}{value_unit}",
        delta=brief.change_text(current, base, z, row[f"{baseline}_{measure}_pct"]),
        delta_color="inverse" if abs(z) >= brief.WORTH_A_LOOK else "gray",
        delta_description=f"vs {baseline_text} ({base:,.0f}): {row[f'{baseline}_{measure}_reading']}",
        help=f"Baseline: the {'mean of the 4 weeks before the selected week' if baseline == 'prior_4wk' else 'week starting 52 weeks (364 days) earlier'}.",
        border=True,
    )


harm_columns = st.columns(2)
metric(harm_columns[0], f"Harm this week, {row['area']}", "harm", "prior_4wk", "4-week average", f" {unit}")
metric(harm_columns[1], f"Harm this week, {row['area']}", "harm", "last_year", "last year", f" {unit}")
incident_columns = st.columns(2)
metric(incident_columns[0], f"Incidents this week, {row['area']}", "incidents", "prior_4wk", "4-week average", "")
metric(incident_columns[1], f"Incidents this week, {row['area']}", "incidents", "last_year", "last year", "")
st.caption(
    "Change is the difference from the baseline with a Poisson z beside it: z = 2(√current − √baseline); "
    "for harm the same on effective counts (harm ÷ φ, φ = Σw²n ÷ Σwn, the harm-weighted dispersion). "
    "|z| ≥ 3 is worth a look, |z| < 2 is ordinary week-to-week variation. A percent change is shown only "
    "when the baseline is at least 10 (effective counts for harm). Baselines: the mean of the 4 weeks before "
    "the selected week, and the week starting 52 weeks (364 days) earlier."
)


def district_table(measure: str, number_label: str) -> None:
    table = brief.measure_table(changes, measure).round(
        {"current": 0, "prior_4wk": 0 if measure == "harm" else 1, "last_year": 0})
    st.dataframe(
        table, width="stretch", hide_index=True,
        column_config={
            "area": st.column_config.TextColumn("Area"),
            "current": st.column_config.NumberColumn(f"This week ({number_label})", format="localized"),
            "prior_4wk": st.column_config.NumberColumn("Prior 4-week average", format="localized"),
            "prior_4wk_change": st.column_config.TextColumn("Change vs 4-week average"),
            "prior_4wk_z": st.column_config.NumberColumn(
                "z vs 4 weeks", format="%+.1f", help="Poisson z: |z| ≥ 3 worth a look, |z| < 2 ordinary variation"),
            "last_year": st.column_config.NumberColumn("Same week last year", format="localized"),
            "last_year_change": st.column_config.TextColumn("Change vs last year"),
            "last_year_z": st.column_config.NumberColumn(
                "z vs last year", format="%+.1f", help="Poisson z: |z| ≥ 3 worth a look, |z| < 2 ordinary variation"),
        },
    )


harm_tab, incidents_tab = st.tabs([f"Harm ({unit}) by district", "Incidents by district"])
with harm_tab:
    district_table("harm", unit)
with incidents_tab:
    district_table("incidents", "count")
st.caption(
    f"Incidents: every recorded incident of {category_scope}, proactive categories included. {PROACTIVE_NOTE} "
    f"All districts are listed whatever the district filter. {page.source_note()}"
)

# ------------------------------------------------------------------------------------------ 52 weeks
st.header("Weekly harm, last 52 weeks")
weekly = page.query("trends_weekly", history_start=f.week - dt.timedelta(weeks=51))
facts = brief.weekly_summary(weekly, f.week)
if facts["weeks"] == 0:
    st.info("No weeks of data before the selected week.")
else:
    selected = weekly.tail(1)  # the query's weeks end with the selected week
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=weekly["week"], y=weekly["harm"], mode="lines+markers", name="Weekly harm",
        marker={"size": 5}, hovertemplate=f"Week of %{{x|%d %b %Y}}<br>%{{y:,.0f}} {unit}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(
        x=selected["week"], y=selected["harm"], mode="markers+text", name="Selected week",
        marker={"size": 14, "symbol": "diamond", "color": "#d62728"}, text=["selected week"],
        textposition="top center", hovertemplate=f"Selected week %{{x|%d %b %Y}}<br>%{{y:,.0f}} {unit}<extra></extra>",
    ))
    figure.add_hline(y=facts["median"], line_dash="dot", line_color="gray",
                     annotation_text=f"52-week median {facts['median']:,.0f}", annotation_position="bottom left")
    figure.update_layout(
        title=(f"{scope}: the selected week's harm, {facts['current']:,.0f} {unit}, was the "
               f"{brief.ordinal(facts['rank']) + ' ' if facts['rank'] > 1 else ''}highest of the last {facts['weeks']} weeks"),
        xaxis_title="Week beginning (Monday)", yaxis_title=f"Harm per week ({unit}, {index_tag})",
        yaxis_rangemode="tozero", showlegend=False, margin={"t": 60},
    )
    st.plotly_chart(figure, width="stretch", theme="streamlit")
    st.caption(f"{category_scope.capitalize()}. {PROACTIVE_NOTE} {page.source_note()}")
