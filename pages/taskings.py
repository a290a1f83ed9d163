"""Taskings: who owns the response to each threat, and what came of it.

Commanders create and edit taskings; analysts read them. Stored in the app state (ilp.state.State),
which keeps every change in the tasking's history and writes the audit log.
"""

import datetime as dt
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ilp import access
from ilp import taskings as rules
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
        tasking_form(page, store, prefix="new_tasking", categories=category_labels, areas=area_labels, today=today)
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
