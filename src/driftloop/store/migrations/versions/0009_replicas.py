"""Replicated serving: reload signals every replica polls, and the replica of each log row.

- ``reload_signals``: one row per model with a 64-bit generation; ``POST /v1/admin/reload`` on
  any replica bumps it (audited), and every replica reloads when its poll sees a new number.
- ``prediction_log.replica``: which serving process answered (``host:pid`` unless
  ``serve.instance`` names it); NULL for rows written before this revision.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create reload_signals and add prediction_log.replica."""
    op.create_table(
        "reload_signals",
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_name", name=op.f("pk_reload_signals")),
    )
    op.add_column("prediction_log", sa.Column("replica", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the reload signals and the replica column (the log rows stay)."""
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_column("replica")
    op.drop_table("reload_signals")
