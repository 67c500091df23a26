"""Version 3, cross-posts: mentions.text_hash and mentions.crosspost_of, both indexed.

Old rows keep NULL (they were routed on their own).

Revision ID: v3
Revises: v2
"""

from __future__ import annotations

from alembic import op

revision = "v3"
down_revision = "v2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE mentions ADD COLUMN text_hash VARCHAR(40)")
    op.execute("ALTER TABLE mentions ADD COLUMN crosspost_of INTEGER")
    op.execute("CREATE INDEX ix_mentions_text_hash ON mentions (text_hash)")
    op.execute("CREATE INDEX ix_mentions_crosspost_of ON mentions (crosspost_of)")
