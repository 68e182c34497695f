"""images: the Image service's (Glance v2) image records

Revision ID: 0007_images
Revises: 0006_quota_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_images"
down_revision = "0006_quota_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("protected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("os_hidden", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("disk_format", sa.String(length=20), nullable=True),
        sa.Column("container_format", sa.String(length=20), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("virtual_size", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(length=32), nullable=True),
        sa.Column("os_hash_algo", sa.String(length=64), nullable=True),
        sa.Column("os_hash_value", sa.String(length=128), nullable=True),
        sa.Column("min_disk", sa.Integer(), server_default="0", nullable=False),
        sa.Column("min_ram", sa.Integer(), server_default="0", nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
    )
    op.create_index(op.f("ix_images_created_at_id"), "images", ["created_at", "id"])
    op.create_index(op.f("ix_images_owner_created_at"), "images", ["owner", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_images_owner_created_at"), table_name="images")
    op.drop_index(op.f("ix_images_created_at_id"), table_name="images")
    op.drop_table("images")
