"""identity administration: revocation events, application credentials, user extras, role
descriptions

Revision ID: 0003_identity
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_identity"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra", sa.JSON(), nullable=True))
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
    op.create_table(
        "revocation_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("audit_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("issued_before", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revocation_events")),
    )
    with op.batch_alter_table("revocation_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revocation_events_audit_id"), ["audit_id"])
        batch_op.create_index(batch_op.f("ix_revocation_events_user_id"), ["user_id"])
    op.create_table(
        "application_credentials",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("unrestricted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"],
            name=op.f("fk_application_credentials_user_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"],
            name=op.f("fk_application_credentials_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_credentials")),
        sa.UniqueConstraint("user_id", "name",
                            name=op.f("uq_application_credentials_user_id_name")),
    )


def downgrade() -> None:
    op.drop_table("application_credentials")
    with op.batch_alter_table("revocation_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revocation_events_user_id"))
        batch_op.drop_index(batch_op.f("ix_revocation_events_audit_id"))
    op.drop_table("revocation_events")
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.drop_column("description")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("extra")
