"""The legacy face in XML: the extension query, volumes created, attached and detached with XML
bodies (and seen on /v2.1), content negotiation, XML faults, version documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.legacy import (
    NS_V11,
    XML,
    XML_BODY,
    legacy_client,
    tree,
)
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import new_server
from tests.support.volumes import attached_volume, new_volume

NS_COMMON = "http://docs.openstack.org/common/api/v1.0"
NS_ATOM = "http://www.w3.org/2005/Atom"
SEED_NAMESPACE = "http://docs.openstack.org/ext/volumes/api/v1.1"
JUNO_NAMESPACE = "http://docs.openstack.org/compute/ext/volumes/api/v1.1"


@pytest.fixture(scope="module")
def v11(server: StackvolProcess) -> Iterator[httpx.Client]:
    with legacy_client(server, "demo", "v1.1") as client:
        yield client


@pytest.fixture(scope="module")
def server_id(v11: httpx.Client) -> str:
    return new_server(v11, "xml")


def xml_status(client: httpx.Client, volume_id: str, wanted: str) -> dict[str, str]:
    found = wait_for(lambda: tree(client.get(f"/os-volumes/{volume_id}", headers=XML)).attrib,
                     lambda attrs: attrs["status"] == wanted)
    assert found["status"] == wanted, found
    return found


def assert_fault(resp: httpx.Response, code: int, name: str) -> str:
    """An XML fault as Nova wrote it (no declaration, the compute v1.1 namespace)."""
    assert resp.status_code == code, resp.text
    assert not resp.content.startswith(b"<?xml")
    root = tree(resp)
    assert root.tag == f"{{{NS_V11}}}{name}"
    assert root.attrib == {"code": str(code)}
    (message,) = list(root)
    assert message.tag == f"{{{NS_V11}}}message"
    return message.text or ""


# --- extensions -------------------------------------------------------------------------------


@pytest.mark.parametrize(("api", "namespace"), [("v1.1", SEED_NAMESPACE),
                                                ("v2", JUNO_NAMESPACE)])
def test_extensions_list_os_volumes_with_the_era_namespace(server: StackvolProcess, api: str,
                                                            namespace: str) -> None:
    with legacy_client(server, "demo", api) as client:
        root = tree(client.get("/extensions", headers=XML))
        assert root.tag == f"{{{NS_COMMON}}}extensions"
        (entry,) = [e for e in root if e.get("alias") == "os-volumes"]
        assert entry.get("namespace") == namespace
        assert entry.get("name") == "Volumes"
        assert entry.find(f"{{{NS_COMMON}}}description").text.startswith("Volumes support")
        listed = client.get("/extensions").json()["extensions"]
        (as_json,) = [e for e in listed if e["alias"] == "os-volumes"]
        assert as_json["namespace"] == namespace
        assert len(listed) == len(root)  # the same information in both forms

        single = tree(client.get("/extensions/os-volumes.xml"))
        assert single.tag == f"{{{NS_COMMON}}}extension"
        assert single.get("namespace") == namespace
        assert client.get("/extensions/os-volumes").json()["extension"] == as_json
        assert_fault(client.get("/extensions/os-nothing", headers=XML), 404, "itemNotFound")


# --- XML request bodies end to end ------------------------------------------------------------


def test_xml_create_attach_snapshot_detach(v11: httpx.Client, admin: httpx.Client,
                                           server_id: str, server: StackvolProcess) -> None:
    resp = v11.post("/os-volumes", headers=XML_BODY, content=(
        b'<?xml version="1.0" encoding="UTF-8"?><volume size="1" display_name="xml-vol" '
        b'display_description="made in XML"><metadata><meta key="era">2011</meta></metadata>'
        b'</volume>'))
    assert resp.status_code == 200, resp.text
    created = tree(resp)
    assert created.tag == "volume" and created.get("displayName") == "xml-vol"
    assert created.get("snapshotId") == "None"
    assert [(m.get("key"), m.text) for m in created.find("metadata")] == [("era", "2011")]
    volume_id = created.get("id")
    project = v11.base_url.path.rstrip("/").rsplit("/", 1)[-1]
    assert resp.headers["location"].endswith(f"/v1.1/{project}/os-volumes/{volume_id}")

    # The same store: /v2.1 sees it, in today's format.
    with server.client("demo") as today:
        seen = today.get(f"/os-volumes/{volume_id}").json()["volume"]
    assert seen["displayName"] == "xml-vol" and seen["metadata"] == {"era": "2011"}
    assert "T" in seen["createdAt"] and "T" not in created.get("createdAt")
    assert admin.get(f"/os-volumes/{volume_id}").status_code == 200

    xml_status(v11, volume_id, "available")
    resp = v11.post(f"/servers/{server_id}/os-volume_attachments", headers=XML_BODY,
                    content=f'<volumeAttachment volumeId="{volume_id}" device="/dev/vdc"/>')
    assert resp.status_code == 200, resp.text
    assert tree(resp).attrib == {"id": volume_id, "serverId": server_id, "volumeId": volume_id,
                                 "device": "/dev/vdc"}
    attached = xml_status(v11, volume_id, "in-use")
    assert attached["status"] == "in-use"
    shown = tree(v11.get(f"/servers/{server_id}/os-volume_attachments/{volume_id}.xml"))
    assert shown.tag == "volumeAttachment" and shown.get("device") == "/dev/vdc"
    (item,) = tree(v11.get(f"/os-volumes/{volume_id}.xml")).find("attachments")
    assert item.get("serverId") == server_id

    resp = v11.post("/os-snapshots", headers=XML_BODY, content=(
        f"<snapshot><volume_id>{volume_id}</volume_id><force>true</force>"
        f"<display_name>xml-snap</display_name></snapshot>"))
    assert resp.status_code == 200, resp.text
    snap = tree(resp)
    assert snap.tag == "snapshot" and snap.get("volumeId") == volume_id
    assert snap.get("displayName") == "xml-snap"

    resp = v11.delete(f"/servers/{server_id}/os-volume_attachments/{volume_id}", headers=XML)
    assert resp.status_code == 202 and resp.content == b""
    xml_status(v11, volume_id, "available")
    (empty,) = tree(v11.get(f"/os-volumes/{volume_id}.xml")).find("attachments")
    assert empty.tag == "attachment" and empty.attrib == {}


def test_snake_case_attributes_only_as_juno_read_them(v11: httpx.Client) -> None:
    resp = v11.post("/os-volumes", headers=XML_BODY, content=(
        b'<volume size="1" displayName="ignored" availabilityZone="ignored"/>'))
    assert resp.status_code == 200, resp.text
    assert tree(resp).get("displayName") == "None"
    assert tree(resp).get("availabilityZone") == "nova"


def test_xml_bodies_are_validated_like_json(v11: httpx.Client, server_id: str) -> None:
    message = assert_fault(v11.post("/os-volumes", headers=XML_BODY,
                                    content=b'<volume display_name="no size"/>'),
                           400, "badRequest")
    assert "size" in message
    assert_fault(v11.post("/os-volumes", headers=XML_BODY, content=b'<volume size="0"/>'),
                 400, "badRequest")
    assert_fault(v11.post("/os-volumes", headers=XML_BODY, content=b"<server/>"),
                 400, "badRequest")
    message = assert_fault(v11.post(f"/servers/{server_id}/os-volume_attachments",
                                    headers=XML_BODY,
                                    content=b'<volumeAttachment volumeId="not-a-uuid"/>'),
                           400, "badRequest")
    assert "volumeId" in message
    assert_fault(v11.post("/os-snapshots", headers=XML_BODY,
                          content=b"<snapshot><volume_id>x</volume_id><force>maybe</force>"
                                  b"</snapshot>"), 400, "badRequest")


def test_swap_request_sample_in_xml(v11: httpx.Client, server: StackvolProcess,
                                    server_id: str, samples: Path) -> None:
    """``update-volume-req.xml`` is decoded and validated; then policy and state decide."""
    text = (samples / "historical/2014.2/doc/api_samples/os-volume-attachment-update/"
                      "update-volume-req.xml").read_text()
    current = attached_volume(v11, server_id)["id"]
    body = text.replace("a26887c6-c47b-4654-abb5-dfadf7d3f805", new_volume(v11))
    path = f"/servers/{server_id}/os-volume_attachments/{current}"
    assert_fault(v11.put(path, headers=XML_BODY, content=body), 403, "forbidden")
    project = v11.base_url.path.rstrip("/").split("/")[-1]
    with legacy_client(server, "admin", "v1.1") as admin:
        admin_path = f"{server.url}/v1.1/{project}{path}"
        # Nova swaps only while Cinder migrates the volume: a conflict, in XML.
        assert_fault(admin.put(admin_path, headers=XML_BODY, content=body), 409,
                     "conflictingRequest")
    assert v11.delete(path).status_code == 202


def test_servers_over_xml(v11: httpx.Client, samples: Path) -> None:
    body = (samples / "historical/2014.2/doc/api_samples/os-volumes/server-post-req.xml"
            ).read_bytes()
    resp = v11.post("/servers", headers=XML_BODY, content=body)
    assert resp.status_code == 202, resp.text
    created = tree(resp)
    assert created.tag == f"{{{NS_V11}}}server" and created.get("adminPass")
    links = {link.get("rel"): link.get("href") for link in created.iter(f"{{{NS_ATOM}}}link")}
    assert "/v1.1/" in links["self"] and "/v1.1/" not in links["bookmark"]
    server_id = created.get("id")
    shown = tree(v11.get(f"/servers/{server_id}", headers=XML))
    assert shown.get("name") == "new-server-test"
    meta = shown.find(f"{{{NS_V11}}}metadata/{{{NS_V11}}}meta")
    assert (meta.get("key"), meta.text) == ("My Server Name", "Apache1")
    assert shown.find(f"{{{NS_V11}}}flavor").get("id") == "1"
    listed = tree(v11.get("/servers.xml"))
    assert server_id in {s.get("id") for s in listed}
    flavor = tree(v11.get("/flavors/1.xml"))
    assert flavor.tag == f"{{{NS_V11}}}flavor" and flavor.get("ram")
    assert v11.delete(f"/servers/{server_id}").status_code == 204


# --- negotiation, faults, versions ------------------------------------------------------------


@pytest.mark.parametrize(("accept", "suffix", "expected"), [
    (None, "", "application/json"),
    ("*/*", "", "application/json"),
    ("application/xml", "", "application/xml"),
    ("application/vnd.openstack.compute+xml", "", "application/vnd.openstack.compute+xml"),
    ("application/vnd.openstack.compute+json", "", "application/vnd.openstack.compute+json"),
    ("application/json;q=0.2, application/xml;q=0.8", "", "application/xml"),
    ("text/html, application/*;q=0.5", "", "application/json"),
    ("application/xml", ".json", "application/json"),
    ("application/json", ".xml", "application/xml"),
    ("text/html", ".xml", "application/xml"),
])
def test_negotiation(v11: httpx.Client, accept: str | None, suffix: str, expected: str) -> None:
    resp = v11.get(f"/os-volumes{suffix}", headers={"Accept": accept} if accept else {})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == expected
    if expected.endswith("xml"):
        assert tree(resp).tag == "volumes"
    else:
        assert isinstance(resp.json()["volumes"], list)


def test_nothing_acceptable_or_unsupported_body(v11: httpx.Client) -> None:
    resp = v11.get("/os-volumes", headers={"Accept": "text/html"})
    assert resp.status_code == 406
    assert resp.json()["notAcceptable"]["code"] == 406
    resp = v11.post("/os-volumes", headers={"Accept": "application/xml",
                                            "Content-Type": "text/plain"}, content=b"size=1")
    assert_fault(resp, 415, "badMediaType")


def test_faults_in_xml(v11: httpx.Client, server: StackvolProcess) -> None:
    message = assert_fault(v11.get("/os-volumes/00000000-0000-0000-0000-000000000000.xml"),
                           404, "itemNotFound")
    assert "could not be found" in message
    assert_fault(v11.get("/no-such-collection", headers=XML), 404, "itemNotFound")
    other = v11.get(f"{server.url}/v1.1/some-other-tenant/os-volumes", headers=XML)
    assert "Malformed request URL" in assert_fault(other, 400, "badRequest")
    anonymous = httpx.get(f"{server.url}/v2/any/os-volumes.xml")
    assert_fault(anonymous, 401, "unauthorized")


@pytest.mark.parametrize(("api", "version_id", "status"), [("v2", "v2.0", "SUPPORTED"),
                                                           ("v1.1", "v1.1", "DEPRECATED"),
                                                           ("compute/v2", "v2.0", "SUPPORTED")])
def test_version_documents(server: StackvolProcess, api: str, version_id: str,
                           status: str) -> None:
    root = tree(httpx.get(f"{server.url}/{api}/", headers=XML))
    assert root.tag == f"{{{NS_COMMON}}}version"
    assert (root.get("id"), root.get("status")) == (version_id, status)
    types = {m.get("base") for m in root.iter(f"{{{NS_COMMON}}}media-type")}
    assert types == {"application/json", "application/xml"}
    doc = httpx.get(f"{server.url}/{api}").json()["version"]
    assert (doc["id"], doc["status"]) == (version_id, status)
    assert doc["links"][0]["href"] == f"{server.url}/{api}/"


def test_compute_prefix_serves_the_legacy_paths(server: StackvolProcess) -> None:
    with legacy_client(server, "demo", "compute/v1.1") as client:
        root = tree(client.get("/os-volumes/detail", headers=XML))
        assert root.tag == "volumes"
        assert client.get("/extensions/os-volumes").json()["extension"]["namespace"] == \
            SEED_NAMESPACE
