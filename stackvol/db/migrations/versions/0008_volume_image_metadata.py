"""volumes: the image a volume was made from (Cinder's volume_image_metadata)

Revision ID: 0008_volume_image_metadata
Revises: 0007_images
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_volume_image_metadata"
down_revision = "0007_images"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: not made from an image. Copied from the image when the volume is created, so the
    # volume keeps it whatever happens to the image afterwards.
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("image_metadata", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("image_metadata")
