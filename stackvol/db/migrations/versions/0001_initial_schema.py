"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:56:12.051351
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "flavors",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram", sa.Integer(), nullable=False),
        sa.Column("disk", sa.Integer(), nullable=False),
        sa.Column("ephemeral", sa.Integer(), server_default="0", nullable=False),
        sa.Column("swap", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rxtx_factor", sa.Float(), server_default="1.0", nullable=False),
        sa.Column("is_public", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("extra_specs", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flavors")),
        sa.UniqueConstraint("name", name=op.f("uq_flavors_name")),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("domain_id", sa.String(length=64), server_default="default", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("domain_id", "name", name=op.f("uq_projects_domain_id_name")),
    )
    op.create_table(
        "roles",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("name", name=op.f("uq_roles_name")),
    )
    op.create_table(
        "servers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("vm_state", sa.String(length=32), nullable=False),
        sa.Column("task_state", sa.String(length=32), nullable=True),
        sa.Column("power_state", sa.Integer(), server_default="0", nullable=False),
        sa.Column("flavor_id", sa.String(length=255), nullable=False),
        sa.Column("image_ref", sa.String(length=255), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("key_name", sa.String(length=255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("access_ipv4", sa.String(length=64), nullable=True),
        sa.Column("access_ipv6", sa.String(length=64), nullable=True),
        sa.Column("config_drive", sa.String(length=255), server_default="", nullable=False),
        sa.Column("user_data", sa.Text(), nullable=True),
        sa.Column("locked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("fault", sa.JSON(), nullable=True),
        sa.Column("launched_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
    )
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_servers_created_at_id"), ["created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_servers_project_id_created_at_id"),
            ["project_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_resource_id"), ["resource_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_state_id"), ["state", "id"], unique=False)

    op.create_table(
        "token_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_keys")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("domain_id", sa.String(length=64), server_default="default", nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("default_project_id", sa.String(length=64), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("domain_id", "name", name=op.f("uq_users_domain_id_name")),
    )
    op.create_table(
        "volumes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("display_description", sa.Text(), nullable=True),
        sa.Column("availability_zone", sa.String(length=255), nullable=False),
        sa.Column("volume_type", sa.String(length=255), nullable=True),
        sa.Column("snapshot_id", sa.String(length=36), nullable=True),
        sa.Column("source_volid", sa.String(length=36), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("bootable", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("backend", sa.String(length=64), nullable=False),
        sa.Column("provider_location", sa.String(length=1024), nullable=True),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volumes")),
    )
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_volumes_created_at_id"), ["created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_volumes_project_id_created_at_id"),
            ["project_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_volumes_status"), ["status"], unique=False)

    op.create_table(
        "role_assignments",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_role_assignments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("fk_role_assignments_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_role_assignments_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "project_id", "role_id", name=op.f("pk_role_assignments")
        ),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("display_description", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("provider_location", sa.String(length=1024), nullable=True),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["volume_id"], ["volumes.id"], name=op.f("fk_snapshots_volume_id_volumes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_snapshots_project_id_created_at_id"),
            ["project_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_snapshots_volume_id"), ["volume_id"], unique=False)

    op.create_table(
        "volume_attachments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("server_id", sa.String(length=36), nullable=False),
        sa.Column("device", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=60), nullable=True),
        sa.Column("delete_on_termination", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("boot_index", sa.Integer(), nullable=True),
        sa.Column("bdm_uuid", sa.String(length=36), nullable=False),
        sa.Column("connection_info", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["volume_id"], ["volumes.id"], name=op.f("fk_volume_attachments_volume_id_volumes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volume_attachments")),
    )
    with op.batch_alter_table("volume_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_volume_attachments_server_id_created_at"),
            ["server_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_volume_attachments_volume_id"), ["volume_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("volume_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_volume_attachments_volume_id"))
        batch_op.drop_index(batch_op.f("ix_volume_attachments_server_id_created_at"))

    op.drop_table("volume_attachments")
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_snapshots_volume_id"))
        batch_op.drop_index(batch_op.f("ix_snapshots_project_id_created_at_id"))

    op.drop_table("snapshots")
    op.drop_table("role_assignments")
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_volumes_status"))
        batch_op.drop_index(batch_op.f("ix_volumes_project_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_volumes_created_at_id"))

    op.drop_table("volumes")
    op.drop_table("users")
    op.drop_table("token_keys")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_state_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_resource_id"))

    op.drop_table("tasks")
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_servers_project_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_servers_created_at_id"))

    op.drop_table("servers")
    op.drop_table("roles")
    op.drop_table("projects")
    op.drop_table("flavors")
