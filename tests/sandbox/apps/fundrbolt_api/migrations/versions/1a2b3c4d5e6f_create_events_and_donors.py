"""create events and donors

Revision ID: 1a2b3c4d5e6f
Revises:
Create Date: 2025-09-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "1a2b3c4d5e6f"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "donors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("pledged_cents", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade():
    op.drop_table("donors")
    op.drop_table("events")
