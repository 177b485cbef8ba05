"""report views for dashboards: inference_hourly, inference_labels_daily

Revision ID: 0004
Revises: 0003

The same figures as ``GET /v1/reports/models/{name}``, as views a dashboard tool (Grafana,
Metabase...) can query directly. Latency percentiles exist on PostgreSQL only (SQLite has no
percentile aggregate; the columns are NULL there).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COMMON = """
    count(*) AS inferences,
    avg(probability) AS mean_confidence,
    avg(CASE WHEN abstained THEN 1.0 ELSE 0.0 END) AS abstain_rate,
    avg(CASE WHEN cache_hit THEN 1.0 ELSE 0.0 END) AS cache_hit_rate,
    avg(total_ms) AS mean_ms,
    {percentiles},
    count(feedback_label) AS feedback,
    avg(CASE WHEN feedback_label IS NULL THEN NULL
             WHEN feedback_label = label THEN 1.0 ELSE 0.0 END) AS feedback_accuracy
"""
_PG_PERCENTILES = """percentile_cont(0.5) WITHIN GROUP (ORDER BY total_ms) AS p50_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY total_ms) AS p95_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY total_ms) AS p99_ms"""
_NO_PERCENTILES = "NULL AS p50_ms, NULL AS p95_ms, NULL AS p99_ms"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    hour = ("date_trunc('hour', created_at)" if postgres
            else "strftime('%Y-%m-%dT%H:00:00', created_at)")
    day = "date_trunc('day', created_at)" if postgres else "strftime('%Y-%m-%d', created_at)"
    common = _COMMON.format(percentiles=_PG_PERCENTILES if postgres else _NO_PERCENTILES)
    # Constant fragments chosen by dialect, no input: the one place SQL is formatted.
    hourly = f"""CREATE VIEW inference_hourly AS
        SELECT model_name, model_version, {hour} AS hour, {common}
        FROM inferences GROUP BY model_name, model_version, {hour}"""  # nosec B608
    daily = f"""CREATE VIEW inference_labels_daily AS
        SELECT model_name, {day} AS day, coalesce(label, '(abstained)') AS label,
               count(*) AS inferences, avg(probability) AS mean_confidence
        FROM inferences GROUP BY model_name, {day}, coalesce(label, '(abstained)')"""  # nosec B608
    op.execute(hourly)
    op.execute(daily)


def downgrade() -> None:
    op.execute("DROP VIEW inference_labels_daily")
    op.execute("DROP VIEW inference_hourly")
