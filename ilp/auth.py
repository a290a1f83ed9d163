"""Who may use the dashboard, and as which role: the sign-in rules, without Streamlit.

A warehouse is served in one of these modes (``sign_in_mode``):

* ``demo`` — the synthetic demo city: anyone picks a role (a banner on every page says it is synthetic).
* ``oidc`` — single sign-on through Streamlit's built-in OIDC (``st.login``), configured in
  ``.streamlit/secrets.toml`` ``[auth]``. The role comes from an administrator's assignment to the user's
  subject or email (``State.identity_role``), else from a claim (``[ilp] role_claim``, default ``groups``)
  mapped to roles in ``[ilp.role_map]``; no role, no access.
* ``local`` — local accounts with Argon2id hashes in the warehouse's app state (``ilp users ...``), for
  air-gapped sites without an identity provider; lockout and idle expiry in ``ilp.state``/here.
* ``workstation`` — one person at the machine, role from ``-- --role ROLE`` or ``ILP_ROLE``: only when
  the server listens on the loopback address.
* ``unconfigured`` — a real warehouse with none of the above: the dashboard says how to configure
  sign-in, and a server listening beyond loopback refuses to start (``refusal``).

The role is never taken from the URL on a real warehouse, and it is looked up again on every page run,
so a role change or a disabled account takes effect on the user's next run. The one exception is the cache
warm-up that ``ilp serve`` runs beside the server (``ilp.warm_up``): a session from a loopback address that
presents this server run's random token (``warm_up_role``) visits pages as the role its URL names.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ilp.access import ROLES

DEFAULT_IDLE_MINUTES = 30
DEFAULT_ROLE_CLAIM = "groups"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass(frozen=True)
class AuthSettings:
    """The ``[ilp]`` section of ``.streamlit/secrets.toml`` (all optional) and whether ``[auth]`` exists."""

    oidc: bool = False  # an [auth] section: Streamlit's OIDC is configured
    provider: str | None = None  # the [auth.<provider>] to use when several are configured
    role_claim: str = DEFAULT_ROLE_CLAIM
    role_map: dict = field(default_factory=dict)  # claim value -> role
    idle_minutes: float = DEFAULT_IDLE_MINUTES

    @classmethod
    def from_secrets(cls, secrets: Mapping) -> AuthSettings:
        auth = _mapping(secrets, "auth")
        ilp = _mapping(secrets, "ilp")
        providers = [key for key, value in auth.items() if isinstance(value, Mapping)]
        role_map = {str(k): str(v) for k, v in _mapping(ilp, "role_map").items()}
        unknown = sorted({role for role in role_map.values() if role not in ROLES})
        if unknown:
            raise AuthConfigError(f"[ilp.role_map] maps to unknown roles {unknown}; roles are {', '.join(ROLES)}")
        idle = float(ilp.get("idle_minutes", DEFAULT_IDLE_MINUTES))
        if not idle > 0:
            raise AuthConfigError("[ilp] idle_minutes must be more than 0")
        return cls(
            oidc=bool(auth),
            provider=str(ilp.get("provider"))
            if ilp.get("provider")
            else (providers[0] if len(providers) == 1 else None),
            role_claim=str(ilp.get("role_claim", DEFAULT_ROLE_CLAIM)),
            role_map=role_map,
            idle_minutes=idle,
        )


class AuthConfigError(ValueError):
    """The sign-in configuration cannot be used as written."""


def _mapping(parent: Mapping, key: str) -> Mapping:
    try:
        value = parent.get(key)
    except Exception:  # st.secrets raises when no secrets file exists at all
        return {}
    return value if isinstance(value, Mapping) else {}


# ------------------------------------------------------------------------------------------ the mode
def is_loopback(address: str | None) -> bool:
    """True when ``address`` (Streamlit's ``server.address``) accepts connections from this machine only.
    An unset address means every interface."""
    if not address:
        return False
    if address.lower() in LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # '::ffff:127.0.0.1', as a dual-stack server reports a client
    return (mapped or ip).is_loopback


def _same_address(one: str, other: str) -> bool:
    try:
        a, b = (ipaddress.ip_address(text.strip("[]")) for text in (one, other))
    except ValueError:
        return False
    return (getattr(a, "ipv4_mapped", None) or a) == (getattr(b, "ipv4_mapped", None) or b)


def warm_up_role(
    *,
    presented: str | None,
    expected: str | None,
    address: str | None,
    requested: str | None,
    server_address: str | None = None,
) -> str | None:
    """The role a cache warm-up session (``ilp.warm_up``) visits as: ``requested``, when the session comes
    from this machine (a loopback ``address``, or the one address the server listens on) and ``presented``
    (its ``X-ILP-Warm-Up`` header) is this server run's token (``expected``, at least 32 characters,
    compared in constant time); otherwise None, and the session signs in as any other. The token is the
    guard; the address (which a proxy's forwarded-for header can set) only narrows it further."""
    if not expected or len(expected) < 32 or not presented or requested not in ROLES:
        return None
    if not (is_loopback(address) or (address and server_address and _same_address(address, server_address))):
        return None
    return requested if hmac.compare_digest(presented.encode(), expected.encode()) else None


def sign_in_mode(
    *, demo: bool, settings: AuthSettings, has_local_users: bool, workstation_role: str | None, address: str | None
) -> str:
    """'demo', 'oidc', 'local', 'workstation' or 'unconfigured' (see the module docstring)."""
    if demo:
        return "demo"
    if settings.oidc:
        return "oidc"
    if has_local_users:
        return "local"
    if workstation_role and is_loopback(address):
        return "workstation"
    return "unconfigured"


def refusal(*, mode: str, workstation_role: str | None, address: str | None) -> str | None:
    """Why this server must not serve a real warehouse as configured, or None. A role given on the command
    line is for one person at the machine; a server others can reach needs sign-in."""
    if mode in ("demo", "oidc", "local"):
        return None
    if is_loopback(address):
        return None
    where = f"address {address}" if address else "every network interface (server.address is not set)"
    given = f"`--role {workstation_role}` is for a single workstation and " if workstation_role else ""
    return (
        f"Refusing to serve a real warehouse on {where} without sign-in: {given}anyone who can reach this "
        "server would see the data. Either listen on the loopback address only (`--server.address 127.0.0.1`), "
        "or configure sign-in: local accounts (`ilp users add NAME --role ROLE`) or single sign-on "
        '(an [auth] section in .streamlit/secrets.toml). The README\'s "Serving a team" says how.'
    )


# ------------------------------------------------------------------------------------------ roles
def role_from_claims(claims: Mapping, settings: AuthSettings, assigned: str | None = None) -> str | None:
    """A signed-in SSO user's role: the administrator's assignment (``assigned``, from
    ``State.identity_role``) when there is one, else the first claim value that ``[ilp.role_map]`` maps to a
    role (claim values tried in order; a role name itself counts when the map is empty); None: no access."""
    if assigned in ROLES:
        return assigned
    values = claims.get(settings.role_claim)
    for value in _as_list(values):
        if value in settings.role_map:
            return settings.role_map[value]
        if not settings.role_map and value in ROLES:
            return value
    return None


def _as_list(values) -> Iterable[str]:
    if values is None:
        return []
    if isinstance(values, str):
        return [part.strip() for part in values.split(",") if part.strip()]
    return [str(value) for value in values]


def idle_expired(last_seen: float | None, now: float, idle_minutes: float) -> bool:
    """A session unused for longer than ``idle_minutes`` ends: its user signs in again."""
    return last_seen is not None and now - last_seen > idle_minutes * 60


def read_secrets(project_dir) -> dict:
    """The secrets Streamlit would read (``~/.streamlit/secrets.toml`` then the project's
    ``.streamlit/secrets.toml``, the latter winning), for checks made outside a running server (``ilp serve``)."""
    import tomllib
    from pathlib import Path

    merged: dict = {}
    for path in (Path.home() / ".streamlit" / "secrets.toml", Path(project_dir) / ".streamlit" / "secrets.toml"):
        if path.is_file():
            with open(path, "rb") as handle:
                merged.update(tomllib.load(handle))
    return merged
