"""transfers: volume transfer requests (Cinder's os-volume-transfer / volume-transfers)

Revision ID: 0014_transfers
Revises: 0013_volume_actions
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_transfers"
down_revision = "0013_volume_actions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per pending transfer; accepting or cancelling it removes the row. The auth key
    # itself is never stored: only a salted HMAC of it (as Cinder keeps salt and crypt_hash).
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("salt", sa.String(length=255), nullable=False),
        sa.Column("crypt_hash", sa.String(length=255), nullable=False),
        sa.Column("no_snapshots", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    op.create_index(op.f("ix_transfers_project_id_created_at_id"), "transfers",
                    ["project_id", "created_at", "id"])
    op.create_index(op.f("ix_transfers_volume_id"), "transfers", ["volume_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_transfers_volume_id"), table_name="transfers")
    op.drop_index(op.f("ix_transfers_project_id_created_at_id"), table_name="transfers")
    op.drop_table("transfers")
