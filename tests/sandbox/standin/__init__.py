"""Local Azure stand-in for the sre.rollback collection (see ../README.md)."""
