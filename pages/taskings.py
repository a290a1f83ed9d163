"""Taskings: who owns the response to each threat, and what came of it.

Commanders create and edit taskings; analysts read them. Stored in the app state (ilp.state.State),
which keeps every change in the tasking's history and writes the audit log.
"""

import datetime as dt
import json

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ilp import access
from ilp import taskings as rules
from ilp.analytics import evaluation
from ilp.snapshot import area_label as place
from ilp.ui.context import gate, state
from ilp.ui.tasking_form import show_flash, tasking_form

page = gate("taskings")
store = state()
can_edit = page.role in access.TASKING_EDITORS
today = dt.date.today()

categories = page.query("taskings_categories")
areas = page.query("taskings_areas")
category_labels = dict(zip(categories["category"], categories["label"]))
area_keys = (areas["area_level"] + ":" + areas["area_id"]).tolist()
area_labels = dict(zip(area_keys, areas["label"]))
taskings = store.taskings()


def area_label(key: str) -> str:
    """'Beat 1A — Harbour 1A (district 1)'; a repeat location as 'Location 011XX S CANAL ST'."""
    level, _, area_id = key.partition(":")
    return area_labels.get(key) or place(level, area_id)


st.title("Taskings")
st.caption(
    "Who owns the response to each threat, by when, and what came of it. "
    + (
        "You can create and update taskings; every change is kept in the tasking's history and the audit log."
        if can_edit
        else "Read-only for your role: commanders create and update taskings."
    )
)

show_flash()

# ------------------------------------------------------------------------------------------ the list
ordered = rules.overdue_first(taskings, today)
listing = pd.DataFrame(
    {
        "id": ordered["id"],
        "threat": ordered["offense_category"].map(category_labels).fillna(ordered["offense_category"]),
        "area": (ordered["area_level"] + ":" + ordered["area_id"]).map(area_label),
        "owner": ordered["owner"],
        "due": ordered["due_date"],
        "status": [rules.status_text(status) for status in ordered["status"]],
        "flag": [rules.overdue_text(days).capitalize() for days in ordered["days_overdue"]],
        "action": ordered["action"],
        "result_note": ordered["result_note"],
        "updated": ordered["updated_at"].str.replace("T", " ") + " by " + ordered["updated_by"],
    }
)

counts = taskings["status"].value_counts()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Open", int(counts.get("open", 0)))
c2.metric("In progress", int(counts.get("in_progress", 0)))
c3.metric("Overdue", int(ordered["overdue"].sum()), help="Open or in progress with a due date before today.")
c4.metric("Done", int(counts.get("done", 0)))

st.subheader("All taskings")
if listing.empty:
    st.info("No taskings yet." + (" Create the first one below." if can_edit else ""), icon=":material/assignment:")
else:
    overdue_rows = listing["flag"].ne("").to_numpy()
    styled = listing.style.apply(
        lambda frame: pd.DataFrame(
            np.where(
                np.repeat(overdue_rows[:, None], frame.shape[1], axis=1),
                "background-color: rgba(220, 38, 38, 0.18)",
                "",
            ),
            index=frame.index,
            columns=frame.columns,
        ),
        axis=None,
    )
    st.dataframe(
        styled,
        width="stretch",
        hide_index=True,
        column_config={
            "id": st.column_config.NumberColumn("No.", format="%d", width="small"),
            "threat": "Threat (offence)",
            "area": "Area",
            "owner": "Owner",
            "action": st.column_config.TextColumn("Action", width="large"),
            "due": st.column_config.DateColumn("Due", format="YYYY-MM-DD"),
            "status": "Status",
            "flag": "Overdue",
            "result_note": st.column_config.TextColumn("Result note", width="medium"),
            "updated": "Last change (UTC)",
        },
    )
    st.caption(
        f"Rows highlighted in red are overdue: open or in progress with a due date before today ({today:%d %b %Y})."
    )

choices = listing["id"].tolist()
describe = dict(
    zip(
        listing["id"],
        "No. "
        + listing["id"].astype(str)
        + " · "
        + listing["threat"]
        + " · "
        + listing["area"]
        + " · "
        + listing["owner"],
    )
)


# ------------------------------------------------------------------------------------------ forms
if can_edit:
    st.subheader("Create or update")
    create_tab, update_tab = st.tabs(["New tasking", "Update a tasking"])
    with create_tab:
        if area_labels:
            tasking_form(page, store, prefix="new_tasking", categories=category_labels, areas=area_labels, today=today)
        else:
            st.info(
                "This source records no beats or districts, so there is no area to pick here: task a repeat "
                "location from the Command brief's Repeat locations tab.",
                icon=":material/location_off:",
            )
    with update_tab:
        if not choices:
            st.info("No taskings to update yet.")
        else:
            chosen = st.selectbox("Tasking to update", choices, format_func=describe.get, key="update_choice")
            current = {"id": int(chosen), **taskings.set_index("id").loc[chosen].to_dict()}
            tasking_form(
                page,
                store,
                prefix=f"update_{chosen}",
                current=current,
                categories=category_labels,
                areas=area_labels,
                today=today,
            )

# ------------------------------------------------------------------------------------------ history
if choices:
    st.subheader("History of a tasking")
    shown = st.selectbox("Tasking", choices, format_func=describe.get, key="history_choice")
    history = store.tasking_history(int(shown))
    created = history["field"].eq("created")
    initial = pd.json_normalize(history.loc[created, "new_value"].map(json.loads).tolist())
    created_text = (
        (
            "Offence "
            + initial["offense_category"].map(category_labels).fillna(initial["offense_category"])
            + "; "
            + (initial["area_level"] + ":" + initial["area_id"]).map(area_label)
            + "; owner "
            + initial["owner"]
            + "; due "
            + initial["due_date"]
            + "; status "
            + initial["status"].map(rules.STATUS_LABELS)
            + "; action: "
            + initial["action"]
        ).tolist()
        if len(initial)
        else []
    )
    replacements = {**category_labels, **rules.STATUS_LABELS}
    changes = pd.DataFrame(
        {
            "at": history["at"].str.replace("T", " "),
            "by": history["by"],
            "field": history["field"].map(rules.FIELD_LABELS).fillna(history["field"]),
            "from": history["old_value"].replace(replacements).fillna(""),
            "to": history["new_value"].replace(replacements).fillna(""),
        }
    )
    changes.loc[created.to_numpy(), "to"] = created_text
    st.dataframe(
        changes,
        width="stretch",
        hide_index=True,
        column_config={
            "at": "When (UTC)",
            "by": "By",
            "field": "What changed",
            "from": "From",
            "to": st.column_config.TextColumn("To", width="large"),
        },
    )

# ------------------------------------------------------------------------------------------ what came of it
st.subheader("What came of it")
done = taskings[taskings["status"].eq("done")]
if done.empty:
    st.info(
        "No tasking is marked done yet: this view compares each done tasking's target before and after.",
        icon=":material/info:",
    )
else:
    outcome = page.query(
        "taskings_before_after",
        tasking_ids=done["id"].astype(int).tolist(),
        categories=done["offense_category"].tolist(),
        area_levels=done["area_level"].tolist(),
        area_ids=done["area_id"].tolist(),
        anchor_dates=pd.to_datetime(done["created_at"]).dt.date.tolist(),
    )
    outcome = outcome.merge(
        listing[["id", "threat", "area", "owner", "result_note"]], left_on="tasking_id", right_on="id", how="left"
    )
    outcome["tasking"] = (
        "No. " + outcome["tasking_id"].astype(str) + " · " + outcome["threat"] + " · " + outcome["area"]
    )
    st.markdown(
        "**Before/after, not a causal estimate.** For each done tasking: incidents and harm of its offence "
        "category in its area (or at its location) in the 4 weeks before the tasking was created against the 4 weeks after. "
        "Counts often fall after a tasking simply because taskings are set when counts are unusually high "
        "(regression to the mean), and nothing here compares with an untreated area, so a fall here is not "
        "evidence that the tasking worked. The Poisson z is 2 × (√after − √before); |z| ≥ 3 is a change "
        "larger than chance alone would usually produce."
    )
    fig = go.Figure(
        [
            go.Bar(name="4 weeks before", x=outcome["tasking"], y=outcome["before_incidents"]),
            go.Bar(name="4 weeks after", x=outcome["tasking"], y=outcome["after_incidents"]),
        ]
    )
    fig.update_layout(
        barmode="group",
        title="Did the target's incidents fall after the tasking? (before/after, not causal)",
        xaxis_title="Done tasking",
        yaxis_title="Incidents in the 4-week window (count)",
        legend_title_text="Window",
    )
    st.plotly_chart(fig, width="stretch", theme="streamlit")
    st.dataframe(
        outcome[
            [
                "tasking",
                "created_on",
                "before_incidents",
                "after_incidents",
                "poisson_z",
                "reading",
                "before_harm",
                "after_harm",
                "owner",
                "result_note",
            ]
        ],
        width="stretch",
        hide_index=True,
        column_config={
            "tasking": "Tasking",
            "owner": "Owner",
            "created_on": st.column_config.DateColumn("Created", format="YYYY-MM-DD"),
            "before_incidents": st.column_config.NumberColumn("Incidents, 4 wk before", format="%d"),
            "after_incidents": st.column_config.NumberColumn("Incidents, 4 wk after", format="%d"),
            "poisson_z": st.column_config.NumberColumn("Poisson z (after vs before)", format="%.2f"),
            "before_harm": st.column_config.NumberColumn("Harm, 4 wk before", format="%.0f"),
            "after_harm": st.column_config.NumberColumn("Harm, 4 wk after", format="%.0f"),
            "reading": "Reading",
            "result_note": "Result note",
        },
    )
    st.caption(
        "Harm counts 0 for proactive categories (drug possession/trafficking, weapons possession, vehicle "
        "offences), excluded from harm as the CCHI does. z is left blank while a window is not fully covered "
        "by the data. " + page.source_note()
    )

    # -------------------------------------------------------------------------------------- did it work?
    st.subheader("Did it work? Each done tasking against an untreated comparison area")
    st.markdown(
        f"For each done tasking: its offence in its area over the {evaluation.PRE_WEEKS} weeks before it was "
        f"created and the {evaluation.POST_WEEKS} weeks after, against a **comparison area** — the untreated area "
        "of the same level whose weeks before were most like the target's in level and trend, chosen from those "
        "weeks only and recorded (audit log) the first time the tasking is evaluated — and a **buffer** of the "
        "neighbouring areas, where displaced crime would show. **Ratio**: the target's incidents after, as a share "
        "of what the comparison says they would have been (difference in differences, quasi-Poisson, 95% "
        "interval); below 1 with the whole interval below 1 is a measurable reduction. **WDD**: Wheeler & "
        "Ratcliffe's weighted displacement difference (target and buffer, each net of its control) with its z. "
        "**Harm prevented**: the harm expected without the tasking minus the harm recorded. The commander's "
        "result note is shown beside it."
    )
    recorded = evaluation.recorded_comparisons(store)
    evaluations = evaluation.evaluate_taskings(
        page.analysis,
        taskings,
        done,
        recorded=recorded,
        harm_index=page.filters.harm_index,
        harm_version=page.filters.harm_version,
    )
    evaluation.record_comparisons(store, evaluations, user=page.user, role=page.role, recorded=recorded)
    results = evaluation.summary_frame(evaluations).merge(
        listing[["id", "threat", "area", "result_note"]], left_on="tasking_id", right_on="id", how="left"
    )
    results["tasking"] = (
        "No. " + results["tasking_id"].astype(str) + " · " + results["threat"] + " · " + results["area"]
    )
    st.dataframe(
        results.drop(columns=["id", "threat", "area"]),  # the listing's columns are in "tasking"
        width="stretch",
        hide_index=True,
        column_order=[
            "tasking",
            "result_note",
            "reading",
            "ratio_text",
            "wdd",
            "wdd_z",
            "harm_prevented_text",
            "comparison",
            "flags",
        ],
        column_config={
            "tasking": "Tasking",
            "result_note": st.column_config.TextColumn("Result (commander)", width="medium"),
            "reading": "Evaluation",
            "ratio_text": st.column_config.TextColumn("Ratio (95% interval)", help="After, as a share of expected"),
            "wdd": st.column_config.NumberColumn("WDD (incidents)", format="%+.0f"),
            "wdd_z": st.column_config.NumberColumn("WDD z", format="%+.2f"),
            "harm_prevented_text": f"Harm prevented, {page.harm.unit_short} (95% interval)",
            "comparison": "Comparison",
            "flags": st.column_config.TextColumn("Caveats", width="medium"),
        },
    )
    shown_id = st.selectbox(
        "Evaluation of", results["tasking_id"].tolist(), format_func=describe.get, key="evaluation_choice"
    )
    shown = next(e for e in evaluations if e.tasking_id == shown_id)
    note = results.loc[results["tasking_id"] == shown_id, "result_note"].iloc[0]
    left, right = st.columns([2, 3])
    with left:
        st.markdown(f"**Result recorded by the commander:** {note or '—'}")
        if shown.evaluated:
            st.metric(
                "Ratio: after, as a share of expected",
                f"{shown.ratio.ratio:.2f}",
                help=f"95% interval {shown.ratio.low:.2f} – {shown.ratio.high:.2f}",
            )
            st.caption(f"95% interval {shown.ratio.low:.2f} – {shown.ratio.high:.2f}: {shown.reading.lower()}.")
            st.metric("WDD (incidents)", f"{shown.wdd.estimate:+,.0f}", help="Weighted displacement difference")
            st.caption(
                f"SE {shown.wdd.se:,.1f}, z {shown.wdd.z:+.2f}; target {shown.wdd.target:+,.0f} (z "
                f"{shown.wdd.target_z:+.2f}), buffer {shown.wdd.buffer:+,.0f} (z {shown.wdd.buffer_z:+.2f})."
            )
            if shown.harm_prevented is not None:
                st.metric(f"Harm prevented ({page.harm.unit_short})", f"{shown.harm_prevented:,.0f}")
                st.caption(
                    f"95% interval {shown.harm_prevented_low:,.0f} – {shown.harm_prevented_high:,.0f} "
                    f"{shown.harm_unit}; negative means harm rose."
                )
        else:
            st.info(
                f"**{evaluation.STATUS_TEXT.get(shown.status, shown.status)}.** {shown.message}",
                icon=":material/hourglass_empty:",
            )
        st.caption(shown.chosen_text() + (f" Buffer: {shown.buffer_description}." if shown.buffer_description else ""))
    with right:
        lines = evaluation.chart_series(shown)
        if lines.empty:
            st.info("No weekly series to draw.", icon=":material/info:")
        else:
            figure = px.line(
                lines,
                x="week_start",
                y="incidents",
                color="series",
                markers=True,
                title=f"{evaluation.target_text(shown)}<br>"
                + (
                    f"Ratio {evaluation.ratio_sentence(shown)}"
                    if shown.evaluated
                    else evaluation.STATUS_TEXT.get(shown.status, shown.status)
                ),
            )
            figure.add_vrect(
                x0=pd.Timestamp(shown.start),
                x1=pd.Timestamp(shown.start + dt.timedelta(weeks=shown.post_weeks)),
                fillcolor="#D55E00",
                opacity=0.08,
                line_width=0,
            )
            figure.add_shape(
                type="line",
                x0=pd.Timestamp(shown.start),
                x1=pd.Timestamp(shown.start),
                y0=0,
                y1=1,
                yref="paper",
                line=dict(color="#D55E00", dash="dash"),
            )
            figure.add_annotation(
                x=pd.Timestamp(shown.start), y=1, yref="paper", text="tasking", showarrow=False, yanchor="bottom"
            )
            figure.update_layout(
                xaxis_title=f"Week starting (weeks counted from the tasking, {shown.start:%A}s)",
                yaxis_title="Incidents a week (count)",
                legend_title_text="",
                legend=dict(orientation="h", y=-0.25),
                title=dict(font=dict(size=14)),
            )
            st.plotly_chart(figure, width="stretch", theme="streamlit")
            st.caption(
                f"Shaded: the {shown.post_weeks} weeks after the tasking. The buffer adds up the neighbouring areas, "
                f"so it runs higher than the target. {page.source_note()}"
            )
    for caveat in shown.caveats:
        if caveat.flagged:
            st.warning(caveat.text, icon=":material/warning:")
        else:
            st.caption(f":material/check_circle: {caveat.text}")
