"""VolumeService called directly, as the faces call it, on the services a process builds
(tests/support/local_cloud.py: temporary SQLite, the real worker, the file storage backend with
real files): create, get, list and delete through the worker; quota and policy refusals."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Forbidden, NotFound, OverQuota
from stackvol.services.common.records import Page, Volume
from stackvol.services.volumes.api import VolumeService, VolumeSpec
from tests.support.images import qemu_img
from tests.support.local_cloud import LocalCloud, local_cloud, member_of

GiB = 1024**3


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with local_cloud(tmp_path_factory.mktemp("services") / "data") as started:
        yield started


def new_project() -> RequestContext:
    """A member of a project no other test uses (the module's cloud is shared)."""
    return member_of(f"project-{uuid.uuid4().hex[:8]}")


def created(cloud: LocalCloud, ctx: RequestContext, size: int = 1) -> Volume:
    """A volume the worker has finished creating."""
    volumes = cloud.services.volumes
    volume = cloud.run(volumes.create(ctx, VolumeSpec(size=size)))
    cloud.settle()
    return cloud.run(volumes.get(ctx, volume.id))


def listed(cloud: LocalCloud, ctx: RequestContext, all_projects: bool = False) -> list[str]:
    return [v.id for v in cloud.run(cloud.services.volumes.list(ctx, Page(), all_projects))]


def refused(action: str) -> str:
    """The message of a policy refusal, as a pattern (Nova's words)."""
    return "^" + re.escape(f"Policy doesn't allow {action} to be performed.") + "$"


def volume_files(data_dir: Path, volume_id: str) -> list[Path]:
    return sorted((data_dir / "volumes").glob(f"volume-{volume_id}.*"))


@pytest.mark.parametrize("volume_format", ["raw", "qcow2"])
def test_create_get_list_delete_through_the_worker(tmp_path: Path, volume_format: str) -> None:
    data_dir = tmp_path / "data"
    with local_cloud(data_dir, volume_format=volume_format) as cloud:
        volumes: VolumeService = cloud.services.volumes
        ctx = new_project()
        spec = VolumeSpec(size=1, display_name="unit", metadata={"tier": "fast"})
        volume = cloud.run(volumes.create(ctx, spec))
        assert (volume.status, volume.size, volume.project_id) == ("creating", 1, ctx.project_id)
        cloud.settle()

        shown = cloud.run(volumes.get(ctx, volume.id))
        assert (shown.status, shown.display_name, shown.attachments) == ("available", "unit", [])
        (path,) = volume_files(data_dir, volume.id)
        assert path.suffix == f".{volume_format}"
        assert virtual_size(path, volume_format) == GiB
        assert listed(cloud, ctx) == [volume.id]

        cloud.run(volumes.delete(ctx, volume.id))
        assert cloud.run(volumes.get(ctx, volume.id)).status == "deleting"
        cloud.settle()
        with pytest.raises(NotFound, match=re.escape(f"Volume {volume.id} could not be found.")):
            cloud.run(volumes.get(ctx, volume.id))
        assert volume_files(data_dir, volume.id) == []
        assert listed(cloud, ctx) == []


def virtual_size(path: Path, volume_format: str) -> int:
    """The size a guest would see: the file's for raw (sparse), qemu-img's for qcow2."""
    if volume_format == "raw":
        assert path.stat().st_blocks * 512 < GiB  # sparse: nothing written, nothing allocated
        return path.stat().st_size
    return json.loads(qemu_img("info", "-U", "--output=json", str(path)))["virtual-size"]


def test_another_project_cannot_see_or_delete_the_volume(cloud: LocalCloud) -> None:
    volumes = cloud.services.volumes
    owner, other = new_project(), new_project()
    volume = created(cloud, owner)
    for attempt in (volumes.get(other, volume.id), volumes.delete(other, volume.id)):
        with pytest.raises(NotFound):  # as if it did not exist: no 403 that would confirm it
            cloud.run(attempt)
    assert volume.id not in listed(cloud, other)
    assert volume.id not in listed(cloud, other, all_projects=True)  # a member cannot widen it
    admin = RequestContext(user_id="admin", project_id="admin-project",
                           roles=frozenset({"admin", "member", "reader"}))
    assert cloud.run(volumes.get(admin, volume.id)).project_id == owner.project_id
    assert volume.id in listed(cloud, admin, all_projects=True)
    assert cloud.run(volumes.get(owner, volume.id)).status == "available"  # untouched


def test_a_reader_may_look_but_not_create_or_delete(cloud: LocalCloud) -> None:
    volumes = cloud.services.volumes
    member = new_project()
    reader = member_of(member.project_id, "reader")
    volume = created(cloud, member)
    assert cloud.run(volumes.get(reader, volume.id)).id == volume.id
    with pytest.raises(Forbidden, match=refused("volume:create")):
        cloud.run(volumes.create(reader, VolumeSpec(size=1)))
    with pytest.raises(Forbidden, match=refused("volume:delete")):
        cloud.run(volumes.delete(reader, volume.id))
    assert listed(cloud, member) == [volume.id]


def test_the_quota_refuses_a_volume_over_the_limit(tmp_path: Path) -> None:
    with local_cloud(tmp_path / "data", quota_volumes=2, quota_gigabytes=3) as cloud:
        volumes = cloud.services.volumes
        ctx = new_project()
        first = created(cloud, ctx, size=2)
        with pytest.raises(OverQuota, match=re.escape(
                "exceeds allowed gigabytes quota. Requested 2G, quota is 3G and 2G has been "
                "consumed.")):
            cloud.run(volumes.create(ctx, VolumeSpec(size=2)))
        second = created(cloud, ctx, size=1)
        with pytest.raises(OverQuota, match=r"Maximum number of volumes allowed \(2\) exceeded"):
            cloud.run(volumes.create(ctx, VolumeSpec(size=1)))
        assert set(listed(cloud, ctx)) == {first.id, second.id}  # nothing was recorded
        assert len(list((tmp_path / "data" / "volumes").iterdir())) == 2  # nor made
        # Quotas are per project: another one starts from nothing.
        assert created(cloud, new_project(), size=2).status == "available"
