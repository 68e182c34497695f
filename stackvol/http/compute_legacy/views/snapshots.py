"""A snapshot on the legacy paths: the v2.1 view with the Essex ``createdAt``; in XML, one
element of attributes."""

from __future__ import annotations

from typing import Any

from stackvol.http.compute.views import snapshots as v21
from stackvol.http.compute_legacy.views.common import essex_time
from stackvol.http.compute_legacy.views.templates import attrs, collection, single
from stackvol.http.compute_legacy.xml import Node
from stackvol.services.common.records import Snapshot

SNAPSHOT_ATTRS = ("id", "status", "size", "createdAt", "displayName", "displayDescription",
                  "volumeId")


def snapshot(snap: Snapshot) -> dict[str, Any]:
    return {**v21.snapshot(snap), "createdAt": essex_time(snap.created_at)}


def _snapshot_node(data: dict[str, Any]) -> Node:
    return Node("snapshot", attrs(data, SNAPSHOT_ATTRS))


snapshot_xml = single("snapshot", _snapshot_node)
snapshots_xml = collection("snapshots", _snapshot_node)
