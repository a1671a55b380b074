"""The one state machine every request follows, whatever its kind.

``pending`` -> ``approved`` | ``denied`` | ``withdrawn`` (by the requester) | ``expired``. A request may also
be created directly as ``auto_approved`` or ``auto_denied`` (policies applied at creation). Terminal states
never change: asking to leave one is a ``Conflict`` that names the state the request is in.
"""

from __future__ import annotations

from enum import StrEnum

from grid_runtime.core.errors import Conflict


class RequestKind(StrEnum):
    access = "access"  # raise my level on a tensor or dataset
    release = "release"  # let me download this result or private tensor
    budget = "budget"  # raise my privacy budget


class RequestState(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    withdrawn = "withdrawn"
    expired = "expired"
    auto_approved = "auto_approved"
    auto_denied = "auto_denied"

    @property
    def terminal(self) -> bool:
        return self not in TRANSITIONS


INITIAL_STATES = frozenset({RequestState.pending, RequestState.auto_approved, RequestState.auto_denied})
"""The states a request may be created in."""

TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.pending: frozenset(
        {RequestState.approved, RequestState.denied, RequestState.withdrawn, RequestState.expired}
    ),
}
"""Every allowed move. A state with no entry is terminal."""

DECISIONS = frozenset({RequestState.approved, RequestState.denied, RequestState.auto_approved,
                       RequestState.auto_denied})
"""States that record a decision (who decided, when, and the note)."""


def check_initial(state: RequestState) -> None:
    if state not in INITIAL_STATES:
        raise ValueError(f"a request cannot be created as {state}")


def check_transition(request_id: int, current: RequestState, target: RequestState) -> None:
    """Raise ``Conflict`` unless ``current -> target`` is allowed; the message names the current state."""
    if target in TRANSITIONS.get(current, frozenset()):
        return
    if current.terminal:
        message = f"request {request_id} is already {current} and can no longer change"
    else:
        message = f"request {request_id} is {current} and cannot become {target}"
    raise Conflict(message, details={"request_id": request_id, "state": str(current), "wanted": str(target)})
