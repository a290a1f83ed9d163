"""ilp.auth: which sign-in a server uses, when it must refuse to start, and a SSO user's role."""

from __future__ import annotations

import pytest

from ilp import auth

SSO = auth.AuthSettings.from_secrets(
    {
        "auth": {
            "redirect_uri": "http://localhost:8501/oauth2callback",
            "cookie_secret": "x",
            "keycloak": {"client_id": "ilp", "client_secret": "s", "server_metadata_url": "http://idp/.well-known"},
        },
        "ilp": {
            "role_claim": "groups",
            "idle_minutes": 20,
            "role_map": {"ilp-commanders": "commander", "ilp-analysts": "analyst", "city-hall": "city_leader"},
        },
    }
)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("", False),
        (None, False),
        ("10.1.2.3", False),
        ("dashboard.police.example", False),
    ],
)
def test_loopback(address, loopback):
    assert auth.is_loopback(address) is loopback


def test_settings_from_secrets():
    assert SSO.oidc and SSO.provider == "keycloak" and SSO.idle_minutes == 20
    none = auth.AuthSettings.from_secrets({})
    assert (none.oidc, none.provider, none.role_claim, none.idle_minutes) == (False, None, "groups", 30)
    with pytest.raises(auth.AuthConfigError, match="unknown roles"):
        auth.AuthSettings.from_secrets({"ilp": {"role_map": {"g": "superuser"}}})
    with pytest.raises(auth.AuthConfigError, match="idle_minutes"):
        auth.AuthSettings.from_secrets({"ilp": {"idle_minutes": 0}})


def mode(**overrides):
    arguments = dict(
        demo=False, settings=auth.AuthSettings(), has_local_users=False, workstation_role=None, address="127.0.0.1"
    )
    arguments.update(overrides)
    return auth.sign_in_mode(**arguments)


def test_modes():
    assert mode(demo=True, address="0.0.0.0") == "demo"
    assert mode(settings=SSO, has_local_users=True) == "oidc"
    assert mode(has_local_users=True, workstation_role="analyst") == "local"
    assert mode(workstation_role="analyst") == "workstation"
    assert mode(workstation_role="analyst", address="0.0.0.0") == "unconfigured"
    assert mode() == "unconfigured"


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({"demo": True, "address": "0.0.0.0"}, False),  # the demo city: anyone may look
        ({"settings": SSO, "address": "0.0.0.0"}, False),  # a team server with SSO
        ({"has_local_users": True, "address": None}, False),  # a team server with local accounts
        ({"workstation_role": "analyst"}, False),  # one person at the machine
        ({"workstation_role": "analyst", "address": "0.0.0.0"}, True),  # --role on the network
        ({"workstation_role": "analyst", "address": None}, True),  # every interface (the default)
        ({"address": "10.0.0.5"}, True),  # nothing configured, reachable
        ({}, False),  # nothing configured, loopback: says how
    ],
)
def test_refusal(overrides, refused):
    arguments = dict(
        demo=False, settings=auth.AuthSettings(), has_local_users=False, workstation_role=None, address="127.0.0.1"
    )
    arguments.update(overrides)
    found = auth.refusal(
        mode=auth.sign_in_mode(**arguments),
        workstation_role=arguments["workstation_role"],
        address=arguments["address"],
    )
    assert (found is not None) is refused
    if refused:
        assert "ilp users add" in found and "[auth]" in found and "127.0.0.1" in found


def test_role_from_claims():
    assert auth.role_from_claims({"groups": ["staff", "ilp-analysts"]}, SSO) == "analyst"
    assert auth.role_from_claims({"groups": "staff, city-hall"}, SSO) == "city_leader"
    assert auth.role_from_claims({"groups": ["staff"]}, SSO) is None  # no mapped group: no access
    assert auth.role_from_claims({}, SSO) is None
    assert auth.role_from_claims({"groups": ["staff"]}, SSO, assigned="admin") == "admin"  # an admin's assignment
    assert auth.role_from_claims({"groups": ["ilp-analysts"]}, SSO, assigned="nonsense") == "analyst"
    # without a map, a group named after a role is that role
    assert auth.role_from_claims({"groups": ["commander"]}, auth.AuthSettings()) == "commander"
    assert auth.role_from_claims({"groups": ["commander"]}, SSO) is None


def test_idle_expiry():
    assert not auth.idle_expired(None, 10_000, 30)
    assert not auth.idle_expired(10_000, 10_000 + 30 * 60, 30)
    assert auth.idle_expired(10_000, 10_000 + 30 * 60 + 1, 30)
