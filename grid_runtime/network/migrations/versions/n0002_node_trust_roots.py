"""Pinned trust roots of associated Nodes (issue 14): a Node served with a private CA

- ``associations.node_ca_pem``: the roots the Node's certificate must chain to when this Network reads its
  statistics; null: the public CAs, as before.

Revision ID: n0002
Revises: n0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'n0002'
down_revision = 'n0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('node_ca_pem', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.drop_column('node_ca_pem')
