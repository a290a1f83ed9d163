"""Data and governance: how fresh and how clean the data is, which harm tables are in use, who sees
what and the safeguards; for administrators, the audit log (filters, chain check, CSV) and the users
(local accounts and single sign-on roles, changed through ilp.state.State, which audits every change)."""

import datetime as dt

import pandas as pd
import plotly.express as px
import streamlit as st

from ilp.access import ROLES
from ilp.analytics import governance
from ilp.errors import UserError
from ilp.export import csv_bytes, neutralise_formulas
from ilp.state import ACTIONS, LOCKOUT_FAILURES, LOCKOUT_MINUTES, describe_parameters
from ilp.status import ingest_warnings
from ilp.ui.context import gate, state

page = gate("governance")
is_admin = page.role == "admin"

st.title("Data and governance")
st.caption(
    f"Snapshot **{page.version}** ({page.info.kind or '?'} data, created {page.info.created_at}). "
    "Freshness, ingest history and rejected rows, location quality, unmapped offence codes, the harm tables "
    "in use, and who may see what."
    + (" As administrator you also see the audit log and manage users." if is_admin else "")
)

sections = ["Freshness and ingests", "Data quality", "Harm tables", "Who sees what"] + (
    ["Audit log", "Users"] if is_admin else []
)
tabs = dict(zip(sections, st.tabs(sections)))


def download(label: str, frame, file_name: str, key: str) -> None:
    """A formula-safe CSV download, built and written to the audit log as an 'export' only when clicked:
    deferred, so nothing is stored on the server before the click (ilp.ui.downloads, ilp.ui.server_guards)."""

    def render() -> bytes:
        data = csv_bytes(frame)
        page.audit("export", {"what": file_name, "rows": len(frame)})
        return data

    st.download_button(
        label,
        data=render,
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


# ------------------------------------------------------------------------------------------ freshness
with tabs["Freshness and ingests"]:
    today = dt.date.today()
    freshness = page.query("governance_freshness", today=today)
    st.subheader("How fresh is each source?")
    st.dataframe(
        freshness,
        width="stretch",
        hide_index=True,
        column_config={
            "dataset": "Dataset",
            "source": "Source",
            "records": st.column_config.NumberColumn("Records", format="localized"),
            "first_date": st.column_config.DateColumn("First event", format="YYYY-MM-DD"),
            "last_date": st.column_config.DateColumn("Last event", format="YYYY-MM-DD"),
            "last_ingest_at": st.column_config.DatetimeColumn("Last ingest or build", format="YYYY-MM-DD HH:mm"),
            "last_ingest_kind": "Kind",
            "ingests": st.column_config.NumberColumn("Writes", format="%d"),
            "days_behind": st.column_config.NumberColumn(f"Days behind today ({today:%d %b %Y})", format="%d"),
        },
    )
    st.caption(
        "Last event: the latest occurrence (incidents, use of force), call received (calls for service) or survey "
        "period start (community survey) in the snapshot. Days behind counts from that date to today; a survey "
        "that runs quarterly is normally up to about 90 days behind. Datasets with no records in this snapshot "
        "are not listed."
    )

    st.subheader("Ingest log")
    ingests = page.query("governance_ingest_log")
    # the demo city is generated, not read through a mapping file
    ingests = ingests.assign(mapping=ingests["mapping"].where(ingests["kind"] != "demo", "generated (ilp demo)"))
    st.dataframe(
        ingests,
        width="stretch",
        hide_index=True,
        # the counts a reader checks first (read = new + updated + unchanged + rejected), then when and how
        column_order=[
            "ingest_id",
            "source",
            "rows_read",
            "loaded",
            "updated",
            "unchanged",
            "rejected",
            "kind",
            "mapping",
            "started_at",
            "seconds",
            "snapshot",
            "files",
        ],
        column_config={
            "ingest_id": st.column_config.NumberColumn("Ingest", format="%d"),
            "kind": "Kind",
            "source": "Source",
            "mapping": "Mapping file",
            "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm:ss"),
            "finished_at": st.column_config.DatetimeColumn("Finished", format="YYYY-MM-DD HH:mm:ss"),
            "seconds": st.column_config.NumberColumn("Took (s)", format="%.1f"),
            "rows_read": st.column_config.NumberColumn("Rows read", format="localized"),
            "loaded": st.column_config.NumberColumn("New", format="localized"),
            "updated": st.column_config.NumberColumn("Updated", format="localized"),
            "unchanged": st.column_config.NumberColumn("Unchanged", format="localized"),
            "rejected": st.column_config.NumberColumn("Rejected", format="localized"),
            "snapshot": "Snapshot produced",
            "files": st.column_config.TextColumn("Files read", width="large"),
        },
    )
    tables = page.query("governance_tables")
    with st.expander(f"What the snapshot holds ({len(tables)} tables)"):
        st.dataframe(
            tables,
            width="stretch",
            hide_index=True,
            column_config={
                "table": "Table",
                "rows": st.column_config.NumberColumn("Rows", format="localized"),
                "columns": st.column_config.NumberColumn("Columns", format="%d"),
            },
        )

# ------------------------------------------------------------------------------------------ quality
with tabs["Data quality"]:
    # implausible data an ingest loaded (every time in the first hour ...), until a corrected ingest replaces it
    for warning in page.analysis(ingest_warnings).itertuples():
        st.warning(
            f"**{warning.source}: {warning.file.rsplit('/', 1)[-1]}** (ingest {warning.ingest_id}): {warning.message}",
            icon=":material/warning:",
        )
    st.subheader("Rejected rows")
    by_reason = page.query("governance_rejects_by_reason")
    if by_reason.empty:
        st.success("No ingest has rejected a row: every source row was loaded.", icon=":material/check_circle:")
    else:
        st.dataframe(
            by_reason,
            width="stretch",
            hide_index=True,
            column_config={
                "reason": st.column_config.TextColumn("Rule", width="large"),
                "field": "Field",
                "rows": st.column_config.NumberColumn("Rows rejected", format="localized"),
                "example": st.column_config.TextColumn("Example reason", width="large"),
                "files": st.column_config.NumberColumn("Files", format="%d"),
                "first_ingest": st.column_config.NumberColumn("First ingest", format="%d"),
                "last_ingest": st.column_config.NumberColumn("Last ingest", format="%d"),
            },
        )
        sample = neutralise_formulas(page.query("governance_rejects_sample"))
        st.markdown(
            f"**A sample of rejected rows** (up to 5 per reason and field, {len(sample)} shown). "
            "Text a spreadsheet would run as a formula is shown with a leading apostrophe."
        )
        st.dataframe(
            sample,
            width="stretch",
            hide_index=True,
            column_config={
                "ingest_id": st.column_config.NumberColumn("Ingest", format="%d"),
                "file": "File",
                "line_number": st.column_config.NumberColumn("Line", format="%d"),
                "field": "Field",
                "reason": "Reason",
                "raw_row": st.column_config.TextColumn("Raw row as read", width="large"),
            },
        )
        download("Download the sample (CSV)", sample, "rejects_sample.csv", "rejects_download")

    st.subheader("Geocoding completeness")
    located = page.query("governance_geocoding_by_source")
    st.dataframe(
        located,
        width="stretch",
        hide_index=True,
        column_config={
            "source": "Source",
            "incidents": st.column_config.NumberColumn("Incidents", format="localized"),
            "located": st.column_config.NumberColumn("Usable location", format="localized"),
            "share_located": st.column_config.ProgressColumn(
                "Share located", format="percent", min_value=0, max_value=1
            ),
            "missing": st.column_config.NumberColumn("Missing", format="localized"),
            "zero": st.column_config.NumberColumn("Zero (0,0)", format="localized"),
            "out_of_bounds": st.column_config.NumberColumn("Out of bounds", format="localized"),
            "unparseable": st.column_config.NumberColumn("Unparseable", format="localized"),
        },
    )
    monthly = page.query("governance_geocoding_by_month")
    if not monthly.empty:
        overall = located["located"].sum() / located["incidents"].sum()
        worst = monthly.loc[monthly["share_located"].idxmin()]
        fig = px.line(
            monthly.assign(percent=monthly["share_located"] * 100),
            x="month",
            y="percent",
            color="source",
            markers=True,
            title=(
                f"{overall:.1%} of incidents have a usable location; lowest month "
                f"{worst['month']:%b %Y} ({worst['share_located']:.1%})"
            ),
            labels={
                "month": "Month of occurrence",
                "percent": "Incidents with a usable location (%)",
                "source": "Source",
            },
        )
        fig.update_yaxes(range=[max(0, monthly["share_located"].min() * 100 - 2), 100], ticksuffix="%")
        st.plotly_chart(fig, width="stretch", theme="streamlit")
        st.caption(
            "A usable location has location_status 'ok' (parsed, non-zero, inside the area bounds). "
            f"Data: snapshot {page.version}; no harm weighting."
        )

    st.subheader("Unmapped offence codes")
    unmapped = page.query("governance_unmapped_codes")
    if unmapped.empty:
        st.success("Every offence code in the snapshot maps to a common category.", icon=":material/check_circle:")
    else:
        total_codes = int(unmapped["codes_in_all"].iloc[0])
        st.markdown(
            f"**{total_codes:,} source offence code{'s have' if total_codes != 1 else ' has'}** no category, covering "
            f"**{int(unmapped['incidents'].sum()):,} incidents**: they count in totals but carry no harm weight. "
            "Add each to the source's taxonomy (data/taxonomy/*.csv, or the file beside its mapping) and ingest again."
        )
        st.dataframe(
            unmapped.drop(columns=["codes_in_all"]),
            width="stretch",
            hide_index=True,
            column_config={
                "source": "Source",
                "offense_code": "Offence code",
                "description": "Description (as published)",
                "incidents": st.column_config.NumberColumn("Incidents", format="localized"),
                "first_seen": st.column_config.DateColumn("First seen", format="YYYY-MM-DD"),
                "last_seen": st.column_config.DateColumn("Last seen", format="YYYY-MM-DD"),
            },
        )

# ------------------------------------------------------------------------------------------ harm tables
with tabs["Harm tables"]:
    st.subheader("Harm indices in this snapshot")
    indices = page.query("governance_harm_indices")
    st.dataframe(
        indices,
        width="stretch",
        hide_index=True,
        column_config={
            "index_name": "Index code",
            "version": "Version",
            "title": "Title",
            "unit": "Unit of weight",
            "is_default": st.column_config.CheckboxColumn("Default"),
            "categories_weighted": st.column_config.NumberColumn("Categories", format="%d"),
            "provenance": st.column_config.TextColumn("Provenance", width="large"),
        },
    )
    weights = page.query("governance_harm_weights")
    wide = governance.harm_weight_table(weights)
    st.markdown(f"**Weight per offence category** — the filter currently uses **{page.harm_label}**.")
    st.dataframe(
        wide,
        width="stretch",
        hide_index=True,
        height="content",
        column_order=["label", *weights["harm_table"].unique(), "proactive"],
        column_config={
            "label": "Offence category",
            "proactive": st.column_config.CheckboxColumn("Proactive (excluded from harm by default)"),
            **{
                table: st.column_config.NumberColumn(table.upper(), format="%.2f")
                for table in weights["harm_table"].unique()
            },
        },
    )
    st.caption(
        "Proactive categories (drug possession and trafficking, weapons possession, vehicle offences) count "
        "police activity rather than harm, so the dashboard leaves them out of harm totals by default, as the "
        "CCHI does. Indices rank places and changes differently (Ashby 2017): compare before relying on one."
    )
    with st.expander("Every weight with its provenance"):
        st.dataframe(
            weights[["harm_table", "label", "weight", "proactive", "provenance"]],
            width="stretch",
            hide_index=True,
            column_config={
                "harm_table": "Harm table",
                "label": "Offence category",
                "weight": st.column_config.NumberColumn("Weight", format="%.2f"),
                "proactive": st.column_config.CheckboxColumn("Proactive"),
                "provenance": st.column_config.TextColumn("Provenance", width="large"),
            },
        )

# ------------------------------------------------------------------------------------------ access
with tabs["Who sees what"]:
    st.subheader("Who sees what")
    st.dataframe(governance.access_matrix(), width="stretch", hide_index=True)
    st.caption(
        "Generated from the access table the dashboard enforces (ilp.access.PAGES). "
        "✓ sees the page; — the page is not offered and a direct link is refused."
    )
    with st.expander("What each page is for"):
        st.dataframe(
            governance.page_purposes(),
            width="stretch",
            hide_index=True,
            column_config={
                "page": "Page",
                "section": "Section",
                "purpose": st.column_config.TextColumn("Purpose", width="large"),
                "roles": "Roles",
            },
        )
    st.subheader("Safeguards")
    guards = governance.safeguards()
    st.markdown(
        "\n".join(
            "- **"
            + guards["safeguard"]
            + ".** "
            + guards["what it does"]
            + " *Enforced by `"
            + guards["enforced by"]
            + "`.*"
        )
    )

# ------------------------------------------------------------------------------------------ audit (admin)
if is_admin:
    with tabs["Audit log"]:
        store = state()
        st.subheader("Audit log")
        today = dt.datetime.now(dt.UTC).date()
        left, middle, right, last = st.columns([3, 2, 2, 2])
        dates = left.date_input(
            "Dates (UTC)", value=(today - dt.timedelta(days=30), today), max_value=today, key="audit_dates"
        )
        dates = tuple(dates) if isinstance(dates, list | tuple) else (dates,)
        since, until = (dates[0], dates[-1]) if dates else (None, None)
        action = middle.selectbox("Action", ["(all actions)", *store.audit_actions()], key="audit_action")
        who = right.selectbox("User", ["(all users)", *store.audit_users()], key="audit_user")
        limit = last.select_slider("Entries", [100, 500, 2000, 5000], value=500, key="audit_limit")
        log = store.audit_log(
            limit=limit,
            action=None if action == "(all actions)" else action,
            user=None if who == "(all users)" else who,
            since=since,
            until=until,
        )
        st.dataframe(
            log.assign(parameters=log["parameters"].map(describe_parameters)),
            width="stretch",
            hide_index=True,
            column_config={
                "id": st.column_config.NumberColumn("No.", format="%d"),
                "at": "When (UTC)",
                "user": "User",
                "role": "Role",
                "action": "Action",
                "page": "Page",
                "parameters": st.column_config.TextColumn("Details", width="large"),
                "data_version": "Snapshot",
            },
        )
        st.caption(
            f"The newest {len(log):,} entries"
            + ("" if action == "(all actions)" else f" of action {action}")
            + ("" if who == "(all users)" else f" by {who}")
            + (f", {since:%d %b %Y} to {until:%d %b %Y} (UTC)" if since else "")
            + ". The log is append-only (the database refuses to change or delete an entry) and hash-chained: "
            "each entry carries a hash of itself and of the entry before it, so an entry changed, removed or "
            "slipped in outside the dashboard breaks the chain. No password or token is ever written to it."
        )
        download("Download these entries (CSV)", log, "audit_log.csv", "audit_download")
        with st.expander("What each action means"):
            st.dataframe(
                pd.DataFrame({"Action": list(ACTIONS), "Written when": list(ACTIONS.values())}),
                width="stretch",
                hide_index=True,
            )

        if st.button("Verify the chain", key="audit_verify", icon=":material/verified:"):
            st.session_state["audit_check"] = (store.verify_audit(), dt.datetime.now(dt.UTC))
        if "audit_check" in st.session_state:
            check, checked_at = st.session_state["audit_check"]
            when = f"checked {checked_at:%Y-%m-%d %H:%M} UTC"
            if check.ok:
                st.success(
                    f"Audit log intact: {check.reason} ({when}). Newest entry's hash: `{check.last_hash}`; "
                    "note it somewhere off this server to detect entries later removed from the end.",
                    icon=":material/check_circle:",
                )
            else:
                st.error(
                    f"Audit log broken at entry No. {check.first_broken_id}: {check.reason} ({when}). "
                    "Keep the state file as it is and report it: `ilp audit verify` repeats this check.",
                    icon=":material/error:",
                )

    # -------------------------------------------------------------------------------------- users (admin)
    with tabs["Users"]:
        store = state()
        flash = st.session_state.pop("users_flash", None)
        if flash:
            st.success(flash, icon=":material/check_circle:")

        def apply(change, done: str) -> None:
            """Run one State change (validated and audited there); on success show ``done`` after a rerun."""
            try:
                change()
            except UserError as error:
                st.error(str(error), icon=":material/error:")
                return
            st.session_state["users_flash"] = done
            st.rerun()

        st.subheader("Local accounts")
        accounts = store.users()
        if accounts.empty:
            st.info(
                "No local accounts. Add one below, or with `ilp users add USERNAME --role ROLE` on the server.",
                icon=":material/info:",
            )
        else:
            st.dataframe(
                accounts,
                width="stretch",
                hide_index=True,
                column_config={
                    "username": "User",
                    "role": "Role",
                    "disabled": st.column_config.CheckboxColumn("Disabled"),
                    "created_at": "Created (UTC)",
                    "failed_attempts": st.column_config.NumberColumn("Failed sign-ins in a row", format="%d"),
                    "locked_until": "Locked until (UTC)",
                    "last_sign_in": "Last sign-in (UTC)",
                },
            )
        st.subheader("Single sign-on roles")
        identities = store.identities()
        if identities.empty:
            st.caption("No identity has a role assigned here: single sign-on users get their role from a claim.")
        else:
            st.dataframe(
                identities,
                width="stretch",
                hide_index=True,
                column_config={
                    "identity": "Email or subject",
                    "kind": "Kind",
                    "role": "Role",
                    "assigned_at": "Assigned (UTC)",
                    "assigned_by": "By",
                },
            )
        st.caption(
            f"Passwords are stored only as Argon2id hashes. {LOCKOUT_FAILURES} failed sign-ins in a row lock an "
            f"account for {LOCKOUT_MINUTES} minutes (a password reset clears it). A change of role or a disabled "
            "account takes effect on the user's next page. Every change here is written to the audit log."
        )

        names = accounts["username"].tolist()
        roles = list(ROLES)
        actor = dict(by=page.user, by_role=page.role)
        left, right = st.columns(2)
        with left, st.form("user_add_form", clear_on_submit=True):
            st.markdown("**Add a local account**")
            username = st.text_input("User name", key="user_add_name")
            role = st.selectbox("Role", roles, format_func=ROLES.get, key="user_add_role")
            password = st.text_input("Password (12 characters or more)", type="password", key="user_add_password")
            repeated = st.text_input("Repeat the password", type="password", key="user_add_repeat")
            if st.form_submit_button("Add account", key="user_add_save"):
                if password != repeated:
                    st.error("The two passwords differ; nothing was changed.", icon=":material/error:")
                else:
                    apply(
                        lambda: store.add_user(username, password, role, **actor),
                        f"Added {username.strip()} ({ROLES[role]}).",
                    )
        with right, st.form("user_reset_form", clear_on_submit=True):
            st.markdown("**Reset a password** (also clears a lockout)")
            chosen = st.selectbox("User", names, key="user_reset_name")
            password = st.text_input("New password", type="password", key="user_reset_password")
            repeated = st.text_input("Repeat the new password", type="password", key="user_reset_repeat")
            if st.form_submit_button("Reset password", key="user_reset_save", disabled=not names):
                if password != repeated:
                    st.error("The two passwords differ; nothing was changed.", icon=":material/error:")
                else:
                    apply(lambda: store.reset_password(chosen, password, **actor), f"Password of {chosen} reset.")
        with left, st.form("user_role_form"):
            st.markdown("**Change a role**")
            chosen = st.selectbox("User", names, key="user_role_name")
            role = st.selectbox("New role", roles, format_func=ROLES.get, key="user_role_role")
            if st.form_submit_button("Change role", key="user_role_save", disabled=not names):
                apply(lambda: store.set_role(chosen, role, **actor), f"{chosen} is now {ROLES[role]}.")
        with right, st.form("user_toggle_form"):
            st.markdown("**Disable or enable an account**")
            chosen = st.selectbox("User", names, key="user_toggle_name")
            disable, enable = st.columns(2)
            if disable.form_submit_button("Disable", key="user_disable_save", disabled=not names):
                apply(lambda: store.disable_user(chosen, **actor), f"{chosen} is disabled.")
            if enable.form_submit_button("Enable", key="user_enable_save", disabled=not names):
                apply(lambda: store.enable_user(chosen, **actor), f"{chosen} is enabled.")
        with left, st.form("sso_assign_form", clear_on_submit=True):
            st.markdown("**Give a single sign-on identity a role**")
            identity = st.text_input(
                "Email address or OIDC subject", key="sso_identity", help="the identity provider's 'sub' claim"
            )
            role = st.selectbox("Role", roles, format_func=ROLES.get, key="sso_role")
            if st.form_submit_button("Assign role", key="sso_save"):
                apply(
                    lambda: store.assign_identity_role(identity, role, **actor),
                    f"{identity.strip()} has the role {ROLES[role]}.",
                )
        with right, st.form("sso_remove_form"):
            st.markdown("**Remove a single sign-on role**")
            assigned = identities["identity"].tolist()
            chosen = st.selectbox("Identity", assigned, key="sso_remove_identity")
            if st.form_submit_button("Remove role", key="sso_remove_save", disabled=not assigned):
                apply(lambda: store.remove_identity_role(chosen, **actor), f"{chosen} has no role assigned now.")
