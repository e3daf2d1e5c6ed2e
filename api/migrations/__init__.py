"""Alembic migration environment and scripts of the server database (see `api.migrate`)."""
