"""Alembic revisions of the scraper's tables; run by `Store.migrate()` (no alembic.ini needed)."""
