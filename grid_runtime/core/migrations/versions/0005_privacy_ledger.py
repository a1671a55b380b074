"""privacy ledger: append-only privacy events, dataset caps, release policies, privacy settings

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import grid_runtime.core.database
from grid_runtime.core.migrations.append_only import drop_append_only_function, make_append_only

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('privacy_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('user_email', sa.String(length=254), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('result_id', sa.Integer(), nullable=True),
    sa.Column('tensor_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('non_private', sa.Boolean(), nullable=False),
    sa.Column('rdp_order', sa.Double(), nullable=False),
    sa.Column('rdp', sa.Double(), nullable=True),
    sa.Column('epsilon', sa.Double(), nullable=True),
    sa.Column('delta', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_ledger'))
    )
    with op.batch_alter_table('privacy_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_privacy_ledger_dataset_order', ['dataset_id', 'rdp_order'], unique=False)
        batch_op.create_index(batch_op.f('ix_privacy_ledger_request_id'), ['request_id'], unique=False)
        batch_op.create_index('ix_privacy_ledger_user_order', ['user_id', 'rdp_order'], unique=False)

    op.create_table('privacy_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_policy', sa.String(length=32), nullable=True),
    sa.Column('webhook_url', sa.String(length=2000), nullable=True),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_privacy_settings_updated_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_settings'))
    )
    op.create_table('dataset_privacy_caps',
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('epsilon', sa.Double(), nullable=False),
    sa.Column('set_by', sa.Integer(), nullable=True),
    sa.Column('set_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_dataset_privacy_caps_dataset_id_datasets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['set_by'], ['users.id'], name=op.f('fk_dataset_privacy_caps_set_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('dataset_id', name=op.f('pk_dataset_privacy_caps'))
    )
    op.create_table('release_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('max_epsilon', sa.Double(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_release_policies_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_release_policies_dataset_id_datasets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_release_policies'))
    )
    with op.batch_alter_table('release_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_release_policies_dataset_id'), ['dataset_id'], unique=False)

    make_append_only("privacy_ledger")


def downgrade() -> None:
    with op.batch_alter_table('release_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_release_policies_dataset_id'))

    op.drop_table('release_policies')
    op.drop_table('dataset_privacy_caps')
    op.drop_table('privacy_settings')
    with op.batch_alter_table('privacy_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_privacy_ledger_user_order')
        batch_op.drop_index(batch_op.f('ix_privacy_ledger_request_id'))
        batch_op.drop_index('ix_privacy_ledger_dataset_order')

    op.drop_table('privacy_ledger')  # its triggers go with it
    drop_append_only_function("privacy_ledger")
