"""connection_calls: Cinder connection calls carried from an API process to a backend's worker

Revision ID: 0009_connection_calls
Revises: 0008_volume_image_metadata
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_connection_calls"
down_revision = "0008_volume_image_metadata"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connection_calls",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("attachment_id", sa.String(length=36), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_calls")),
    )
    op.create_index(op.f("ix_connection_calls_volume_id"), "connection_calls", ["volume_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_connection_calls_volume_id"), table_name="connection_calls")
    op.drop_table("connection_calls")
