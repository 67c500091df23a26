"""Version 4, receivers: alerts.receiver and alerts.format.

Every existing row (pending ones included) is a rendered Slack row, sent as before.

Revision ID: v4
Revises: v3
"""

from __future__ import annotations

from alembic import op

revision = "v4"
down_revision = "v3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE alerts ADD COLUMN receiver VARCHAR(64) NOT NULL DEFAULT 'slack'")
    op.execute("ALTER TABLE alerts ADD COLUMN format VARCHAR(16) NOT NULL DEFAULT 'slack'")
