"""Safe rollouts: the stage every replica follows, and the paired evidence of served rows.

- ``rollouts``: one row per rollout (candidate, holder, stage, canary share, policy, the last
  comparison with its intervals, the decision); at most one active per model and alias.
- ``rollout_observations``: what holder and candidate answered to each served row, paired by
  request id, with latencies and candidate failures.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_STAGES = "'shadow', 'canary', 'promoted', 'rolled_back', 'expired', 'aborted'"


def upgrade() -> None:
    """Create rollouts and rollout_observations."""
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("holder_version", sa.Integer(), nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage_rows_from", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"stage IN ({_STAGES})", name=op.f("ck_rollouts_stage")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    op.create_index(op.f("ix_rollouts_model_name"), "rollouts", ["model_name"])
    op.create_index("uq_rollouts_active_model_alias", "rollouts", ["model_name", "alias"],
                    unique=True, sqlite_where=sa.text("active"),
                    postgresql_where=sa.text("active"))
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "rollout_observations",
        sa.Column("id", big_id, nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("answered_by", sa.Integer(), nullable=False),
        sa.Column("holder_output", sa.JSON(), nullable=True),
        sa.Column("candidate_output", sa.JSON(), nullable=True),
        sa.Column("holder_confidence", sa.Float(), nullable=True),
        sa.Column("candidate_confidence", sa.Float(), nullable=True),
        sa.Column("holder_ms", sa.Float(), nullable=True),
        sa.Column("candidate_ms", sa.Float(), nullable=True),
        sa.Column("candidate_error", sa.String(16), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replica", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE",
                                name=op.f("fk_rollout_observations_rollout_id_rollouts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_observations")),
    )
    op.create_index(op.f("ix_rollout_observations_rollout_id"), "rollout_observations",
                    ["rollout_id"])
    op.create_index(op.f("ix_rollout_observations_request_id"), "rollout_observations",
                    ["request_id"])


def downgrade() -> None:
    """Drop the rollout tables (their evidence goes with them; the audit log keeps the moves)."""
    op.drop_table("rollout_observations")
    op.drop_table("rollouts")
