"""Our responses against Nova's own samples for ``os-volumes`` and ``/extensions``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.server import wait_for
from tests.support.shapes import assert_same_shape, load

VOLUMES = "doc/api_samples/os-volumes"
EXTENSIONS = "doc/api_samples/extension-info"
# Data-dependent: an unattached volume's attachment has no device.
NULLABLE = frozenset({"device", "snapshotId"})


def _unattached(sample: dict) -> dict:
    """The sample volume as it reads before any attach (``attachments: [{}]``)."""
    return {**sample, "attachments": [{}], "status": "available"}


@pytest.fixture(scope="module")
def sample_volume(admin: httpx.Client, samples: Path) -> dict:
    request = load(samples / VOLUMES / "os-volumes-post-req.json")
    request["volume"]["availability_zone"] = "nova"  # the zone this deployment has
    resp = admin.post("/os-volumes", json=request)
    assert resp.status_code == 200, resp.text
    volume = resp.json()
    assert_same_shape(volume, {"volume": _unattached(
        load(samples / VOLUMES / "os-volumes-post-resp.json")["volume"])}, NULLABLE)
    wait_for(lambda: admin.get(f"/os-volumes/{volume['volume']['id']}").json(),
             lambda v: v["volume"]["status"] == "available")
    return volume["volume"]


def test_post_request_sample_is_accepted(sample_volume: dict) -> None:
    assert sample_volume["displayName"] == "Volume Name"
    assert sample_volume["size"] == 100


def test_get_matches_sample(admin: httpx.Client, samples: Path, sample_volume: dict) -> None:
    ours = admin.get(f"/os-volumes/{sample_volume['id']}").json()
    sample = load(samples / VOLUMES / "os-volumes-get-resp.json")
    assert_same_shape(ours, {"volume": _unattached(sample["volume"])}, NULLABLE)


@pytest.mark.parametrize(("path", "sample_file"), [
    ("/os-volumes", "os-volumes-index-resp.json"),
    ("/os-volumes/detail", "os-volumes-detail-resp.json"),
])
def test_lists_match_samples(admin: httpx.Client, samples: Path, sample_volume: dict,
                             path: str, sample_file: str) -> None:
    ours = admin.get(path).json()
    sample = load(samples / VOLUMES / sample_file)
    # Other tests' volumes share the list; the sample's call made only this one.
    mine = [v for v in ours["volumes"] if v["id"] == sample_volume["id"]]
    assert len(mine) == 1, "the list must hold the sample volume"
    assert_same_shape({**ours, "volumes": mine},
                      {"volumes": [_unattached(sample["volumes"][0])]}, NULLABLE)


def test_sample_attachment_item_keys_are_the_ones_nova_shows(samples: Path) -> None:
    # Guards the view's attached form until attach lands: Nova shows exactly these keys.
    sample = load(samples / VOLUMES / "os-volumes-get-resp.json")["volume"]["attachments"][0]
    assert set(sample) == {"device", "id", "serverId", "volumeId"}


def test_extensions_list_matches_sample(admin: httpx.Client, samples: Path) -> None:
    ours = admin.get("/extensions").json()
    assert_same_shape(ours, load(samples / EXTENSIONS / "extensions-list-resp.json"))
    aliases = {e["alias"] for e in ours["extensions"]}
    assert "os-volumes" in aliases


def test_extension_show_matches_sample(admin: httpx.Client, samples: Path) -> None:
    ours = admin.get("/extensions/os-volumes").json()
    assert_same_shape(ours, load(samples / EXTENSIONS / "extensions-get-resp.json"))
    assert ours["extension"]["name"] == "Volumes"
    assert ours["extension"]["description"] == "Volumes support."
    assert admin.get("/extensions/os-nothing").status_code == 404


def test_volume_entry_matches_novas_frozen_list(admin: httpx.Client, samples: Path) -> None:
    novas = {e["alias"]: e for e in load(
        samples / EXTENSIONS / "extensions-list-resp.json")["extensions"]}
    for entry in admin.get("/extensions").json()["extensions"]:
        assert entry == novas[entry["alias"]], entry["alias"]
