"""Alembic's environment: the migrations run on the connection ``migrate.py`` hands over (one
source's namespace: a PostgreSQL schema, which is the connection's search_path, or a SQLite
file), in its transaction. SQLite alters a table by copying it (batch mode)."""

from alembic import context

from pipelines.warehouse.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
