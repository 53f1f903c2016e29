"""API-key roles ``read`` (the dashboard) and ``feedback`` (labels), beside predict and admin.

The role's CHECK constraint is replaced: in place on PostgreSQL; SQLite cannot alter a
constraint, so there the table is copied (batch mode), its partial unique index on active
names dropped first and made again afterwards, since a copy would not keep its WHERE clause on
every SQLite version.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ACTIVE = "revoked_at IS NULL"


def _roles(roles: tuple[str, ...]) -> None:
    check = f"role IN ({', '.join(repr(r) for r in roles)})"
    if op.get_bind().dialect.name != "sqlite":  # an ALTER in place: ids and sequence stay
        op.drop_constraint(op.f("ck_api_keys_role"), "api_keys", type_="check")
        op.create_check_constraint(op.f("ck_api_keys_role"), "api_keys", check)
        return
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
    with op.batch_alter_table("api_keys", recreate="always") as batch:
        batch.drop_constraint(op.f("ck_api_keys_role"), type_="check")
        batch.create_check_constraint(op.f("ck_api_keys_role"), check)
    op.create_index("uq_api_keys_active_name", "api_keys", ["name"], unique=True,
                    sqlite_where=sa.text(_ACTIVE), postgresql_where=sa.text(_ACTIVE))


def upgrade() -> None:
    """Allow the read and feedback roles."""
    _roles(("predict", "feedback", "read", "admin"))


def downgrade() -> None:
    """Back to predict and admin (fails while a read or feedback key exists)."""
    _roles(("predict", "admin"))
