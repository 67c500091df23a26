"""Version 6, retention: the mention_daily rollup and the indexes for idle ticks and pruning.

The rollup is filled from every labelled mention in the same step, so reports read the same counts
before and after; step 2 made its tables with these indexes already, hence checkfirst.

Revision ID: v6
Revises: v5
"""

from __future__ import annotations

import warnings

from alembic import op
from sqlalchemy.exc import SAWarning

from monitor.store import schema as t

revision = "v6"
down_revision = "v5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    t.mention_daily.create(conn)
    for table in (t.mentions, t.alerts, t.notifications, t.reply_clock, t.slack_events, t.gaps):
        for index in table.indexes:
            if index.name in t.V6_INDEXES:
                with warnings.catch_warnings():  # checkfirst reflects indexes and cannot read expression ones
                    warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
                    index.create(conn, checkfirst=True)
    conn.exec_driver_sql(t.ROLLUP_FROM_MENTIONS[conn.dialect.name])
