"""split donor full_name into first_name and last_name

Revision ID: 3c4d5e6f7081
Revises: 2b3c4d5e6f70
Create Date: 2025-11-20 16:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "3c4d5e6f7081"
down_revision = "2b3c4d5e6f70"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("donors", sa.Column("first_name", sa.String(100), nullable=False, server_default=""))
    op.add_column("donors", sa.Column("last_name", sa.String(100), nullable=False, server_default=""))
    op.execute("UPDATE donors SET first_name = split_part(full_name, ' ', 1), "
               "last_name = substr(full_name, length(split_part(full_name, ' ', 1)) + 2)")
    op.drop_column("donors", "full_name")


def downgrade():
    op.add_column("donors", sa.Column("full_name", sa.String(200), nullable=False, server_default=""))
    op.execute("UPDATE donors SET full_name = concat_ws(' ', first_name, NULLIF(last_name, ''))")
    op.drop_column("donors", "last_name")
    op.drop_column("donors", "first_name")
