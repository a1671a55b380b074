"""Administration sub-APIs of a Node: users, roles, groups, API tokens and the audit log.

Each method is one call to the Node's ``/api/v1`` and returns its JSON (dicts and lists). A user is named
by id or email, a role or a group by id or name (``ref``). List methods return the items; paged ones
take ``limit`` and ``offset`` and their ``page()`` variant returns the whole page
(``{"items", "total", "limit", "offset"}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gridctl.sdk.http import segment

if TYPE_CHECKING:
    from gridctl.sdk.http import Http

Json = dict[str, Any]
JsonList = list[Json]
Names = list[str]  # capability names (aliases: ``list`` is a method name inside the classes)


def _without_none(**fields: Any) -> Json:
    return {k: v for k, v in fields.items() if v is not None}


class _Api:
    def __init__(self, http: Http) -> None:
        self.http = http


class Users(_Api):
    """``node.users``: accounts, their role, their privacy budget ε."""

    def me(self) -> Json:
        """The logged-in user."""
        return self.http.get("/users/me")

    def page(self, *, role: str | None = None, disabled: bool | None = None, q: str | None = None,
             group: str | None = None, limit: int = 50, offset: int = 0) -> Json:
        params = _without_none(role=role, disabled=None if disabled is None else str(disabled).lower(),
                               q=q, group=group, limit=limit, offset=offset)
        return self.http.get("/users", params=params)

    def list(self, **filters: Any) -> JsonList:
        """Users matching ``role``, ``disabled``, ``q`` (email/name substring) and ``group``."""
        return list(self.page(**filters)["items"])

    def get(self, ref: int | str) -> Json:
        return self.http.get(f"/users/{segment(ref)}")

    def create(self, email: str, password: str, *, full_name: str | None = None, role: str | None = None,
               budget_epsilon: float | None = None) -> Json:
        """A new user; ``role`` defaults to "Data Scientist" on the Node; a budget needs manage_budgets."""
        body = _without_none(email=email, password=password, full_name=full_name, role=role,
                             budget_epsilon=budget_epsilon)
        return self.http.post("/users", json=body)

    def update(self, ref: int | str, *, email: str | None = None, full_name: str | None = None,
               role: str | None = None, disabled: bool | None = None) -> Json:
        body = _without_none(email=email, full_name=full_name, role=role, disabled=disabled)
        return self.http.patch(f"/users/{segment(ref)}", json=body)

    def disable(self, ref: int | str) -> Json:
        """Disable an account: it cannot log in and its tokens stop working."""
        return self.update(ref, disabled=True)

    def enable(self, ref: int | str) -> Json:
        return self.update(ref, disabled=False)

    def remove(self, ref: int | str) -> None:
        self.http.delete(f"/users/{segment(ref)}")

    def set_budget(self, ref: int | str, epsilon: float) -> Json:
        """Set a user's total privacy budget ε (needs manage_budgets)."""
        return self.http.put(f"/users/{segment(ref)}/budget", json={"epsilon": epsilon})

    def reset_password(self, ref: int | str, new_password: str) -> None:
        """Set someone else's password; their sessions are revoked."""
        self.http.put(f"/users/{segment(ref)}/password", json={"new_password": new_password})

    def change_password(self, current_password: str, new_password: str) -> None:
        """Change your own password; your other sessions are logged out."""
        self.http.put("/users/me/password",
                      json={"current_password": current_password, "new_password": new_password})

    def transfer_ownership(self, ref: int | str) -> Json:
        """Make another user the Owner (Owner only); the old Owner becomes an Administrator."""
        return self.http.post(f"/users/{segment(ref)}/transfer-ownership")


class Roles(_Api):
    """``node.roles``: named sets of capabilities (preset or custom)."""

    def list(self) -> JsonList:
        return self.http.get("/roles")

    def get(self, ref: int | str) -> Json:
        return self.http.get(f"/roles/{segment(ref)}")

    def create(self, name: str, capabilities: Names, *, description: str | None = None) -> Json:
        body = _without_none(name=name, description=description, capabilities=list(capabilities))
        return self.http.post("/roles", json=body)

    def update(self, ref: int | str, *, name: str | None = None, description: str | None = None,
               capabilities: Names | None = None) -> Json:
        body = _without_none(name=name, description=description,
                             capabilities=None if capabilities is None else list(capabilities))
        return self.http.patch(f"/roles/{segment(ref)}", json=body)

    def remove(self, ref: int | str) -> None:
        self.http.delete(f"/roles/{segment(ref)}")


class Groups(_Api):
    """``node.groups``: named sets of users, used by permissions."""

    def page(self, *, q: str | None = None, limit: int = 50, offset: int = 0) -> Json:
        return self.http.get("/groups", params=_without_none(q=q, limit=limit, offset=offset))

    def list(self, **filters: Any) -> JsonList:
        return list(self.page(**filters)["items"])

    def get(self, ref: int | str) -> Json:
        """The group with its ``members``."""
        return self.http.get(f"/groups/{segment(ref)}")

    def create(self, name: str, *, description: str | None = None) -> Json:
        return self.http.post("/groups", json=_without_none(name=name, description=description))

    def update(self, ref: int | str, *, name: str | None = None, description: str | None = None) -> Json:
        body = _without_none(name=name, description=description)
        return self.http.patch(f"/groups/{segment(ref)}", json=body)

    def remove(self, ref: int | str) -> None:
        self.http.delete(f"/groups/{segment(ref)}")

    def add_member(self, ref: int | str, user: int | str) -> Json:
        return self.http.put(f"/groups/{segment(ref)}/members/{segment(user)}")

    def remove_member(self, ref: int | str, user: int | str) -> Json:
        return self.http.delete(f"/groups/{segment(ref)}/members/{segment(user)}")


class Tokens(_Api):
    """``node.tokens``: your named API tokens, for scripts and CI."""

    def create(self, name: str, *, expires_in_days: int | None = None) -> Json:
        """A new token; its secret is in ``["token"]`` and is never shown again."""
        body = _without_none(name=name, expires_in_days=expires_in_days)
        return self.http.post("/tokens", json=body)

    def list(self, *, user: int | str | None = None, active: bool = False) -> JsonList:
        """Your API tokens; with ``user`` (manage_users), every token of that user, sessions included."""
        if user is None:
            return self.http.get("/tokens")
        return self.http.get(f"/users/{segment(user)}/tokens", params={"active": active})

    def revoke(self, ref: int | str, *, user: int | str | None = None) -> Json:
        """Revoke one of your tokens, by id or name; with ``user`` (manage_users), one of theirs."""
        if user is None:
            return self.http.delete(f"/tokens/{segment(ref)}")
        return self.http.delete(f"/users/{segment(user)}/tokens/{segment(ref)}")

    def revoke_all(self, user: int | str) -> Json:
        """Revoke every token of ``user`` (sessions and API tokens; manage_users)."""
        return self.http.delete(f"/users/{segment(user)}/tokens")


class Audit(_Api):
    """``node.audit``: the append-only log of mutating actions, newest first (needs view_statistics)."""

    def page(self, *, actor: int | str | None = None, action: str | None = None,
             target_type: str | None = None, target_id: int | str | None = None, since: str | None = None,
             until: str | None = None, limit: int = 50, offset: int = 0) -> Json:
        params = _without_none(actor=actor, action=action, target_type=target_type, target_id=target_id,
                               since=since, until=until, limit=limit, offset=offset)
        return self.http.get("/audit", params=params)

    def list(self, **filters: Any) -> JsonList:
        """Events matching ``actor`` (id or email), ``action``, ``target_type``, ``target_id``,
        ``since`` and ``until`` (ISO 8601)."""
        return list(self.page(**filters)["items"])
