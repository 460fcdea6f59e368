"""incidents.revision: the API keeps an incident's page while the projection has not changed it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 21:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No value for the incidents already there: a page is kept only under a revision, so theirs
    # are built on every read until the projection next changes them.
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('revision')
