"""The one state machine every job follows, whatever its kind (training or statistics).

``queued`` -> ``running`` -> ``succeeded`` | ``failed`` | ``cancelled``. A queued job may also be cancelled or
fail before it runs (the Node stopped, its task could not start); a running job whose Worker was lost goes
back to ``queued`` for another attempt (the Node's decision, counted in ``attempts``). Terminal states never
change: asking to leave one is a ``Conflict`` naming the state the job is in.

Torch-free: the API, the runner and the Worker's contracts import it.
"""

from __future__ import annotations

from enum import StrEnum

from grid_runtime.core.errors import Conflict


class JobKind(StrEnum):
    train = "train"
    statistics = "statistics"


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self not in TRANSITIONS

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATES


INITIAL_STATE = JobState.queued
"""A job is created queued, after it was admitted (and charged)."""

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.queued: frozenset({JobState.running, JobState.failed, JobState.cancelled}),
    JobState.running: frozenset({JobState.queued, JobState.succeeded, JobState.failed, JobState.cancelled}),
}
"""Every allowed move. A state with no entry is terminal. ``running -> queued`` is a retry after a lost Worker."""

ACTIVE_STATES: frozenset[JobState] = frozenset({JobState.queued, JobState.running})
FINISHED_STATES: frozenset[JobState] = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled})
"""The terminal states: exactly those with no entry in TRANSITIONS."""


def can_move(current: JobState | str, target: JobState | str) -> bool:
    return JobState(target) in TRANSITIONS.get(JobState(current), frozenset())


def check_transition(job_id: int, current: JobState | str, target: JobState | str) -> None:
    """Raise ``Conflict`` unless ``current -> target`` is allowed; the message names the current state."""
    current, target = JobState(current), JobState(target)
    if target in TRANSITIONS.get(current, frozenset()):
        return
    if current.terminal:
        message = f"job {job_id} has already {current} and can no longer change"
    else:
        message = f"job {job_id} is {current} and cannot become {target}"
    raise Conflict(message, details={"job_id": job_id, "state": str(current), "wanted": str(target)})
