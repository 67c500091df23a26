"""Version 1, the first released schema: the baseline.

Databases made before Alembic carry `schema_version` and are stamped with the matching revision
(v1..v6) before upgrading; an empty database is created from the current tables and stamped head,
never built by replaying steps, so this step has nothing to do.

Revision ID: v1
"""

from __future__ import annotations

revision = "v1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
