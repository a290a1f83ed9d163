"""Every page x every role, with AppTest: who may see what, and what a refused session sees.

The matrix comes from ilp.access (PAGES, ROLES), never from a list written here, so a page or role added
there is tested without touching this file. Over the demo city (the `app_env` fixture):

- an allowed page renders through dashboard.py without an exception, has a title naming the page
  (ilp.access's title, e.g. "Deployment map: where does harm concentrate?"), shows the demo banner
  and ends with the footer naming the snapshot version (read from the warehouse's CURRENT file here)
  and the harm index (read from the warehouse's harm_indices table here);
- every page is registered (the role's own visible, the rest hidden), so a link, typed URL or bookmark
  to a page the role may not see reaches that page's gate and shows the refusal, never Streamlit's
  "page not found" and the role's first page;
- a page file run on its own (what a fresh server does for `/<page>` before any session has run the
  entry point: it hands over to dashboard.py where there is one) or with a session whose role may not
  see it shows the "Access refused" error and nothing else: no data element, no sidebar.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pagetest import dashboard_as, open_page, page_file, page_file_as, read_snapshot, snapshot_path
from streamlit.testing.v1 import AppTest

from ilp import access

pytestmark = pytest.mark.usefixtures("entry_point_has_run")

ROLE_PAGES = [(role, page.key) for role in access.ROLES for page in access.PAGES]
ALLOWED = [(role, key) for role, key in ROLE_PAGES if role in access.PAGE_BY_KEY[key].roles]
FORBIDDEN = [(role, key) for role, key in ROLE_PAGES if role not in access.PAGE_BY_KEY[key].roles]
PAGE_KEYS = [page.key for page in access.PAGES]

# Element types that carry data; a refused page shows none of them.
DATA_ELEMENTS = (
    "dataframe",
    "table",
    "metric",
    "plotly_chart",
    "deck_gl_json_chart",
    "vega_lite_chart",
    "arrow_vega_lite_chart",
    "map",
    "json",
    "code",
    "download_button",
    "data_editor",
)
DEMO_BANNER = "Demo city — synthetic data"


def _ids(pairs):
    return [f"{role}-{key}" for role, key in pairs]


# ---------------------------------------------------------------------------------------- helpers
_FIRST_RUNS: dict[str, AppTest] = {}


def first_run_as(role: str) -> AppTest:
    """dashboard.py run once as ``role``, shared by the tests that only read what it registered
    (navigation, session context) over the one session-wide demo warehouse."""
    if role not in _FIRST_RUNS:
        _FIRST_RUNS[role] = dashboard_as(role)
    return _FIRST_RUNS[role]


def registered_pages(at: AppTest) -> set[str]:
    """Page keys (file stems) that dashboard.py registered with st.navigation in the last run."""
    # AppTest keeps the registry st.navigation sent; switch_page() matches against it.
    return {Path(str(info["script_path"])).stem for info in at._registered_pages.values() if info.get("script_path")}


def children(block) -> list:
    return [block.children[i] for i in sorted(block.children)]


def elements(node) -> list:
    """Every element under ``node``, depth first, blocks flattened."""
    found = []
    for child in children(node) if hasattr(node, "children") else []:
        found.append(child)
        found.extend(elements(child))
    return found


def data_elements(at: AppTest) -> list:
    return [(name, len(at.get(name))) for name in DATA_ELEMENTS if len(at.get(name))]


def assert_refused_only(at: AppTest, key: str) -> None:
    """The run shows one thing, in the main area: the "Access refused" error naming the page."""
    assert not at.exception, [e.message for e in at.exception]
    assert data_elements(at) == [], f"{key}: a refused page drew data elements {data_elements(at)}"
    main = elements(at.main)
    assert len(main) == 1, f"{key}: a refused page drew {len(main)} elements: {main}"
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith("Access refused"), message
    assert access.PAGE_BY_KEY[key].title in message
    assert elements(at.sidebar) == [], f"{key}: a refused page drew in the sidebar: {elements(at.sidebar)}"


@pytest.fixture(scope="module")
def warehouse_facts(demo_warehouse) -> dict:
    """What the frame must show, read straight from the demo warehouse (not through ilp.ui)."""
    with read_snapshot(demo_warehouse) as con:
        title, index_name, version = con.execute(
            "SELECT title, index_name, version FROM harm_indices WHERE is_default ORDER BY index_name, version LIMIT 1"
        ).fetchone()
    return {
        "version": snapshot_path(demo_warehouse).stem,
        "harm_title": title,
        "harm_index": index_name,
        "harm_version": version,
    }


# ---------------------------------------------------------------------------------------- allowed
@pytest.mark.parametrize(("role", "key"), ALLOWED, ids=_ids(ALLOWED))
def test_allowed_page_renders_in_the_frame(app_env, warehouse_facts, role, key):
    at = open_page(key, role)

    assert not at.exception, f"{key} as {role}: " + "\n".join(
        e.message + "\n" + "\n".join(e.stack) for e in at.exception
    )
    refused = [e.value for e in at.error if e.value.startswith("Access refused")]
    assert not refused, f"{key} as {role} was refused: {refused}"
    titles = [t.value.strip() for t in at.title]
    title = access.PAGE_BY_KEY[key].title
    assert titles and title.lower() in titles[0].lower(), f"{key} as {role}: title {titles} does not name {title!r}"

    main = children(at.main)
    assert main[0].type == "warning" and DEMO_BANNER in main[0].value, f"{key}: first element is not the demo banner"

    footer = main[-1]
    assert footer.type == "caption", f"{key} as {role}: the page does not end with the footer ({footer})"
    assert warehouse_facts["version"] in footer.value, footer.value
    assert warehouse_facts["harm_title"] in footer.value, footer.value
    assert f"{warehouse_facts['harm_index'].upper()} {warehouse_facts['harm_version']}" in footer.value, footer.value
    assert access.ROLES[role] in footer.value, footer.value


# ---------------------------------------------------------------------------------------- navigation
@pytest.mark.parametrize("role", list(access.ROLES))
def test_navigation_registers_every_page(app_env, role):
    """Every page is registered, so its URL reaches its gate; which are shown is checked in Chromium
    (tests/test_e2e_signin.py: a city leader's navigation has no Command brief)."""
    at = first_run_as(role)
    assert registered_pages(at) == set(PAGE_KEYS)


@pytest.mark.parametrize(("role", "key"), FORBIDDEN, ids=_ids(FORBIDDEN))
def test_forbidden_page_reached_by_url_shows_the_refusal(app_env, role, key):
    at = dashboard_as(role)
    at.query_params["role"] = role
    at.switch_page(str(page_file(key)))
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert data_elements(at) == [], f"{key} as {role}: a refused page drew data elements {data_elements(at)}"
    refusals = [e.value for e in at.error if e.value.startswith("Access refused")]
    assert len(refusals) == 1 and access.PAGE_BY_KEY[key].title in refusals[0], [e.value for e in at.error]
    assert not at.title, f"{key} as {role}: the page's own content ran: {[t.value for t in at.title]}"


# ---------------------------------------------------------------------------------------- refused
@pytest.mark.parametrize("key", PAGE_KEYS)
def test_page_file_run_without_a_role_shows_only_the_refusal(app_env, key):
    """What a fresh server runs for `/<key>` before any session has run dashboard.py."""
    assert_refused_only(page_file_as(key), key)


@pytest.mark.parametrize(("role", "key"), FORBIDDEN, ids=_ids(FORBIDDEN))
def test_page_file_run_for_a_forbidden_role_shows_only_the_refusal(app_env, role, key):
    """A session that has a role and a full page context, but a role that may not see this page."""
    context = first_run_as(role).session_state["ilp_context"]
    assert_refused_only(page_file_as(key, role, context), key)


def test_matrix_covers_every_page_and_role():
    """Guards the parametrisation itself: every page has someone who may see it and the matrix is full."""
    assert len(ALLOWED) + len(FORBIDDEN) == len(access.PAGES) * len(access.ROLES)
    assert {key for _, key in ALLOWED} == set(PAGE_KEYS)
    assert all(page_file(key).exists() for key in PAGE_KEYS), "a page in ilp.access has no file in pages/"
