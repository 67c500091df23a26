"""Alembic's script directory for mentionwatch's schema (env.py, versions/); run by monitor.store.migrate."""
