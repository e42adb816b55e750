"""SQLAlchemy tables and store, report files, reference data sources."""
