"""a version never in production is ``new``, no longer ``candidate``

Revision ID: 0010
Revises: 0009

"Candidate" means one thing since 0008: the shadow or canary a model's ``candidate`` alias
points at. A version's ``status`` said "candidate" for any version never in production, which
read as if every new version were on trial (``polyhead models``, dashboards).
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE model_versions SET status = 'new' WHERE status = 'candidate'")


def downgrade() -> None:
    op.execute("UPDATE model_versions SET status = 'candidate' WHERE status = 'new'")
