"""Helpers for the legacy-face tests (``/v1.1``, ``/v2``): clients, XML trees and their shapes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO

import httpx
from defusedxml.ElementTree import fromstring

from tests.support.server import StackvolProcess

XML = {"Accept": "application/xml"}
XML_BODY = {"Accept": "application/xml", "Content-Type": "application/xml"}
NS_V11 = "http://docs.openstack.org/compute/api/v1.1"


@contextmanager
def legacy_client(server: StackvolProcess, user: str, api: str) -> Iterator[httpx.Client]:
    """A client whose base is ``/{api}/{the user's project id}`` (``api``: ``v2``, ``v1.1``,
    ``compute/v2``...)."""
    token, body = server.token(user)
    base = f"{server.url}/{api}/{body['project']['id']}"
    with httpx.Client(base_url=base, headers={"X-Auth-Token": token}, timeout=30) as client:
        yield client


def tree(resp: httpx.Response) -> ET.Element:
    assert resp.headers["content-type"].split(";")[0].endswith("xml"), resp.text
    return fromstring(resp.content)


def namespaces(data: bytes) -> set[tuple[str, str]]:
    """Every namespace declared in a document, as (prefix, uri)."""
    return {ns for _, ns in ET.iterparse(BytesIO(data), events=("start-ns",))}


def xml_diff(ours: ET.Element, sample: ET.Element, path: str = "") -> list[str]:
    """Where ``ours`` differs from ``sample`` in element names (with namespaces), attribute
    names and nesting, values aside; repeated children are each compared with the sample's
    first child of that name."""
    path = f"{path}/{sample.tag}"
    if ours.tag != sample.tag:
        return [f"{path}: <{ours.tag}> where the sample has <{sample.tag}>"]
    problems = []
    if set(ours.attrib) != set(sample.attrib):
        problems.append(f"{path}: attributes {sorted(ours.attrib)} where the sample has "
                        f"{sorted(sample.attrib)}")
    first: dict[str, ET.Element] = {}
    for child in sample:
        first.setdefault(child.tag, child)
    ours_tags = {child.tag for child in ours}
    if ours_tags != set(first):
        problems.append(f"{path}: children {sorted(ours_tags)} where the sample has "
                        f"{sorted(first)}")
    for child in ours:
        if child.tag in first:
            problems += xml_diff(child, first[child.tag], path)
    return problems


def assert_same_xml(ours: bytes, sample: bytes) -> None:
    problems = xml_diff(fromstring(ours), fromstring(sample))
    if namespaces(ours) != namespaces(sample):
        problems.append(f"namespaces {sorted(namespaces(ours))} where the sample declares "
                        f"{sorted(namespaces(sample))}")
    assert not problems, "response differs from the Nova sample:\n" + "\n".join(problems)


