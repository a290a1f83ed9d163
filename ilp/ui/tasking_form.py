"""The one tasking form, for the Command brief (task the threat or repeat location on screen) and the
Taskings page (create any tasking, or update one). Saves through ``ilp.state.State``, which validates,
keeps the tasking's history and writes the audit log; rules and words come from ``ilp.taskings``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import streamlit as st

from ilp import taskings as rules
from ilp.snapshot import area_label
from ilp.state import State, TaskingError

FLASH_KEY = "tasking_flash"


@dataclass(frozen=True)
class Target:
    """A fixed target: the threat or repeat location the form tasks (the brief's forms)."""

    category: str
    level: str
    area_id: str
    described: str  # 'Robbery in Beat 3D', for the confirmation


def show_flash() -> None:
    """The confirmation of the last save, once, at the top of the page that saved it."""
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash, icon=":material/check_circle:")


def tasking_form(
    page,
    store: State,
    *,
    prefix: str,
    title: str | None = None,
    target: Target | None = None,
    current: dict | None = None,
    categories: dict | None = None,
    areas: dict | None = None,
    today: dt.date | None = None,
) -> None:
    """Draw the form and save it when submitted.

    With ``target`` (the brief): owner, action and due date for a new tasking of that target. Without it
    (the Taskings page): the target is picked from ``categories`` (code -> label) and ``areas``
    ('level:id' -> label), with status and result note; ``current`` (a tasking row as a dict) makes it an
    update of that tasking. Widget keys start with ``prefix``; the save button is ``{prefix}_save``.
    """
    today = today or dt.date.today()
    current = current or {}
    form_key = f"task_{target.level}_{target.area_id}_{target.category}" if target else f"{prefix}_form"
    with st.form(form_key):
        if title:
            st.markdown(title)
        values = _fields(prefix, target, current, categories or {}, areas or {}, today)
        if not st.form_submit_button(
            "Save tasking" if target is None else "Create tasking", type="primary", key=f"{prefix}_save"
        ):
            return
    try:
        if current.get("id") is not None:
            changed = store.update_tasking(
                int(current["id"]), by=page.user, role=page.role, data_version=page.version, **values
            )
            message = (
                f"Tasking No. {current['id']} updated: {', '.join(rules.FIELD_LABELS[f].lower() for f in changed)}."
                if changed
                else f"Tasking No. {current['id']}: nothing changed."
            )
        else:
            new_id = store.create_tasking(by=page.user, role=page.role, data_version=page.version, **values)
            message = (
                f"Tasking No. {new_id} created: {target.described}, owner {values['owner']}."
                if target
                else f"Tasking No. {new_id} created."
            )
    except TaskingError as error:
        st.error(f"Not saved: {error}.", icon=":material/error:")
        return
    st.session_state[FLASH_KEY] = message
    if current.get("id") is None:
        for key in [k for k in st.session_state if str(k).startswith(f"{prefix}_")]:
            del st.session_state[key]  # an empty form for the next one
    st.rerun()


def _fields(prefix: str, target: Target | None, current: dict, categories: dict, areas: dict, today: dt.date) -> dict:
    if target is not None:
        owner = st.text_input("Owner (person or team)", key=f"{prefix}_owner")
        action = st.text_area("Action (what will be done)", key=f"{prefix}_action")
        due_date = st.date_input("Due date", value=today + dt.timedelta(days=14), key=f"{prefix}_due")
        return dict(
            offense_category=target.category,
            area_level=target.level,
            area_id=target.area_id,
            owner=owner,
            action=action,
            due_date=due_date,
        )

    category_ids = list(categories)
    current_area = f"{current.get('area_level')}:{current.get('area_id')}"
    # A repeat location (tasked from the brief) is not in the district/beat list: keep it an option.
    options = list(areas) + ([current_area] if current and current_area not in areas else [])
    statuses = list(rules.STATUSES)
    left, right = st.columns(2)
    category = left.selectbox(
        "Threat: offence category",
        category_ids,
        index=category_ids.index(current["offense_category"]) if current.get("offense_category") in category_ids else 0,
        format_func=lambda c: categories.get(c, c),
        key=f"{prefix}_category",
    )
    area = right.selectbox(
        "Threat: area (district or beat)",
        options,
        index=options.index(current_area) if current_area in options else 0,
        format_func=lambda key: areas.get(key) or area_label(*key.split(":", 1)),
        key=f"{prefix}_area",
        help="Repeat locations (blocks) are tasked from the Command brief's Repeat locations tab.",
    )
    owner = left.text_input("Owner (person or team)", value=current.get("owner", ""), key=f"{prefix}_owner")
    due_default = (
        dt.date.fromisoformat(str(current["due_date"])[:10])
        if current.get("due_date")
        else today + dt.timedelta(days=14)
    )
    due_date = right.date_input("Due date", value=due_default, key=f"{prefix}_due")
    action = st.text_area("Action (what will be done)", value=current.get("action", ""), key=f"{prefix}_action")
    status = left.selectbox(
        "Status",
        statuses,
        index=statuses.index(current.get("status", "open")),
        format_func=rules.STATUS_LABELS.get,
        key=f"{prefix}_status",
    )
    note = st.text_area(
        "Result note (required to mark done: what came of it)",
        value=current.get("result_note", ""),
        key=f"{prefix}_note",
    )
    level, area_id = area.split(":", 1)
    return dict(
        offense_category=category,
        area_level=level,
        area_id=area_id,
        owner=owner,
        action=action,
        due_date=due_date,
        status=status,
        result_note=note,
    )
