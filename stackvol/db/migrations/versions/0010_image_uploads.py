"""images: which process an upload in ``saving`` streams into, and since when

Revision ID: 0010_image_uploads
Revises: 0009_connection_calls
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_image_uploads"
down_revision = "0009_connection_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL unless saving. An upload left by a process that died (its own restart, or any
    # process once its heartbeat is stale) goes back to ``queued``.
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("upload_owner", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("upload_started_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("upload_started_at")
        batch.drop_column("upload_owner")
