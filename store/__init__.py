"""The store: typed SQLAlchemy tables, the engine (SQLite WAL or PostgreSQL), migrations,
and repository functions."""
