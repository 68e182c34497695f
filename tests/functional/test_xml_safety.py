"""Hostile XML bodies on the legacy face: entity bombs, external entities, DTDs, oversized,
too deep and malformed documents each get a 400 XML fault at once, with the server's memory
flat and nothing read from disk or network."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.legacy import NS_V11, XML_BODY, legacy_client, tree
from tests.support.server import StackvolProcess

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<volume size="1" display_name="&lol9;"/>"""
QUADRATIC = (b'<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "' + b"x" * 50_000 + b'">]>'
             b'<volume size="1" display_name="' + b"&a;" * 2_000 + b'"/>')
XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<volume size="1" display_name="&secret;"/>"""
XXE_NETWORK = b"""<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY remote SYSTEM "http://127.0.0.1:9/x">]>
<volume size="1" display_name="&remote;"/>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE volume SYSTEM "http://127.0.0.1:9/volume.dtd">
<volume size="1"/>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>
<volume size="1"/>"""
OVERSIZED = b'<volume size="1" display_name="' + b"a" * 200_000 + b'"/>'
TOO_DEEP = b'<volume size="1">' + b"<m>" * 5_000 + b"</m>" * 5_000 + b"</volume>"
TOO_MANY = b'<volume size="1">' + b"<m/>" * 20_000 + b"</volume>"
MALFORMED = [b"<volume size='1'>", b"<volume size=1/>", b"not xml at all", b"<a></b>",
             b"\xff\xfe<\x00v\x00", b"<?xml version='1.0' encoding='nope'?><volume/>"]

HOSTILE = {
    "billion-laughs": BILLION_LAUGHS,
    "quadratic-blowup": QUADRATIC,
    "xxe-file": XXE_FILE,
    "xxe-network": XXE_NETWORK,
    "external-dtd": EXTERNAL_DTD,
    "parameter-entity": PARAMETER_ENTITY,
    "oversized": OVERSIZED,
    "too-deep": TOO_DEEP,
    "too-many-elements": TOO_MANY,
    **{f"malformed-{i}": body for i, body in enumerate(MALFORMED)},
}


@pytest.fixture(scope="module")
def v11(server: StackvolProcess) -> Iterator[httpx.Client]:
    with legacy_client(server, "demo", "v1.1") as client:
        yield client


def rss_kib(server: StackvolProcess) -> int:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def assert_bad_request(resp: httpx.Response) -> None:
    assert resp.status_code == 400, resp.text
    root = tree(resp)
    assert root.tag == f"{{{NS_V11}}}badRequest" and root.get("code") == "400"
    assert b"root:" not in resp.content  # nothing of /etc/passwd


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_body_is_a_fast_400(v11: httpx.Client, name: str) -> None:
    for path in ("/os-volumes", "/os-snapshots", "/servers"):
        started = time.perf_counter()
        resp = v11.post(path, headers=XML_BODY, content=HOSTILE[name])
        assert time.perf_counter() - started < 1.0
        assert_bad_request(resp)


def test_memory_stays_flat_under_bombs(v11: httpx.Client, server: StackvolProcess) -> None:
    v11.post("/os-volumes", headers=XML_BODY, content=BILLION_LAUGHS)  # warm up
    before = rss_kib(server)
    for _ in range(30):
        for body in (BILLION_LAUGHS, QUADRATIC, OVERSIZED, TOO_MANY):
            assert_bad_request(v11.post("/os-volumes", headers=XML_BODY, content=body))
    assert rss_kib(server) - before < 30 * 1024
    # ...and the server still serves.
    assert v11.get("/os-volumes").status_code == 200


def test_no_volume_was_made_from_a_hostile_body(v11: httpx.Client) -> None:
    names = {v["displayName"] for v in v11.get("/os-volumes").json()["volumes"]}
    assert not any(name and ("lol" in name or "root" in name) for name in names)
