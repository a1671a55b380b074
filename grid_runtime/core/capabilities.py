"""Capabilities are named data; a role is a named set of them (see docs/domain.md)."""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    triage_requests = "triage_requests"
    manage_budgets = "manage_budgets"
    manage_users = "manage_users"
    manage_groups = "manage_groups"
    edit_roles = "edit_roles"
    upload_data = "upload_data"
    manage_permissions = "manage_permissions"
    edit_settings = "edit_settings"
    manage_infrastructure = "manage_infrastructure"
    view_statistics = "view_statistics"


ALL = frozenset(Capability)

OWNER_ROLE = "Owner"
DEFAULT_ROLE = "Data Scientist"

PRESET_ROLES: dict[str, frozenset[Capability]] = {
    DEFAULT_ROLE: frozenset(),
    "Compliance Officer": frozenset(
        {Capability.triage_requests, Capability.manage_budgets, Capability.view_statistics}
    ),
    "Administrator": ALL - {Capability.edit_roles, Capability.manage_infrastructure},
    OWNER_ROLE: ALL,
}

# What each preset is for: stored as the role's description, so `gridctl roles list` explains them.
PRESET_DESCRIPTIONS: dict[str, str] = {
    DEFAULT_ROLE: "Finds data, asks for access, runs private jobs within their ε budget and asks to release results.",
    "Compliance Officer": "Decides requests (access, release, budget), sets privacy budgets and reads the statistics.",
    "Administrator": "Runs the Node day to day: users, groups, data, permissions and settings; not roles or "
                     "infrastructure.",
    OWNER_ROLE: "Every capability; the account that set up the Node. Ownership can be transferred, not removed.",
}


class NetworkCapability(StrEnum):
    """What a Network's users may do (docs/network.md). A Network has its own users and roles, apart from any
    Node's: the same words where they mean the same thing."""

    manage_nodes = "manage_nodes"  # decide association requests, invite Nodes, end associations
    manage_users = "manage_users"
    edit_roles = "edit_roles"
    edit_settings = "edit_settings"
    view_statistics = "view_statistics"  # read each associated Node's statistics


NETWORK_ALL = frozenset(NetworkCapability)
NETWORK_DEFAULT_ROLE = "Member"

NETWORK_PRESET_ROLES: dict[str, frozenset[NetworkCapability]] = {
    NETWORK_DEFAULT_ROLE: frozenset(),
    "Administrator": NETWORK_ALL - {NetworkCapability.edit_roles},
    OWNER_ROLE: NETWORK_ALL,
}

NETWORK_PRESET_DESCRIPTIONS: dict[str, str] = {
    NETWORK_DEFAULT_ROLE: "Searches the catalogue of every associated Node; then works with the Node that holds "
                          "the data.",
    "Administrator": "Decides association requests, invites Nodes, manages users and reads Node statistics; "
                     "not roles.",
    OWNER_ROLE: "Every capability; the account that set up the Network.",
}
