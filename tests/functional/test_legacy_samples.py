"""Every JSON and XML sample of the 2014.2 ``os-volumes`` (and ``os-volume-attachment-update``)
docs and of ``all_extensions`` (2012.2, 2014.2): the same call on our ``/v2/{tenant}`` and
``/v1.1/{tenant}`` answers with the same structure (JSON: keys and value types; XML: element
tree, attribute names and namespaces; values aside).

Sample request bodies are sent as they are, with the resource ids (and sizes, zones and
devices a real server needs) swapped for ours. Integer ids in the samples are compared as
strings: stackvol's ids are UUIDs on every path.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from tests.support.legacy import (
    assert_same_xml,
    legacy_client,
)
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import new_server
from tests.support.shapes import assert_same_shape
from tests.support.volumes import attached_volume, new_volume

J = "historical/2014.2/doc/api_samples"
APIS = ("v2", "v1.1")
FORMATS = ("json", "xml")
SAMPLE_VOLUME = "a26887c6-c47b-4654-abb5-dfadf7d3f803"
SAMPLE_SNAP_VOLUME = "521752a6-acf6-4b2d-bc7a-119f9148cd8c"


@dataclass
class World:
    server_id: str
    volume_id: str  # attached to server_id
    source_id: str  # available, has snapshot_id
    snapshot_id: str


@pytest.fixture(scope="module")
def world(server: StackvolProcess) -> World:
    with legacy_client(server, "demo", "v2") as client:
        server_id = new_server(client, "samples")
        named = {"display_name": "Volume Name", "display_description": "Volume Description"}
        volume_id = attached_volume(client, server_id, "/dev/vdb", **named)["id"]
        source_id = new_volume(client, **named)
        resp = client.post("/os-snapshots", json={"snapshot": {
            "volume_id": source_id, "display_name": "snap", "display_description": "daily"}})
        assert resp.status_code == 200, resp.text
        snapshot_id = resp.json()["snapshot"]["id"]
        wait_for(lambda: client.get(f"/os-snapshots/{snapshot_id}").json()["snapshot"],
                 lambda s: s["status"] == "available")
    return World(server_id, volume_id, source_id, snapshot_id)


@pytest.fixture(params=APIS)
def client(request: pytest.FixtureRequest, server: StackvolProcess) -> Iterator[httpx.Client]:
    with legacy_client(server, "demo", request.param) as found:
        yield found


# --- what each sample's call is -------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: Callable[[World], str]
    request_sample: str | None = None  # sent as the body, after ``edit``
    edit: Callable[[str, World, httpx.Client], str] = lambda text, world, client: text
    select: str | None = None  # the list key whose entry with our id is compared
    our_id: Callable[[World], str] = lambda world: world.volume_id
    drop_attachments: bool = False  # a new volume cannot match the sample's attached one


def _new_volume_body(text: str, world: World, client: httpx.Client) -> str:
    return (text.replace('"size": 100', '"size": 1').replace('size="100"', 'size="1"')
            .replace("zone1:host1", "nova"))


def _attach_body(text: str, world: World, client: httpx.Client) -> str:
    # A fresh volume per call, and a device that is free on the server.
    return text.replace(SAMPLE_VOLUME, new_volume(client)).replace("/dev/vdd", next(_DEVICES))


def _snapshot_body(text: str, world: World, client: httpx.Client) -> str:
    return text.replace(SAMPLE_SNAP_VOLUME, world.source_id)


def _attachments(world: World) -> str:
    return f"/servers/{world.server_id}/os-volume_attachments"


def _snapshot(world: World) -> str:
    return world.snapshot_id


CALLS: dict[str, Call] = {
    "os-volumes/os-volumes-get-resp": Call("GET", lambda w: f"/os-volumes/{w.volume_id}"),
    "os-volumes/os-volumes-index-resp": Call("GET", lambda w: "/os-volumes",
                                             select="volumes"),
    "os-volumes/os-volumes-detail-resp": Call("GET", lambda w: "/os-volumes/detail",
                                              select="volumes"),
    "os-volumes/os-volumes-post-resp": Call("POST", lambda w: "/os-volumes",
                                            "os-volumes/os-volumes-post-req",
                                            _new_volume_body, drop_attachments=True),
    "os-volumes/list-volume-attachments-resp": Call("GET", _attachments,
                                                    select="volumeAttachments"),
    "os-volumes/volume-attachment-detail-resp": Call(
        "GET", lambda w: f"{_attachments(w)}/{w.volume_id}"),
    "os-volumes/attach-volume-to-server-resp": Call(
        "POST", _attachments, "os-volumes/attach-volume-to-server-req", _attach_body),
    "os-volumes/snapshot-create-resp": Call("POST", lambda w: "/os-snapshots",
                                            "os-volumes/snapshot-create-req", _snapshot_body),
    "os-volumes/snapshots-list-resp": Call("GET", lambda w: "/os-snapshots",
                                           select="snapshots", our_id=_snapshot),
    "os-volumes/snapshots-detail-resp": Call("GET", lambda w: "/os-snapshots/detail",
                                             select="snapshots", our_id=_snapshot),
    "os-volumes/snapshots-show-resp": Call("GET", lambda w: f"/os-snapshots/{w.snapshot_id}"),
    "os-volumes/server-post-resp": Call("POST", lambda w: "/os-volumes_boot",
                                        "os-volumes/server-post-req"),
    "os-volume-attachment-update/server-post-resp": Call(
        "POST", lambda w: "/servers", "os-volume-attachment-update/server-post-req"),
}
# Request-only samples: each is sent by the call above naming it (or by test_legacy_xml).
REQUEST_ONLY = {"os-volume-attachment-update/update-volume-req"}
_DEVICES = iter(f"/dev/vd{letter}" for letter in "defghijklmnop")


def test_every_sample_has_a_call(samples: Path) -> None:
    folders = [samples / J / "os-volumes", samples / J / "os-volume-attachment-update"]
    stems = {f"{p.parent.name}/{p.stem}" for folder in folders for p in folder.iterdir()}
    requests = {c.request_sample for c in CALLS.values() if c.request_sample}
    assert stems == set(CALLS) | requests | REQUEST_ONLY


# --- comparison -----------------------------------------------------------------------------


def _ids_as_strings(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: str(v) if k in ("id", "volumeId") and isinstance(v, int) else
                _ids_as_strings(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_ids_as_strings(item) for item in data]
    return data


def _json_parts(ours: Any, sample: Any, call: Call, world: World) -> tuple[Any, Any]:
    sample = _ids_as_strings(sample)
    if call.select:
        wanted = call.our_id(world)
        ours = {call.select: [i for i in ours[call.select] if i["id"] == wanted]}
        assert ours[call.select], f"{wanted} is not in the list"
    if call.drop_attachments:
        sample = copy.deepcopy(sample)
        sample["volume"]["attachments"] = []
    return ours, sample


def _strip_attachments(root: ET.Element) -> None:
    for holder in root.iter("attachments"):
        for item in list(holder):
            holder.remove(item)


def _xml_parts(ours: bytes, sample: bytes, call: Call, world: World) -> tuple[bytes, bytes]:
    if not (call.select or call.drop_attachments):
        return ours, sample
    our_root, sample_root = fromstring(ours), fromstring(sample)
    if call.select:
        wanted = call.our_id(world)
        for item in list(our_root):
            if item.get("id") != wanted:
                our_root.remove(item)
        assert len(our_root), f"{wanted} is not in the list"
    if call.drop_attachments:
        _strip_attachments(our_root)
        _strip_attachments(sample_root)
    return ET.tostring(our_root), ET.tostring(sample_root)


CONTENT = {"json": "application/json", "xml": "application/xml"}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_same_structure_as_sample(client: httpx.Client, world: World, samples: Path,
                                  name: str, fmt: str) -> None:
    call = CALLS[name]
    headers = {"Accept": CONTENT[fmt]}
    content = None
    if call.request_sample:
        text = (samples / J / f"{call.request_sample}.{fmt}").read_text()
        content = call.edit(text, world, client).encode()
        headers["Content-Type"] = CONTENT[fmt]
    resp = client.request(call.method, call.path(world), content=content, headers=headers)
    assert resp.status_code in (200, 202), resp.text
    assert resp.headers["content-type"] == CONTENT[fmt]
    sample_path = samples / J / f"{name}.{fmt}"
    if fmt == "json":
        ours, sample = _json_parts(resp.json(), json.loads(sample_path.read_text()), call, world)
        assert_same_shape(ours, sample, nullable=frozenset({"snapshotId"}))
    else:
        assert resp.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
        assert_same_xml(*_xml_parts(resp.content, sample_path.read_bytes(), call, world))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("era", ["2012.2", "2014.2"])
def test_extensions_same_structure_as_sample(client: httpx.Client, samples: Path, era: str,
                                             fmt: str) -> None:
    resp = client.get("/extensions", headers={"Accept": CONTENT[fmt]})
    assert resp.status_code == 200, resp.text
    sample_path = samples / f"historical/{era}/doc/api_samples/all_extensions/" \
                            f"extensions-get-resp.{fmt}"
    if fmt == "json":
        assert_same_shape(resp.json(), json.loads(sample_path.read_text()))
    else:
        assert_same_xml(resp.content, sample_path.read_bytes())
