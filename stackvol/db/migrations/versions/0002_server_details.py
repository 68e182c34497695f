"""server details: hostname, node, reservation, tags, requested networks and devices

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STRINGS = {
    "hostname": 255,
    "node": 255,
    "reservation_id": 32,
    "root_device_name": 255,
    "pinned_availability_zone": 255,
}
_JSON = ("tags", "security_groups", "networks", "block_device_mapping", "scheduler_hints",
         "trusted_certs")


def upgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        for name, length in _STRINGS.items():
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))
        batch_op.add_column(sa.Column("auto_disk_config", sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("locked_reason", sa.Text(), nullable=True))
        for name in _JSON:
            batch_op.add_column(sa.Column(name, sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        for name in (*_JSON, "locked_reason", "auto_disk_config", *reversed(_STRINGS)):
            batch_op.drop_column(name)
