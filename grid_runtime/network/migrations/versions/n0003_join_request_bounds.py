"""Per-address bounds on join requests (issue 14 hardening)

- ``associations.requester_address``: the key of the client address a join request came from (an IPv4 address,
  an IPv6 address's /64); null for a join with an invitation and for rows made before this revision (they count
  against no address). Indexed with ``requested_at`` for the per-address pending and hourly counts.

Revision ID: n0003
Revises: n0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'n0003'
down_revision = 'n0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requester_address', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_associations_requester_requested', ['requester_address', 'requested_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.drop_index('ix_associations_requester_requested')
        batch_op.drop_column('requester_address')
