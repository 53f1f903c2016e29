"""Monitoring and the loop: monitor windows, alerts, loop runs; profile/drift reports; deactivate.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OLD_KINDS = "kind IN ('evaluation', 'data_check')"
_NEW_KINDS = "kind IN ('evaluation', 'data_check', 'profile', 'drift')"
_OLD_ACTIONS = "action IN ('promote', 'rollback')"
_NEW_ACTIONS = "action IN ('promote', 'rollback', 'deactivate')"


def upgrade() -> None:
    """Create monitor_windows, alerts and loop_runs; widen two check constraints."""
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("first_log_id", sa.Integer(), nullable=False),
        sa.Column("last_log_id", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("drift_detected", sa.Boolean(), nullable=False),
        sa.Column("share_drifted", sa.Float(), nullable=True),
        sa.Column("prediction_drift", sa.Boolean(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("estimated", sa.JSON(), nullable=False),
        sa.Column("realised", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_windows")),
    )
    op.create_index(op.f("ix_monitor_windows_model_name"), "monitor_windows", ["model_name"])
    op.create_index(op.f("ix_monitor_windows_last_log_id"), "monitor_windows", ["last_log_id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("deliveries", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["window_id"], ["monitor_windows.id"],
            name=op.f("fk_alerts_window_id_monitor_windows"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_model_name"), "alerts", ["model_name"])
    op.create_table(
        "loop_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("trigger", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("champion_version", sa.Integer(), nullable=True),
        sa.Column("challenger_version", sa.Integer(), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loop_runs")),
    )
    op.create_index(op.f("ix_loop_runs_model_name"), "loop_runs", ["model_name"])
    with op.batch_alter_table("reports") as batch:
        batch.drop_constraint(op.f("ck_reports_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_reports_kind"), _NEW_KINDS)
    with op.batch_alter_table("alias_moves") as batch:
        batch.drop_constraint(op.f("ck_alias_moves_action"), type_="check")
        batch.create_check_constraint(op.f("ck_alias_moves_action"), _NEW_ACTIONS)


def downgrade() -> None:
    """Drop the monitoring tables (windows, alerts and loop history are lost)."""
    with op.batch_alter_table("alias_moves") as batch:
        batch.drop_constraint(op.f("ck_alias_moves_action"), type_="check")
        batch.create_check_constraint(op.f("ck_alias_moves_action"), _OLD_ACTIONS)
    with op.batch_alter_table("reports") as batch:
        batch.drop_constraint(op.f("ck_reports_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_reports_kind"), _OLD_KINDS)
    op.drop_index(op.f("ix_loop_runs_model_name"), table_name="loop_runs")
    op.drop_table("loop_runs")
    op.drop_index(op.f("ix_alerts_model_name"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_monitor_windows_last_log_id"), table_name="monitor_windows")
    op.drop_index(op.f("ix_monitor_windows_model_name"), table_name="monitor_windows")
    op.drop_table("monitor_windows")
