"""rollout candidates: a model's shadow or canary version; inference roles

Revision ID: 0008
Revises: 0007

``models`` gets the candidate alias (``candidate_version``, ``candidate_mode``: shadow or
canary, ``candidate_share``: the share of requests it sees), ``alias_events.to_version``
becomes nullable (a cleared candidate points nowhere), and ``inferences`` gets ``role``
(production, pinned, canary or shadow; rows logged before are production) and ``shadow_of``
(a shadow row's production inference id). Adding a column to the partitioned PostgreSQL
table adds it to every partition.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("candidate_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("candidate_mode", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("candidate_share", sa.Double(), nullable=True))
    with op.batch_alter_table("alias_events") as batch:
        batch.alter_column("to_version", existing_type=sa.Integer(), nullable=True)
    op.add_column("inferences", sa.Column("role", sa.String(length=10), nullable=False,
                                          server_default="production"))
    op.add_column("inferences", sa.Column("shadow_of", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM inferences WHERE role = 'shadow'")
    with op.batch_alter_table("inferences") as batch:
        batch.drop_column("shadow_of")
        batch.drop_column("role")
    op.execute("DELETE FROM alias_events WHERE to_version IS NULL")
    with op.batch_alter_table("alias_events") as batch:
        batch.alter_column("to_version", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("models") as batch:
        batch.drop_column("candidate_share")
        batch.drop_column("candidate_mode")
        batch.drop_column("candidate_version")
