"""Version 5, several nodes on one database: the leases table (who polls a source, who runs the process job).

Revision ID: v5
Revises: v4
"""

from __future__ import annotations

from alembic import op

from monitor.store import schema as t

revision = "v5"
down_revision = "v4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    t.leases.create(op.get_bind(), checkfirst=True)
