"""Who sent each label, the subject a request named, a V2 client's own id.

- ``feedback.source``: the sending API key's prefix ("open" on a server without keys), so a
  label can be traced to its sender and a poisoned source held out;
- ``prediction_log.subject``: the keyed hash of the data subject's id sent beside the
  instances, for `driftloop erase --subject-id`;
- ``prediction_log.client_ref``: a KServe V2 client's ``id``, namespaced by its key (request
  ids are the server's own).

All nullable, added in place (no table rewrite on PostgreSQL or SQLite).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the three columns and their indexes."""
    op.add_column("feedback", sa.Column("source", sa.String(32), nullable=True))
    op.create_index(op.f("ix_feedback_source"), "feedback", ["source"])
    op.add_column("prediction_log", sa.Column("subject", sa.String(64), nullable=True))
    op.create_index(op.f("ix_prediction_log_subject"), "prediction_log", ["subject"])
    op.add_column("prediction_log", sa.Column("client_ref", sa.String(96), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_index(op.f("ix_prediction_log_subject"))
        batch.drop_column("subject")
        batch.drop_column("client_ref")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_index(op.f("ix_feedback_source"))
        batch.drop_column("source")
