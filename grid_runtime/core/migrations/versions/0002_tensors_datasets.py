"""tensors and datasets, with full-text search over tensor names and descriptions

SQLite: an FTS5 table ``tensors_fts`` with external content (the ``tensors`` table), kept in sync by triggers
on insert, update and delete. PostgreSQL: a GIN index on to_tsvector('simple', name || ' ' || description),
which the search query repeats verbatim so the planner uses it. Both tokenise on non-alphanumerics, so
``mnist_train`` is found by ``mnist`` and by ``train``.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import grid_runtime.core.database

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('bounds', sa.JSON(), nullable=False),
    sa.Column('visibility', sa.String(length=8), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_datasets_owner_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
    sa.UniqueConstraint('name', name=op.f('uq_datasets_name'))
    )
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasets_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_datasets_visibility'), ['visibility'], unique=False)

    op.create_table('tensors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('shape', sa.JSON(), nullable=False),
    sa.Column('ndim', sa.Integer(), nullable=False),
    sa.Column('shape_key', sa.String(length=255), nullable=False),
    sa.Column('dtype', sa.String(length=16), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('visibility', sa.String(length=8), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=True),
    sa.Column('object_key', sa.String(length=255), nullable=False),
    sa.Column('uploader_id', sa.Integer(), nullable=True),
    sa.Column('created_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['uploader_id'], ['users.id'], name=op.f('fk_tensors_uploader_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tensors')),
    sa.UniqueConstraint('object_key', name=op.f('uq_tensors_object_key'))
    )
    with op.batch_alter_table('tensors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tensors_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tensors_dtype'), ['dtype'], unique=False)
        batch_op.create_index(batch_op.f('ix_tensors_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_tensors_shape_key'), ['shape_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_tensors_size_bytes'), ['size_bytes'], unique=False)
        batch_op.create_index(batch_op.f('ix_tensors_uploader_id'), ['uploader_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tensors_visibility'), ['visibility'], unique=False)

    op.create_table('dataset_members',
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('tensor_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_dataset_members_dataset_id_datasets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tensor_id'], ['tensors.id'], name=op.f('fk_dataset_members_tensor_id_tensors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dataset_id', 'role', name=op.f('pk_dataset_members'))
    )
    with op.batch_alter_table('dataset_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_members_tensor_id'), ['tensor_id'], unique=False)

    op.create_table('tensor_tags',
    sa.Column('tensor_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tensor_id'], ['tensors.id'], name=op.f('fk_tensor_tags_tensor_id_tensors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tensor_id', 'tag', name=op.f('pk_tensor_tags'))
    )
    with op.batch_alter_table('tensor_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tensor_tags_tag'), ['tag'], unique=False)

    _create_full_text_search()


def _create_full_text_search() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("CREATE VIRTUAL TABLE tensors_fts USING fts5(name, description, content='tensors', "
                   "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
        op.execute("CREATE TRIGGER tensors_fts_insert AFTER INSERT ON tensors BEGIN "
                   "INSERT INTO tensors_fts(rowid, name, description) VALUES (new.id, new.name, new.description); "
                   "END")
        op.execute("CREATE TRIGGER tensors_fts_delete AFTER DELETE ON tensors BEGIN "
                   "INSERT INTO tensors_fts(tensors_fts, rowid, name, description) "
                   "VALUES ('delete', old.id, old.name, old.description); END")
        op.execute("CREATE TRIGGER tensors_fts_update AFTER UPDATE OF name, description ON tensors BEGIN "
                   "INSERT INTO tensors_fts(tensors_fts, rowid, name, description) "
                   "VALUES ('delete', old.id, old.name, old.description); "
                   "INSERT INTO tensors_fts(rowid, name, description) VALUES (new.id, new.name, new.description); "
                   "END")
    elif dialect == "postgresql":
        op.execute("CREATE INDEX tensors_fts_gin ON tensors "
                   "USING gin (to_tsvector('simple', name || ' ' || description))")


def _drop_full_text_search() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("tensors_fts_insert", "tensors_fts_delete", "tensors_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS tensors_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS tensors_fts_gin")


def downgrade() -> None:
    _drop_full_text_search()
    with op.batch_alter_table('tensor_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tensor_tags_tag'))

    op.drop_table('tensor_tags')
    with op.batch_alter_table('dataset_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_members_tensor_id'))

    op.drop_table('dataset_members')
    with op.batch_alter_table('tensors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tensors_visibility'))
        batch_op.drop_index(batch_op.f('ix_tensors_uploader_id'))
        batch_op.drop_index(batch_op.f('ix_tensors_size_bytes'))
        batch_op.drop_index(batch_op.f('ix_tensors_shape_key'))
        batch_op.drop_index(batch_op.f('ix_tensors_name'))
        batch_op.drop_index(batch_op.f('ix_tensors_dtype'))
        batch_op.drop_index(batch_op.f('ix_tensors_created_at'))

    op.drop_table('tensors')
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasets_visibility'))
        batch_op.drop_index(batch_op.f('ix_datasets_owner_id'))

    op.drop_table('datasets')
