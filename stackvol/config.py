"""Settings: defaults, then a TOML file, then STACKVOL_* environment variables, then CLI flags."""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "STACKVOL_"


@dataclass
class Settings:
    """Every tunable of a stackvol process, with the embedded defaults that need no setup."""

    host: str = "127.0.0.1"
    port: int = 8774
    data_dir: Path = field(default_factory=lambda: Path("./data"))
    database_url: str = ""  # empty: SQLite in WAL mode under data_dir
    # The URL clients reach us at; empty means "derive it from the request's Host header".
    public_url: str = ""
    region: str = "RegionOne"
    noauth: bool = False
    token_ttl_seconds: int = 3600
    password_hash_rounds: int = 12
    # Storage backends, as Cinder's ``enabled_backends``: each may have a ``[backends.NAME]``
    # table (``driver`` file or rbd, ``volume_backend_name``, the driver's options; see
    # storage/registry). A backend without a table is a file backend; the default "file" one
    # keeps its volumes in <data_dir>/volumes. Volumes whose type names no backend go to
    # ``default_backend`` (empty: the first enabled one).
    enabled_backends: list[str] = field(default_factory=lambda: ["file"])
    default_backend: str = ""
    backends: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The backend a ``--role volume`` process serves (empty: the default backend).
    storage_backend: str = ""
    volume_format: str = "raw"  # raw (sparse) or qcow2: file backends that set none
    # auto: libvirt when a libvirt daemon answers at libvirt_uri, else simulated.
    compute_driver: str = "auto"  # auto, libvirt or simulated
    libvirt_uri: str = "qemu:///system"
    libvirt_virt_type: str = "qemu"  # qemu (TCG) or kvm, where KVM really works
    libvirt_max_memory_mb: int = 0  # cap on a guest's memory whatever its flavor (0: none)
    # Detach asks the guest to release the disk up to libvirt_detach_attempts times, giving
    # it libvirt_detach_timeout seconds each time (a booting or busy guest may miss a request;
    # Nova's [libvirt] device_detach_attempts and device_detach_timeout). If it never lets go
    # the volume stays in-use.
    libvirt_detach_attempts: int = 8
    libvirt_detach_timeout: float = 20.0
    guest_image_dir: str = ""  # the built-in guest's cache; empty: <data_dir>/guest-image
    image_dir: str = ""  # the Image service's store; empty: <data_dir>/images
    availability_zone: str = "nova"
    max_limit: int = 1000
    # Block storage quotas every project gets unless an admin sets its own (-1: unlimited;
    # Cinder ships 10 volumes, 10 snapshots, 1000 GiB).
    quota_volumes: int = -1
    quota_snapshots: int = -1
    quota_gigabytes: int = -1
    quota_per_volume_gigabytes: int = -1
    # Compute quotas, the same way (Nova ships 10 instances, 20 cores, 51200 MiB of RAM).
    quota_instances: int = -1
    quota_cores: int = -1
    quota_ram: int = -1
    # What this process runs (services/process_roles): all, api, volume (one storage backend:
    # storage_backend) or compute (one compute host: compute_host).
    role: str = "all"
    compute_host: str = ""  # empty: this machine's host name
    # File backends: compute hosts that see this host's volume files at the same paths (a
    # shared mount; "*": all). Any other compute host gets an NBD export, listening here.
    shared_storage_hosts: list[str] = field(default_factory=list)
    export_address: str = "127.0.0.1"
    heartbeat_seconds: float = 10.0  # how often a process records that it is alive
    service_down_seconds: float = 60.0  # a process silent this long is "down" (Cinder's default)
    worker_name: str = ""  # empty: derived from the host name, port and role
    worker_concurrency: int = 8
    task_lease_seconds: int = 60
    task_poll_seconds: float = 1.0
    # How long an API process waits for a backend's worker to answer a connection call
    # (os-initialize_connection, attachments with a connector): Cinder's rpc_response_timeout.
    rpc_response_timeout: float = 60.0
    sqlite_synchronous: str = "NORMAL"  # NORMAL survives process crashes; FULL survives power loss
    log_level: str = "INFO"
    # text (oslo.log's line), json (one object a line) or auto: text on a terminal, else json.
    log_format: str = "auto"
    access_log: bool = False
    # Policy overrides: a YAML or JSON file of rule name -> rule (defaults in services/policy).
    policy_file: str = ""
    # Test hook: the worker parks at this named step (see services/tasks.PauseHook).
    pause_at: str = ""

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


def _coerce(value: Any, target: Any) -> Any:
    """Convert a string from the environment or a TOML value to the field's type."""
    if isinstance(target, bool):
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(target, int):
        return int(value)
    if isinstance(target, float):
        return float(value)
    if isinstance(target, Path):
        return Path(value)
    if isinstance(target, list):  # a TOML array, a JSON array or "a,b" from the environment
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("[") else [
                part.strip() for part in value.split(",") if part.strip()]
        return [str(item) for item in value]
    if isinstance(target, dict):  # a TOML table, or JSON from the environment
        value = json.loads(value) if isinstance(value, str) else value
        if not isinstance(value, dict):
            raise ValueError(f"expected a table, not {value!r}")
        return value
    return str(value)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the layered sources; ``overrides`` (CLI flags, None ignored) win."""
    settings = Settings()
    values: dict[str, Any] = {}
    if config_file is None and os.environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(os.environ[ENV_PREFIX + "CONFIG"])
    if config_file is not None:
        with open(config_file, "rb") as fh:
            document = tomllib.load(fh)
        values.update(document.get("stackvol", document))
        if "stackvol" in document and "backends" in document:  # [backends.X] beside [stackvol]
            values.setdefault("backends", document["backends"])
    for f in dataclasses.fields(Settings):
        env = os.environ.get(ENV_PREFIX + f.name.upper())
        if env is not None:
            values[f.name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    for name, value in values.items():
        setattr(settings, name, _coerce(value, getattr(settings, name)))
    return settings
