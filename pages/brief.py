"""Command brief: the weekly tasking meeting's page (commander, analyst).

Top to bottom, as the meeting takes it: the ranked threats with their reasons and who owns each
(commanders task a threat from its row), beside them the highest-harm combinations, repeat locations and
repeat victims (counted, never listed), what changed for real (Benjamini-Hochberg at the matrix's
false discovery rate) with a control chart of any series, taskings due or overdue, and the headline
harm against its baselines with the 52-week trend. The same brief downloads as HTML or PDF, stamped
and audited (ilp.brief_report, also `ilp brief`).
"""

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ilp import access, brief_report
from ilp import taskings as tasking_rules
from ilp.analytics import brief, changes, evaluation
from ilp.snapshot import PROACTIVE_NOTE, area_label
from ilp.ui.context import gate, state
from ilp.ui.tasking_form import Target, show_flash, tasking_form

page = gate("brief")
f = page.filters
store = state()
can_task = page.role in access.TASKING_EDITORS
today = dt.date.today()
# The brief's own choices (threat level, change level) are widgets further down; their values from the last
# run are in the session state, so the brief is built once, here, for what the page will show.
# Which levels exist is the data's to say (SnapshotInfo): a level it does not record is never offered.
levels = page.info.ranking_levels
chosen_level = st.session_state.get("threat_level")
beats_and_districts = page.info.has_level("beat") and page.info.has_level("district")
request = brief.BriefRequest(
    week=f.week,
    district=f.district,
    category=f.category,
    harm_index=f.harm_index,
    harm_version=f.harm_version,
    level=chosen_level if chosen_level in levels else None,
    change_level="beat" if st.session_state.get("change_beats") and beats_and_districts else None,
)
report = brief.build_brief(
    page, request, taskings=store.taskings(), today=today, comparisons=evaluation.recorded_comparisons(store)
)
as_of = report.as_of
unit = report.harm.unit_short
index_tag = report.harm.tag
scope, category_scope = report.scope, report.category_scope
fdr = report.fdr
week_text = f"{report.week:%d %b %Y} – {as_of:%d %b %Y}"

st.title("Command brief")
st.markdown(f"**Week {week_text}** · {scope} · {category_scope}")
show_flash()

if not page.info.weekly:
    st.warning(
        "This source dates offences to the month only, so the brief's weekly figures (this week against its "
        "baselines, week-by-week changes, the control chart and the 52-week series) count each month's "
        "offences in the week that holds the 1st and cannot show a change within a month. Read the 28-day "
        "threat ranking with that in mind; the Trends page shows the series by month.",
        icon=":material/calendar_month:",
    )
if report.coverage_note:
    st.info(report.coverage_note, icon=":material/history_toggle_off:")
last_day = page.info.last_day
if last_day is not None and (last_day - as_of).days < 14 and not page.demo and page.info.weekly:
    st.info(
        f"This week ends {(last_day - as_of).days} days before the last incident in the snapshot ({last_day:%d %b %Y}). "
        "Crimes reported late are not in it yet, so the latest counts may still rise; each threat's confidence "
        "shows the share reported within a week.",
        icon=":material/schedule:",
    )


# ------------------------------------------------------------------------------------------ downloads
def download(fmt: str):
    """Deferred: rendered only when the button is clicked (on Streamlit's download thread), then audited.
    It prints the brief this page shows: the same object, so the two cannot disagree."""
    user, role = page.user, page.role

    def render() -> bytes:
        return brief_report.render_bytes(report, fmt, user=user, role=role, state=store)

    return render


downloads = st.container(horizontal=True)
downloads.download_button(
    "Download brief (HTML)",
    data=download("html"),
    file_name=f"command-brief-{report.week}.html",
    mime="text/html",
    icon=":material/download:",
    on_click="ignore",
    key="brief_html",
    help="Self-contained: opens offline, charts embedded. Stamped with snapshot, harm index and threat matrix; audited.",
)
downloads.download_button(
    "Download brief (PDF)",
    data=download("pdf"),
    file_name=f"command-brief-{report.week}.pdf",
    mime="application/pdf",
    icon=":material/picture_as_pdf:",
    on_click="ignore",
    key="brief_pdf",
    help="The same brief printed by headless Chromium (takes a few seconds). Audited.",
)


LEVEL_LABELS = {"beat": "Beat", "district": "District", "city": "Offence, citywide"}


def task_or_show(prefix: str, row, target: Target, title: str) -> None:
    """A threat's or location's tasking in a sentence, or the form to create one (commanders)."""
    if isinstance(row["tasking_owner"], str):
        st.markdown(
            tasking_rules.sentence(
                row["tasking_id"], row["tasking_owner"], row["tasking_status"], row["tasking_due"], today
            )
        )
        st.page_link("pages/taskings.py", label="Update it on the Taskings page", icon=":material/assignment:")
    elif can_task:
        tasking_form(page, store, prefix=prefix, title=title, target=target, today=today)
    else:
        st.markdown("**Not tasked.** Commanders create taskings.")


# ------------------------------------------------------------------------------------------ 1. top threats
with st.container(border=True, key="top_threats"):
    st.header("Top threats", anchor="top-threats")
    st.segmented_control(
        "Threats by",
        levels,
        default=page.info.lowest_level,
        key="threat_level",
        format_func=LEVEL_LABELS.get,
        help="A threat is an offence category in one area a commander can task: a beat or a whole district. "
        "Only the levels this source records are offered.",
    )
    level = report.level
    if report.level_note:
        st.caption(report.level_note)
    top, candidates = report.threats, report.candidates
    ranked_tab, harm_tab, locations_tab, victims_tab = st.tabs(
        ["Ranked threats, with reasons", "Highest harm alone", "Repeat locations", "Repeat victims"]
    )
    with ranked_tab:
        if top.empty:
            st.info(report.no_threats_text)
            picked = None
        else:
            st.dataframe(
                brief.threat_table(top).round({"harm": 0}),
                width="stretch",
                hide_index=True,
                placeholder="—",
                key="threat_table",
                # Harm, count, z and confidence come straight after the threat, and every column but the
                # explanation has a fixed width, so they fit a 1400 px screen without scrolling sideways.
                column_order=[
                    "rank",
                    "threat",
                    "score",
                    "harm",
                    "count",
                    "baseline",
                    "z",
                    "significance",
                    "confidence",
                    "tasking",
                    "why",
                ],
                column_config={
                    "rank": st.column_config.NumberColumn("#", width=40),
                    "threat": st.column_config.TextColumn("Threat (offence, area)", width=220),
                    "score": st.column_config.ProgressColumn(
                        "Score",
                        format="%.2f",
                        min_value=0.0,
                        max_value=1.0,
                        width=90,
                        help="Weighted sum of the matrix components, each 0..1 (threat matrix "
                        f"{report.matrix_version}, data/threat_matrix.toml).",
                    ),
                    "harm": st.column_config.NumberColumn(
                        f"Harm ({unit})", format="localized", width=95, help=f"Harm in the 28 days, {index_tag}."
                    ),
                    "count": st.column_config.NumberColumn(
                        "Incidents", format="%d", width=80, help="Incidents in the 28 days."
                    ),
                    "baseline": st.column_config.NumberColumn(
                        "Expected",
                        format="%.1f",
                        width=80,
                        help="Incidents expected in 28 days from the 12 weeks before.",
                    ),
                    "z": st.column_config.NumberColumn(
                        "z", format="%+.1f", width=55, help="Poisson z = 2(√count − √expected)."
                    ),
                    "significance": st.column_config.TextColumn(
                        "Rise",
                        width=110,
                        help=f"One-sided Poisson E-test, Benjamini-Hochberg across all {candidates:,} "
                        f"candidates at a false discovery rate of {fdr:.0%}.",
                    ),
                    "confidence": st.column_config.TextColumn(
                        "Confidence",
                        width=95,
                        help="Data behind the threat: volume, geocoding, time precision, timeliness.",
                    ),
                    "tasking": st.column_config.TextColumn("Tasking (owner, status)", width=160),
                    "why": st.column_config.TextColumn("Why it ranks here", width="large"),
                },
            )
            st.markdown(
                "**Why each ranks here**\n\n"
                + "\n".join(f"{int(t['rank'])}. {t['explanation']}" for _, t in top.iterrows()),
                help=(
                    "Harm against its 12-week baseline with the Poisson z and whether the rise survives the false "
                    "discovery rate; who the victims are (counted, never named); repeat locations; data confidence."
                ),
            )
            labels = [
                f"#{int(t['rank'])} {t['category_label']}, {area_label(t['level'], t['area'], t['area_name'])}"
                for _, t in top.iterrows()
            ]
            chosen_threat = st.selectbox(
                "Threat to look into" + (" or task" if can_task else ""),
                range(len(top)),
                format_func=labels.__getitem__,
                key=f"threat_pick_{level}",
            )
            picked = top.iloc[chosen_threat]
        st.caption(
            f"{candidates:,} {brief.combination_grain((level,) if level != 'city' else ())} candidates scored on harm, momentum, expected harm, vulnerability "
            f"and concentration (threat matrix {report.matrix_version}); confidence is shown beside the score, not in it. "
            + ("Filtered to " + category_scope + "; ranks are among all offences. " if f.category else "")
            + f"Pick a threat above for its score breakdown{' and to task it' if can_task else ''}. {PROACTIVE_NOTE}"
        )
    with harm_tab:
        combinations = report.top_harm
        if combinations.empty:
            st.info(f"No harm recorded in the 28 days to {as_of:%d %b %Y} for this selection.")
        else:
            share_of = "district's" if "district" in report.top_harm_levels else "city's"
            st.dataframe(
                combinations.round({"harm": 0}),
                width="stretch",
                hide_index=True,
                column_config={
                    "rank": st.column_config.NumberColumn("Rank", width="small"),
                    "offence": "Offence",
                    "beat": "Beat",
                    "district": "District",
                    "harm": st.column_config.NumberColumn(f"Harm, 28 days ({unit})", format="localized"),
                    "incidents": st.column_config.NumberColumn("Incidents, 28 days", format="localized"),
                    "share_of_district_harm": st.column_config.ProgressColumn(
                        f"Share of the {share_of} harm",
                        format="percent",
                        min_value=0.0,
                        max_value=1.0,
                        help=f"This row's harm as a share of all harm in its {share_of.removesuffix(chr(39) + 's')} "
                        "over the same 28 days.",
                    ),
                },
            )
        st.caption(
            f"The ten highest-harm {report.top_harm_grain + ' combinations' if report.top_harm_levels else 'offences citywide'}"
            " over the 28 days, harm alone: no trend, "
            "vulnerability or confidence. A cross-check on the ranking."
            + (f" {report.level_note}" if not report.top_harm_levels else "")
        )
    with locations_tab:
        shown_locations = report.repeat_locations
        if shown_locations.empty:
            st.info(report.no_locations_text)
        else:
            st.dataframe(
                brief.repeat_location_table(shown_locations).round({"harm": 0}),
                width="stretch",
                hide_index=True,
                placeholder="—",
                key="repeat_locations_table",
                column_order=[
                    "rank",
                    "location",
                    *(["area"] if page.info.levels else []),
                    "top_offence",
                    "incidents",
                    "baseline",
                    "z",
                    "harm",
                    "tasking",
                ],
                column_config={
                    "rank": st.column_config.NumberColumn("Rank", width=50),
                    "location": st.column_config.TextColumn("Location (block)"),
                    "area": "Beat, district",
                    "top_offence": st.column_config.TextColumn(
                        "Top offence", help="The offence carrying most of its harm, with its incidents in the 28 days."
                    ),
                    "incidents": st.column_config.NumberColumn(
                        "Incidents", format="%d", width=75, help="Incidents in the 28 days."
                    ),
                    "baseline": st.column_config.NumberColumn(
                        "Expected",
                        format="%.1f",
                        width=75,
                        help="Incidents expected in 28 days from the 12 weeks before.",
                    ),
                    "z": st.column_config.NumberColumn(
                        "z", format="%+.1f", width=50, help="Poisson z = 2(√incidents − √expected)."
                    ),
                    "harm": st.column_config.NumberColumn(
                        f"Harm ({unit})", format="localized", width=95, help=f"Harm in the 28 days, {index_tag}."
                    ),
                    "tasking": st.column_config.TextColumn("Tasking", help="Owner, status and due date."),
                },
            )
            st.markdown(
                "**What happens at each**\n\n"
                + "\n".join(f"{int(row['rank'])}. {row['explanation']}" for _, row in shown_locations.iterrows()),
                help=(
                    "Incidents against the location's 12-week baseline with the Poisson z; its top three offences, "
                    "highest harm first; the days of its first and last incident in the 28 days."
                ),
            )
            spot = shown_locations.iloc[
                st.selectbox(
                    "Repeat location to task" if can_task else "Repeat location",
                    range(len(shown_locations)),
                    format_func=lambda i: f"#{i + 1} {shown_locations['location'].iloc[i]}",
                    key="location_pick",
                )
            ]
            task_or_show(
                "location",
                spot,
                Target(
                    category=spot["top_category"],
                    level="location",
                    area_id=spot["location"],
                    described=f"{spot['top_category_label']} at {spot['location']}",
                ),
                f"**Create tasking** for {spot['location']} (its top offence, {spot['top_category_label']})",
            )
        st.caption(
            f"{report.location_count:,} locations (blocks, as the source publishes them) with 3 or more incidents in the "
            f"28 days to {as_of:%d %b %Y}, ranked by harm ({index_tag}); expected is the 28-day count expected from the "
            "12 weeks before. Left out: offences flagged sensitive (homicide, sexual offences) and domestic incidents, "
            "whose repeat locations would point at victims' homes. "
            + (f"Only {category_scope} counts. " if f.category else "")
            + PROACTIVE_NOTE
        )
    with victims_tab:
        victim_records, repeaters = report.victim_records, report.repeat_victims
        if not victim_records:
            st.info(
                "No victim records in this warehouse (the source publishes none), so repeat victims cannot be counted.",
                icon=":material/person_off:",
            )
        elif repeaters.empty:
            st.info(f"No repeat victim had an incident in the 28 days to {as_of:%d %b %Y} for this selection.")
        else:
            st.dataframe(
                brief.repeat_victim_table(repeaters),
                width="stretch",
                hide_index=True,
                key="repeat_victims_table",
                column_config={
                    "area": "Area",
                    "offence": "Offence",
                    "repeat_victims": st.column_config.NumberColumn(
                        "Repeat victims",
                        format="%d",
                        width="small",
                        help="Victims with 2+ incidents in 365 days and one here in the last 28.",
                    ),
                    "incidents_recent": st.column_config.NumberColumn(
                        "Incidents here",
                        format="%d",
                        width="small",
                        help="Their incidents of this offence in this area in the 28 days.",
                    ),
                    "incidents_window": st.column_config.NumberColumn(
                        "In 365 days",
                        format="%d",
                        width="small",
                        help="All their incidents in the 365 days: any offence, anywhere.",
                    ),
                    "under_18": st.column_config.NumberColumn("Under 18", format="%d", width="small"),
                    "aged_65_plus": st.column_config.NumberColumn("65+", format="%d", width="small"),
                    "domestic_share": st.column_config.ProgressColumn(
                        "Domestic",
                        format="percent",
                        min_value=0.0,
                        max_value=1.0,
                        width="small",
                        help="Share of their incidents here in the 28 days flagged domestic.",
                    ),
                },
            )
        if victim_records:
            st.caption(
                f"Victims with 2 or more incidents in the 365 days to {as_of:%d %b %Y} and at least one in the last 28 "
                f"days, counted per {level} and offence of their recent incidents "
                f"({len(repeaters):,} {level} × offence rows; a victim recent in two counts in both). "
                + (f"Filtered to {category_scope}. " if f.category else "")
                + "Counted by pseudonymous key: no victim is named or listed."
            )

    if picked is not None:
        place = area_label(picked["level"], picked["area"], picked["area_name"])
        st.subheader(f"#{int(picked['rank'])} {picked['category_label']} in {place}")
        st.markdown(picked["explanation"])
        breakdown, task_column = st.columns([3, 2])
        with breakdown:
            parts = brief.component_table(picked["components"])
            figure = go.Figure(
                go.Bar(
                    x=parts["contribution"],
                    y=parts["component"],
                    orientation="h",
                    text=[f"{s:.2f} × {w:.2f}" for s, w in zip(parts["score"], parts["weight"])],
                    textposition="auto",
                    hovertemplate="%{y}<br>contribution %{x:.3f}<extra></extra>",
                )
            )
            figure.update_layout(
                title=f"Score {picked['score']:.2f} = Σ component score × weight",
                xaxis_title="Contribution to the score",
                yaxis_title=None,
                yaxis={"autorange": "reversed"},
                height=300,
                margin={"t": 50, "l": 10},
            )
            st.plotly_chart(figure, width="stretch", theme="streamlit", key="threat_breakdown")
            st.caption(
                f"Confidence: {picked['confidence_label']} ({picked['confidence']:.2f}). "
                + " · ".join(f"{k} {v:.0%}" for k, v in picked["confidence_parts"].items() if v is not None)
            )
        with task_column:
            if picked["level"] == "city":
                st.info(
                    "A tasking names a beat, a district or a repeat location, and this source records no beats "
                    "or districts: task this offence at one of its repeat locations (the Repeat locations tab).",
                    icon=":material/assignment:",
                )
            else:
                task_or_show(
                    "threat",
                    picked,
                    Target(
                        category=picked["offense_category"],
                        level=picked["level"],
                        area_id=str(picked["area"]),
                        described=f"{picked['category_label']} in {place}",
                    ),
                    "**Create tasking** for this threat",
                )

# ------------------------------------------------------------------------------------------ 2. what changed
st.header("What changed, for real")
controls = st.columns([2, 1, 2])
window = (
    controls[0].segmented_control(
        "Window",
        ["week", "28d"],
        default="week",
        key="change_window",
        format_func={"week": "This week", "28d": "Last 28 days"}.get,
    )
    or "week"
)
with_beats = controls[1].toggle(
    "By beat",
    key="change_beats",
    disabled=not beats_and_districts,
    help="Test every offence × beat instead of offence × district (more tests, so a "
    "change must be larger to survive the false discovery rate)."
    + ("" if beats_and_districts else " This source does not record both beats and districts."),
)
change_grain = brief.combination_grain((report.change_level,) if report.change_level != "city" else ())
show_all = controls[2].toggle("Show changes that are not significant", key="change_all")
in_window = report.changes[report.changes["window"] == window]
shown = in_window if show_all else in_window[in_window["significant"]]
tests = report.change_tests.get(window, 0)
significant_count = int(in_window["significant"].sum())
if shown.empty:
    st.success(
        f"No {change_grain} change is significant {'this week' if window == 'week' else 'over the last 28 days'} "
        f"at a false discovery rate of {fdr:.0%} ({tests:,} changes tested). Week-to-week movement is within ordinary variation.",
        icon=":material/check:",
    )
else:
    st.dataframe(
        brief.change_table(shown),
        width="stretch",
        hide_index=True,
        column_config={
            "window": "Window",
            "offence": "Offence",
            "area": "Area",
            "count": st.column_config.NumberColumn("Count", format="%d"),
            "baseline": st.column_config.NumberColumn(
                "Expected", format="%.1f", help="From the 12 weeks before, scaled to the window."
            ),
            "z": st.column_config.NumberColumn("z", format="%+.1f"),
            "q_value": st.column_config.NumberColumn(
                "q (BH)", format="%.3f", help="Benjamini-Hochberg adjusted p-value of the two-sided Poisson E-test."
            ),
            "change": st.column_config.TextColumn("Change", width="large"),
        },
    )
st.caption(
    f"{significant_count} of {tests:,} changes significant at a false discovery rate of {fdr:.0%}: two-sided Poisson "
    "E-test of the window against the 12 weeks before it, Benjamini-Hochberg adjusted. A percent change is shown only "
    "beside its significance marker and only when at least 10 incidents were expected. The baseline is the 12 weeks "
    "just before, so a seasonal swing can show as a change: compare with the same week last year below."
)

# control chart of one series
series_options = [("district", None, None, "All offences, citywide")]
for _, threat in top.iterrows():
    citywide = threat["level"] == "city"  # a ranking by offence only: the citywide series of that offence
    series_options.append(
        (
            "district" if citywide else threat["level"],
            None if citywide else str(threat["area"]),
            threat["offense_category"],
            f"Threat #{int(threat['rank'])}: {threat['category_label']}, "
            f"{area_label(threat['level'], threat['area'], threat['area_name'])}",
        )
    )
for _, change in in_window[in_window["significant"]].head(20).iterrows():
    citywide = change["level"] == "city"
    series_options.append(
        (
            "district" if citywide else change["level"],
            None if citywide else str(change["area"]),
            change["offense_category"],
            f"Changed: {change['category_label']}, {area_label(change['level'], change['area'], change['area_name'])}",
        )
    )
chosen = st.selectbox(
    "Control chart for",
    range(len(series_options)),
    index=1 if len(series_options) > 1 else 0,
    format_func=lambda i: series_options[i][3],
    key="control_series",
)
series_level, series_area, series_category, series_label = series_options[chosen]
chart = page.analysis(
    changes.control_chart, as_of=as_of, weeks=26, level=series_level, area=series_area, category=series_category
)
if chart.empty:
    st.info("No weeks to chart for this series.")
else:
    x = pd.to_datetime(chart["week_start"])
    outside = chart[chart["outside"].notna()]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(x=x, y=chart["upper"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip")
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=chart["lower"],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(86, 180, 233, 0.25)",
            name="Expected range (Poisson, 3 sigma)",
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=chart["prior_mean"],
            mode="lines",
            line={"dash": "dot", "color": "gray"},
            name="Mean of the prior 8 weeks",
            hovertemplate="Prior 8-week mean %{y:.1f}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=chart["incidents"],
            mode="lines+markers",
            name="Incidents per week",
            line={"color": "#1f3a5f"},
            hovertemplate="Week of %{x|%d %b %Y}<br>%{y} incidents<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=pd.to_datetime(outside["week_start"]),
            y=outside["incidents"],
            mode="markers",
            name="Outside the range",
            marker={"size": 13, "symbol": "diamond", "color": "#D55E00"},
            hovertemplate="Week of %{x|%d %b %Y}: %{y}, outside<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"{series_label.split(': ', 1)[-1]}: {len(outside)} of the last {len(chart)} weeks outside the expected range",
        xaxis_title="Week beginning (Monday)",
        yaxis_title="Incidents per week",
        yaxis_rangemode="tozero",
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 60},
    )
    st.plotly_chart(figure, width="stretch", theme="streamlit", key="control_chart")
    st.caption(
        "Each week against the mean of the 8 weeks before it, with Poisson limits (√mean ± 1.5)². "
        "A point outside is unusual for that series on its own; the table above controls for testing many."
    )

# ------------------------------------------------------------------------------------------ 3. taskings due
st.header("Taskings due or overdue")
due = report.taskings_due
if due.empty:
    st.info(
        f"No open tasking is due by {today + dt.timedelta(days=7):%d %b %Y} or overdue.", icon=":material/assignment:"
    )
else:
    st.dataframe(
        pd.DataFrame(
            {
                "id": due["id"],
                "threat": due["category_label"],
                "area": due["place"],
                "owner": due["owner"],
                "action": due["action"],
                "due": due["due_date"],
                "status": [tasking_rules.status_text(status) for status in due["status"]],
                "late": [tasking_rules.overdue_text(days).capitalize() for days in due["days_overdue"]],
            }
        ),
        width="stretch",
        hide_index=True,
        column_order=["id", "threat", "area", "owner", "due", "late", "status", "action"],
        column_config={
            "id": st.column_config.NumberColumn("No.", format="%d", width=50),
            "threat": "Offence",
            "area": "Area",
            "owner": "Owner",
            "action": st.column_config.TextColumn("Action", width="large"),
            "due": st.column_config.DateColumn("Due", format="YYYY-MM-DD"),
            "status": "Status",
            "late": "Overdue",
        },
    )
st.caption(
    f"Open or in progress, due within {tasking_rules.DUE_SOON_DAYS} days of today ({today:%d %b %Y}) or already overdue. "
    "Taskings are edited on the Taskings page."
)

# ------------------------------------------------------------------------------------------ 3b. last month's taskings
st.header(f"Last month's taskings: what happened ({report.tasking_month:%B %Y})")
results = report.tasking_results
if results.empty:
    st.info(f"No tasking was created in {report.tasking_month:%B %Y}.", icon=":material/assignment:")
else:
    st.dataframe(
        results,
        width="stretch",
        hide_index=True,
        column_order=[
            "id",
            "category_label",
            "place",
            "owner",
            "status_text",
            "result_note",
            "start",
            "reading",
            "ratio_text",
            "wdd_z",
            "harm_prevented_text",
            "flags",
        ],
        column_config={
            "id": st.column_config.NumberColumn("No.", format="%d", width=50),
            "category_label": "Offence",
            "place": "Area",
            "owner": "Owner",
            "status_text": "Status",
            "result_note": st.column_config.TextColumn("Result (owner's note)", width="medium"),
            "start": st.column_config.DateColumn("Started", format="YYYY-MM-DD"),
            "reading": "Evaluation so far",
            "ratio_text": st.column_config.TextColumn("Ratio (95% interval)", help="After, as a share of expected"),
            "wdd_z": st.column_config.NumberColumn("WDD z", format="%+.1f"),
            "harm_prevented_text": f"Harm prevented, {unit} (95% interval)",
            "flags": st.column_config.TextColumn("Caveats", width="medium"),
        },
    )
st.caption(
    f"Taskings created in {report.tasking_month:%B %Y}, with what the data to {as_of:%d %b %Y} say: the target's "
    "incidents after the tasking as a share of what an untreated comparison area says they would have been "
    f"(interim until {evaluation.POST_WEEKS} weeks of data follow it). Each evaluation in full, with its chart and "
    "caveats, is on the Taskings page."
)

# ------------------------------------------------------------------------------------------ 4. headline harm
st.header("Headline harm: this week against its baselines")
row = report.headline


def metric(column, label: str, measure: str, baseline: str, baseline_text: str, value_unit: str) -> None:
    current, base = row[measure], row[f"{baseline}_{measure}"]
    z = row[f"{baseline}_{measure}_z"]
    column.metric(
        label,
        f"{current:,.0f}{value_unit}",
        delta=brief.change_text(current, base, z, row[f"{baseline}_{measure}_pct"]),
        delta_color="inverse" if abs(z) >= brief.WORTH_A_LOOK else "gray",
        delta_description=(
            f"vs {baseline_text} ({base:,.0f}): {row[f'{baseline}_{measure}_reading']}"
            if base == base
            else f"vs {baseline_text}: no baseline (the data starts later)"
        ),
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
    table = brief.measure_table(report.district_changes, measure).round(
        {"current": 0, "prior_4wk": 0 if measure == "harm" else 1, "last_year": 0}
    )
    st.dataframe(
        table,
        width="stretch",
        hide_index=True,
        placeholder="—",
        column_config={
            "area": st.column_config.TextColumn("Area"),
            "current": st.column_config.NumberColumn(f"This week ({number_label})", format="localized"),
            "prior_4wk": st.column_config.NumberColumn("Prior 4-week average", format="localized"),
            "prior_4wk_change": st.column_config.TextColumn("Change vs 4-week average"),
            "prior_4wk_z": st.column_config.NumberColumn(
                "z vs 4 weeks", format="%+.1f", help="Poisson z: |z| ≥ 3 worth a look, |z| < 2 ordinary variation"
            ),
            "last_year": st.column_config.NumberColumn("Same week last year", format="localized"),
            "last_year_change": st.column_config.TextColumn("Change vs last year"),
            "last_year_z": st.column_config.NumberColumn(
                "z vs last year", format="%+.1f", help="Poisson z: |z| ≥ 3 worth a look, |z| < 2 ordinary variation"
            ),
        },
    )


by = "by district" if page.info.has_level("district") else "citywide"
harm_tab, incidents_tab = st.tabs([f"Harm ({unit}) {by}", f"Incidents {by}"])
with harm_tab:
    district_table("harm", unit)
with incidents_tab:
    district_table("incidents", "count")
st.caption(
    f"Incidents: every recorded incident of {category_scope}, proactive categories included. {PROACTIVE_NOTE} "
    + (
        "All districts are listed whatever the district filter. "
        if page.info.has_level("district")
        else "This source records no districts, so the figures are citywide only. "
    )
    + page.source_note()
)

weekly = report.weekly
facts = brief.weekly_summary(weekly, report.week)
if facts["weeks"] == 0:
    st.info("No weeks of data before the selected week.")
else:
    selected = weekly.tail(1)  # the query's weeks end with the selected week
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=weekly["week"],
            y=weekly["harm"],
            mode="lines+markers",
            name="Weekly harm",
            marker={"size": 5},
            hovertemplate=f"Week of %{{x|%d %b %Y}}<br>%{{y:,.0f}} {unit}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=selected["week"],
            y=selected["harm"],
            mode="markers+text",
            name="Selected week",
            marker={"size": 14, "symbol": "diamond", "color": "#d62728"},
            text=["selected week"],
            textposition="top center",
            hovertemplate=f"Selected week %{{x|%d %b %Y}}<br>%{{y:,.0f}} {unit}<extra></extra>",
        )
    )
    figure.add_hline(
        y=facts["median"],
        line_dash="dot",
        line_color="gray",
        annotation_text=f"52-week median {facts['median']:,.0f}",
        annotation_position="bottom left",
    )
    figure.update_layout(
        title=(
            f"{scope}: the selected week's harm, {facts['current']:,.0f} {unit}, was the "
            f"{brief.ordinal(facts['rank']) + ' ' if facts['rank'] > 1 else ''}highest of the last {facts['weeks']} weeks"
        ),
        xaxis_title="Week beginning (Monday)",
        yaxis_title=f"Harm per week ({unit}, {index_tag})",
        yaxis_rangemode="tozero",
        showlegend=False,
        margin={"t": 60},
    )
    st.plotly_chart(figure, width="stretch", theme="streamlit", key="weekly_harm")
    st.caption(f"{category_scope.capitalize()}. {PROACTIVE_NOTE} {page.source_note()}")
