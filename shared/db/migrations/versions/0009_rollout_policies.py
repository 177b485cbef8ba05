"""rollout policies: a candidate's promotion and withdrawal rules; candidate failures

Revision ID: 0009
Revises: 0008

``models.candidate_policy`` holds the rules set with the candidate (JSON, null: none), and
``candidate_failures`` counts, per minute, the requests a candidate could not answer
(``kind`` ``predict``) and the times its head could not load (``load``): failed predictions
leave no inference row, so the rollout watcher reads them here. One row per candidate, kind
and minute at most, however many classifiers count.

No index on ``inferences.shadow_of``: a shadow row carries its production row's
``created_at``, so the comparison joins on the production row's whole primary key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("candidate_policy", JSON, nullable=True))
    op.create_table(
        "candidate_failures",
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "minute", "model_version", "kind"),
    )


def downgrade() -> None:
    op.drop_table("candidate_failures")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("candidate_policy")
