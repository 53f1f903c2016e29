"""Scale-out: 64-bit log ids, windows claim their rows, unique windows, alerts and key names.

- ``prediction_log.id``, ``feedback.id`` and the window bounds become BIGINT on PostgreSQL
  (and their sequences ``AS bigint``: a serial's sequence stops at 2**31 - 1 even after its
  column is widened). SQLite's INTEGER is 64-bit already. On a large PostgreSQL log the type
  change rewrites the table: run the upgrade in a quiet hour.
- ``prediction_log.window_id``: the window that claimed a row, backfilled from the windows'
  id ranges, so rows already windowed are not windowed again.
- unique ``monitor_windows (model_name, version, first_log_id)`` and ``alerts (window_id,
  kind)``; an index keeps one active (not revoked) API key per name. A store that already
  holds duplicates (two monitors ran at once before this version) keeps the oldest window
  and alert of each; newer active keys sharing a name are renamed ``<name>#<id>``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_WIDENED = [("prediction_log", "id"), ("feedback", "id"),
            ("monitor_windows", "first_log_id"), ("monitor_windows", "last_log_id")]
_SEQUENCES = [("prediction_log", "id"), ("feedback", "id")]
_ACTIVE = "revoked_at IS NULL"


def upgrade() -> None:
    """Widen the ids, add window claims and the unique constraints."""
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for table, column in _WIDENED:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_nullable=False)
        for table, column in _SEQUENCES:
            op.execute(f"ALTER SEQUENCE {table}_{column}_seq AS bigint")
    _drop_duplicates()
    op.add_column("prediction_log", sa.Column("window_id", sa.Integer(), nullable=True))
    op.create_index("ix_prediction_log_model_name_window_id", "prediction_log",
                    ["model_name", "window_id"])
    op.execute(
        "UPDATE prediction_log SET window_id = (SELECT w.id FROM monitor_windows w "
        "WHERE w.model_name = prediction_log.model_name AND w.version = prediction_log.version "
        "AND prediction_log.id BETWEEN w.first_log_id AND w.last_log_id "
        "ORDER BY w.id LIMIT 1)"
    )
    # unique indexes, not constraints: a constraint makes SQLite copy the table, which the
    # alerts' foreign key (ON DELETE SET NULL) would see as every window deleted
    op.create_index("uq_monitor_windows_model_name_version_first_log_id", "monitor_windows",
                    ["model_name", "version", "first_log_id"], unique=True)
    op.create_index("uq_alerts_window_id_kind", "alerts", ["window_id", "kind"], unique=True)
    op.create_index("uq_api_keys_active_name", "api_keys", ["name"], unique=True,
                    sqlite_where=sa.text(_ACTIVE), postgresql_where=sa.text(_ACTIVE))


_KEPT_WINDOWS = ("SELECT MIN(id) FROM monitor_windows "
                 "GROUP BY model_name, version, first_log_id")


def _drop_duplicates() -> None:
    # a duplicated window's alerts are the kept window's alerts again: they go with it
    op.execute(f"DELETE FROM alerts WHERE window_id NOT IN ({_KEPT_WINDOWS})")
    op.execute(f"DELETE FROM monitor_windows WHERE id NOT IN ({_KEPT_WINDOWS})")
    op.execute(
        "DELETE FROM alerts WHERE window_id IS NOT NULL AND id NOT IN "
        "(SELECT MIN(id) FROM alerts WHERE window_id IS NOT NULL GROUP BY window_id, kind)"
    )
    # an active name held twice (the race this revision closes): the newer keys are renamed
    # "<name>#<id>", not revoked, so no client loses access in an upgrade
    op.execute(
        "UPDATE api_keys SET name = SUBSTR(name, 1, 110) || '#' || CAST(id AS VARCHAR(16)) "
        "WHERE revoked_at IS NULL AND id NOT IN "
        "(SELECT MIN(id) FROM api_keys WHERE revoked_at IS NULL GROUP BY name)"
    )


def downgrade() -> None:
    """Drop the constraints and claims; the ids stay 64-bit (narrowing could lose rows)."""
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
    op.drop_index("uq_alerts_window_id_kind", table_name="alerts")
    op.drop_index("uq_monitor_windows_model_name_version_first_log_id",
                  table_name="monitor_windows")
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_index("ix_prediction_log_model_name_window_id")
        batch.drop_column("window_id")
