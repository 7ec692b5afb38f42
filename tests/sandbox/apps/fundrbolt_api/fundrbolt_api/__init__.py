"""The sample application the alembic_migration tests migrate (see ../README.md)."""
