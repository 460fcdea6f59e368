"""units.signed_in: a unit signed out of the field app is not alerted there

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 06:56:31.039190
"""
from alembic import op
import sqlalchemy as sa

import services.projection.tables


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signed_in', sa.Boolean(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('signed_in_at', services.projection.tables.UtcDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('signed_in_at')
        batch_op.drop_column('signed_in')

