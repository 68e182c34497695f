"""Settings: defaults, then a TOML file, then STACKVOL_* environment variables, then CLI flags."""

from __future__ import annotations

import dataclasses
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
    storage_backend: str = "file"
    volume_format: str = "raw"  # raw (sparse) or qcow2
    compute_driver: str = "simulated"
    availability_zone: str = "nova"
    max_limit: int = 1000
    # Block storage quotas every project gets unless an admin sets its own (-1: unlimited;
    # Cinder ships 10 volumes, 10 snapshots, 1000 GiB).
    quota_volumes: int = -1
    quota_snapshots: int = -1
    quota_gigabytes: int = -1
    quota_per_volume_gigabytes: int = -1
    worker_name: str = ""  # empty: derived from the host name
    worker_concurrency: int = 8
    task_lease_seconds: int = 60
    task_poll_seconds: float = 1.0
    sqlite_synchronous: str = "NORMAL"  # NORMAL survives process crashes; FULL survives power loss
    log_level: str = "INFO"
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
