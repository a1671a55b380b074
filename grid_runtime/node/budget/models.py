from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from grid_runtime.core.database import Base, utcnow


class LedgerEntry(Base):
    """One privacy event charged to a user (and to the dataset it came from): the system of record.

    Append-only in the database itself (UPDATE and DELETE are refused by triggers, like ``audit_events``).
    No foreign keys: an entry outlives the user, dataset, request or result it names, as a record must.
    ``rdp`` is the event's RDP at ``rdp_order`` (the node's order when recorded); ``epsilon`` its own ε at
    ``delta``. An entry is made when a job is admitted (``job_id``: its event, charged before any Worker
    sees the data), or when a private tensor (or a result of a job admitted before charging at admission)
    is released (``request_id``). Something outside differential privacy (a job run without DP, a raw
    tensor released under the ``allow_non_private`` policy) is recorded with ``non_private`` set and no
    figures: the filter cannot count it.

    The datasets an entry is charged to (every dataset holding one of the job's inputs) are its
    ``LedgerDataset`` rows; ``dataset_id`` only names the dataset the job was submitted on.
    """

    __tablename__ = "privacy_ledger"
    __table_args__ = (
        Index("ix_privacy_ledger_user_order", "user_id", "rdp_order"),
        Index("ix_privacy_ledger_dataset_order", "dataset_id", "rdp_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int]
    user_email: Mapped[str] = mapped_column(String(254))
    dataset_id: Mapped[int | None]  # the dataset the job named; every dataset charged is in LedgerDataset
    job_id: Mapped[int | None] = mapped_column(index=True)  # the job whose admission charged this event
    request_id: Mapped[int | None] = mapped_column(index=True)
    result_id: Mapped[int | None]
    tensor_id: Mapped[int | None]
    event: Mapped[dict[str, Any]] = mapped_column()  # privacy.events.event_to_dict
    non_private: Mapped[bool] = mapped_column(default=False)
    rdp_order: Mapped[float]
    rdp: Mapped[float | None]
    epsilon: Mapped[float | None]
    delta: Mapped[float]


class LedgerDataset(Base):
    """A dataset a ledger entry is charged to ("caps follow the data"): every dataset that holds one of the
    job's inputs. Append-only like the ledger; no foreign keys, for the same reason."""

    __tablename__ = "privacy_ledger_datasets"

    entry_id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(primary_key=True, index=True)


class BudgetChange(Base):
    """Every change of a user's ε cap (set by an officer, or a budget request approved). The highest cap a
    user ever had (``ceiling_epsilon``) is the budget the Rényi filter's guarantee holds at."""

    __tablename__ = "budget_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    from_epsilon: Mapped[float]
    to_epsilon: Mapped[float]
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    via_request: Mapped[int | None]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class NonPrivateAllowance(Base):
    """A user an administrator allowed to run jobs without differential privacy (where the node's settings
    allow such jobs at all). No row: not allowed."""

    __tablename__ = "non_private_allowances"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    allowed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    allowed_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetCap(Base):
    """The ε that all users together may learn about a dataset's subjects (checked like a user's budget)."""

    __tablename__ = "dataset_privacy_caps"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    epsilon: Mapped[float]
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReleasePolicy(Base):
    """An officer's standing decision applied when a release request is created, e.g. "auto-approve releases
    under ε 0.1 on dataset X" (``dataset_id`` NULL: any dataset). Only private releases that the budget
    filter admits are ever auto-approved."""

    __tablename__ = "release_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(16))  # "auto_approve"
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    max_epsilon: Mapped[float]
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PrivacySettings(Base):
    """Per-node overrides of the environment's privacy settings, changed by holders of ``edit_settings``.
    One row (id 1) at most; a NULL column means "the environment's value"."""

    __tablename__ = "privacy_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_policy: Mapped[str | None] = mapped_column(String(32))
    non_private_jobs: Mapped[bool | None]  # may jobs without DP run at all (for users allowed it)
    max_policy_epsilon: Mapped[float | None]  # the largest ε an auto-approve policy may name
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
