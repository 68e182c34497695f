"""type access: the projects a private volume type is shared with (Cinder's volume_type_projects)

Revision ID: 0015_type_access
Revises: 0014_transfers
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_type_access"
down_revision = "0014_transfers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per (private type, project given access); removing access removes the row, and
    # deleting the type removes its rows.
    op.create_table(
        "volume_type_projects",
        sa.Column("volume_type_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("volume_type_id", "project_id",
                                name=op.f("pk_volume_type_projects")),
    )
    op.create_index(op.f("ix_volume_type_projects_project_id"), "volume_type_projects",
                    ["project_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_volume_type_projects_project_id"),
                  table_name="volume_type_projects")
    op.drop_table("volume_type_projects")
