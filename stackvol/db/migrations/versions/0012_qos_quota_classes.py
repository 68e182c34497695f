"""block storage administration: QoS specs (and a volume type's), quota classes, and the
state an admin gives a volume service (enabled/disabled, frozen)

Revision ID: 0012_qos_quota_classes
Revises: 0011_keypairs
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_qos_quota_classes"
down_revision = "0011_keypairs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qos_specs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("consumer", sa.String(length=16), nullable=False),
        sa.Column("specs", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qos_specs")),
        sa.UniqueConstraint("name", name=op.f("uq_qos_specs_name")),
    )
    # NULL: the type has no QoS specs (existing types need no default).
    with op.batch_alter_table("volume_types") as batch:
        batch.add_column(sa.Column("qos_specs_id", sa.String(length=36), nullable=True))
        batch.create_index(batch.f("ix_volume_types_qos_specs_id"), ["qos_specs_id"])
    op.create_table(
        "quota_classes",
        sa.Column("class_name", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.String(length=300), nullable=False),
        sa.Column("hard_limit", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("class_name", "resource", name=op.f("pk_quota_classes")),
    )
    op.create_table(
        "service_states",
        sa.Column("binary", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=255), nullable=True),
        sa.Column("frozen", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("binary", "host", name=op.f("pk_service_states")),
    )


def downgrade() -> None:
    op.drop_table("service_states")
    op.drop_table("quota_classes")
    with op.batch_alter_table("volume_types") as batch:
        batch.drop_index(batch.f("ix_volume_types_qos_specs_id"))
        batch.drop_column("qos_specs_id")
    op.drop_table("qos_specs")
