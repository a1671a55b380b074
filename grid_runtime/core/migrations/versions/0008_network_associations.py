"""Network associations (issue 14): this Node's associations with Networks (docs/network.md)

- ``network_associations``: the Network's URL and name, the association's id there and its state, the push
  credential this Node presents, and the SHA-256 of the credential the Network presents here.

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import grid_runtime.core.database

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_associations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('network_url', sa.String(length=255), nullable=False),
    sa.Column('network_name', sa.String(length=64), nullable=False),
    sa.Column('remote_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('push_credential', sa.String(length=128), nullable=True),
    sa.Column('accept_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_push_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=False),
    sa.Column('ended_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_associations')),
    sa.UniqueConstraint('accept_hash', name=op.f('uq_network_associations_accept_hash')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('network_associations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_associations_network_url'), ['network_url'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_associations_state'), ['state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('network_associations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_associations_state'))
        batch_op.drop_index(batch_op.f('ix_network_associations_network_url'))

    op.drop_table('network_associations')
