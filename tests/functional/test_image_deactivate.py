"""Glance's deactivate/reactivate on the real server: the owner's members (or admins) switch an
image off; its bytes stay, downloads are for admins only, and Cinder refuses volumes made from
it (400, as Cinder's "Image ... is not active."), Nova servers booted from it too; reactivated,
it serves again. openstackclient's ``image set --deactivate/--activate`` call the same."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.clients import cinder, image_client
from tests.support.identity_helpers import Account, make_account
from tests.support.images import upload
from tests.support.openstack_clients import osc
from tests.support.server import StackvolProcess
from tests.support.volumes import wait_volume

DATA = os.urandom(1024 * 1024)


@pytest.fixture(scope="module")
def member(server: StackvolProcess, keystone: httpx.Client) -> Account:
    return make_account(server, keystone, "member")


@pytest.fixture(scope="module")
def glance_demo(server: StackvolProcess) -> Iterator[httpx.Client]:
    token, _ = server.token("demo")
    with image_client(server, token) as client:
        yield client


def raw_image(client: httpx.Client, **attrs: Any) -> str:
    resp = client.post("/v2/images", json={"name": f"deact-{uuid.uuid4().hex[:8]}",
                                           "disk_format": "raw", "container_format": "bare",
                                           **attrs})
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    assert upload(client, image_id, DATA).status_code == 204
    return image_id


def action(client: httpx.Client, image_id: str, name: str) -> httpx.Response:
    return client.post(f"/v2/images/{image_id}/actions/{name}")


def status(client: httpx.Client, image_id: str) -> str:
    return client.get(f"/v2/images/{image_id}").json()["status"]


def test_deactivated_image_serves_no_one_but_admins(server: StackvolProcess,
                                                     glance: httpx.Client,
                                                     glance_demo: httpx.Client) -> None:
    image_id = raw_image(glance_demo, visibility="private")
    assert action(glance_demo, image_id, "deactivate").status_code == 204
    assert status(glance_demo, image_id) == "deactivated"
    assert action(glance_demo, image_id, "deactivate").status_code == 204  # already: no change
    refused = glance_demo.get(f"/v2/images/{image_id}/file")
    assert refused.status_code == 403 and "deactivated" in refused.text
    assert glance.get(f"/v2/images/{image_id}/file").content == DATA
    # Cinder (as Tempest's test_create_volume_from_deactivated_image) and Nova refuse it.
    with cinder(server, "demo") as vdemo:
        resp = vdemo.post("/volumes", json={"volume": {"size": 1, "imageRef": image_id}})
        assert resp.status_code == 400, resp.text
        assert resp.json()["badRequest"]["message"] == \
            f"Invalid input received: Image {image_id} is not active."
        token, _ = server.token("demo")
        boot = httpx.post(f"{server.url}/v2.1/servers", headers={"X-Auth-Token": token},
                          json={"server": {"name": "from-deactivated", "imageRef": image_id,
                                           "flavorRef": "1"}}, timeout=30)
        assert boot.status_code == 400 and "is not active" in boot.text
        # Reactivated: served again.
        assert action(glance_demo, image_id, "reactivate").status_code == 204
        assert status(glance_demo, image_id) == "active"
        assert action(glance_demo, image_id, "reactivate").status_code == 204
        assert glance_demo.get(f"/v2/images/{image_id}/file").content == DATA
        resp = vdemo.post("/volumes", json={"volume": {"size": 1, "imageRef": image_id}})
        assert resp.status_code == 202, resp.text
        volume = wait_volume(vdemo, resp.json()["volume"]["id"], "available")
        assert volume["bootable"] == "true"
        assert vdemo.delete(f"/volumes/{volume['id']}").status_code == 202
    assert glance_demo.delete(f"/v2/images/{image_id}").status_code == 204


def test_who_may_deactivate(server: StackvolProcess, glance: httpx.Client,
                            glance_demo: httpx.Client, member: Account) -> None:
    public = raw_image(glance, visibility="public")
    with image_client(server, member.token()) as other:
        assert action(other, public, "deactivate").status_code == 403  # not its owner's
        assert action(glance_demo, public, "deactivate").status_code == 403
        private = raw_image(glance_demo, visibility="private")
        assert action(other, private, "deactivate").status_code == 404  # not even visible
    assert action(glance, private, "deactivate").status_code == 204
    assert action(glance_demo, private, "reactivate").status_code == 204
    assert action(glance_demo, str(uuid.uuid4()), "deactivate").status_code == 404
    # Only an active image can be deactivated (and only a deactivated one reactivated).
    resp = glance_demo.post("/v2/images", json={"name": "queued", "disk_format": "raw",
                                                "container_format": "bare"})
    queued = resp.json()["id"]
    for name in ("deactivate", "reactivate"):
        refused = action(glance_demo, queued, name)
        assert refused.status_code == 403 and "status 'queued'" in refused.text
    assert glance_demo.get(f"/v2/images/{queued}").json()["status"] == "queued"
    for image_id in (public, private, queued):
        assert glance.delete(f"/v2/images/{image_id}").status_code == 204


def test_openstackclient_deactivate(server: StackvolProcess, glance_demo: httpx.Client) -> None:
    image_id = raw_image(glance_demo, visibility="private")
    osc(server, "image", "set", "--deactivate", image_id, user="demo")
    assert status(glance_demo, image_id) == "deactivated"
    osc(server, "image", "set", "--activate", image_id, user="demo")
    assert status(glance_demo, image_id) == "active"
    assert glance_demo.delete(f"/v2/images/{image_id}").status_code == 204
