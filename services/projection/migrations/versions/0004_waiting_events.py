"""waiting_events: events about an incident not opened yet wait for it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 16:22:11.636300
"""
from alembic import op
import sqlalchemy as sa

import services.projection.tables


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('waiting_events',
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('incident_id', sa.String(length=64), nullable=False),
    sa.Column('at', services.projection.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('envelope', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('waiting_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_waiting_events_incident_id'), ['incident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('waiting_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_waiting_events_incident_id'))
    op.drop_table('waiting_events')
