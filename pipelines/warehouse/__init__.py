"""The warehouse: tables, dialect-aware bulk upserts, and the store's operations (SQLAlchemy Core)."""
