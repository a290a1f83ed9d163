"""The Streamlit side of sign-in (the rules are in ``ilp.auth``): who the session's user is, on every run.

``identify`` returns the signed-in :class:`Identity`, or None when the page must show the sign-in form
(``sign_in_page``) or the "no access" page (an SSO user without a role). Every sign-in, failed sign-in,
lockout, sign-out and idle expiry is written to the audit log (the failed ones by ``State.authenticate``).
Passwords go from the form to ``State.authenticate`` and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import streamlit as st

from ilp import access, auth
from ilp.state import State

SESSION_KEY = "ilp_signed_in"  # {'user', 'method', 'last_seen'} of a local or SSO sign-in
NOTICE_KEY = "ilp_sign_in_notice"  # why the last session ended, shown once on the sign-in page


@dataclass(frozen=True)
class Identity:
    user: str
    role: str | None  # None: signed in through SSO, but no role: no access
    method: str  # 'demo', 'workstation', 'local', 'oidc', or 'warm-up' (ilp.warm_up)


def identify(
    mode: str, settings: auth.AuthSettings, store: State, *, workstation_role: str | None, demo_role: str | None = None
) -> Identity | None:
    """The session's identity under ``mode`` (see ``ilp.auth.sign_in_mode``), checked again on this run."""
    if mode == "demo":
        return Identity(user=f"{demo_role} (demo)", role=demo_role, method="demo")
    if mode == "workstation":
        return Identity(user=f"{workstation_role} (workstation)", role=workstation_role, method="workstation")
    if mode == "local":
        return _local(settings, store)
    if mode == "oidc":
        return _oidc(settings, store)
    return None


def _end(store: State, session: dict, action: str, notice: str, role: str | None) -> None:
    store.record(user=session["user"], role=role, action=action, parameters={"method": session["method"]})
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop("ilp_context", None)
    st.session_state[NOTICE_KEY] = notice


def _local(settings: auth.AuthSettings, store: State) -> Identity | None:
    session = st.session_state.get(SESSION_KEY)
    if not session or session.get("method") != "local":
        return None
    now = time.time()
    role = store.user_role(session["user"])
    if auth.idle_expired(session["last_seen"], now, settings.idle_minutes):
        _end(
            store,
            session,
            "session_expired",
            f"Your session ended after {settings.idle_minutes:g} minutes without use. Sign in again.",
            role,
        )
        return None
    if role is None:
        _end(store, session, "sign_out", "Your account was disabled or removed. Ask an administrator.", None)
        return None
    session["last_seen"] = now
    return Identity(user=session["user"], role=role, method="local")


def seen() -> None:
    """The page has been delivered: a signed-in session's idle time counts from now, not from when the page
    was asked for, so a page that took long to draw does not use up its user's idle allowance."""
    session = st.session_state.get(SESSION_KEY)
    if session:
        session["last_seen"] = time.time()


def _oidc(settings: auth.AuthSettings, store: State) -> Identity | None:
    if not st.user.is_logged_in:
        st.session_state.pop(SESSION_KEY, None)
        return None
    claims = st.user.to_dict()
    subject, email = claims.get("sub"), claims.get("email")
    user = str(email or subject)
    role = auth.role_from_claims(claims, settings, store.identity_role(subject, email))
    now = time.time()
    session = st.session_state.get(SESSION_KEY)
    if session and auth.idle_expired(session["last_seen"], now, settings.idle_minutes):
        _end(
            store,
            session,
            "session_expired",
            f"Your session ended after {settings.idle_minutes:g} minutes without use. Sign in again.",
            role,
        )
        st.logout()
    if not session:
        store.record(
            user=user,
            role=role,
            action="sign_in" if role else "sign_in_failed",
            parameters={
                "method": "oidc",
                "subject": subject,
                **({} if role else {"reason": "no role for this identity"}),
            },
        )
        session = st.session_state[SESSION_KEY] = {"user": user, "method": "oidc", "last_seen": now}
    session["last_seen"] = now
    return Identity(user=user, role=role, method="oidc")


# ------------------------------------------------------------------------------------------ pages
def sign_in_page(mode: str, settings: auth.AuthSettings, store: State) -> None:
    """The sign-in form (local accounts), the SSO button (OIDC), or how to configure sign-in."""
    st.title("Sign in")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice, icon=":material/logout:")
    if mode == "oidc":
        st.markdown("This dashboard serves a **real** warehouse. Sign in with your organisation's account.")
        if st.button("Sign in with single sign-on", type="primary", icon=":material/login:", key="sso_sign_in"):
            st.login(settings.provider) if settings.provider else st.login()
        return
    if mode == "local":
        with st.form("sign_in", enter_to_submit=True):
            username = st.text_input("User name", key="sign_in_user", autocomplete="username")
            password = st.text_input(
                "Password", type="password", key="sign_in_password", autocomplete="current-password"
            )
            submitted = st.form_submit_button("Sign in", type="primary", key="sign_in_submit")
        if submitted:
            result = store.authenticate(username.strip(), password)
            st.session_state.pop("sign_in_password", None)  # the password does not stay in the session
            if result.ok:
                st.session_state[SESSION_KEY] = {"user": username.strip(), "method": "local", "last_seen": time.time()}
                st.rerun()
            elif result.reason == "locked" or result.locked_until is not None:
                until = _local_time(result.locked_until)
                st.error(
                    f"This account is locked after repeated failed sign-ins, until {until}. "
                    "Ask an administrator to reset the password if you have forgotten it.",
                    icon=":material/lock_clock:",
                )
            else:
                st.error("Wrong user name or password, or the account is disabled.", icon=":material/error:")
        st.caption(
            f"Sessions end after {settings.idle_minutes} minutes without use. Administrators manage "
            "accounts with `ilp users` or on the Data and governance page."
        )
        return
    st.info(
        "This dashboard is serving a **real** warehouse, so a role is required, and no sign-in is configured. "
        "For a team: create local accounts (`ilp users add NAME --role ROLE`) or configure single sign-on (an "
        '`[auth]` section in `.streamlit/secrets.toml`); see the README\'s "Serving a team". For one person at '
        "this machine: `ilp serve --role analyst` (listens on 127.0.0.1 only).",
        icon=":material/lock:",
    )


def no_access_page(identity: Identity) -> None:
    st.title("No access")
    st.error(
        f"You are signed in as **{identity.user}**, but no dashboard role is assigned to you. Ask an "
        "administrator to add you to one of the dashboard's groups or to assign you a role "
        "(`ilp users assign-sso`).",
        icon=":material/block:",
    )
    if st.button("Sign out", key="no_access_sign_out"):
        st.logout()


def sign_out_button(identity: Identity, store: State) -> None:
    """In the sidebar for signed-in users: ends the session (and the SSO cookie) and audits it."""
    if identity.method not in ("local", "oidc"):
        return
    st.sidebar.caption(f"Signed in as **{identity.user}** ({access.ROLES.get(identity.role, identity.role)})")
    if st.sidebar.button("Sign out", icon=":material/logout:", key="sign_out"):
        session = st.session_state.get(SESSION_KEY) or {"user": identity.user, "method": identity.method}
        _end(store, session, "sign_out", "You have signed out.", identity.role)
        if identity.method == "oidc":
            st.logout()  # sends the browser to the provider's end-session page; a rerun now could race it
            st.stop()
        st.rerun()


def _local_time(value) -> str:
    if value is None:
        return "later"
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone().strftime("%H:%M %Z")
