"""The volumes package split: its SQL (services/volumes/queries.py, type_queries.py) on a
temporary SQLite, and which side owns the task handlers (manager.py, uploads_manager.py)."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import tasks, volume_attachments
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import NotFound
from stackvol.services.common.records import Page
from stackvol.services.common.status import AttachmentStatus, VolumeStatus
from stackvol.services.volumes import queries as q
from stackvol.services.volumes import type_queries as tq
from stackvol.services.volumes.api import VolumeService
from stackvol.services.volumes.manager import VolumeManager
from stackvol.services.volumes.uploads import VolumeUploadService
from stackvol.services.volumes.uploads_manager import VolumeUploadManager
from stackvol.storage.images import ImageStore
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.worker import Handler, Worker
from stackvol.timeutils import utcnow


def add_volume(conn: Connection, project: str = "p1", status: str = VolumeStatus.AVAILABLE,
               **values: Any) -> str:
    """A row in any status (a fixture: only rows the services insert start as the table says)."""
    volume_id = str(uuid.uuid4())
    q.insert_volume(conn, {"id": volume_id, "project_id": project, "user_id": "u1",
                           "status": status, "size": 1,
                           "availability_zone": "nova", "metadata": {}, "backend": "file",
                           "volume_type": "__DEFAULT__", "created_at": utcnow(), **values})
    return volume_id


def member(project: str) -> RequestContext:
    return RequestContext(user_id="u1", project_id=project, roles=frozenset({"member"}))


# --- queries ------------------------------------------------------------------------------


def test_read_volume_is_scoped_and_carries_live_attachments_only(conn: Connection) -> None:
    volume_id = add_volume(conn, status=VolumeStatus.IN_USE)
    for status in (AttachmentStatus.ATTACHED, AttachmentStatus.RESERVED):
        conn.execute(volume_attachments.insert().values(
            id=str(uuid.uuid4()), volume_id=volume_id, server_id=str(uuid.uuid4()),
            status=status.value, bdm_uuid=str(uuid.uuid4()), created_at=utcnow()))
    volume = q.read_volume(conn, member("p1"), volume_id)
    assert [a.status for a in volume.attachments] == [AttachmentStatus.ATTACHED]
    assert q.attachment_count(conn, volume_id) == 2
    with pytest.raises(NotFound):
        q.read_volume(conn, member("p2"), volume_id)
    assert q.read_volume(conn, RequestContext.system(), volume_id).id == volume_id


def test_a_page_is_the_projects_newest_first(conn: Connection) -> None:
    older, newer = add_volume(conn), add_volume(conn)
    add_volume(conn, project="p2")
    assert [v.id for v in q.read_page(conn, "p1", Page())] == [newer, older]
    assert len(q.read_page(conn, None, Page())) == 3


def test_summary_and_usage_by_backend(conn: Connection) -> None:
    add_volume(conn, size=2, metadata={"k": "a"})
    add_volume(conn, size=3, metadata={"k": "b"}, backend="other")
    assert q.summary(conn, "p1") == (2, 5, {"k": ["a", "b"]})
    assert q.summary(conn, "nobody") == (0, 0, {})
    assert q.usage_by_backend(conn) == {"file": (1, 2), "other": (1, 3)}
    assert tq.volumes_by_backend(conn, ["file", "none"]) == {"file": 1}


def test_change_type_is_a_compare_and_swap(conn: Connection) -> None:
    volume = q.read_volume(conn, member("p1"), add_volume(conn))
    assert q.change_type(conn, volume, "gold")
    assert not q.change_type(conn, volume, "silver")  # its type is no longer the one read
    assert q.read_volume(conn, member("p1"), volume.id).volume_type == "gold"


def test_the_deleted_volume_goes_only_while_deleting(conn: Connection) -> None:
    volume_id = add_volume(conn)
    q.delete_deleted(conn, volume_id)
    assert q.location(conn, volume_id) is not None
    gone = add_volume(conn, status=VolumeStatus.DELETING)
    q.delete_deleted(conn, gone)
    assert q.location(conn, gone) is None


def test_cancel_pending_drops_a_waiting_create_only(conn: Connection) -> None:
    waiting, running = (add_volume(conn, status=VolumeStatus.CREATING) for _ in range(2))
    for volume_id in (waiting, running):
        taskq.enqueue(conn, TaskKind.VOLUME_CREATE, volume_id, target="file")
    conn.execute(tasks.update().where(tasks.c.resource_id == running)
                 .values(state=taskq.RUNNING))
    assert not q.cancel_pending(conn, TaskKind.VOLUME_CREATE, waiting)  # dropped: none left
    assert q.cancel_pending(conn, TaskKind.VOLUME_CREATE, running)  # a worker has it


def test_type_access_rows(conn: Connection) -> None:
    type_id = str(uuid.uuid4())
    tq.insert_type(conn, {"id": type_id, "name": "private", "description": None,
                          "is_public": False, "extra_specs": {}})
    assert tq.type_name_taken(conn, "private")
    assert not tq.has_access(conn, type_id, "p1")
    tq.grant_access(conn, type_id, "p1")
    assert tq.has_access(conn, type_id, "p1") and tq.shared_type_ids(conn, "p1") == {type_id}
    assert tq.access_projects(conn, type_id) == ["p1"]
    assert tq.revoke_access(conn, type_id, "p1") and not tq.revoke_access(conn, type_id, "p1")


# --- which side registers the handlers ----------------------------------------------------


class _Registry:
    """Stands in for the worker: records what is registered."""

    def __init__(self) -> None:
        self.handlers: dict[TaskKind, Handler] = {}
        self.name = "test"

    def register(self, kind: TaskKind, handler: Handler) -> None:
        self.handlers[kind] = handler


def test_the_worker_side_owns_the_volume_handlers() -> None:
    registry = _Registry()
    service = VolumeService(cast(Database, None), cast(Backends, None), cast(Worker, registry))
    assert isinstance(service.manager, VolumeManager)
    kinds = (TaskKind.VOLUME_CREATE, TaskKind.VOLUME_DELETE, TaskKind.VOLUME_EXTEND)
    assert set(registry.handlers) == set(kinds)
    for handler in registry.handlers.values():
        assert getattr(handler.run, "__self__", None) is service.manager

    async def prepare(image_id: str) -> None:
        return None

    service.prepare_image = prepare  # as the composition root sets it
    assert service.manager.prepare_image is prepare


def test_the_worker_side_owns_the_upload_handler() -> None:
    registry = _Registry()
    service = VolumeUploadService(cast(Database, None), cast(Backends, None),
                                  cast(Worker, registry), cast(ImageStore, None))
    assert isinstance(service.manager, VolumeUploadManager)
    handler = registry.handlers[TaskKind.VOLUME_UPLOAD_IMAGE]
    assert getattr(handler.run, "__self__", None) is service.manager
