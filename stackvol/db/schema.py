"""The database schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it.

Indexes follow the queries: every list is a range scan on ``(project_id, created_at, id)`` so a
page costs O(limit) whatever the table size.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UUID = sa.String(36)
ProjectId = sa.String(64)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=True),
    ]


# --- identity -----------------------------------------------------------------------------

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", ProjectId, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("domain_id", sa.String(64), nullable=False, server_default="default"),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    *_timestamps(),
    sa.UniqueConstraint("domain_id", "name"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("domain_id", sa.String(64), nullable=False, server_default="default"),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("default_project_id", ProjectId, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    *_timestamps(),
    sa.UniqueConstraint("domain_id", "name"),
    # Added by 0003: Keystone keeps attributes it does not know (email, description...).
    sa.Column("extra", sa.JSON, nullable=True),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),  # added by 0003
)

role_assignments = sa.Table(
    "role_assignments",
    metadata,
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("project_id", ProjectId, sa.ForeignKey("projects.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("role_id", sa.String(64), sa.ForeignKey("roles.id", ondelete="CASCADE"),
              primary_key=True),
)

# Keys that sign and encrypt tokens; shared through the database by every API process.
token_keys = sa.Table(
    "token_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# Revoked tokens (added by 0003): by audit id (one token and its rescoped children), or every
# token of a user issued before a moment (password change, user disabled). Rows outlive the
# tokens they match only until ``expires_at``, when they are pruned.
revocation_events = sa.Table(
    "revocation_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("audit_id", sa.String(64), nullable=True),
    sa.Column("user_id", sa.String(64), nullable=True),
    sa.Column("issued_before", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=False),
    sa.Index(None, "audit_id"),
    sa.Index(None, "user_id"),
)

# Application credentials (added by 0003): a secret a user delegates some of its roles on one
# project to; only the secret's hash is kept.
application_credentials = sa.Table(
    "application_credentials",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("project_id", ProjectId, sa.ForeignKey("projects.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("secret_hash", sa.String(255), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),  # role names
    sa.Column("unrestricted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("expires_at", sa.DateTime, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("user_id", "name"),
)

# --- compute ------------------------------------------------------------------------------

flavors = sa.Table(
    "flavors",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("vcpus", sa.Integer, nullable=False),
    sa.Column("ram", sa.Integer, nullable=False),
    sa.Column("disk", sa.Integer, nullable=False),
    sa.Column("ephemeral", sa.Integer, nullable=False, server_default="0"),
    sa.Column("swap", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rxtx_factor", sa.Float, nullable=False, server_default="1.0"),
    sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("extra_specs", sa.JSON, nullable=False, default=dict),
)

servers = sa.Table(
    "servers",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("project_id", ProjectId, nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("vm_state", sa.String(32), nullable=False),
    sa.Column("task_state", sa.String(32), nullable=True),
    sa.Column("power_state", sa.Integer, nullable=False, server_default="0"),
    sa.Column("flavor_id", sa.String(255), nullable=False),
    sa.Column("image_ref", sa.String(255), nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("availability_zone", sa.String(255), nullable=True),
    sa.Column("key_name", sa.String(255), nullable=True),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
    sa.Column("access_ipv4", sa.String(64), nullable=True),
    sa.Column("access_ipv6", sa.String(64), nullable=True),
    sa.Column("config_drive", sa.String(255), nullable=False, server_default=""),
    sa.Column("user_data", sa.Text, nullable=True),
    sa.Column("locked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("fault", sa.JSON, nullable=True),
    sa.Column("launched_at", sa.DateTime, nullable=True),
    *_timestamps(),
    # Added by 0002: what Nova's server views and create requests carry beyond the basics.
    sa.Column("hostname", sa.String(255), nullable=True),
    sa.Column("node", sa.String(255), nullable=True),
    sa.Column("reservation_id", sa.String(32), nullable=True),
    sa.Column("root_device_name", sa.String(255), nullable=True),
    sa.Column("auto_disk_config", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("locked_reason", sa.Text, nullable=True),
    sa.Column("pinned_availability_zone", sa.String(255), nullable=True),
    # JSON columns are nullable (NULL reads as empty) so the migration needs no JSON default.
    sa.Column("tags", sa.JSON, nullable=True),
    sa.Column("security_groups", sa.JSON, nullable=True),
    sa.Column("networks", sa.JSON, nullable=True),
    sa.Column("block_device_mapping", sa.JSON, nullable=True),
    sa.Column("scheduler_hints", sa.JSON, nullable=True),
    sa.Column("trusted_certs", sa.JSON, nullable=True),
    sa.Index(None, "project_id", "created_at", "id"),
    sa.Index(None, "created_at", "id"),
    sa.Index(None, "host"),  # added by 0005
)

# Keypairs (added by 0011): Nova's ``os-keypairs``, named per user. The unique (user_id, name)
# index serves the lookups and the name-ordered pages of a user's list.
key_pairs = sa.Table(
    "key_pairs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(16), nullable=False, server_default="ssh"),  # ssh | x509
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(255), nullable=False),
    *_timestamps(),
    sa.UniqueConstraint("user_id", "name"),
)

# --- block storage ------------------------------------------------------------------------

volumes = sa.Table(
    "volumes",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("project_id", ProjectId, nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("display_name", sa.String(255), nullable=True),
    sa.Column("display_description", sa.Text, nullable=True),
    sa.Column("availability_zone", sa.String(255), nullable=False),
    sa.Column("volume_type", sa.String(255), nullable=True),
    sa.Column("snapshot_id", UUID, nullable=True),
    sa.Column("source_volid", UUID, nullable=True),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
    sa.Column("bootable", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("backend", sa.String(64), nullable=False),
    # Where the backend keeps the bytes (a file path, an RBD image name, ...).
    sa.Column("provider_location", sa.String(1024), nullable=True),
    sa.Column("error_reason", sa.Text, nullable=True),
    *_timestamps(),
    # Added by 0008: the image it was made from (Cinder's volume_image_metadata), else NULL.
    sa.Column("image_metadata", sa.JSON, nullable=True),
    # Added by 0013: Cinder's admin metadata (``readonly``), and the migration status an admin
    # may reset (stackvol never migrates; NULL is Cinder's none).
    sa.Column("admin_metadata", sa.JSON, nullable=True),
    sa.Column("migration_status", sa.String(32), nullable=True),
    sa.Index(None, "project_id", "created_at", "id"),
    sa.Index(None, "created_at", "id"),
    sa.Index(None, "status"),
    # Added by 0006: quota checks count and sum a project's volumes from the index alone.
    sa.Index(None, "project_id", "volume_type", "size"),
)

volume_attachments = sa.Table(
    "volume_attachments",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("volume_id", UUID, sa.ForeignKey("volumes.id"), nullable=False),
    sa.Column("server_id", UUID, nullable=False),
    sa.Column("device", sa.String(255), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("tag", sa.String(60), nullable=True),
    sa.Column("delete_on_termination", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("boot_index", sa.Integer, nullable=True),
    sa.Column("bdm_uuid", UUID, nullable=False),
    sa.Column("connection_info", sa.JSON, nullable=True),
    *_timestamps(),
    sa.Index(None, "volume_id"),
    sa.Index(None, "server_id", "created_at"),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("project_id", ProjectId, nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("volume_id", UUID, sa.ForeignKey("volumes.id"), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("display_name", sa.String(255), nullable=True),
    sa.Column("display_description", sa.Text, nullable=True),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
    sa.Column("provider_location", sa.String(1024), nullable=True),
    sa.Column("error_reason", sa.Text, nullable=True),
    *_timestamps(),
    # Added by 0013: what os-update_snapshot_status said ("80%"); NULL: follow the status.
    sa.Column("progress", sa.String(8), nullable=True),
    sa.Index(None, "project_id", "created_at", "id"),
    sa.Index(None, "volume_id"),
)

# --- durable work -------------------------------------------------------------------------

# One row per piece of long work still to do. A worker claims a row by taking a lease; a
# process that dies leaves its lease to expire (or, for the same worker name, to be reclaimed at
# start-up) so the work is resumed. Handlers are idempotent. Finished rows are deleted.
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False, default=dict),
    # Which workers may run it: a storage backend name or a compute host; NULL means any.
    sa.Column("target", sa.String(255), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),  # pending | running
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("lease_until", sa.DateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index(None, "state", "id"),
    sa.Index(None, "resource_id"),
)

# --- block storage administration (added by 0004) ----------------------------------------

# Cinder's volume types; volumes name theirs in ``volumes.volume_type``.
volume_types = sa.Table(
    "volume_types",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("extra_specs", sa.JSON, nullable=True),  # NULL reads as {}
    *_timestamps(),
    # Added by 0012: the type's QoS specs (``qos_specs.id``), else NULL.
    sa.Column("qos_specs_id", UUID, nullable=True),
    sa.Index(None, "qos_specs_id"),
)

# The projects a private volume type is shared with (added by 0015, Cinder's
# ``volume_type_projects``): they see and use it as if it were public.
volume_type_projects = sa.Table(
    "volume_type_projects",
    metadata,
    sa.Column("volume_type_id", UUID, primary_key=True),
    sa.Column("project_id", ProjectId, primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index(None, "project_id"),
)

# Cinder's QoS specs (added by 0012): limits a volume type carries; ``front-end`` and ``both``
# ones are applied by the hypervisor (libvirt's <iotune>), ``back-end`` ones by the storage.
qos_specs = sa.Table(
    "qos_specs",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("consumer", sa.String(16), nullable=False),  # front-end | back-end | both
    sa.Column("specs", sa.JSON, nullable=True),  # NULL reads as {}
    *_timestamps(),
)

# Hard limits a project was given (resource: volumes, gigabytes, volumes_<type>, ...); a
# missing row means the default. Usage is never stored: it is counted when it matters.
quota_limits = sa.Table(
    "quota_limits",
    metadata,
    sa.Column("project_id", ProjectId, primary_key=True),
    sa.Column("resource", sa.String(300), primary_key=True),
    sa.Column("hard_limit", sa.Integer, nullable=False),
    *_timestamps(),
)

# Limits of a quota class (added by 0012): the ``default`` class's rows override the
# configured defaults of every project (Cinder's os-quota-class-sets).
quota_classes = sa.Table(
    "quota_classes",
    metadata,
    sa.Column("class_name", sa.String(255), primary_key=True),
    sa.Column("resource", sa.String(300), primary_key=True),
    sa.Column("hard_limit", sa.Integer, nullable=False),
    *_timestamps(),
)

# One row per project that has consumed quota: creates lock it (FOR UPDATE) so concurrent
# ones count usage one after another on databases with row locks.
quota_locks = sa.Table(
    "quota_locks",
    metadata,
    sa.Column("project_id", ProjectId, primary_key=True),
)

# --- processes (added by 0005) ------------------------------------------------------------

# One row per stackvol process (API, volume worker, compute worker, or all in one), refreshed by
# its heartbeat; a process is "up" while its last heartbeat is recent. ``name`` is the
# process's worker name, unique per process.
services = sa.Table(
    "services",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),  # all | api | volume | compute
    sa.Column("host", sa.String(255), nullable=False),  # the compute host, else the machine
    sa.Column("backend", sa.String(64), nullable=True),  # the storage backend it serves
    sa.Column("url", sa.String(255), nullable=True),  # where its /healthcheck answers
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("heartbeat_at", sa.DateTime, nullable=False),
)

# What an admin made of a listed service (added by 0012; Cinder's os-services enable/disable,
# freeze/thaw), by Cinder's binary and host (``host@backend`` for cinder-volume); no row means
# enabled. The scheduler places no new volume on a backend whose volume services are disabled.
service_states = sa.Table(
    "service_states",
    metadata,
    sa.Column("binary", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disabled_reason", sa.String(255), nullable=True),
    sa.Column("frozen", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# --- images (added by 0007) ---------------------------------------------------------------

# Glance v2 images. The bytes live in the image store (a file per image); ``location`` says
# where once the image is active. Extra properties (kernel_id, os_distro...) and tags are JSON.
images = sa.Table(
    "images",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("os_hidden", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disk_format", sa.String(20), nullable=True),
    sa.Column("container_format", sa.String(20), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("virtual_size", sa.BigInteger, nullable=True),
    sa.Column("checksum", sa.String(32), nullable=True),
    sa.Column("os_hash_algo", sa.String(64), nullable=True),
    sa.Column("os_hash_value", sa.String(128), nullable=True),
    sa.Column("min_disk", sa.Integer, nullable=False, server_default="0"),
    sa.Column("min_ram", sa.Integer, nullable=False, server_default="0"),
    sa.Column("owner", ProjectId, nullable=True),
    sa.Column("location", sa.Text, nullable=True),
    sa.Column("properties", sa.JSON, nullable=True),  # NULL reads as {}
    sa.Column("tags", sa.JSON, nullable=True),  # NULL reads as []
    # While ``saving``: the process (``services.name``) the bytes stream into, and since when
    # (added by 0010), so an upload its process died in is put back to ``queued``.
    sa.Column("upload_owner", sa.String(255), nullable=True),
    sa.Column("upload_started_at", sa.DateTime, nullable=True),
    *_timestamps(),
    sa.Index(None, "created_at", "id"),
    sa.Index(None, "owner", "created_at"),
)

# --- connection calls (added by 0009) -----------------------------------------------------

# A Cinder connection call (os-initialize_connection, attachments with a connector...) carried
# from an API process to the volume's backend worker: the API waits for ``state`` to leave
# ``waiting`` (services/connection_calls). A legacy initialize that made an export stays ``done``
# as the record of which storage host (``result.data.exporter``) serves ``host``, until its
# terminate.
connection_calls = sa.Table(
    "connection_calls",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # initialize | terminate
    sa.Column("volume_id", UUID, nullable=False),
    sa.Column("attachment_id", UUID, nullable=True),  # attachments API: the row it connects
    sa.Column("host", sa.String(255), nullable=True),  # the connector's host
    sa.Column("state", sa.String(16), nullable=False),  # waiting | done | failed | abandoned
    sa.Column("result", sa.JSON, nullable=True),  # connection info, or {"error": reason}
    *_timestamps(),
    sa.Index(None, "volume_id"),
)

# --- volume transfers (added by 0014) -----------------------------------------------------

# A volume offered to another project (Cinder's transfers): ``project_id`` is the giver's. The
# row goes when the transfer is accepted or cancelled; the auth key is kept only as a salted
# HMAC (``salt``, ``crypt_hash``).
transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("volume_id", UUID, nullable=False),
    sa.Column("project_id", ProjectId, nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=True),
    sa.Column("salt", sa.String(255), nullable=False),
    sa.Column("crypt_hash", sa.String(255), nullable=False),
    sa.Column("no_snapshots", sa.Boolean, nullable=False, server_default=sa.false()),
    *_timestamps(),
    sa.Index(None, "project_id", "created_at", "id"),
    sa.Index(None, "volume_id"),
)
