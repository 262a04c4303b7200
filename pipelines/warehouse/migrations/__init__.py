"""The warehouse's versioned migrations (Alembic): ``env.py`` runs them on the connection it is
given, ``versions/`` holds one file per revision. Run by ``python -m pipelines.migrate_warehouse``
through ``pipelines/warehouse/migrate.py``; never by the sync."""
