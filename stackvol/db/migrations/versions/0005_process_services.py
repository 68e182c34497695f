"""processes: the services heartbeat table, servers by compute host

Revision ID: 0005_services
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_services"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("backend", sa.String(length=64), nullable=True),
        sa.Column("url", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_services")),
    )
    # The scheduler counts servers per compute host; recovery reads one host's servers.
    op.create_index(op.f("ix_servers_host"), "servers", ["host"])


def downgrade() -> None:
    op.drop_index(op.f("ix_servers_host"), table_name="servers")
    op.drop_table("services")
