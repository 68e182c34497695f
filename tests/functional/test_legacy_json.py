"""The legacy face in JSON: the Essex-era volume view, no microversions, tenants in the path,
version-less bookmarks, the version list, and the ``/v1.0`` sign-in."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.legacy import legacy_client
from tests.support.server import StackvolProcess
from tests.support.servers import new_server
from tests.support.volumes import new_volume, volume_status

ESSEX_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$")


@pytest.fixture(scope="module")
def v2(server: StackvolProcess) -> Iterator[httpx.Client]:
    with legacy_client(server, "demo", "v2") as client:
        yield client


def project_of(client: httpx.Client) -> str:
    return client.base_url.path.rstrip("/").rsplit("/", 1)[-1]


def test_volume_lifecycle_in_the_essex_format(v2: httpx.Client) -> None:
    resp = v2.post("/os-volumes", json={"volume": {"size": 1, "display_name": "j"}})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert "x-compute-request-id" in resp.headers
    assert "openstack-api-version" not in resp.headers
    assert "x-openstack-nova-api-version" not in resp.headers
    volume = resp.json()["volume"]
    assert ESSEX_TIME.match(volume["createdAt"]), volume["createdAt"]
    assert volume["attachments"] == [{}]
    assert resp.headers["location"] == f"{v2.base_url}os-volumes/{volume['id']}".replace(
        f"{project_of(v2)}os", f"{project_of(v2)}/os")
    shown = volume_status(v2, volume["id"], "available")
    assert shown["createdAt"] == volume["createdAt"]
    listed = v2.get("/os-volumes/detail").json()["volumes"]
    assert volume["id"] in {v["id"] for v in listed}
    assert v2.delete(f"/os-volumes/{volume['id']}").status_code == 202


def test_no_microversions_on_legacy_paths(v2: httpx.Client, server: StackvolProcess) -> None:
    """os-volumes is gone from 2.36 on v2.1; a microversion header changes nothing here."""
    headers = {"OpenStack-API-Version": "compute 2.50", "X-OpenStack-Nova-API-Version": "2.50"}
    assert v2.get("/os-volumes", headers=headers).status_code == 200
    with server.client("demo", microversion="2.50") as today:
        assert today.get("/os-volumes").status_code == 404


def test_tenant_in_the_path(v2: httpx.Client, server: StackvolProcess) -> None:
    demo_project = project_of(v2)
    with legacy_client(server, "admin", "v2") as admin:
        admin_project = project_of(admin)
        # A member naming another tenant: Nova's 400.
        resp = v2.get(f"{server.url}/v2/{admin_project}/os-volumes")
        assert resp.status_code == 400
        assert "Malformed request URL" in resp.json()["badRequest"]["message"]
        # An administrator may name any tenant, and then acts in it.
        resp = admin.post(f"{server.url}/v2/{demo_project}/os-volumes",
                          json={"volume": {"size": 1, "display_name": "for demo"}})
        assert resp.status_code == 200, resp.text
    assert v2.get(f"/os-volumes/{resp.json()['volume']['id']}").status_code == 200


def test_bad_bodies(v2: httpx.Client) -> None:
    assert v2.post("/os-volumes", content=b"{not json",
                   headers={"Content-Type": "application/json"}).status_code == 400
    assert v2.post("/os-volumes", content=b"",
                   headers={"Content-Type": "application/json"}).status_code == 400
    resp = v2.post("/os-volumes", json={"volume": {"size": "big"}})
    assert resp.status_code == 400 and "size" in resp.json()["badRequest"]["message"]


def test_unknown_properties_are_dropped_as_legacy_v2_did(v2: httpx.Client) -> None:
    resp = v2.post("/os-volumes", json={"volume": {"size": 1, "imageRef": "x"}, "extra": 1})
    assert resp.status_code == 200, resp.text


def test_server_and_flavor_links(v2: httpx.Client, server: StackvolProcess) -> None:
    project = project_of(v2)
    server_id = new_server(v2, "links")
    body = v2.get(f"/servers/{server_id}").json()["server"]
    links = {link["rel"]: link["href"] for link in body["links"]}
    assert links == {"self": f"{server.url}/v2/{project}/servers/{server_id}",
                     "bookmark": f"{server.url}/{project}/servers/{server_id}"}
    assert body["flavor"]["links"][0]["href"] == f"{server.url}/{project}/flavors/1"
    with server.client("demo") as today:
        expected = today.get(f"/servers/{server_id}").json()["server"]
    assert set(body) == set(expected)  # the v2.1 view at 2.1
    flavor = v2.get("/flavors/1").json()["flavor"]
    assert flavor["links"][1] == {"rel": "bookmark", "href": f"{server.url}/{project}/flavors/1"}
    assert {f["id"] for f in v2.get("/flavors").json()["flavors"]} >= {"1"}


def test_boot_from_volume_resource(v2: httpx.Client) -> None:
    volume_id = new_volume(v2)
    resp = v2.post("/os-volumes_boot", json={"server": {
        "name": "bfv", "flavorRef": "1",
        "block_device_mapping": [{"volume_id": volume_id, "device_name": "vda"}]}})
    assert resp.status_code == 202, resp.text
    created = resp.json()["server"]
    assert set(created) == {"id", "links", "adminPass"}
    assert resp.headers["location"] == created["links"][0]["href"]
    assert v2.get(f"/os-volumes_boot/{created['id']}").json()["server"]["id"] == created["id"]


def test_root_lists_the_legacy_versions(server: StackvolProcess) -> None:
    for root in ("/", "/compute/"):
        found = {v["id"]: v["status"] for v in httpx.get(server.url + root).json()["versions"]}
        assert found == {"v1.1": "DEPRECATED", "v2.0": "SUPPORTED", "v2.1": "CURRENT"}


@pytest.mark.parametrize("mount", ["", "/compute"])
def test_legacy_sign_in(server: StackvolProcess, mount: str) -> None:
    password = server.credentials()["demo"]["password"]
    resp = httpx.get(f"{server.url}{mount}/v1.0",
                     headers={"X-Auth-User": "demo", "X-Auth-Key": password})
    assert resp.status_code == 204, resp.text
    token, url = resp.headers["x-auth-token"], resp.headers["x-server-management-url"]
    _, body = server.token("demo")
    assert url == f"{server.url}{mount}/v1.1/{body['project']['id']}"
    listed = httpx.get(f"{url}/os-volumes", headers={"X-Auth-Token": token})
    assert listed.status_code == 200 and "volumes" in listed.json()
    # The project may be named too.
    resp = httpx.get(f"{server.url}{mount}/v1.0", headers={
        "X-Auth-User": "demo", "X-Auth-Key": password, "X-Auth-Project-Id": "demo"})
    assert resp.headers["x-server-management-url"] == url


@pytest.mark.parametrize("headers", [{}, {"X-Auth-User": "demo"},
                                     {"X-Auth-User": "demo", "X-Auth-Key": "wrong"},
                                     {"X-Auth-User": "nobody", "X-Auth-Key": "x"}])
def test_legacy_sign_in_refused(server: StackvolProcess, headers: dict[str, str]) -> None:
    resp = httpx.get(f"{server.url}/v1.0", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["unauthorized"]["code"] == 401
    assert "x-auth-token" not in resp.headers
