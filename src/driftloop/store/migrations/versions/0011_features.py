"""The feature store: registered feature views, the online table, materialisation runs.

- ``feature_views``: one row per version of a view's declaration (name, version, spec hash).
- ``feature_online``: the latest values of a view per entity (keyed hash of its keys).
- ``feature_materializations``: each materialisation's event-time range and row counts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create feature_views, feature_online and feature_materializations."""
    op.create_table(
        "feature_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_views")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_feature_views_name_version")),
        sa.UniqueConstraint("name", "spec_hash", name=op.f("uq_feature_views_name_spec_hash")),
    )
    op.create_index(op.f("ix_feature_views_name"), "feature_views", ["name"])
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "feature_online",
        sa.Column("id", big_id, nullable=False),
        sa.Column("view_name", sa.String(64), nullable=False),
        sa.Column("view_version", sa.Integer(), nullable=False),
        sa.Column("entity_hash", sa.String(64), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("materialized_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_online")),
        sa.UniqueConstraint("view_name", "entity_hash",
                            name=op.f("uq_feature_online_view_name_entity_hash")),
    )
    op.create_table(
        "feature_materializations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("view_name", sa.String(64), nullable=False),
        sa.Column("view_version", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_written", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_materializations")),
    )
    op.create_index(op.f("ix_feature_materializations_view_name"), "feature_materializations",
                    ["view_name"])


def downgrade() -> None:
    """Drop the feature-store tables (the views' declarations stay in settings)."""
    op.drop_table("feature_materializations")
    op.drop_table("feature_online")
    op.drop_table("feature_views")
