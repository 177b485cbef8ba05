"""hourly rollup tables, backfilled; report views over them; inferences partitioned by day (PG)

Revision ID: 0006
Revises: 0005

On PostgreSQL ``inferences`` becomes a table partitioned by range of ``created_at`` (daily
partitions, a DEFAULT one; see :mod:`shared.db.partitions`): the old table is renamed, the new
one created and every row copied over. SQLite keeps its plain table. The rollups are backfilled
from the rows (:func:`shared.db.rollups.backfill`), and the views ``inference_hourly`` and
``inference_labels_daily`` read them instead of the rows. Their latency percentiles are
interpolated inside the histogram's buckets, as :func:`shared.db.rollups.percentile` does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

from shared.db.partitions import create_partitions
from shared.db.rollups import LATENCY_BUCKETS_MS, backfill

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_KEY = ("model_name", "hour", "model_version")  # in this order: a report reads a model's hours
_COLUMNS = ("id, created_at, request_id, client, model_name, model_version, head_type, "
            "embedder_model, input_text, label, probability, top_k, abstained, cache_hit, "
            "embed_ms, head_ms, total_ms, feedback_label, feedback_at")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _drop_views()
    _create_rollup_tables()
    if postgres:
        _rebuild_inferences(partitioned=True)
    backfill(op.get_bind(), roles=False)  # no role column (0008) yet
    _create_views(postgres)


def downgrade() -> None:
    _drop_views()
    if op.get_bind().dialect.name == "postgresql":
        _rebuild_inferences(partitioned=False)
    for table in ("inference_rollup_latency", "inference_rollup_labels", "inference_rollups"):
        op.drop_table(table)
    context.script.get_revision("0004").module.upgrade()  # the 0004 views, by 0004's own code


def _rebuild_inferences(partitioned: bool) -> None:
    """Replace ``inferences`` by a new table (partitioned or plain) and copy every row over; a
    plain table keys rows by ``id`` alone, so there the first row of an ``id`` wins."""
    op.drop_index("ix_inferences_model_time", "inferences")
    op.drop_index("ix_inferences_feedback", "inferences")
    op.execute("ALTER TABLE inferences DROP CONSTRAINT inferences_pkey")
    op.rename_table("inferences", "inferences_old")
    _create_inferences(partitioned)
    if partitioned:
        op.execute("CREATE TABLE inferences_default PARTITION OF inferences DEFAULT")
        first, last = op.get_bind().execute(
            sa.text("SELECT min(created_at), max(created_at) FROM inferences_old")).one()
        today = datetime.now(UTC).date()
        days = [today + timedelta(days=n) for n in range(8)]
        if first is not None:
            first, last = first.astimezone(UTC).date(), last.astimezone(UTC).date()
            days += [first + timedelta(days=n) for n in range((last - first).days + 1)]
        create_partitions(op.get_bind(), days)
    # A constant column list.
    op.execute(f"INSERT INTO inferences ({_COLUMNS}) SELECT {_COLUMNS} FROM inferences_old "
               "ON CONFLICT DO NOTHING")  # nosec B608
    op.drop_table("inferences_old")


def _create_inferences(partitioned: bool) -> None:
    """The columns of 0002, keyed by ``(id, created_at)`` if partitioned, else by ``id``."""
    op.create_table(
        "inferences",
        sa.Column("id", sa.String(length=32), nullable=False),
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
        sa.PrimaryKeyConstraint(*(("id", "created_at") if partitioned else ("id",))),
        postgresql_partition_by="RANGE (created_at)" if partitioned else None,
    )
    op.create_index("ix_inferences_model_time", "inferences", ["model_name", "created_at"])
    op.create_index("ix_inferences_feedback", "inferences", ["model_name", "feedback_at"])


def _create_rollup_tables() -> None:
    def key(*more: sa.Column[Any]) -> list[sa.Column[Any]]:
        return [sa.Column("model_name", sa.String(length=100), nullable=False),
                sa.Column("model_version", sa.Integer(), nullable=False),
                sa.Column("hour", sa.DateTime(timezone=True), nullable=False), *more]

    def count(name: str) -> sa.Column[int]:
        return sa.Column(name, sa.BigInteger(), nullable=False)

    def total(name: str) -> sa.Column[float]:
        return sa.Column(name, sa.Double(), nullable=False)

    op.create_table("inference_rollups", *key(), count("inferences"), count("abstained"),
                    count("cache_hits"), total("sum_probability"), count("timed"),
                    total("sum_total_ms"), total("sum_embed_ms"), total("sum_head_ms"),
                    count("feedback"), count("feedback_correct"), sa.PrimaryKeyConstraint(*_KEY))
    op.create_table("inference_rollup_labels",
                    *key(sa.Column("label", sa.String(length=200), nullable=False)),
                    count("inferences"), total("sum_probability"),
                    sa.PrimaryKeyConstraint(*_KEY, "label"))
    op.create_table("inference_rollup_latency", *key(total("le_ms")), count("inferences"),
                    sa.PrimaryKeyConstraint(*_KEY, "le_ms"))


def _drop_views() -> None:
    op.execute("DROP VIEW inference_labels_daily")
    op.execute("DROP VIEW inference_hourly")


def _create_views(postgres: bool) -> None:
    day = "date_trunc('day', hour, 'UTC')" if postgres else "date(hour)"
    # Each bucket's lower bound; the quantile q lies in the one bucket where the running count
    # reaches q * total (in the open last bucket, it is that bucket's lower bound).
    pairs = zip((0.0, *LATENCY_BUCKETS_MS), LATENCY_BUCKETS_MS[:-1], strict=False)
    lower = " ".join(f"WHEN {b!r} THEN {a!r}" for a, b in pairs)
    top = LATENCY_BUCKETS_MS[-2]
    quantiles = ",\n".join(
        f"min(CASE WHEN below < {q} * total AND below + inferences >= {q} * total THEN "
        f"CASE WHEN le_ms > {top} THEN lower_ms "
        f"ELSE lower_ms + (le_ms - lower_ms) * ({q} * total - below) / inferences END END) "
        f"AS p{round(q * 100)}_ms" for q in (0.5, 0.95, 0.99))
    ratio = "CAST({} AS DOUBLE PRECISION) / nullif({}, 0)"
    # Constants only (dialect fragments, bucket bounds, quantiles): no input reaches this SQL.
    op.execute(f"""CREATE VIEW inference_hourly AS
        SELECT r.model_name, r.model_version, r.hour, r.inferences,
            {ratio.format('r.sum_probability', 'r.inferences')} AS mean_confidence,
            {ratio.format('r.abstained', 'r.inferences')} AS abstain_rate,
            {ratio.format('r.cache_hits', 'r.inferences')} AS cache_hit_rate,
            {ratio.format('r.sum_total_ms', 'r.timed')} AS mean_ms,
            p.p50_ms, p.p95_ms, p.p99_ms, r.feedback,
            {ratio.format('r.feedback_correct', 'r.feedback')} AS feedback_accuracy
        FROM inference_rollups AS r LEFT JOIN (
            SELECT model_name, model_version, hour, {quantiles}
            FROM (SELECT model_name, model_version, hour, le_ms, inferences,
                      CASE le_ms {lower} ELSE {top} END AS lower_ms,
                      sum(inferences) OVER (PARTITION BY model_name, model_version, hour
                                            ORDER BY le_ms) - inferences AS below,
                      sum(inferences) OVER (PARTITION BY model_name, model_version, hour)
                          AS total
                  FROM inference_rollup_latency) AS b
            GROUP BY model_name, model_version, hour) AS p
        ON p.model_name = r.model_name AND p.model_version = r.model_version
           AND p.hour = r.hour""")  # nosec B608
    op.execute(f"""CREATE VIEW inference_labels_daily AS
        SELECT model_name, {day} AS day, label, sum(inferences) AS inferences,
            sum(sum_probability) / nullif(sum(inferences), 0) AS mean_confidence
        FROM inference_rollup_labels GROUP BY model_name, {day}, label""")  # nosec B608
