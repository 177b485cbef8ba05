"""inference_feedback: every feedback on an inference kept (label, client, time)

Revision ID: 0007
Revises: 0006

Until now a second feedback replaced the first on ``inferences.feedback_label`` and the first
was gone. The feedback already given is carried over, one row per inference (its time is the
row's ``feedback_at``; which client sent it was not recorded).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inference_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inference_id", sa.String(length=32), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("predicted", sa.String(length=200), nullable=True),
        sa.Column("client", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inference_feedback_inference", "inference_feedback",
                    ["inference_id", "id"])
    op.create_index("ix_inference_feedback_model_time", "inference_feedback",
                    ["model_name", "created_at"])
    op.execute("INSERT INTO inference_feedback (inference_id, model_name, model_version, label, "
               "predicted, created_at) SELECT id, model_name, model_version, feedback_label, "
               "label, COALESCE(feedback_at, created_at) FROM inferences "
               "WHERE feedback_label IS NOT NULL "
               "ORDER BY feedback_at")


def downgrade() -> None:
    op.drop_table("inference_feedback")
