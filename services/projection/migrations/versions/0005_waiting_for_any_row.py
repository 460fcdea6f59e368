"""waiting_events: events also wait for a unit's or a report's row, part by part

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('waiting_events', schema=None) as batch_op:
        batch_op.drop_index('ix_waiting_events_incident_id')
        batch_op.alter_column('incident_id', new_column_name='waits_for', existing_type=sa.String(length=64),
                              type_=sa.String(length=200), existing_nullable=False)
        batch_op.add_column(sa.Column('part', sa.Integer(), server_default='0', nullable=False))
    op.create_index(op.f('ix_waiting_events_waits_for'), 'waiting_events', ['waits_for'], unique=False)
    # What waited before this revision waited for its incident, all of it.
    op.execute("UPDATE waiting_events SET waits_for = 'incident:' || waits_for")


def downgrade() -> None:
    op.execute("DELETE FROM waiting_events WHERE waits_for NOT LIKE 'incident:%' OR part <> 0")
    op.execute("UPDATE waiting_events SET waits_for = substr(waits_for, 10)")
    op.drop_index(op.f('ix_waiting_events_waits_for'), table_name='waiting_events')
    with op.batch_alter_table('waiting_events', schema=None) as batch_op:
        batch_op.drop_column('part')
        batch_op.alter_column('waits_for', new_column_name='incident_id', existing_type=sa.String(length=200),
                              type_=sa.String(length=64), existing_nullable=False)
    op.create_index('ix_waiting_events_incident_id', 'waiting_events', ['incident_id'], unique=False)
