"""block storage administration: volume types, quota limits, quota locks

Revision ID: 0004
Revises: 0003_identity
"""

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    types = op.create_table(
        "volume_types",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_public", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("extra_specs", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_types")),
        sa.UniqueConstraint("name", name=op.f("uq_volume_types_name")),
    )
    op.create_table(
        "quota_limits",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=300), nullable=False),
        sa.Column("hard_limit", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("project_id", "resource", name=op.f("pk_quota_limits")),
    )
    op.create_table(
        "quota_locks",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_quota_locks")),
    )
    # Cinder's default type, which every volume created without one gets.
    op.bulk_insert(types, [{
        "id": str(uuid.uuid4()), "name": "__DEFAULT__", "description": "Default Volume Type",
        "is_public": True, "extra_specs": {},
        "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None), "updated_at": None,
    }])


def downgrade() -> None:
    op.drop_table("quota_locks")
    op.drop_table("quota_limits")
    op.drop_table("volume_types")
