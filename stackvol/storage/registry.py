"""Storage backends by name (Cinder's ``enabled_backends``): the driver serving each, built from
its options the first time a process needs it.

Settings (``config.Settings``): ``enabled_backends`` (names), ``default_backend`` and, per
backend, an optional ``[backends.NAME]`` table: ``driver`` (``file`` unless said),
``volume_backend_name`` (what volume types select it by; default NAME) and the driver's own
options, handed to ``DriverClass.from_options(name, options)``. A backend with no table is a
file backend. File backends keep volumes in ``volumes_dir`` and snapshots in ``snapshots_dir``
(default ``<volumes_dir>/snapshots``); ``volumes_dir`` defaults to ``<data_dir>/backends/NAME``,
except for the backend named ``file``, which keeps ``<data_dir>/volumes`` and
``<data_dir>/snapshots`` (where a single-backend data directory always kept them).

A volume lives on one backend for life (``volumes.backend``); its snapshots, and volumes made
from them, live there too. Drivers are imported only when a backend uses them, so a missing
optional module fails only the configurations that name it.
"""

from __future__ import annotations

import importlib
import re
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackvol.config import Settings
from stackvol.storage.base import StorageDriver, StorageError

# Driver name -> "module:class", imported on first use.
DRIVERS: dict[str, str] = {
    "file": "stackvol.storage.file:FileDriver",
    "rbd": "stackvol.storage.rbd:RbdDriver",
}
# Cinder's ``storage_protocol`` of each driver's pools.
PROTOCOLS = {"file": "file", "rbd": "ceph"}
# The extra spec a volume type selects backends by (also accepted scoped, as Cinder does).
BACKEND_NAME_SPECS = ("volume_backend_name", "capabilities:volume_backend_name")
# Capabilities every backend reports as Cinder's drivers do (key, title, description).
_STANDARD_PROPERTIES = (
    ("thin_provisioning", "Thin Provisioning", "Sets thin provisioning."),
    ("compression", "Compression", "Enables compression."),
    ("qos", "QoS", "Enables QoS."),
    ("replication_enabled", "Replication", "Enables replication."),
)
# Keys of a backend's table that are ours, not its driver's.
_OWN_KEYS = ("driver", "volume_backend_name")
# Names appear in task targets and in Cinder's ``host@backend#pool``.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class UnknownBackend(StorageError):
    """A volume's backend is not configured in this process."""


@dataclass(frozen=True, slots=True)
class BackendConfig:
    name: str
    driver: str
    volume_backend_name: str
    options: Mapping[str, Any]  # what the driver's ``from_options`` receives


def backend_configs(settings: Settings) -> list[BackendConfig]:
    """The enabled backends as configured, checked; ``ValueError`` says what is wrong."""
    names = settings.enabled_backends
    if not names:
        raise ValueError("enabled_backends is empty: enable at least one storage backend")
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"storage backend name {name!r} is invalid (letters, digits, "
                             f"'_', '.', '-'; at most 64)")
    if len(set(names)) != len(names):
        raise ValueError(f"enabled_backends names a backend twice: {', '.join(names)}")
    for setting, value in (("default_backend", settings.default_backend),
                           ("backend (--backend)", settings.storage_backend)):
        if value and value not in names:
            raise ValueError(f"{setting} {value!r} is not one of enabled_backends "
                             f"({', '.join(names)})")
    return [_config(name, settings) for name in names]


def _config(name: str, settings: Settings) -> BackendConfig:
    table = settings.backends.get(name) or {}
    if not isinstance(table, Mapping):
        raise ValueError(f"[backends.{name}] must be a table")
    driver = str(table.get("driver", "file"))
    if driver not in DRIVERS:
        raise ValueError(f"storage backend {name!r}: unknown driver {driver!r} (one of "
                         f"{', '.join(DRIVERS)})")
    options = {k: v for k, v in table.items() if k not in _OWN_KEYS}
    if driver == "file":
        options = _file_options(name, options, settings)
    return BackendConfig(name, driver, str(table.get("volume_backend_name") or name), options)


def _file_options(name: str, options: dict[str, Any], settings: Settings) -> dict[str, Any]:
    options.setdefault("volume_format", settings.volume_format)
    if name == "file" and "volumes_dir" not in options:  # a single-backend data dir's layout
        options["volumes_dir"] = str(settings.data_dir / "volumes")
        options.setdefault("snapshots_dir", str(settings.data_dir / "snapshots"))
    options.setdefault("volumes_dir", str(settings.data_dir / "backends" / name))
    options.setdefault("snapshots_dir", str(Path(options["volumes_dir"]) / "snapshots"))
    # Who may read the files by path, and where exports for other compute hosts listen.
    options.setdefault("host", settings.compute_host or socket.gethostname())
    options.setdefault("shared_hosts", list(settings.shared_storage_hosts))
    options.setdefault("export_address", settings.export_address)
    options.setdefault("exports_dir", str(settings.data_dir / "exports" / name))
    return options


def wanted_backend_name(extra_specs: Mapping[str, str]) -> str | None:
    """The ``volume_backend_name`` a volume type's extra specs ask for, if any."""
    return next((str(extra_specs[k]) for k in BACKEND_NAME_SPECS if k in extra_specs), None)


def driver_class(driver: str) -> type[StorageDriver]:
    module, _, cls = DRIVERS[driver].partition(":")
    try:
        found: type[StorageDriver] = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise StorageError(f"storage driver {driver!r} is not available: {exc}") from exc
    return found


class Backends:
    """Every enabled backend by name; drivers are built on first use and kept."""

    def __init__(self, configs: Iterable[BackendConfig], default: str) -> None:
        self.configs = {c.name: c for c in configs}
        if default not in self.configs:
            raise ValueError(f"default backend {default!r} is not enabled")
        self.default = default
        self._drivers: dict[str, StorageDriver] = {}
        self._lock = threading.Lock()  # drivers are first needed from worker threads too

    @classmethod
    def from_settings(cls, settings: Settings) -> Backends:
        return cls(backend_configs(settings), settings.default_storage_backend)

    @property
    def names(self) -> list[str]:
        return list(self.configs)

    def config(self, name: str) -> BackendConfig:
        try:
            return self.configs[name]
        except KeyError:
            enabled = ", ".join(self.configs)
            raise UnknownBackend(f"storage backend {name!r} is not enabled here (enabled: "
                                 f"{enabled})") from None

    def get(self, name: str) -> StorageDriver:
        """The driver of backend ``name``, built now if this process has not needed it yet."""
        found = self._drivers.get(name)
        if found is not None:
            return found
        config = self.config(name)
        with self._lock:
            if name not in self._drivers:
                self._drivers[name] = driver_class(config.driver).from_options(
                    name, dict(config.options))
            return self._drivers[name]

    def build(self, names: Iterable[str]) -> None:
        """Build these backends' drivers now, so a broken one stops the process at start."""
        for name in names:
            self.get(name)

    def for_type(self, extra_specs: Mapping[str, str]) -> list[str]:
        """The backends a volume type may place volumes on, as Cinder's scheduler filters
        them: the default one for a type that names none, else those whose
        ``volume_backend_name`` it names (none: no valid backend)."""
        wanted = wanted_backend_name(extra_specs)
        if wanted is None:
            return [self.default]
        return [c.name for c in self.configs.values() if c.volume_backend_name == wanted]

    def pool(self, name: str) -> str:
        """The pool of a backend in Cinder's ``host@backend#pool`` (its volume_backend_name)."""
        config = self.configs.get(name)
        return config.volume_backend_name if config else name

    def capabilities(self, name: str) -> dict[str, Any]:
        """Blocking: the backend's pool as Cinder's scheduler reports it (capacity measured
        from this process, ``unknown`` where its driver cannot be built or cannot tell)."""
        config = self.config(name)
        try:
            capacity = self.get(name).capacity_gb()
        except (StorageError, ValueError, OSError):
            capacity = None
        total, free = capacity or ("unknown", "unknown")
        return {**self._identity(config), "total_capacity_gb": total,
                "free_capacity_gb": free, "reserved_percentage": 0,
                "thin_provisioning_support": True, "thick_provisioning_support": False,
                "multiattach": False, "QoS_support": False}

    def described(self, name: str) -> dict[str, Any]:
        """Cinder's get-capabilities of a backend: who it is, and the properties a volume
        type's extra specs may ask of it (the standard ones Cinder's drivers report)."""
        config = self.config(name)
        return {**self._identity(config), "display_name": None, "description": None,
                "visibility": None, "replication_targets": [],
                "properties": {key: {"title": title, "description": description,
                                     "type": "boolean"}
                               for key, title, description in _STANDARD_PROPERTIES}}

    @staticmethod
    def _identity(config: BackendConfig) -> dict[str, Any]:
        # The same in get_pools and get-capabilities (clients compare the two).
        return {"volume_backend_name": config.volume_backend_name,
                "pool_name": config.volume_backend_name,
                "storage_protocol": PROTOCOLS.get(config.driver, config.driver),
                "vendor_name": "stackvol", "driver_version": "1.0"}

    def connection_info(self, name: str, volume_id: str, location: str) -> dict[str, Any]:
        """How a hypervisor reaches a volume of backend ``name`` (Cinder's connection_info)."""
        return self.get(name).connection_info(volume_id, location).as_dict()
