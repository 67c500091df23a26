"""Version 5, rendering at send time: alerts.folded.

A folded post records the channel budget that folded it. Rows folded by an older version already carry
the note in their Block Kit and keep NULL.

Revision ID: v5
Revises: v4
"""

from __future__ import annotations

from alembic import op

revision = "v5"
down_revision = "v4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE alerts ADD COLUMN folded INTEGER")
