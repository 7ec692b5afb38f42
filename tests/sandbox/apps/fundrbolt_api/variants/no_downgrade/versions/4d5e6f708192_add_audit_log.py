"""add audit log (its downgrade was never written)

Revision ID: 4d5e6f708192
Revises: 3c4d5e6f7081
Create Date: 2025-12-01 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "4d5e6f708192"
down_revision = "3c4d5e6f7081"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("audit_log", sa.Column("id", sa.Integer, primary_key=True), sa.Column("entry", sa.Text))


def downgrade():
    pass
