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
from ilp.state import TASKING_STATUSES, TaskingError
from ilp.ui.context import gate, state

page = gate("taskings")
store = state()
can_edit = page.role in access.TASKING_EDITORS
today = dt.date.today()

STATUS_LABELS = {"open": "Open", "in_progress": "In progress", "done": "Done", "cancelled": "Cancelled"}
FIELD_LABELS = {
    "created": "Created", "offense_category": "Offence category", "area_level": "Area level", "area_id": "Area",
    "owner": "Owner", "action": "Action", "due_date": "Due date", "status": "Status", "result_note": "Result note",
}

categories = page.query("taskings_categories")
areas = page.query("taskings_areas")
category_labels = dict(zip(categories["category"], categories["label"]))
area_keys = (areas["area_level"] + ":" + areas["area_id"]).tolist()
area_labels = dict(zip(area_keys, areas["label"]))
taskings = store.taskings()


def area_label(key: str) -> str:
    """'Beat 1A — Harbour 1A (district 1)'; a repeat location as 'Location 011XX S CANAL ST'."""
    level, _, area_id = key.partition(":")
    return area_labels.get(key, f"{level.capitalize()} {area_id}")


st.title("Taskings")
st.caption(
    "Who owns the response to each threat, by when, and what came of it. "
    + ("You can create and update taskings; every change is kept in the tasking's history and the audit log."
       if can_edit else "Read-only for your role: commanders create and update taskings.")
)

flash = st.session_state.pop("tasking_flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")

# ------------------------------------------------------------------------------------------ the list
due = pd.to_datetime(taskings["due_date"]).dt.date
live = taskings["status"].isin(["open", "in_progress"])
overdue = live & (due < today)
days_late = (pd.Timestamp(today) - pd.to_datetime(taskings["due_date"])).dt.days
listing = pd.DataFrame({
    "id": taskings["id"],
    "threat": taskings["offense_category"].map(category_labels).fillna(taskings["offense_category"]),
    "area": (taskings["area_level"] + ":" + taskings["area_id"]).map(area_label),
    "owner": taskings["owner"],
    "due": due,
    "status": taskings["status"].map(STATUS_LABELS),
    "flag": np.where(overdue, "Overdue by " + days_late.astype(str) + " days", ""),
    "action": taskings["action"],
    "result_note": taskings["result_note"],
    "updated": taskings["updated_at"].str.replace("T", " ") + " by " + taskings["updated_by"],
})
listing = listing.loc[pd.DataFrame({"later": ~overdue, "due": due}).sort_values(["later", "due"]).index]

counts = taskings["status"].value_counts()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Open", int(counts.get("open", 0)))
c2.metric("In progress", int(counts.get("in_progress", 0)))
c3.metric("Overdue", int(overdue.sum()), help="Open or in progress with a due date before today.")
c4.metric("Done", int(counts.get("done", 0)))

st.subheader("All taskings")
if listing.empty:
    st.info("No taskings yet." + (" Create the first one below." if can_edit else ""), icon=":material/assignment:")
else:
    overdue_rows = listing["flag"].ne("").to_numpy()
    styled = listing.style.apply(
        lambda frame: pd.DataFrame(
            np.where(np.repeat(overdue_rows[:, None], frame.shape[1], axis=1), "background-color: rgba(220, 38, 38, 0.18)", ""),
            index=frame.index, columns=frame.columns),
        axis=None,
    )
    st.dataframe(
        styled, width="stretch", hide_index=True,
        column_config={
            "id": st.column_config.NumberColumn("No.", format="%d", width="small"),
            "threat": "Threat (offence)", "area": "Area", "owner": "Owner",
            "action": st.column_config.TextColumn("Action", width="large"),
            "due": st.column_config.DateColumn("Due", format="YYYY-MM-DD"),
            "status": "Status", "flag": "Overdue",
            "result_note": st.column_config.TextColumn("Result note", width="medium"),
            "updated": "Last change (UTC)",
        },
    )
    st.caption(f"Rows highlighted in red are overdue: open or in progress with a due date before today ({today:%d %b %Y}).")

choices = listing["id"].tolist()
describe = dict(zip(listing["id"], "No. " + listing["id"].astype(str) + " · " + listing["threat"] + " · "
                    + listing["area"] + " · " + listing["owner"]))


# ------------------------------------------------------------------------------------------ forms
def tasking_form(prefix: str, current: dict | None) -> dict | None:
    """The tasking fields; returns the submitted values (None when not submitted)."""
    current = current or {}
    category_ids = categories["category"].tolist()
    level_key = f"{current.get('area_level')}:{current.get('area_id')}"
    # A repeat location (tasked from the brief) is not in the district/beat list: keep it an option.
    options = area_keys + ([level_key] if current and level_key not in area_labels else [])
    statuses = list(TASKING_STATUSES)
    left, right = st.columns(2)
    category = left.selectbox(
        "Threat: offence category", category_ids,
        index=category_ids.index(current["offense_category"]) if current.get("offense_category") in category_ids else 0,
        format_func=lambda c: category_labels.get(c, c), key=f"{prefix}_category",
    )
    area = right.selectbox(
        "Threat: area (district or beat)", options,
        index=options.index(level_key) if level_key in options else 0,
        format_func=area_label, key=f"{prefix}_area",
        help="Repeat locations (blocks) are tasked from the Command brief's Repeat locations tab.",
    )
    owner = left.text_input("Owner (person or team)", value=current.get("owner", ""), key=f"{prefix}_owner")
    due_default = dt.date.fromisoformat(current["due_date"]) if current.get("due_date") else today + dt.timedelta(days=14)
    due_date = right.date_input("Due date", value=due_default, key=f"{prefix}_due")
    action = st.text_area("Action (what will be done)", value=current.get("action", ""), key=f"{prefix}_action")
    status = left.selectbox(
        "Status", statuses, index=statuses.index(current.get("status", "open")),
        format_func=STATUS_LABELS.get, key=f"{prefix}_status",
    )
    note = st.text_area(
        "Result note (required to mark done: what came of it)", value=current.get("result_note", ""),
        key=f"{prefix}_note",
    )
    if not st.form_submit_button("Save tasking", type="primary", key=f"{prefix}_submit"):
        return None
    level, area_id = area.split(":", 1)
    return dict(offense_category=category, area_level=level, area_id=area_id, owner=owner, action=action,
                due_date=due_date, status=status, result_note=note)


if can_edit:
    st.subheader("Create or update")
    create_tab, update_tab = st.tabs(["New tasking", "Update a tasking"])
    with create_tab, st.form("new_tasking", clear_on_submit=False):
        values = tasking_form("new_tasking", None)
        if values is not None:
            try:
                new_id = store.create_tasking(by=page.user, role=page.role, data_version=page.version, **values)
            except TaskingError as error:
                st.error(f"Not saved: {error}.", icon=":material/error:")
            else:
                st.session_state["tasking_flash"] = f"Tasking No. {new_id} created."
                for key in [k for k in st.session_state if str(k).startswith("new_tasking_")]:
                    del st.session_state[key]  # an empty form for the next one
                st.rerun()
    with update_tab:
        if not choices:
            st.info("No taskings to update yet.")
        else:
            chosen = st.selectbox("Tasking to update", choices, format_func=describe.get, key="update_choice")
            current = taskings.set_index("id").loc[chosen].to_dict()
            with st.form(f"update_tasking_{chosen}"):
                values = tasking_form(f"update_{chosen}", current)
                if values is not None:
                    try:
                        changed = store.update_tasking(int(chosen), by=page.user, role=page.role,
                                                       data_version=page.version, **values)
                    except TaskingError as error:
                        st.error(f"Not saved: {error}.", icon=":material/error:")
                    else:
                        st.session_state["tasking_flash"] = (
                            f"Tasking No. {chosen} updated: {', '.join(FIELD_LABELS[f].lower() for f in changed)}."
                            if changed else f"Tasking No. {chosen}: nothing changed."
                        )
                        st.rerun()

# ------------------------------------------------------------------------------------------ history
if choices:
    st.subheader("History of a tasking")
    shown = st.selectbox("Tasking", choices, format_func=describe.get, key="history_choice")
    history = store.tasking_history(int(shown))
    created = history["field"].eq("created")
    initial = pd.json_normalize(history.loc[created, "new_value"].map(json.loads).tolist())
    created_text = (
        "Offence " + initial["offense_category"].map(category_labels).fillna(initial["offense_category"])
        + "; " + (initial["area_level"] + ":" + initial["area_id"]).map(area_label) + "; owner " + initial["owner"]
        + "; due " + initial["due_date"] + "; status " + initial["status"].map(STATUS_LABELS)
        + "; action: " + initial["action"]
    ).tolist() if len(initial) else []
    replacements = {**category_labels, **STATUS_LABELS}
    changes = pd.DataFrame({
        "at": history["at"].str.replace("T", " "),
        "by": history["by"],
        "field": history["field"].map(FIELD_LABELS).fillna(history["field"]),
        "from": history["old_value"].replace(replacements).fillna(""),
        "to": history["new_value"].replace(replacements).fillna(""),
    })
    changes.loc[created.to_numpy(), "to"] = created_text
    st.dataframe(changes, width="stretch", hide_index=True,
                 column_config={"at": "When (UTC)", "by": "By", "field": "What changed", "from": "From",
                                "to": st.column_config.TextColumn("To", width="large")})

# ------------------------------------------------------------------------------------------ what came of it
st.subheader("What came of it")
done = taskings[taskings["status"].eq("done")]
if done.empty:
    st.info("No tasking is marked done yet: this view compares each done tasking's target before and after.",
            icon=":material/info:")
else:
    outcome = page.query(
        "taskings_before_after",
        tasking_ids=done["id"].astype(int).tolist(),
        categories=done["offense_category"].tolist(),
        area_levels=done["area_level"].tolist(),
        area_ids=done["area_id"].tolist(),
        anchor_dates=pd.to_datetime(done["created_at"]).dt.date.tolist(),
    )
    outcome = outcome.merge(listing[["id", "threat", "area", "owner", "result_note"]],
                            left_on="tasking_id", right_on="id", how="left")
    outcome["tasking"] = "No. " + outcome["tasking_id"].astype(str) + " · " + outcome["threat"] + " · " + outcome["area"]
    st.markdown(
        "**Before/after, not a causal estimate.** For each done tasking: incidents and harm of its offence "
        "category in its area (or at its location) in the 4 weeks before the tasking was created against the 4 weeks after. "
        "Counts often fall after a tasking simply because taskings are set when counts are unusually high "
        "(regression to the mean), and nothing here compares with an untreated area; use the Outcomes page's "
        "treated-vs-control comparison for that. The Poisson z is 2 × (√after − √before); |z| ≥ 3 is a change "
        "larger than chance alone would usually produce."
    )
    fig = go.Figure([
        go.Bar(name="4 weeks before", x=outcome["tasking"], y=outcome["before_incidents"]),
        go.Bar(name="4 weeks after", x=outcome["tasking"], y=outcome["after_incidents"]),
    ])
    fig.update_layout(
        barmode="group", title="Did the target's incidents fall after the tasking? (before/after, not causal)",
        xaxis_title="Done tasking", yaxis_title="Incidents in the 4-week window (count)", legend_title_text="Window",
    )
    st.plotly_chart(fig, width="stretch", theme="streamlit")
    st.dataframe(
        outcome[["tasking", "created_on", "before_incidents", "after_incidents", "poisson_z", "reading",
                 "before_harm", "after_harm", "owner", "result_note"]],
        width="stretch", hide_index=True,
        column_config={
            "tasking": "Tasking", "owner": "Owner",
            "created_on": st.column_config.DateColumn("Created", format="YYYY-MM-DD"),
            "before_incidents": st.column_config.NumberColumn("Incidents, 4 wk before", format="%d"),
            "after_incidents": st.column_config.NumberColumn("Incidents, 4 wk after", format="%d"),
            "poisson_z": st.column_config.NumberColumn("Poisson z (after vs before)", format="%.2f"),
            "before_harm": st.column_config.NumberColumn("Harm, 4 wk before", format="%.0f"),
            "after_harm": st.column_config.NumberColumn("Harm, 4 wk after", format="%.0f"),
            "reading": "Reading", "result_note": "Result note",
        },
    )
    st.caption(
        "Harm counts 0 for proactive categories (drug possession/trafficking, weapons possession, vehicle "
        "offences), excluded from harm as the CCHI does. z is left blank while a window is not fully covered "
        "by the data. " + page.source_note()
    )
