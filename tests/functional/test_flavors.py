"""``/flavors`` over plain HTTP: the seeded defaults, Nova's views per microversion, filters,
sorting and paging."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server import StackvolProcess
from tests.support.servers import mv

DEFAULTS = {"1": ("m1.tiny", 1, 512, 1), "2": ("m1.small", 1, 2048, 20),
            "3": ("m1.medium", 2, 4096, 40), "4": ("m1.large", 4, 8192, 80),
            "5": ("m1.xlarge", 8, 16384, 160)}
DETAIL_21 = {"id", "name", "links", "ram", "disk", "swap", "OS-FLV-EXT-DATA:ephemeral",
             "OS-FLV-DISABLED:disabled", "vcpus", "os-flavor-access:is_public", "rxtx_factor"}


def flavors(client: httpx.Client, path: str = "/flavors/detail", version: str = "2.1",
            **params: object) -> httpx.Response:
    return client.get(path, params=params, headers=mv(version))


def test_defaults_are_seeded(demo: httpx.Client, server: StackvolProcess) -> None:
    listed = flavors(demo, "/flavors").json()["flavors"]
    assert [f["id"] for f in listed] == ["1", "2", "3", "4", "5"]
    assert all(set(f) == {"id", "name", "links"} for f in listed)
    assert listed[0]["links"] == [
        {"rel": "self", "href": f"{server.url}/v2.1/flavors/1"},
        {"rel": "bookmark", "href": f"{server.url}/flavors/1"}]
    for flavor in flavors(demo).json()["flavors"]:
        name, vcpus, ram, disk = DEFAULTS[flavor["id"]]
        assert (flavor["name"], flavor["vcpus"], flavor["ram"], flavor["disk"]) == (
            name, vcpus, ram, disk)


def test_views_by_microversion(demo: httpx.Client) -> None:
    old = flavors(demo, "/flavors/1").json()["flavor"]
    assert set(old) == DETAIL_21
    assert old["swap"] == ""
    assert old["rxtx_factor"] == 1.0
    assert old["OS-FLV-DISABLED:disabled"] is False
    assert old["os-flavor-access:is_public"] is True
    at_255 = flavors(demo, "/flavors/1", "2.55").json()["flavor"]
    assert set(at_255) == DETAIL_21 | {"description"}
    assert "description" in flavors(demo, "/flavors", "2.55").json()["flavors"][0]
    at_261 = flavors(demo, "/flavors/1", "2.61").json()["flavor"]
    assert at_261["extra_specs"] == {}
    assert "extra_specs" not in flavors(demo, "/flavors", "2.61").json()["flavors"][0]
    assert at_261["swap"] == ""
    assert flavors(demo, "/flavors/1", "2.75").json()["flavor"]["swap"] == 0


def test_unknown_flavor_is_404(demo: httpx.Client) -> None:
    resp = flavors(demo, "/flavors/42")
    assert resp.status_code == 404
    assert resp.json() == {"itemNotFound": {"code": 404,
                                            "message": "Flavor 42 could not be found."}}


@pytest.mark.parametrize(("params", "expected"), [
    ({"minRam": 4096}, ["3", "4", "5"]),
    ({"minDisk": 80}, ["4", "5"]),
    ({"minRam": 2048, "minDisk": 40}, ["3", "4", "5"]),
    ({"sort_key": "memory_mb", "sort_dir": "desc"}, ["5", "4", "3", "2", "1"]),
    ({"sort_key": "name"}, ["4", "3", "2", "1", "5"]),
    ({"is_public": "none"}, ["1", "2", "3", "4", "5"]),
    ({"is_public": "false"}, ["1", "2", "3", "4", "5"]),  # ignored for non-admins
])
def test_filters_and_sorting(demo: httpx.Client, params: dict, expected: list[str]) -> None:
    found = flavors(demo, **params).json()["flavors"]
    assert [f["id"] for f in found] == expected


def test_admin_may_ask_for_private_flavors(admin: httpx.Client) -> None:
    assert flavors(admin, is_public="false").json()["flavors"] == []
    assert len(flavors(admin, is_public="none").json()["flavors"]) == 5


def test_paging(demo: httpx.Client) -> None:
    first = flavors(demo, limit=2).json()
    assert [f["id"] for f in first["flavors"]] == ["1", "2"]
    link = first["flavors_links"][0]
    assert link["rel"] == "next" and "/v2.1/flavors/detail?" in link["href"]
    assert "marker=2" in link["href"] and "limit=2" in link["href"]
    second = demo.get(link["href"]).json()
    assert [f["id"] for f in second["flavors"]] == ["3", "4"]
    last = flavors(demo, limit=2, marker="4").json()
    assert [f["id"] for f in last["flavors"]] == ["5"]
    assert "flavors_links" not in last


@pytest.mark.parametrize(("version", "params", "message"), [
    ("2.1", {"minRam": "lots"}, "Invalid minRam filter [lots]"),
    ("2.1", {"minDisk": "-"}, "Invalid minDisk filter [-]"),
    ("2.1", {"marker": "nope"}, "marker [nope] not found"),
    ("2.1", {"is_public": "maybe"}, "Invalid is_public filter [maybe]"),
    ("2.75", {"colour": "red"}, None),
])
def test_bad_queries_are_400(demo: httpx.Client, version: str, params: dict,
                             message: str | None) -> None:
    resp = flavors(demo, version=version, **params)
    assert resp.status_code == 400
    if message:
        assert resp.json()["badRequest"]["message"] == message


def test_unknown_query_ignored_before_275(demo: httpx.Client) -> None:
    assert flavors(demo, version="2.74", colour="red").status_code == 200


def test_extra_specs_are_readable(demo: httpx.Client) -> None:
    assert demo.get("/flavors/1/os-extra_specs").json() == {"extra_specs": {}}
    missing = demo.get("/flavors/1/os-extra_specs/hw:cpu_policy")
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["message"] == (
        "Flavor 1 has no extra specs with key hw:cpu_policy.")
    assert demo.get("/flavors/42/os-extra_specs").status_code == 404
