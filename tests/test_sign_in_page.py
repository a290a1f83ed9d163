"""Local-account sessions with AppTest over a real warehouse: sign-in, idle expiry, a role change or a
disabled account taking effect on the next page run, and the role never coming from the URL."""

from __future__ import annotations

import pytest
from pagetest import ENTRY_POINT, TIMEOUT
from streamlit.testing.v1 import AppTest
from test_e2e_signin import PASSWORD, copy_warehouse

from ilp.state import State
from ilp.ui.sign_in import SESSION_KEY

pytestmark = pytest.mark.usefixtures("entry_point_has_run")


@pytest.fixture
def real_env(app_env, demo_warehouse, tmp_path, monkeypatch):
    directory = copy_warehouse(demo_warehouse, tmp_path / "real", kind="real")
    monkeypatch.setenv("ILP_WAREHOUSE", str(directory))
    store = State(app_env["ILP_STATE"])
    store.add_user("okafor", PASSWORD, "commander", by="test")
    store.add_user("vale", PASSWORD, "admin", by="test")
    return store


def signed_in(user: str = "okafor", password: str = PASSWORD, **params) -> AppTest:
    at = AppTest.from_file(str(ENTRY_POINT), default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert [t.value for t in at.title] == ["Sign in"]
    at.text_input(key="sign_in_user").input(user)
    at.text_input(key="sign_in_password").input(password)
    at.button(key="sign_in_submit").click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_sign_in_then_idle_expiry(real_env):
    at = signed_in()
    assert at.session_state["ilp_role"] == "commander" and "sign_in_password" not in at.session_state
    at.session_state[SESSION_KEY]["last_seen"] -= 31 * 60  # 31 minutes without use (default idle: 30)
    at.run()
    assert [t.value for t in at.title] == ["Sign in"]
    assert any("ended after 30 minutes without use" in i.value for i in at.info)
    actions = real_env.audit_log()["action"].tolist()
    assert actions[0] == "session_expired" and "sign_in" in actions


def test_role_change_and_disabling_take_effect_on_the_next_run(real_env):
    at = signed_in()
    assert at.session_state["ilp_role"] == "commander"
    real_env.set_role("okafor", "analyst", by="admin")
    at.run()
    assert at.session_state["ilp_role"] == "analyst"
    real_env.disable_user("okafor", by="admin")
    at.run()
    assert [t.value for t in at.title] == ["Sign in"] and at.session_state["ilp_role"] is None
    assert any("disabled or removed" in i.value for i in at.info), [i.value for i in at.info] + [
        e.value for e in at.error
    ]


def test_the_url_grants_no_role_on_a_real_warehouse(real_env):
    at = AppTest.from_file(str(ENTRY_POINT), default_timeout=TIMEOUT)
    at.query_params["role"] = "admin"
    at.run()
    assert [t.value for t in at.title] == ["Sign in"] and at.session_state["ilp_role"] is None
    assert not at.dataframe and not at.metric
    # signed in as a commander, ?role=admin still changes nothing
    at = signed_in(role="admin")
    assert at.session_state["ilp_role"] == "commander"


def test_a_wrong_password_says_nothing_about_which_part_was_wrong(real_env):
    at = AppTest.from_file(str(ENTRY_POINT), default_timeout=TIMEOUT)
    at.run()
    for user in ("okafor", "nobody"):
        at.text_input(key="sign_in_user").input(user)
        at.text_input(key="sign_in_password").input("wrong password here")
        at.button(key="sign_in_submit").click()
        at.run()
        assert [e.value for e in at.error] == ["Wrong user name or password, or the account is disabled."]
