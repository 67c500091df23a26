"""Version 8, reports over millions of mentions: each mention's newest intent on the mention, and the
index of complaints by brand and time that a report's complaint terms walk (newest first).

The intents are filled from the labels in the same step, so the complaint terms stay the same.

Revision ID: v8
Revises: v7
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Column, String

from monitor.store import schema as t

revision = "v8"
down_revision = "v7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column("mentions", Column("intent", String(16)))
    conn.exec_driver_sql(t.INTENT_FROM_LABELS)
    next(index for index in t.mentions.indexes if index.name == "ix_mentions_complaints").create(conn)
