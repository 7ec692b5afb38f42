"""move pledges into a donations table

Revision ID: 2b3c4d5e6f70
Revises: 1a2b3c4d5e6f
Create Date: 2025-10-14 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "2b3c4d5e6f70"
down_revision = "1a2b3c4d5e6f"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "donations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("donor_id", sa.Integer, sa.ForeignKey("donors.id"), nullable=False),
        sa.Column("amount_cents", sa.Integer, nullable=False),
    )
    # Every pledge becomes one donation row; then the column goes.
    op.execute("INSERT INTO donations (donor_id, amount_cents) "
               "SELECT id, pledged_cents FROM donors WHERE pledged_cents > 0")
    op.drop_column("donors", "pledged_cents")


def downgrade():
    op.add_column("donors", sa.Column("pledged_cents", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE donors SET pledged_cents = COALESCE("
               "(SELECT sum(amount_cents) FROM donations WHERE donations.donor_id = donors.id), 0)")
    op.drop_table("donations")
