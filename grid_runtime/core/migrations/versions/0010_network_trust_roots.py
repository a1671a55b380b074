"""Pinned trust roots of Network associations (issue 14): a Network served with a private CA

- ``network_associations.network_ca_pem``: the roots the Network's certificate must chain to (every call to it is
  verified against them only); null: the public CAs, as before.
- ``network_associations.node_ca_pem``: the root of this Node's own certificate, sent to the Network at join.

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('network_associations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('network_ca_pem', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('node_ca_pem', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('network_associations', schema=None) as batch_op:
        batch_op.drop_column('node_ca_pem')
        batch_op.drop_column('network_ca_pem')
