"""Settings: defaults, then a TOML file, then STACKVOL_* environment variables, then CLI flags.

Every tunable is a field of ``Settings`` with its type, range and description; pydantic-settings
reads the layers and validates them, so a bad value is refused with the setting's name and what
it allows (``BadSettings``). ``stackvol config docs`` renders docs/configuration.md from the
same fields (``reference``).
"""

from __future__ import annotations

import contextvars
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import annotated_types
import sqlalchemy as sa
from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "STACKVOL_"
# Database drivers stackvol runs on (SQLAlchemy backend+driver names), and how to write them.
DATABASES = {"sqlite+pysqlite": "sqlite:///PATH",
             "postgresql+psycopg": "postgresql+psycopg://USER:PASSWORD@HOST[:PORT]/DATABASE"}

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]
Quota = Annotated[int, Field(ge=-1)]  # -1: unlimited
Names = Annotated[list[str], NoDecode]  # a TOML or JSON array, or "a,b" from the environment
Tables = Annotated[dict[str, dict[str, Any]], NoDecode]  # TOML tables, or JSON

# The TOML file's values for the settings being built (a source's class cannot take arguments).
_file_values: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("file_values")


def _volume_quota(default: int, what: str) -> Any:
    return Field(default, description=f"Default limit of {what} per project (Cinder's default: "
                                      f"{default}; -1: unlimited). An admin may set a "
                                      f"project's own with os-quota-sets.")


def _compute_quota(default: int, what: str) -> Any:
    return Field(default, description=f"Default limit of {what} per project (Nova's default: "
                                      f"{default}; -1: unlimited).")


class Settings(BaseSettings):
    """Every tunable of a stackvol process, with the embedded defaults that need no setup."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid",
                                      validate_default=True)

    host: str = Field("127.0.0.1", min_length=1, description="Address to listen on.")
    port: Port = Field(8774, description="TCP port every API is served on.")
    data_dir: Path = Field(Path("./data"), description=(
        "Directory of the SQLite database, volume files, bootstrap credentials and "
        "clouds.yaml; created at first start."))
    database_url: str = Field("", json_schema_extra={"allowed": "a database URL"}, description=(
        "SQLAlchemy URL of the database: sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@"
        "HOST[:PORT]/DATABASE. Empty: SQLite (WAL) in data_dir."))
    public_url: str = Field("", json_schema_extra={"allowed": "an http(s) URL"}, description=(
        "The URL clients reach this service at (service catalog, clouds.yaml). Empty: derived "
        "from each request's Host header."))
    region: str = Field("RegionOne", min_length=1, description="Region name in the catalog.")
    noauth: bool = Field(False, description=(
        "Trust X-Auth-Project-Id / X-Auth-User-Id instead of tokens (development only, as "
        "Nova's noauth2)."))
    ephemeral: bool = Field(False, description=(
        "Serve from a temporary data dir (SQLite in it), removed at exit: for testing tools. "
        "Excludes data_dir and database_url; compute_driver auto means simulated."))
    token_ttl_seconds: Count = Field(3600, description="Lifetime of a Keystone token.")
    password_hash_rounds: int = Field(12, ge=4, le=31, description=(
        "bcrypt cost (log2 rounds) of stored passwords."))
    enabled_backends: Names = Field(["file"], min_length=1, description=(
        "Storage backends, as Cinder's enabled_backends: each may have a [backends.NAME] table "
        "(driver file or rbd, volume_backend_name, the driver's options). The default 'file' "
        "backend keeps its volumes in data_dir/volumes."))
    default_backend: str = Field("", description=(
        "Backend of volumes whose type names none. Empty: the first enabled one."))
    backends: Tables = Field({}, description=(
        "Per-backend options: TOML [backends.NAME] tables (JSON in STACKVOL_BACKENDS)."))
    storage_backend: str = Field("", description=(
        "The backend a role=volume process serves. Empty: default_backend."))
    volume_format: Literal["raw", "qcow2"] = Field("raw", description=(
        "Format of volume files on file backends that set none: raw (sparse) or qcow2."))
    compute_driver: Literal["auto", "libvirt", "simulated"] = Field("auto", description=(
        "Compute driver: libvirt (real QEMU guests), simulated, or auto (libvirt when a daemon "
        "answers at libvirt_uri, else simulated; a data dir keeps the driver it started with)."))
    libvirt_uri: str = Field("qemu:///system", min_length=1, description="libvirt connection URI.")
    libvirt_virt_type: Literal["qemu", "kvm"] = Field("qemu", description=(
        "qemu (TCG emulation) or kvm, where KVM really works."))
    libvirt_max_memory_mb: int = Field(0, ge=0, description=(
        "Cap on a guest's memory whatever its flavor (0: none)."))
    libvirt_detach_attempts: Count = Field(8, description=(
        "How many times detach asks the guest to release a disk (a booting or busy guest may "
        "miss a request; Nova's [libvirt] device_detach_attempts). If it never lets go the "
        "volume stays in-use."))
    libvirt_detach_timeout: Seconds = Field(20.0, description=(
        "Seconds a guest has to release an unplugged disk, each attempt (Nova's [libvirt] "
        "device_detach_timeout)."))
    guest_image_dir: str = Field("", description=(
        "Cache of the built-in guest (kernel, initramfs). Empty: data_dir/guest-image."))
    image_dir: str = Field("", description="Image service store. Empty: data_dir/images.")
    availability_zone: str = Field("nova", min_length=1, description=(
        "Availability zone of volumes, servers and services."))
    max_limit: Count = Field(1000, description="Largest page a list returns.")
    quota_volumes: Quota = _volume_quota(10, "volumes")
    quota_snapshots: Quota = _volume_quota(10, "snapshots")
    quota_gigabytes: Quota = _volume_quota(1000, "GiB of volumes and snapshots")
    quota_per_volume_gigabytes: Quota = _volume_quota(-1, "GiB of one volume")
    quota_backups: Quota = _volume_quota(10, "backups")
    quota_backup_gigabytes: Quota = _volume_quota(1000, "GiB of backups")
    quota_groups: Quota = _volume_quota(10, "volume groups")
    quota_instances: Quota = _compute_quota(10, "servers")
    quota_cores: Quota = _compute_quota(20, "vCPUs of servers")
    quota_ram: Quota = _compute_quota(51200, "MiB of servers' RAM")
    quota_metadata_items: Quota = _compute_quota(128, "metadata items of a server")
    quota_injected_files: Quota = _compute_quota(5, "injected files of a server")
    quota_injected_file_content_bytes: Quota = _compute_quota(
        10240, "bytes of an injected file")
    quota_injected_file_path_bytes: Quota = _compute_quota(255, "bytes of an injected file's path")
    quota_key_pairs: Quota = _compute_quota(100, "key pairs of a user")
    quota_server_groups: Quota = _compute_quota(10, "server groups")
    quota_server_group_members: Quota = _compute_quota(10, "servers in a server group")
    role: Literal["all", "api", "volume", "compute"] = Field("all", description=(
        "What this process runs: all; api (the HTTP APIs); volume (a worker for "
        "storage_backend); compute (a worker for compute_host)."))
    compute_host: str = Field("", description="Compute host this process is. Empty: host name.")
    shared_storage_hosts: Names = Field([], description=(
        "File backends: compute hosts that see this host's volume files at the same paths "
        "(a shared mount; '*': all). Any other host gets an NBD export."))
    export_address: str = Field("127.0.0.1", min_length=1, description=(
        "Address NBD exports of file volumes listen on."))
    heartbeat_seconds: Seconds = Field(10.0, description=(
        "How often a process records that it is alive."))
    service_down_seconds: Seconds = Field(60.0, description=(
        "A process silent this long is down (Cinder's service_down_time)."))
    worker_name: str = Field("", description=(
        "Name of this process's worker. Empty: from the host name, port and role."))
    worker_concurrency: Count = Field(32, description="Durable tasks a worker runs at once.")
    task_lease_seconds: Count = Field(60, description=(
        "How long a worker's claim on a task lasts without renewal."))
    task_poll_seconds: Seconds = Field(1.0, description="How often a worker looks for tasks.")
    rpc_response_timeout: Seconds = Field(60.0, description=(
        "Seconds an API process waits for a backend's worker to answer a connection call "
        "(Cinder's rpc_response_timeout)."))
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field("NORMAL", description=(
        "SQLite's synchronous pragma: NORMAL survives process crashes, FULL power loss."))
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = Field(
        "INFO", description="Least severe level logged.")
    log_format: Literal["auto", "text", "json"] = Field("auto", description=(
        "text (oslo.log's line), json (one object a line) or auto: text on a terminal, "
        "else json."))
    access_log: bool = Field(False, description="Log every request.")
    policy_file: str = Field("", description=(
        "A YAML or JSON file of policy rule overrides (defaults in services/common/policy)."))
    pause_at: str = Field("", description=(
        "Test hook: the worker parks at this named step (tasks/worker.PauseHook)."))

    @field_validator("log_level", "sqlite_synchronous", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("enabled_backends", "shared_storage_hosts", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]

    @field_validator("backends", mode="before")
    @classmethod
    def _tables(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value:
            check_database_url(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("must be an http:// or https:// URL with a host, or empty")
        return value

    @field_validator("ephemeral")
    @classmethod
    def _ephemeral(cls, value: bool, info: Any) -> bool:
        if value and (info.data.get("database_url")
                      or info.data.get("data_dir") not in (None, Path("./data"))):
            raise ValueError("an ephemeral server uses a temporary data dir with SQLite: "
                             "leave data_dir and database_url unset")
        return value

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (init) over the environment over the TOML file over the defaults.
        return init_settings, env_settings, _TomlFile(settings_cls)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'stackvol.sqlite').resolve()}"

    @property
    def volumes_dir(self) -> Path:
        return self.data_dir / "volumes"

    @property
    def default_storage_backend(self) -> str:
        return self.default_backend or (self.enabled_backends or [""])[0]

    @property
    def served_backend(self) -> str:
        """The backend a ``volume`` process works for."""
        return self.storage_backend or self.default_storage_backend


class _TomlFile(PydanticBaseSettingsSource):
    """The settings file's values, as ``load_settings`` read them."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _file_values.get({}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_values.get({}))


def check_database_url(value: str) -> None:
    """Refuse a URL SQLAlchemy cannot load, a driver stackvol does not run on, and an
    in-memory SQLite database (every pooled connection would get its own empty one)."""
    allowed = " or ".join(DATABASES.values())
    try:
        url = sa.engine.make_url(value)
        url.get_dialect()
    except sa.exc.NoSuchModuleError:  # (an ArgumentError too)
        raise ValueError(f"SQLAlchemy has no driver {value.split(':')[0]!r}; use {allowed}"
                         ) from None
    except sa.exc.ArgumentError:
        raise ValueError(f"not a database URL; use {allowed}") from None
    if f"{url.get_backend_name()}+{url.get_driver_name()}" not in DATABASES:
        raise ValueError(f"driver {url.drivername!r} is not supported; use {allowed}")
    memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    if url.get_backend_name() == "sqlite" and memory:
        raise ValueError("an in-memory SQLite database cannot serve: each connection would see "
                         "its own empty database; use sqlite:///PATH (or --ephemeral for a "
                         "throw-away server)")


# --- loading and refusing -----------------------------------------------------------------------


class BadSettings(ValueError):
    """Settings refused at start: one line per bad setting, naming it and what it allows."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def bad_setting(name: str, value: Any, reason: str) -> BadSettings:
    shown = mask_url(value) if name == "database_url" and isinstance(value, str) else value
    return BadSettings([f"bad setting {name} = {shown!r}: {reason}"])


def mask_url(value: str) -> str:
    """A database URL without its password, fit to print."""
    try:
        url = sa.engine.make_url(value)
    except sa.exc.ArgumentError:
        return value
    return url.render_as_string(hide_password=True) if url.password else value


def _read_file(config_file: Path) -> dict[str, Any]:
    try:
        with open(config_file, "rb") as fh:
            document = tomllib.load(fh)
    except OSError as exc:
        raise bad_setting("config", str(config_file), f"cannot read it: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise bad_setting("config", str(config_file), f"not valid TOML: {exc}") from None
    values = dict(document.get("stackvol", document))
    if "stackvol" in document and "backends" in document:  # [backends.X] beside [stackvol]
        values.setdefault("backends", document["backends"])
    return values


def _explain(error: Mapping[str, Any]) -> str:
    name = str(error["loc"][0]) if error["loc"] else "settings"
    if error["type"] == "extra_forbidden":
        return f"unknown setting {name} (the settings are listed in docs/configuration.md)"
    if error["type"] == "value_error":
        reason = str(error["ctx"]["error"])
    else:
        reason = f"must be {allowed(name)}"
    return bad_setting(name, error["input"], reason).lines[0]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the layered sources; ``overrides`` (CLI flags, None ignored) win.
    Raises ``BadSettings`` naming every refused setting."""
    if config_file is None and os.environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(os.environ[ENV_PREFIX + "CONFIG"])
    token = _file_values.set(_read_file(config_file) if config_file is not None else {})
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise BadSettings([_explain(e) for e in exc.errors()]) from None
    finally:
        _file_values.reset(token)


# --- the reference ------------------------------------------------------------------------------


def allowed(name: str) -> str:
    """What a setting takes, in words (for refusals and the reference)."""
    info = Settings.model_fields[name]
    kind = info.annotation
    if isinstance(info.json_schema_extra, dict) and "allowed" in info.json_schema_extra:
        return str(info.json_schema_extra["allowed"])
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(v) for v in get_args(kind))
    words: dict[Any, str] = {bool: "true or false", int: "an integer", float: "a number",
                             Path: "a path", str: "a string"}
    if get_origin(kind) is list:
        return "a list of names (TOML/JSON array, or a,b)"
    if get_origin(kind) is dict:
        return "tables of options"
    text = words.get(kind, str(kind))
    bounds = {type(m): m for m in info.metadata}
    low = bounds.get(annotated_types.Ge) or bounds.get(annotated_types.Gt)
    high = bounds.get(annotated_types.Le)
    if low and high:
        return f"{text} from {low.ge} to {high.le}"
    if isinstance(low, annotated_types.Gt):
        return f"{text} > {low.gt:g}"
    if low:
        return f"{text} >= {low.ge}"
    if bounds.get(annotated_types.MinLen) and kind is str:
        return "a non-empty string"
    return text


def _default(info: FieldInfo) -> str:
    value = info.default
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value}`"
    if isinstance(value, list | dict):
        return json.dumps(value) if value else "(none)"
    return f"`{value}`" if value != "" else "(empty)"


def reference(flags: Mapping[str, str] | None = None) -> str:
    """docs/configuration.md: every setting with its type, default, names and meaning."""
    flags = flags or {}
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `stackvol config docs > docs/configuration.md` from",
        "     stackvol/config.py; a test fails when this file is stale. -->",
        "",
        "Each setting is read from, in rising precedence: its default; a TOML file "
        "(`--config FILE` or `STACKVOL_CONFIG`, the settings in a `[stackvol]` table, storage "
        "backends in `[backends.NAME]` tables); the environment variable "
        "`STACKVOL_<NAME>`; the command-line flag, where there is one. A bad value stops "
        "`stackvol` at start with exit code 2 and one line naming the setting, before "
        "anything is written.",
        "",
        "```toml",
        "[stackvol]",
        'port = 8774',
        'data_dir = "/var/lib/stackvol"',
        'quota_volumes = 50',
        "```",
        "",
        "| setting | type | default | environment | flag | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for name, info in Settings.model_fields.items():
        flag = f"`{flags[name]}`" if name in flags else ""
        meaning = (info.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | {allowed(name)} | {_default(info)} | "
                     f"`{ENV_PREFIX}{name.upper()}` | {flag} | {meaning} |")
    return "\n".join(lines) + "\n"


__all__ = ["BadSettings", "Settings", "load_settings", "reference"]
