"""ILP Command Dashboard: entry point. Resolves who the session's user is and their role (the demo city's
role picker, single sign-on, local accounts, or a single workstation's --role; ilp.auth), draws the shared
filters, registers the pages and runs the chosen one inside a common frame (banner, footer).

Run with `make run` (demo city), or `ilp serve` over a real warehouse (README, "Serving a team").
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

import streamlit as st

from ilp import access, auth, warm_up
from ilp.snapshot import SnapshotInfo
from ilp.ui import context as ui
from ilp.ui import sign_in
from ilp.ui.context import REQUESTED_KEY
from ilp.ui.error_boundary import error_boundary

st.set_page_config(page_title="ILP Command Dashboard", page_icon="🛡️", layout="wide")


def server_role() -> str | None:
    """`--role` after `--` on the streamlit command line, or ILP_ROLE: a single-user workstation's role."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--role", choices=list(access.ROLES), default=None)
    known, _ = parser.parse_known_args(sys.argv[1:])
    role = known.role or os.environ.get("ILP_ROLE") or None
    return role if role in access.ROLES else None


def no_warehouse() -> None:
    st.title("ILP Command Dashboard")
    st.error(
        f"No warehouse found in `{ui.warehouse().directory}`. Build the demo city with `ilp demo` "
        "(or `make run`), or load your exports with `ilp --warehouse DIR ingest --mapping ...`.",
        icon=":material/database:",
    )
    st.stop()


def demo_role() -> str:
    """The demo city's role picker: anyone may try each role (the URL may name it, for links)."""
    params = st.query_params
    requested = params.get("role")
    default = requested if requested in access.ROLES else st.session_state.get("ilp_role", "commander")
    role = st.sidebar.selectbox(
        "View as role (demo city only)",
        list(access.ROLES),
        index=list(access.ROLES).index(default),
        format_func=access.ROLES.get,
        key="ilp_role_picker",
        help="On the demo city anyone may try each role. A real warehouse requires sign-in.",
    )
    params["role"] = role
    return role


def auth_settings() -> auth.AuthSettings:
    try:
        return auth.AuthSettings.from_secrets(st.secrets)
    except auth.AuthConfigError as error:
        st.error(f"Sign-in is misconfigured in .streamlit/secrets.toml: {error}", icon=":material/error:")
        st.stop()


def shared_filters(info: SnapshotInfo) -> ui.Filters:
    params = st.query_params
    sidebar = st.sidebar
    sidebar.header("Filters")
    weeks_available = info.weeks()
    requested_week = params.get("week")
    try:
        default_week = dt.date.fromisoformat(requested_week) if requested_week else weeks_available[0]
    except ValueError:
        default_week = weeks_available[0]
    if default_week not in weeks_available:
        default_week = weeks_available[0]
    week = sidebar.selectbox(
        "Week (Monday to Sunday)",
        weeks_available,
        index=weeks_available.index(default_week),
        format_func=lambda d: f"{d:%d %b %Y} – {d + dt.timedelta(days=6):%d %b %Y}",
        help="The final week of the period; defaults to the last complete week in the data.",
    )
    try:
        default_span = int(params.get("weeks", 5))
    except ValueError:
        default_span = 5
    weeks = sidebar.slider(
        "Weeks in period", 1, 26, min(max(default_span, 1), 26), help="Default: the week and the 4 before it."
    )

    district_ids = [ui.ALL, *info.districts]
    requested = params.get("district", ui.ALL)
    district = sidebar.selectbox(
        "District",
        district_ids,
        index=district_ids.index(requested) if requested in district_ids else 0,
        format_func=lambda d: info.district_label(None if d == ui.ALL else d),
    )

    category_ids = [ui.ALL, *info.categories]
    requested = params.get("category", ui.ALL)
    category = sidebar.selectbox(
        "Offence category",
        category_ids,
        index=category_ids.index(requested) if requested in category_ids else 0,
        format_func=lambda c: info.category_label(None if c == ui.ALL else c, all_label="All categories"),
    )

    indices = {harm.key: harm for harm in info.harm_indices}
    harm_keys = list(indices)
    requested = params.get("harm", harm_keys[0] if harm_keys else "")
    harm_key = sidebar.selectbox(
        "Harm index",
        harm_keys,
        index=harm_keys.index(requested) if requested in harm_keys else 0,
        # the short tag first, so a narrow sidebar still shows which index: "CCHI 2016 · Cambridge Crime Harm Index"
        format_func=lambda k: f"{indices[k].tag} · {indices[k].title}" if k in indices else k,
        help="Which published weighting turns offences into harm. Indices rank places differently; see Data and governance.",
    )
    harm_index, harm_version = harm_key.split(":", 1)

    params.update(
        {"week": week.isoformat(), "weeks": str(weeks), "district": district, "category": category, "harm": harm_key}
    )
    return ui.Filters(
        week=week,
        weeks=weeks,
        district=None if district == ui.ALL else district,
        category=None if category == ui.ALL else category,
        harm_index=harm_index,
        harm_version=harm_version,
    )


def main() -> None:
    snapshot = ui.current_snapshot()
    if snapshot is None:
        no_warehouse()
    version = snapshot.stem
    info = ui.snapshot_info(str(snapshot))
    store = ui.state()
    settings = auth_settings()
    workstation_role = server_role()
    address = st.get_option("server.address")
    mode = auth.sign_in_mode(
        demo=info.demo,
        settings=settings,
        has_local_users=store.has_users(),
        workstation_role=workstation_role,
        address=address,
    )
    refused = auth.refusal(mode=mode, workstation_role=workstation_role, address=address)
    if refused:
        print(f"ilp dashboard: {refused}", file=sys.stderr)
        st.error(refused, icon=":material/block:")
        st.stop()
    ui.banner(info)
    warm_up_role = auth.warm_up_role(  # ilp serve's cache warm-up (ilp.warm_up), from this machine, with its token
        presented=st.context.headers.get(warm_up.HEADER),
        expected=os.environ.get(warm_up.TOKEN_VARIABLE),
        address=st.context.ip_address or "127.0.0.1",  # Streamlit reports a loopback client as None
        # the home page's hand-over to the first page drops the URL's role: the session keeps it
        requested=st.query_params.get("role") or st.session_state.get("ilp_warm_up"),
        server_address=address,
    )
    if warm_up_role:
        identity = sign_in.Identity(user=warm_up.USER, role=warm_up_role, method="warm-up")
    else:
        identity = sign_in.identify(
            mode, settings, store, workstation_role=workstation_role, demo_role=demo_role() if mode == "demo" else None
        )
    role = identity.role if identity else None
    st.session_state["ilp_role"] = role
    st.session_state["ilp_warm_up"] = warm_up_role  # its page views are not audited (ilp.warm_up audits its rounds)

    # Every page is registered, the role's own visible: a bookmark or link to a page the role may not see
    # reaches that page's gate, which refuses it, instead of Streamlit's "page not found".
    page_objects = {
        page.key: st.Page(
            f"pages/{page.key}.py",
            title=page.title,
            icon=page.icon,
            url_path=page.key,
            visibility="visible" if access.allowed(page.key, role) else "hidden",
        )
        for page in access.PAGES
    }
    if role is None:
        st.session_state.pop("ilp_context", None)

        def gate() -> None:
            sign_in.no_access_page(identity) if identity else sign_in.sign_in_page(mode, settings, store)

        title = "No access" if identity else "Sign in"
        gate_page = st.Page(gate, title=title, url_path="sign-in", icon="🔒", default=True)
        current = st.navigation([gate_page, *page_objects.values()], position="hidden")
        if current.url_path in page_objects:  # a bookmark: remember it and its filters, sign in first
            st.session_state[REQUESTED_KEY] = (current.url_path, dict(st.query_params))
            gate()  # only the page st.navigation returned may .run(); the gate draws instead of it
        else:
            current.run()
        return

    pages = access.pages_for(role)
    requested = st.session_state.pop(REQUESTED_KEY, None)
    first_page = f"pages/{pages[0].key}.py"

    def landing() -> None:
        """'/' forwards to the page a bookmark asked for (with its filters), else to the role's first page."""
        if requested and requested[0] in page_objects:
            st.switch_page(page_objects[requested[0]], query_params=requested[1])
        st.switch_page(first_page)

    # st.navigation serves its default page at "/" whatever its url_path; a hidden landing page takes "/"
    # and forwards, so every real page keeps its own /<key> for links.
    sections: dict[str, list] = {
        pages[0].section: [st.Page(landing, title="Home", url_path="home", default=True, visibility="hidden")]
    }
    for page in access.PAGES:
        sections.setdefault(page.section, []).append(page_objects[page.key])
    current = st.navigation(sections, position="top")
    if requested and current.url_path != requested[0] and requested[0] in page_objects:
        st.switch_page(page_objects[requested[0]], query_params=requested[1])
    sign_in.sign_out_button(identity, store)
    spec = access.PAGE_BY_KEY.get(current.url_path)
    if spec is not None and not spec.uses_filters:
        st.sidebar.caption(f"The filters below do not change the {spec.title} page; they are kept for the other pages.")
    filters = shared_filters(info)
    st.session_state["ilp_context"] = dict(
        role=role,
        user=identity.user,
        snapshot=snapshot,
        version=version,
        filters=filters,
        info=info,
    )
    try:
        with error_boundary(spec.title if spec is not None else "This page"):
            current.run()

        page_key = current.url_path or pages[0].key
        ui.footer(ui.PageContext(key=page_key, **st.session_state["ilp_context"]))
    finally:  # also when the page stops early or switches page
        sign_in.seen()


with error_boundary("The dashboard"):
    main()
