"""Version 7, several nodes on one database: the leases table (who polls a source, who runs the process job).

Revision ID: v7
Revises: v6
"""

from __future__ import annotations

from alembic import op

from monitor.store import schema as t

revision = "v7"
down_revision = "v6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    t.leases.create(op.get_bind(), checkfirst=True)
