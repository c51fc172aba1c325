"""Alembic environment: migrations run on the connection handed over by motcua.db.migrate."""
from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through motcua.db.migrate
    raise RuntimeError("run migrations through motcua.db.migrate (kiosk/sms-gateway do it on start)")

context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
