"""inferences: one row per prediction, with feedback

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "inferences",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("client", sa.String(length=100), nullable=True),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("head_type", sa.String(length=20), nullable=False),
        sa.Column("embedder_model", sa.String(length=300), nullable=False),
        sa.Column("input_text", sa.Text(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("probability", sa.Double(), nullable=False),
        sa.Column("top_k", JSON, nullable=False),
        sa.Column("abstained", sa.Boolean(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=True),
        sa.Column("embed_ms", sa.Double(), nullable=True),
        sa.Column("head_ms", sa.Double(), nullable=True),
        sa.Column("total_ms", sa.Double(), nullable=True),
        sa.Column("feedback_label", sa.String(length=200), nullable=True),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_inferences_model_time", "inferences", ["model_name", "created_at"])
    op.create_index("ix_inferences_feedback", "inferences", ["model_name", "feedback_at"])


def downgrade() -> None:
    op.drop_table("inferences")
