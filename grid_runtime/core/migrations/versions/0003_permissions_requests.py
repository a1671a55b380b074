"""permissions (grants) and requests (one table for every kind, with their events)

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import grid_runtime.core.database

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('target_type', sa.String(length=16), nullable=True),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decision_note', sa.String(length=2000), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'approved', 'denied', 'withdrawn', 'expired', 'auto_approved', 'auto_denied')", name=op.f('ck_requests_state')),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_requests_decided_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['requester_id'], ['users.id'], name=op.f('fk_requests_requester_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_requests'))
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_requests_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_requests_kind'), ['kind'], unique=False)
        batch_op.create_index('ix_requests_requester_state', ['requester_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_requests_state'), ['state'], unique=False)
        batch_op.create_index('ix_requests_target', ['target_type', 'target_id'], unique=False)

    op.create_table('grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('tensor_id', sa.Integer(), nullable=True),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("level IN ('search', 'compute', 'download', 'deny')", name=op.f('ck_grants_level')),
    sa.CheckConstraint('(tensor_id IS NULL) <> (dataset_id IS NULL)', name=op.f('ck_grants_one_target')),
    sa.CheckConstraint('(user_id IS NULL) <> (group_id IS NULL)', name=op.f('ck_grants_one_subject')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_grants_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_grants_dataset_id_datasets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_grants_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tensor_id'], ['tensors.id'], name=op.f('fk_grants_tensor_id_tensors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_grants_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grants')),
    sa.UniqueConstraint('group_id', 'dataset_id', name='uq_grants_group_dataset'),
    sa.UniqueConstraint('group_id', 'tensor_id', name='uq_grants_group_tensor'),
    sa.UniqueConstraint('user_id', 'dataset_id', name='uq_grants_user_dataset'),
    sa.UniqueConstraint('user_id', 'tensor_id', name='uq_grants_user_tensor')
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index('ix_grants_dataset_id', ['dataset_id'], unique=False)
        batch_op.create_index('ix_grants_tensor_id', ['tensor_id'], unique=False)

    op.create_table('request_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=True),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=2000), nullable=True),
    sa.Column('at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_request_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_request_events_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_events'))
    )
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_events_request_id'), ['request_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_events_request_id'))

    op.drop_table('request_events')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index('ix_grants_tensor_id')
        batch_op.drop_index('ix_grants_dataset_id')

    op.drop_table('grants')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_target')
        batch_op.drop_index(batch_op.f('ix_requests_state'))
        batch_op.drop_index('ix_requests_requester_state')
        batch_op.drop_index(batch_op.f('ix_requests_kind'))
        batch_op.drop_index(batch_op.f('ix_requests_created_at'))

    op.drop_table('requests')
