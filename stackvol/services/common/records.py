"""The service layer's records: what every face renders, built straight from database rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Row


@dataclass(slots=True)
class Attachment:
    id: str
    volume_id: str
    server_id: str
    device: str | None
    status: str
    tag: str | None
    delete_on_termination: bool
    boot_index: int | None
    bdm_uuid: str
    connection_info: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Attachment:
        return cls(**row._mapping)


@dataclass(slots=True)
class Volume:
    id: str
    project_id: str
    user_id: str
    status: str
    size: int
    display_name: str | None
    display_description: str | None
    availability_zone: str
    volume_type: str | None
    snapshot_id: str | None
    source_volid: str | None
    metadata: dict[str, str]
    bootable: bool
    backend: str
    provider_location: str | None
    error_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    image_metadata: dict[str, str] | None = None  # Cinder's volume_image_metadata
    admin_metadata: dict[str, str] | None = None  # Cinder's admin metadata (``readonly``)
    migration_status: str | None = None
    attachments: list[Attachment] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Row[Any]) -> Volume:
        return cls(**row._mapping)

    @property
    def readonly(self) -> bool:
        """Whether os-update_readonly_flag made it read-only (attached with access_mode ro)."""
        return (self.admin_metadata or {}).get("readonly") == "True"


@dataclass(slots=True)
class Snapshot:
    id: str
    project_id: str
    user_id: str
    volume_id: str
    status: str
    size: int
    display_name: str | None
    display_description: str | None
    metadata: dict[str, str]
    provider_location: str | None
    error_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    progress: str | None = None  # as os-update_snapshot_status set it, else by status

    @classmethod
    def from_row(cls, row: Row[Any]) -> Snapshot:
        return cls(**row._mapping)


@dataclass(frozen=True, slots=True)
class Page:
    """Offset/limit window of a list, as Nova's ``common.limited`` takes it."""

    offset: int = 0
    limit: int = 1000
