"""SnapshotService and VolumeAttachService called directly, as the faces call them, on the
services a process builds (tests/support/local_cloud.py: temporary SQLite, the real worker,
the file storage backend), and the connection calls' queries on the same database: the API
side commits, the worker side (each package's manager.py) ends the work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from stackvol.services.attachments import queries as attachment_queries
from stackvol.services.attachments.queries import ABANDONED, DONE, FAILED, WAITING
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, NotFound
from stackvol.services.common.records import Page, Volume
from stackvol.services.volumes.api import VolumeSpec
from tests.support.local_cloud import LocalCloud, local_cloud, member_of


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with local_cloud(tmp_path_factory.mktemp("snapshots") / "data") as started:
        yield started


@pytest.fixture
def ctx() -> RequestContext:
    """A member of a project no other test uses (the module's cloud is shared)."""
    return member_of(f"project-{uuid.uuid4().hex[:8]}")


def available_volume(cloud: LocalCloud, ctx: RequestContext) -> Volume:
    volume = cloud.run(cloud.services.volumes.create(ctx, VolumeSpec(size=1)))
    cloud.settle()
    return cloud.run(cloud.services.volumes.get(ctx, volume.id))


def test_a_snapshot_is_made_and_removed_by_the_worker(cloud: LocalCloud,
                                                      ctx: RequestContext) -> None:
    snapshots = cloud.services.snapshots
    volume = available_volume(cloud, ctx)
    snapshot = cloud.run(snapshots.create(ctx, volume.id, display_name="s1"))
    assert snapshot.status == "creating"
    cloud.settle()
    made = cloud.run(snapshots.get(ctx, snapshot.id))
    assert (made.status, made.size, made.display_name) == ("available", 1, "s1")
    assert made.provider_location
    assert [s.id for s in cloud.run(snapshots.list(ctx, Page()))] == [snapshot.id]

    cloud.run(snapshots.delete(ctx, snapshot.id))
    cloud.settle()
    with pytest.raises(NotFound):
        cloud.run(snapshots.get(ctx, snapshot.id))


def test_a_snapshot_of_an_unknown_or_busy_volume_is_refused(cloud: LocalCloud,
                                                            ctx: RequestContext) -> None:
    snapshots = cloud.services.snapshots
    with pytest.raises(NotFound, match="could not be found"):
        cloud.run(snapshots.create(ctx, str(uuid.uuid4())))
    volume = available_volume(cloud, ctx)
    cloud.run(cloud.services.volume_attach.action(ctx, volume.id, "reserve"))
    with pytest.raises(Invalid, match="status must be available, but current status is: "
                                      "attaching"):
        cloud.run(snapshots.create(ctx, volume.id))


def test_cinder_attachment_reserved_completed_and_deleted(cloud: LocalCloud,
                                                          ctx: RequestContext) -> None:
    attach = cloud.services.volume_attach
    volume = available_volume(cloud, ctx)
    instance = str(uuid.uuid4())  # no server of ours: a consumer Cinder allows
    attachment = cloud.run(attach.create(ctx, volume.id, instance, mode="ro"))
    assert attachment.status == "reserved"
    assert status_of(cloud, ctx, volume.id) == "reserved"

    cloud.run(attach.complete(ctx, attachment.id))
    assert cloud.run(attach.get(ctx, attachment.id)).status == "attached"
    assert status_of(cloud, ctx, volume.id) == "in-use"

    cloud.run(attach.delete(ctx, attachment.id))
    assert status_of(cloud, ctx, volume.id) == "available"
    with pytest.raises(NotFound):
        cloud.run(attach.get(ctx, attachment.id))


def test_connection_call_rows_answer_once(cloud: LocalCloud) -> None:
    volume_id, host = str(uuid.uuid4()), f"host-{uuid.uuid4().hex[:6]}"

    def calls(conn: Connection) -> dict[str, Any]:
        answered = attachment_queries.insert_call(conn, "initialize", volume_id, host, None)
        given_up = attachment_queries.insert_call(conn, "initialize", volume_id, host, None)
        info = {"data": {"exporter": "storage-1"}}
        first = attachment_queries.answer_call(conn, answered, WAITING, DONE, info)
        again = attachment_queries.answer_call(conn, answered, WAITING, FAILED, None)
        attachment_queries.answer_call(conn, given_up, WAITING, ABANDONED, None)
        attachment_queries.forget_abandoned(conn, given_up)
        seen = {"first": first, "again": again,
                "answered": attachment_queries.call_state(conn, answered),
                "given_up": attachment_queries.call_state(conn, given_up),
                "export": attachment_queries.last_export(conn, volume_id, host)}
        attachment_queries.forget_exports(conn, volume_id, host)
        seen["after"] = attachment_queries.last_export(conn, volume_id, host)
        return seen

    seen = cloud.services.db.run_sync(calls)
    assert seen == {"first": True, "again": False, "answered": DONE, "given_up": ABANDONED,
                    "export": {"data": {"exporter": "storage-1"}}, "after": None}


def status_of(cloud: LocalCloud, ctx: RequestContext, volume_id: str) -> str:
    return cloud.run(cloud.services.volumes.get(ctx, volume_id)).status
