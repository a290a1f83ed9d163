"""Data and governance: how fresh and how clean the data is, which harm tables are in use, who sees
what and the safeguards; for administrators, the audit log."""

import datetime as dt

import plotly.express as px
import streamlit as st

from ilp.analytics import governance
from ilp.export import csv_bytes, neutralise_formulas
from ilp.ui.context import gate, state

page = gate("governance")
is_admin = page.role == "admin"

st.title("Data and governance")
st.caption(
    f"Snapshot **{page.version}** ({page.info.kind or '?'} data, created {page.info.created_at}). "
    "Freshness, ingest history and rejected rows, location quality, unmapped offence codes, the harm tables "
    "in use, and who may see what." + (" As administrator you also see the audit log." if is_admin else "")
)

sections = ["Freshness and ingests", "Data quality", "Harm tables", "Who sees what"] + (
    ["Audit log"] if is_admin else []
)
tabs = dict(zip(sections, st.tabs(sections)))


def download(label: str, frame, file_name: str, key: str) -> None:
    """A formula-safe CSV download that writes an 'export' entry to the audit log when clicked."""
    st.download_button(
        label,
        csv_bytes(frame),
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click=page.audit,
        args=("export", {"what": file_name, "rows": len(frame)}),
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
                "reason": st.column_config.TextColumn("Reason", width="large"),
                "field": "Field",
                "rows": st.column_config.NumberColumn("Rows rejected", format="localized"),
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
            "Add each to the source's taxonomy (data/taxonomy/*.csv) and ingest again."
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
        recent_actions = sorted(store.audit_log(limit=5000)["action"].unique())
        action = st.selectbox("Action", ["(all actions)", *recent_actions], key="audit_action")
        limit = st.select_slider("Entries", [100, 500, 2000, 5000], value=500, key="audit_limit")
        log = store.audit_log(limit=limit, action=None if action == "(all actions)" else action)
        st.dataframe(
            log,
            width="stretch",
            hide_index=True,
            column_config={
                "id": st.column_config.NumberColumn("No.", format="%d"),
                "at": "When (UTC)",
                "user": "User",
                "role": "Role",
                "action": "Action",
                "page": "Page",
                "parameters": st.column_config.TextColumn("Parameters", width="large"),
                "data_version": "Snapshot",
            },
        )
        st.caption(
            f"The newest {len(log):,} entries{'' if action == '(all actions)' else f' of action {action}'}. "
            "The log is append-only: the database refuses to change or delete an entry."
        )
        download("Download these entries (CSV)", log, "audit_log.csv", "audit_download")
