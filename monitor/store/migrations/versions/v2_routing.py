"""Version 2: routing, the reply clock, Slack actions, digests, spikes.

New columns on alerts; the v2 tables as monitor/store/schema.py defines them (when a later version changes
one of them, freeze its v2 definition here first); the report, newest-label and thread indexes.

Revision ID: v2
Revises: v1
"""

from __future__ import annotations

import warnings

from alembic import op
from sqlalchemy.exc import SAWarning

from monitor.store import schema as t

revision = "v2"
down_revision = "v1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    for ddl in ("ALTER TABLE alerts ADD COLUMN op VARCHAR(16) NOT NULL DEFAULT 'post'",
                "ALTER TABLE alerts ADD COLUMN thread_of INTEGER",
                "ALTER TABLE alerts ADD COLUMN updates INTEGER"):
        conn.exec_driver_sql(ddl)
    for table in t.V2_TABLES:
        table.create(conn, checkfirst=True)
    for index in t.mentions.indexes | t.labels.indexes:
        if index.name in ("ix_mentions_report", "ix_labels_newest", "ix_mentions_thread"):
            with warnings.catch_warnings():  # checkfirst reflects indexes and cannot read expression ones
                warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
                index.create(conn, checkfirst=True)
