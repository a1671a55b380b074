"""the Network's first schema: users, roles, tokens, setup, audit, associations, invitations, catalogue

Revision ID: n0001
Revises: (none)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import grid_runtime.core.database

revision = 'n0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('associations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_name', sa.String(length=64), nullable=False),
    sa.Column('node_url', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('push_hash', sa.String(length=64), nullable=False),
    sa.Column('node_credential', sa.String(length=128), nullable=True),
    sa.Column('invitation_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('last_push_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sync_started_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_associations')),
    sa.UniqueConstraint('push_hash', name=op.f('uq_associations_push_hash')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_associations_node_name'), ['node_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_associations_state'), ['state'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)

    op.create_table('invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_invitations_code_hash')),
    sqlite_autoincrement=True
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures')),
    sa.UniqueConstraint('email', 'client_address', name=op.f('uq_login_failures_email')),
    sqlite_autoincrement=True
    )
    op.create_table('roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('capabilities', sa.JSON(), nullable=False),
    sa.Column('preset', sa.Boolean(), nullable=False),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
    sa.UniqueConstraint('name', name=op.f('uq_roles_name')),
    sqlite_autoincrement=True
    )
    op.create_table('setup_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_setup_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_setup_tokens_token_hash')),
    sqlite_autoincrement=True
    )
    op.create_table('catalogue_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('association_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('shape', sa.JSON(), nullable=True),
    sa.Column('dtype', sa.String(length=16), nullable=True),
    sa.Column('visibility', sa.String(length=8), nullable=False),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('seen_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['association_id'], ['associations.id'], name=op.f('fk_catalogue_entries_association_id_associations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_entries')),
    sa.UniqueConstraint('association_id', 'kind', 'object_id', name=op.f('uq_catalogue_entries_association_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('catalogue_entries', schema=None) as batch_op:
        batch_op.create_index('ix_catalogue_entries_association_seen', ['association_id', 'seen_at'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('full_name', sa.String(length=128), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_users_role_id_roles'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_role_id'), ['role_id'], unique=False)

    op.create_table('catalogue_tags',
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['catalogue_entries.id'], name=op.f('fk_catalogue_tags_entry_id_catalogue_entries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tag', 'entry_id', name=op.f('pk_catalogue_tags'))
    )
    with op.batch_alter_table('catalogue_tags', schema=None) as batch_op:
        batch_op.create_index('ix_catalogue_tags_entry_id', ['entry_id'], unique=False)

    op.create_table('catalogue_words',
    sa.Column('word', sa.String(length=64), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['catalogue_entries.id'], name=op.f('fk_catalogue_words_entry_id_catalogue_entries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('word', 'entry_id', name=op.f('pk_catalogue_words'))
    )
    with op.batch_alter_table('catalogue_words', schema=None) as batch_op:
        batch_op.create_index('ix_catalogue_words_entry_id', ['entry_id'], unique=False)

    op.create_table('tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_tokens_token_hash')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tokens_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tokens_user_id'))

    op.drop_table('tokens')
    with op.batch_alter_table('catalogue_words', schema=None) as batch_op:
        batch_op.drop_index('ix_catalogue_words_entry_id')

    op.drop_table('catalogue_words')
    with op.batch_alter_table('catalogue_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_catalogue_tags_entry_id')

    op.drop_table('catalogue_tags')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_role_id'))

    op.drop_table('users')
    with op.batch_alter_table('catalogue_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_catalogue_entries_association_seen')

    op.drop_table('catalogue_entries')
    op.drop_table('setup_tokens')
    op.drop_table('roles')
    op.drop_table('login_failures')
    op.drop_table('invitations')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_associations_state'))
        batch_op.drop_index(batch_op.f('ix_associations_node_name'))

    op.drop_table('associations')
