"""Federated learning (issue 15): hosted processes, their cycles, checkpoints, client tokens (docs/fl.md)

- ``fl_processes``: the plan (spec), the model's layout, the client's and the server's configuration, central DP
  and its ε, the state and the cycles done.
- ``fl_cycles``: each cycle's state, times and figures (joined, reports, examples, reported losses).
- ``fl_checkpoints``: the parameters after each cycle (safetensors in the object store).
- ``fl_client_tokens``: per-process client credentials, stored as SHA-256, revocable.
- ``fl_assignments``: a client in a cycle, and its one report (its example count and loss, never its update).

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import grid_runtime.core.database

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fl_processes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('client_config', sa.JSON(), nullable=False),
    sa.Column('server_config', sa.JSON(), nullable=False),
    sa.Column('dp', sa.JSON(), nullable=True),
    sa.Column('epsilon', sa.Float(), nullable=True),
    sa.Column('delta', sa.Float(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('cycles_done', sa.Integer(), nullable=False),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_fl_processes_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fl_processes')),
    sa.UniqueConstraint('name', name=op.f('uq_fl_processes_name')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('fl_processes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fl_processes_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fl_processes_state'), ['state'], unique=False)

    op.create_table('fl_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('process_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('object_key', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['process_id'], ['fl_processes.id'], name=op.f('fk_fl_checkpoints_process_id_fl_processes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fl_checkpoints')),
    sa.UniqueConstraint('object_key', name=op.f('uq_fl_checkpoints_object_key')),
    sa.UniqueConstraint('process_id', 'number', name=op.f('uq_fl_checkpoints_process_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('fl_checkpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fl_checkpoints_process_id'), ['process_id'], unique=False)

    op.create_table('fl_client_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('process_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['process_id'], ['fl_processes.id'], name=op.f('fk_fl_client_tokens_process_id_fl_processes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fl_client_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_fl_client_tokens_token_hash')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('fl_client_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fl_client_tokens_process_id'), ['process_id'], unique=False)

    op.create_table('fl_cycles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('process_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('opened_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('joined', sa.Integer(), nullable=False),
    sa.Column('reports', sa.Integer(), nullable=False),
    sa.Column('examples', sa.Integer(), nullable=False),
    sa.Column('loss_sum', sa.Float(), nullable=False),
    sa.Column('loss_reports', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['process_id'], ['fl_processes.id'], name=op.f('fk_fl_cycles_process_id_fl_processes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fl_cycles')),
    sa.UniqueConstraint('process_id', 'number', name=op.f('uq_fl_cycles_process_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('fl_cycles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fl_cycles_process_id'), ['process_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fl_cycles_state'), ['state'], unique=False)

    op.create_table('fl_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('joined_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reported_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('examples', sa.Integer(), nullable=True),
    sa.Column('loss', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['fl_client_tokens.id'], name=op.f('fk_fl_assignments_client_id_fl_client_tokens'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['cycle_id'], ['fl_cycles.id'], name=op.f('fk_fl_assignments_cycle_id_fl_cycles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fl_assignments')),
    sa.UniqueConstraint('cycle_id', 'client_id', name=op.f('uq_fl_assignments_cycle_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('fl_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fl_assignments_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fl_assignments_cycle_id'), ['cycle_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('fl_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fl_assignments_cycle_id'))
        batch_op.drop_index(batch_op.f('ix_fl_assignments_client_id'))

    op.drop_table('fl_assignments')
    with op.batch_alter_table('fl_cycles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fl_cycles_state'))
        batch_op.drop_index(batch_op.f('ix_fl_cycles_process_id'))

    op.drop_table('fl_cycles')
    with op.batch_alter_table('fl_client_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fl_client_tokens_process_id'))

    op.drop_table('fl_client_tokens')
    with op.batch_alter_table('fl_checkpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fl_checkpoints_process_id'))

    op.drop_table('fl_checkpoints')
    with op.batch_alter_table('fl_processes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fl_processes_state'))
        batch_op.drop_index(batch_op.f('ix_fl_processes_owner_id'))

    op.drop_table('fl_processes')
