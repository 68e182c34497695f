"""volumes: admin metadata and migration status; snapshots: progress (Cinder's volume and
snapshot actions)

Revision ID: 0013_volume_actions
Revises: 0012_qos_quota_classes
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_volume_actions"
down_revision = "0012_qos_quota_classes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL reads as empty/none: existing rows need no default.
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("admin_metadata", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("migration_status", sa.String(length=32), nullable=True))
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("progress", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("progress")
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("migration_status")
        batch.drop_column("admin_metadata")
