"""Every table of the Node, imported in one place so Alembic and create_app see them all."""

from grid_runtime.node.audit.models import AuditEvent
from grid_runtime.node.auth.models import LoginThrottle, SetupToken, Token
from grid_runtime.node.budget.models import (
    BudgetChange,
    DatasetCap,
    LedgerDataset,
    LedgerEntry,
    NonPrivateAllowance,
    PrivacySettings,
    ReleasePolicy,
)
from grid_runtime.node.datasets.models import Dataset, DatasetMember
from grid_runtime.node.fl.models import FLAssignment, FLCheckpoint, FLClientToken, FLCycle, FLProcess
from grid_runtime.node.groups.models import Group, GroupMember
from grid_runtime.node.jobs.models import Job, JobQuota, Result
from grid_runtime.node.network.models import NetworkAssociation
from grid_runtime.node.permissions.models import Grant
from grid_runtime.node.requests.models import Request, RequestEvent
from grid_runtime.node.roles.models import Role
from grid_runtime.node.tensors.models import Tensor, TensorTag
from grid_runtime.node.users.models import User

__all__ = [
    "AuditEvent", "BudgetChange", "Dataset", "DatasetCap", "DatasetMember", "FLAssignment", "FLCheckpoint",
    "FLClientToken", "FLCycle", "FLProcess", "Grant", "Group", "GroupMember", "Job",
    "JobQuota", "LedgerDataset", "LedgerEntry", "LoginThrottle", "NetworkAssociation", "NonPrivateAllowance",
    "PrivacySettings",
    "ReleasePolicy", "Request", "RequestEvent", "Result", "Role", "SetupToken", "Tensor", "TensorTag", "Token", "User",
]
