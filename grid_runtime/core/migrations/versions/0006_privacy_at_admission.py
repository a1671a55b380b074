"""privacy charged at admission, non-DP policy, two-person rules (issue 9)

Jobs get a failure code and an officer-only detail; the ledger names the job that charged an entry and every
dataset it was charged to (existing entries keep theirs); budget changes are recorded (the ceiling); users
may be allowed jobs without DP; the node's privacy settings get the non-DP switch and the policy cap;
datasets get the owner's declared label classes and one-row-per-person flag.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import grid_runtime.core.database
from grid_runtime.core.migrations.append_only import drop_append_only_function, make_append_only

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('error_detail', sa.Text(), nullable=True))

    # ADD COLUMN and CREATE INDEX keep the ledger's append-only triggers (no table rebuild).
    op.add_column('privacy_ledger', sa.Column('job_id', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_privacy_ledger_job_id'), 'privacy_ledger', ['job_id'], unique=False)

    op.create_table('privacy_ledger_datasets',
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('entry_id', 'dataset_id', name=op.f('pk_privacy_ledger_datasets'))
    )
    with op.batch_alter_table('privacy_ledger_datasets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_ledger_datasets_dataset_id'), ['dataset_id'], unique=False)
    op.execute("INSERT INTO privacy_ledger_datasets (entry_id, dataset_id) "
               "SELECT id, dataset_id FROM privacy_ledger WHERE dataset_id IS NOT NULL")
    make_append_only("privacy_ledger_datasets")

    op.create_table('budget_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('from_epsilon', sa.Double(), nullable=False),
    sa.Column('to_epsilon', sa.Double(), nullable=False),
    sa.Column('set_by', sa.Integer(), nullable=True),
    sa.Column('via_request', sa.Integer(), nullable=True),
    sa.Column('at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['set_by'], ['users.id'], name=op.f('fk_budget_changes_set_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_budget_changes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_changes'))
    )
    with op.batch_alter_table('budget_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_budget_changes_user_id'), ['user_id'], unique=False)

    op.create_table('non_private_allowances',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('allowed_by', sa.Integer(), nullable=True),
    sa.Column('allowed_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['allowed_by'], ['users.id'], name=op.f('fk_non_private_allowances_allowed_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_non_private_allowances_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_non_private_allowances'))
    )

    with op.batch_alter_table('privacy_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('non_private_jobs', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('max_policy_epsilon', sa.Double(), nullable=True))

    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label_classes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('one_row_per_person', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.alter_column('one_row_per_person', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_column('one_row_per_person')
        batch_op.drop_column('label_classes')

    with op.batch_alter_table('privacy_settings', schema=None) as batch_op:
        batch_op.drop_column('max_policy_epsilon')
        batch_op.drop_column('non_private_jobs')

    op.drop_table('non_private_allowances')
    with op.batch_alter_table('budget_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_budget_changes_user_id'))
    op.drop_table('budget_changes')

    with op.batch_alter_table('privacy_ledger_datasets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_ledger_datasets_dataset_id'))
    op.drop_table('privacy_ledger_datasets')  # its triggers go with it
    drop_append_only_function("privacy_ledger_datasets")

    # DROP COLUMN on SQLite rebuilds the table, which drops its triggers: put them back.
    op.drop_index(op.f('ix_privacy_ledger_job_id'), table_name='privacy_ledger')
    with op.batch_alter_table('privacy_ledger', schema=None) as batch_op:
        batch_op.drop_column('job_id')
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS privacy_ledger_no_update")
        op.execute("DROP TRIGGER IF EXISTS privacy_ledger_no_delete")
        make_append_only("privacy_ledger")

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('error_detail')
        batch_op.drop_column('error_code')
