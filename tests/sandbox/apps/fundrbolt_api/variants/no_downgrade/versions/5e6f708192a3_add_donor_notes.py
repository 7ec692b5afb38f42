"""add donor notes (irreversible on purpose)

Revision ID: 5e6f708192a3
Revises: 4d5e6f708192
Create Date: 2025-12-02 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "5e6f708192a3"
down_revision = "4d5e6f708192"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("donors", sa.Column("notes", sa.Text))


def downgrade():
    """Notes cannot be dropped without losing them."""
    raise NotImplementedError("irreversible: donor notes would be lost")
