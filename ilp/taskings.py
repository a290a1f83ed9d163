"""Taskings: the rules about them, in one place. Who owns the response to a threat, by when, and whether
it is late; how a tasking is named in words; which threat or repeat location a tasking belongs to.

Storage (create, update, history, audit) is ``ilp.state.State``; this module only reads its frames
(``State.taskings()``), so the Command brief page, the Taskings page and the printed brief apply the
same rules and print the same words.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ilp.snapshot import area_label

STATUSES = ("open", "in_progress", "done", "cancelled")
STATUS_LABELS = {"open": "Open", "in_progress": "In progress", "done": "Done", "cancelled": "Cancelled"}
# Statuses that still need someone to act (and so can be overdue).
LIVE_STATUSES = ("open", "in_progress")
# What a tasking's threat names: an offence in a district or beat, or at a repeat location (a block, the
# source's location text, as the brief's repeat-location list shows it).
AREA_LEVELS = ("district", "beat", "location")
FIELDS = ("offense_category", "area_level", "area_id", "owner", "action", "due_date", "status", "result_note")
FIELD_LABELS = {
    "created": "Created",
    "offense_category": "Offence category",
    "area_level": "Area level",
    "area_id": "Area",
    "owner": "Owner",
    "action": "Action",
    "due_date": "Due date",
    "status": "Status",
    "result_note": "Result note",
}
DUE_SOON_DAYS = 7
NOT_TASKED = "Not tasked"


# ------------------------------------------------------------------------------------------ lateness
def days_overdue(status, due, today: dt.date) -> int:
    """Days a live tasking is past its due date (0 when it is not live, not due yet, or has no due date)."""
    if status not in LIVE_STATUSES or due is None or (isinstance(due, float) and due != due):
        return 0
    due = due if isinstance(due, dt.date) else dt.date.fromisoformat(str(due)[:10])
    return max((today - due).days, 0)


def with_lateness(taskings: pd.DataFrame, today: dt.date) -> pd.DataFrame:
    """``taskings`` with ``due_date`` as dates, ``days_overdue`` and ``overdue`` (a live tasking due before today)."""
    out = taskings.copy()
    out["due_date"] = pd.to_datetime(out["due_date"]).dt.date
    out["days_overdue"] = [days_overdue(s, d, today) for s, d in zip(out["status"], out["due_date"])]
    out["overdue"] = out["days_overdue"] > 0
    return out


def due_soon(taskings: pd.DataFrame, today: dt.date, days_ahead: int = DUE_SOON_DAYS) -> pd.DataFrame:
    """Live taskings due within ``days_ahead`` days of ``today`` or already overdue, soonest first."""
    live = with_lateness(taskings[taskings["status"].isin(LIVE_STATUSES)], today)
    return live[live["due_date"] <= today + dt.timedelta(days=days_ahead)].sort_values(["due_date", "id"])


def overdue_first(taskings: pd.DataFrame, today: dt.date) -> pd.DataFrame:
    """All taskings with their lateness, the overdue ones first, then by due date."""
    out = with_lateness(taskings, today)
    return out.assign(_later=~out["overdue"]).sort_values(["_later", "due_date", "id"]).drop(columns="_later")


# ------------------------------------------------------------------------------------------ words
def status_text(status, due=None) -> str:
    """'In progress, due 2026-11-27', or just 'In progress' without a due date."""
    label = STATUS_LABELS.get(status, status)
    return f"{label}, due {str(due)[:10]}" if due is not None and not (isinstance(due, float) and due != due) else label


def overdue_text(days: int) -> str:
    """'overdue by 3 days', '' when not overdue."""
    return f"overdue by {days} day{'s' if days != 1 else ''}" if days > 0 else ""


def summary(owner, status, due=None, today: dt.date | None = None) -> str:
    """A threat's tasking in a table cell: 'Insp. Okafor (Open, due 2026-12-01)', with ', overdue by 3 days'
    when ``today`` is given and it is late; 'Not tasked' when there is no owner."""
    if not isinstance(owner, str):
        return NOT_TASKED
    late = overdue_text(days_overdue(status, due, today)) if today is not None else ""
    return f"{owner} ({status_text(status, due)}{', ' + late if late else ''})"


def target(level: str, area_id, category_label: str | None = None) -> str:
    """What a tasking is about: 'Robbery, Beat 3D' or 'Location 011XX S CANAL ST'."""
    where = area_label(level, area_id)
    return f"{category_label}, {where}" if category_label else where


def sentence(tasking_id, owner, status, due, today: dt.date) -> str:
    """Markdown: '**Tasked:** No. 2 to Insp. Okafor, In progress, due 2026-11-27 (**overdue by 3 days**).'"""
    late = overdue_text(days_overdue(status, due, today))
    return (
        f"**Tasked:** No. {int(tasking_id)} to {owner}, {status_text(status, due)}"
        + (f" (**{late}**)" if late else "")
        + "."
    )


# ------------------------------------------------------------------------------------------ matching
TASKING_COLUMNS = ("tasking_id", "tasking_owner", "tasking_status", "tasking_due")


def _attach(frame: pd.DataFrame, live: pd.DataFrame, keys: list[str], key_of) -> pd.DataFrame:
    """``frame`` with the latest of the ``live`` taskings whose ``keys`` equal ``key_of(row)``, if any."""
    out = frame.copy()
    for column in TASKING_COLUMNS:
        out[column] = None
    if live.empty or out.empty:
        return out
    latest = live.sort_values("id").groupby(keys).tail(1).set_index(keys)
    for position, row in out.iterrows():
        key = key_of(row)
        if key in latest.index:
            tasking = latest.loc[key]
            out.loc[position, list(TASKING_COLUMNS)] = [
                int(tasking["id"]),
                tasking["owner"],
                tasking["status"],
                tasking["due_date"],
            ]
    return out


def attach_to_threats(threats: pd.DataFrame, taskings: pd.DataFrame) -> pd.DataFrame:
    """Each threat's latest tasking that is not cancelled (owner, status, due date), if one targets the same
    offence and area."""
    live = taskings[taskings["status"] != "cancelled"]
    return _attach(
        threats,
        live,
        ["offense_category", "area_level", "area_id"],
        lambda row: (row["offense_category"], row["level"], str(row["area"])),
    )


def attach_to_locations(locations: pd.DataFrame, taskings: pd.DataFrame) -> pd.DataFrame:
    """Each repeat location's latest tasking that is not cancelled, if one targets that location (area level
    'location'), whatever offence it names: a location is tasked as a place."""
    live = taskings[(taskings["status"] != "cancelled") & (taskings["area_level"] == "location")]
    return _attach(locations, live, ["area_id"], lambda row: row["location"])
