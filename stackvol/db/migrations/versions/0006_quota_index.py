"""quotas: a covering index for counting a project's volumes and their sizes

Revision ID: 0006_quota_index
Revises: 0005_services
"""

from alembic import op

revision = "0006_quota_index"
down_revision = "0005_services"
branch_labels = None
depends_on = None

NAME = "ix_volumes_project_id_volume_type_size"


def upgrade() -> None:
    # Quota checks read (project_id[, volume_type]) -> size without touching the table.
    op.create_index(op.f(NAME), "volumes", ["project_id", "volume_type", "size"])


def downgrade() -> None:
    op.drop_index(op.f(NAME), table_name="volumes")
