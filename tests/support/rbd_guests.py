"""RBD volumes as libvirt guests see them: the network disks of a live domain, the cephx secrets
libvirt holds for them, and what a guest wrote as the cluster reads it."""

from __future__ import annotations

import uuid

from defusedxml.ElementTree import fromstring

from stackvol.storage.rbd import SECRET_NAMESPACE
from tests.support import libvirt_guest as lg
from tests.support.ceph import CephCluster
from tests.support.server import wait_for


def undefine_secrets(fsid: str) -> None:
    """The secrets this cluster's volumes made (one per cluster and user): the cluster is gone."""
    wanted = str(uuid.uuid5(SECRET_NAMESPACE, f"{fsid}/client.stackvol"))
    conn = lg.connection()
    try:
        for secret in conn.listAllSecrets(0):
            if secret.UUIDString() == wanted:
                secret.undefine()
    finally:
        conn.close()


def rbd_disk_sources(server_id: str) -> list[dict[str, str]]:
    """The live domain's rbd network disks: their source attributes and auth."""
    conn = lg.connection()
    try:
        xml = fromstring(conn.lookupByName(f"stackvol-{server_id}").XMLDesc(0))
    finally:
        conn.close()
    found = []
    for disk in xml.iterfind("devices/disk[@type='network']"):
        source = disk.find("source")
        if source is not None and source.get("protocol") == "rbd":
            secret = disk.find("auth/secret")
            found.append({"name": source.get("name"), "user": disk.find("auth").get("username"),
                          "secret": secret.get("uuid"), "host": source.find("host").get("port")})
    return found


def assert_in_ceph(ceph: CephCluster, image: str, offset: int, pattern: str,
                   server_id: str, disk: str) -> None:
    """What the guest wrote (and flushed) is what librbd reads from the cluster; on failure,
    say what the guest itself reads there, to tell a lost write from a wrong read."""
    seen = wait_for(lambda: ceph.read(image, offset, len(pattern)),
                    lambda data: data == pattern.encode(), timeout=10, interval=0.2)
    assert seen == pattern.encode(), (
        f"librbd reads {seen!r} at {offset} of {image}; the guest reads "
        f"{lg.read_disk(server_id, disk, offset, len(pattern))!r} on /dev/{disk}")
