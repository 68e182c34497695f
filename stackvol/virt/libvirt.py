"""A compute driver on libvirt/QEMU: each server is a real virtual machine, as in Nova.

A server is a persistent domain named ``stackvol-<server id>`` (its UUID is the server's), built
from the flavor (vCPUs, memory, optionally capped) on a q35 machine with spare
``pcie-root-port``s, since every hot-plugged virtio disk needs a free one. It boots what its
image is, as Nova does:

* a disk image (qcow2, raw, ...): the root disk ``vda`` is a qcow2 overlay in the server's
  directory whose backing file is a copy of the image cached per host in
  ``<data_dir>/compute/libvirt/_base`` (Nova's ``_base``), sized to the larger of the flavor's
  disk and the image's virtual size; the domain boots it by BIOS (``<boot dev='hd'/>``);
* an image with ``kernel_id``/``ramdisk_id`` (AMI style): those images' (cached) files are
  booted directly, with the image's overlay as ``vda``;
* a root volume made from an image: the volume is ``vda`` and boots as the image would;
* no image (boot from a plain volume, or the built-in guest's well-known image id): the built-in
  guest (``guest_image``: a kernel and a busybox initramfs) through ``<kernel>``/``<initrd>``,
  so any volume can be a data disk; a boot volume is the first disk, ``vda``.

Deleting a server removes its directory, overlay included; the cached bases stay. Its serial
console is logged to ``<data_dir>/compute/libvirt/<server id>/console.log``
(``os-getConsoleOutput``), and a virtio-serial port carries the guest's shell agent.

Volumes are virtio disks whose ``<serial>`` is the volume id (cut to the 20 bytes virtio keeps)
and whose user alias is ``ua-<volume id>``, so the domain itself records which volume each disk
is: ``attached_volumes`` and start-up recovery read it back from libvirt, never from a side file.
Attach changes the live domain first, then its saved definition, and returns only once the live
XML holds the disk; detach asks the guest to let go and waits (polling the live XML) until the
disk is gone, asking again after each timeout as Nova does (a guest still booting ignores the
request), and fails after the last attempt leaving the volume attached.

Several stackvol processes may share one libvirt daemon (tests, benchmarks): each data directory
has an owner id recorded in its domains' metadata, and a process lists only its own domains.
``libvirt`` (PyPI ``libvirt-python``) is imported lazily: the rest of stackvol never needs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from defusedxml.ElementTree import fromstring

from stackvol.storage import qemu_img
from stackvol.storage.base import StorageError
from stackvol.storage.files import publish
from stackvol.virt import guest_image
from stackvol.virt.base import (
    BootImage,
    ComputeDriver,
    ComputeError,
    ImageFile,
    InstanceSpec,
    PowerState,
)
from stackvol.virt.libvirt_disks import ALIAS_PREFIX, disk_xml, ensure_secret
from stackvol.virt.libvirt_disks import sub as _sub

log = logging.getLogger(__name__)

NAMESPACE = "https://stackvol.invalid/xmlns/libvirt/server/1"
PREFIX = "stackvol-"
HOTPLUG_PORTS = 16  # free pcie-root-ports per server: the most volumes it can take live
CONSOLE_MAX_BYTES = 100 * 1024  # Nova serves at most 100 KiB of console log
KERNEL_CMDLINE = "console=ttyS0 panic=-1 quiet loglevel=4"
ET.register_namespace("stackvol", NAMESPACE)
GiB = 1024**3
ROOT_DISK = "disk"  # the image-backed root disk's overlay, in the server's directory


@dataclass(frozen=True, slots=True)
class _Boot:
    """How a domain starts: a kernel (direct boot) or the BIOS, and its root disk if any."""

    kernel: Path | None
    initrd: Path | None
    cmdline: str
    root: ET.Element | None


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError as exc:
        raise ComputeError("the libvirt driver needs libvirt-python "
                           "(pip install 'stackvol[libvirt]')") from exc
    # Without a handler libvirt prints every error to stderr as well as raising it.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def unavailable(uri: str) -> str | None:
    """Why no libvirt daemon answers at ``uri`` (``None``: one does)."""
    try:
        lv = _libvirt()
    except ComputeError as exc:
        return str(exc)
    try:
        conn = lv.open(uri)
    except lv.libvirtError as exc:
        return exc.get_error_message() or str(exc)
    try:
        conn.getVersion()
    except lv.libvirtError as exc:
        return exc.get_error_message() or str(exc)
    finally:
        conn.close()
    return None


# libvirt domain state -> Nova's power state (nova/virt/libvirt/driver.py LIBVIRT_POWER_STATE).
_POWER = {0: PowerState.NOSTATE, 1: PowerState.RUNNING, 2: PowerState.RUNNING,
          3: PowerState.PAUSED, 4: PowerState.SHUTDOWN, 5: PowerState.SHUTDOWN,
          6: PowerState.CRASHED, 7: PowerState.SUSPENDED}
_SHUTOFF, _SHUTOFF_CRASHED = 5, 3


class LibvirtDriver(ComputeDriver):
    name = "libvirt"
    power_sync_seconds = 2.0  # QEMU can die or the guest power off without us asking

    def __init__(self, data_dir: Path, uri: str = "qemu:///system", virt_type: str = "qemu",
                 max_memory_mb: int = 0, image_dir: Path | None = None,
                 detach_timeout: float = 20.0, shutdown_timeout: float = 10.0,
                 host: str | None = None, detach_attempts: int = 8) -> None:
        if virt_type not in ("qemu", "kvm"):
            raise ValueError(f"unsupported libvirt virt type {virt_type!r} (qemu or kvm)")
        self.lv = _libvirt()
        self.uri = uri
        self.virt_type = virt_type
        self.max_memory_mb = max_memory_mb
        self.detach_timeout = detach_timeout
        self.detach_attempts = max(1, detach_attempts)
        self.shutdown_timeout = shutdown_timeout
        self.host = host or socket.gethostname()
        self.root = Path(data_dir).resolve() / "compute" / "libvirt"
        self.root.mkdir(parents=True, exist_ok=True)
        self.image_dir = Path(image_dir or Path(data_dir) / "guest-image").resolve()
        self.owner = self._owner_id()
        self._conn: Any = None
        self._conn_lock = threading.Lock()

    def _owner_id(self) -> str:
        path = self.root / "owner"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(str(uuid.uuid4()))
            tmp.replace(path)
        return path.read_text().strip()

    # --- connection and lookups -------------------------------------------------------------

    def connection(self) -> Any:
        """One connection shared by every worker thread, opened again if the daemon restarted."""
        with self._conn_lock:
            if self._conn is not None:
                with contextlib.suppress(self.lv.libvirtError):
                    if self._conn.isAlive():
                        return self._conn
            try:
                self._conn = self.lv.open(self.uri)
            except self.lv.libvirtError as exc:
                raise ComputeError(f"cannot connect to libvirt at {self.uri}: "
                                   f"{exc.get_error_message()}") from exc
            return self._conn

    def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except self.lv.libvirtError as exc:
            raise ComputeError(f"{what}: {exc.get_error_message()}") from exc

    def _domain(self, server_id: str) -> Any | None:
        try:
            return self.connection().lookupByName(PREFIX + server_id)
        except self.lv.libvirtError as exc:
            if exc.get_error_code() == self.lv.VIR_ERR_NO_DOMAIN:
                return None
            raise ComputeError(f"cannot look up server {server_id}: "
                               f"{exc.get_error_message()}") from exc

    def _require(self, server_id: str) -> Any:
        dom = self._domain(server_id)
        if dom is None:
            raise ComputeError(f"server {server_id} has no domain on host {self.host}")
        return dom

    def _xml(self, dom: Any, inactive: bool = False) -> ET.Element:
        flags = self.lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return fromstring(self._call("cannot read the domain XML", dom.XMLDesc, flags))

    def server_dir(self, server_id: str) -> Path:
        if not server_id or "/" in server_id or server_id.startswith("."):
            raise ComputeError(f"invalid server id {server_id!r}")
        return self.root / server_id

    def console_path(self, server_id: str) -> Path:
        return self.server_dir(server_id) / "console.log"

    # --- building -----------------------------------------------------------------------------

    def spawn(self, spec: InstanceSpec) -> None:
        ensure_secret(self.connection(), self.lv, spec.root_volume)  # an rbd root's cephx key
        dom = self._domain(spec.server_id)
        if dom is None:
            self.server_dir(spec.server_id).mkdir(parents=True, exist_ok=True)
            boot = self._boot(spec)
            xml = ET.tostring(self._domain_xml(spec, boot), encoding="unicode")
            dom = self._call("cannot define the domain", self.connection().defineXML, xml)
        if not dom.isActive():
            self._call(f"cannot start server {spec.server_id}", dom.create)
        log.info("server %s: domain %s running", spec.server_id, dom.name())

    def _boot(self, spec: InstanceSpec) -> _Boot:
        image = spec.boot_image
        root = disk_xml(spec.root_volume, "vda") if spec.root_volume is not None else None
        if image is None:  # the built-in guest
            guest = guest_image.ensure(self.image_dir)
            return _Boot(guest.kernel, guest.initrd, KERNEL_CMDLINE, root)
        if root is None:
            root = self._image_disk(spec, image)
        if image.kernel is None:
            return _Boot(None, None, "", root)  # the BIOS boots vda, as a cloud image
        initrd = self.cached_base(image.ramdisk) if image.ramdisk is not None else None
        return _Boot(self.cached_base(image.kernel), initrd,
                     image.cmdline or f"root=/dev/vda {KERNEL_CMDLINE}", root)

    def _image_disk(self, spec: InstanceSpec, image: BootImage) -> ET.Element:
        """The root disk: a qcow2 overlay over the image's cached base (made once)."""
        if image.disk is None:
            raise ComputeError(f"image {image.id} has no disk to boot and server "
                               f"{spec.server_id} no root volume")
        base = self.cached_base(image.disk)
        fmt = image.disk.qemu_format
        overlay = self.server_dir(spec.server_id) / ROOT_DISK
        if not overlay.exists():
            tmp = overlay.with_name(f".{ROOT_DISK}.part")
            try:
                base_size = int(qemu_img.info(base, fmt, force_share=True)["virtual-size"])
                size = max(spec.disk_gb * GiB, image.virtual_size, base_size)
                qemu_img.qemu_img("create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(base),
                                  str(tmp), str(size))
            except StorageError as exc:
                raise ComputeError(f"cannot make server {spec.server_id}'s root disk: "
                                   f"{exc}") from exc
            tmp.replace(overlay)
        disk = ET.Element("disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type="qcow2")
        _sub(disk, "source", file=str(overlay))
        _sub(disk, "target", dev="vda", bus="virtio")
        return disk

    def cached_base(self, image: ImageFile) -> Path:
        """This host's copy of an image's bytes (``_base/<image id>``), copied once from the
        image store: servers keep booting whatever happens to the image afterwards."""
        if not image.id or "/" in image.id or image.id.startswith("."):
            raise ComputeError(f"invalid image id {image.id!r}")
        base_dir = self.root / "_base"
        base_dir.mkdir(exist_ok=True)
        target = base_dir / image.id
        if target.exists():
            return target
        with open(base_dir / f".{image.id}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one copier per image; the others wait
            if not target.exists():
                tmp = base_dir / f".{image.id}.part"
                try:
                    shutil.copyfile(image.path, tmp)
                except OSError as exc:
                    tmp.unlink(missing_ok=True)
                    raise ComputeError(f"cannot copy image {image.id} from the image store: "
                                       f"{exc.strerror or exc}") from exc
                tmp.chmod(0o444)  # a base is never written: overlays write their own file
                publish(tmp, target)  # a crash never leaves a partial base under its name
        return target

    def _domain_xml(self, spec: InstanceSpec, boot: _Boot) -> ET.Element:
        memory = spec.memory_mb
        if self.max_memory_mb:
            memory = min(memory, self.max_memory_mb)
        domain = ET.Element("domain", type=self.virt_type)
        _sub(domain, "name", PREFIX + spec.server_id)
        _sub(domain, "uuid", spec.server_id)
        _sub(domain, "title", spec.name[:200])
        meta = _sub(domain, "metadata")
        ET.SubElement(meta, f"{{{NAMESPACE}}}server", owner=self.owner, id=spec.server_id)
        _sub(domain, "memory", str(max(memory, 64)), unit="MiB")
        _sub(domain, "vcpu", str(max(spec.vcpus, 1)))
        os_el = _sub(domain, "os")
        _sub(os_el, "type", "hvm", arch="x86_64", machine="q35")
        if boot.kernel is not None:
            _sub(os_el, "kernel", str(boot.kernel))
            if boot.initrd is not None:
                _sub(os_el, "initrd", str(boot.initrd))
            _sub(os_el, "cmdline", boot.cmdline)
        else:
            _sub(os_el, "boot", dev="hd")
        ET.SubElement(_sub(domain, "features"), "acpi")
        if self.virt_type == "kvm":
            _sub(domain, "cpu", mode="host-passthrough")
        _sub(domain, "clock", offset="utc")
        for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"),
                              ("on_crash", "destroy")):
            _sub(domain, event, action)
        domain.append(self._devices(spec, boot.root))
        # QEMU runs as this process's user, who owns the volume files: nothing is relabelled.
        seclabel = _sub(domain, "seclabel", type="static", model="dac", relabel="no")
        _sub(seclabel, "label", f"+{os.getuid()}:+{os.getgid()}")
        return domain

    def _devices(self, spec: InstanceSpec, root: ET.Element | None) -> ET.Element:
        devices = ET.Element("devices")
        _sub(devices, "controller", type="pci", model="pcie-root")
        _sub(devices, "controller", type="usb", model="none")
        if root is not None:
            devices.append(root)
        for _ in range(HOTPLUG_PORTS):
            _sub(devices, "controller", type="pci", model="pcie-root-port")
        serial = _sub(devices, "serial", type="file")
        _sub(serial, "source", path=str(self.console_path(spec.server_id)), append="on")
        _sub(serial, "target", port="0")
        channel = _sub(devices, "channel", type="unix")
        _sub(channel, "source", mode="bind")  # libvirt picks the socket path
        _sub(channel, "target", type="virtio", name=guest_image.AGENT_PORT)
        _sub(devices, "memballoon", model="none")
        return devices

    def destroy(self, server_id: str) -> None:
        dom = self._domain(server_id)
        if dom is not None:
            self._stop(dom)
            flags = (self.lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                     | self.lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
            try:
                dom.undefineFlags(flags)
            except self.lv.libvirtError as exc:
                if exc.get_error_code() != self.lv.VIR_ERR_NO_DOMAIN:
                    raise ComputeError(f"cannot remove server {server_id}: "
                                       f"{exc.get_error_message()}") from exc
        shutil.rmtree(self.server_dir(server_id), ignore_errors=True)

    def _stop(self, dom: Any) -> None:
        """Hard stop (libvirt waits for QEMU to exit); a domain already stopped is fine."""
        try:
            if dom.isActive():
                dom.destroy()
        except self.lv.libvirtError as exc:
            if dom.isActive():
                raise ComputeError(f"cannot stop {dom.name()}: {exc.get_error_message()}") \
                    from exc

    # --- power ----------------------------------------------------------------------------------

    def power_off(self, server_id: str) -> None:
        """As Nova's clean shutdown: ask the guest (ACPI), then pull the plug after a while."""
        dom = self._require(server_id)
        if not self._graceful_stop(dom):
            self._stop(dom)

    def _graceful_stop(self, dom: Any) -> bool:
        if not dom.isActive():
            return True
        with contextlib.suppress(self.lv.libvirtError):
            dom.shutdown()
            return _wait(lambda: not dom.isActive(), self.shutdown_timeout)
        return False

    def power_on(self, server_id: str) -> None:
        dom = self._require(server_id)
        if not dom.isActive():
            self._call(f"cannot start server {server_id}", dom.create)

    def reboot(self, server_id: str, hard: bool) -> None:
        """Soft: a clean shutdown, then start (Nova's ``_soft_reboot``); hard, or a guest that
        does not stop in time: power off and on."""
        dom = self._require(server_id)
        if not hard and not dom.isActive():
            raise ComputeError(f"server {server_id} is not running; cannot soft reboot")
        if hard or not self._graceful_stop(dom):
            self._stop(dom)
        self._call(f"cannot start server {server_id}", dom.create)

    def power_state(self, server_id: str) -> PowerState:
        dom = self._domain(server_id)
        if dom is None:
            return PowerState.NOSTATE
        try:
            state, reason = dom.state()
        except self.lv.libvirtError:
            return PowerState.NOSTATE  # undefined between the lookup and now
        if state == _SHUTOFF and reason == _SHUTOFF_CRASHED:
            return PowerState.CRASHED  # QEMU died under us
        return _POWER.get(state, PowerState.NOSTATE)

    def console_output(self, server_id: str) -> str:
        if self._domain(server_id) is None:
            raise ComputeError(f"server {server_id} has no domain on host {self.host}")
        try:
            with open(self.console_path(server_id), "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(fh.tell() - CONSOLE_MAX_BYTES, 0))
                return fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    # --- volumes --------------------------------------------------------------------------------

    def attach_volume(self, server_id: str, volume_id: str, connection_info: dict[str, Any],
                      device: str) -> None:
        """Plug the disk into the running guest and its saved definition (idempotent)."""
        ensure_secret(self.connection(), self.lv, connection_info)  # an rbd volume's cephx key
        dom = self._require(server_id)
        alias = ALIAS_PREFIX + volume_id
        target = _target_name(device) or _free_target(self._xml(dom, inactive=True))
        disk = ET.tostring(disk_xml(connection_info, target), encoding="unicode")
        what = f"cannot attach volume {volume_id} to server {server_id}"
        live = dom.isActive()
        if live and alias not in _disks(self._xml(dom)):
            self._call(what, dom.attachDeviceFlags, disk, self.lv.VIR_DOMAIN_AFFECT_LIVE)
        if alias not in _disks(self._xml(dom, inactive=True)):
            self._call(what, dom.attachDeviceFlags, disk, self.lv.VIR_DOMAIN_AFFECT_CONFIG)
        # in-use only once libvirt shows the disk in the domain the guest runs in.
        if alias not in _disks(self._xml(dom, inactive=not live)):
            raise ComputeError(f"{what}: libvirt does not show the disk after plugging it")

    def detach_volume(self, server_id: str, volume_id: str) -> None:
        """Unplug the disk: the guest must release it within ``detach_timeout`` seconds of one
        of ``detach_attempts`` requests."""
        dom = self._domain(server_id)
        if dom is None:
            return
        alias = ALIAS_PREFIX + volume_id
        if dom.isActive() and alias in _disks(self._xml(dom)):
            self._unplug_live(dom, server_id, volume_id, alias)
        if alias in _disks(self._xml(dom, inactive=True)):
            self._call(f"cannot detach volume {volume_id} from server {server_id}",
                       dom.detachDeviceAlias, alias, self.lv.VIR_DOMAIN_AFFECT_CONFIG)

    def _unplug_live(self, dom: Any, server_id: str, volume_id: str, alias: str) -> None:
        def gone() -> bool:
            return not dom.isActive() or alias not in _disks(self._xml(dom))

        problem = self._request_unplug(dom, alias)
        for attempt in range(2, self.detach_attempts + 1):
            if _wait(gone, self.detach_timeout):
                return
            # A guest may miss a request (still booting, busy): ask again, as Nova does.
            problem = self._request_unplug(dom, alias)
            log.warning("server %s has not released volume %s within %g s; unplug request %d "
                        "of %d sent%s", server_id, volume_id, self.detach_timeout, attempt,
                        self.detach_attempts, problem)
        if not _wait(gone, self.detach_timeout):
            raise ComputeError(
                f"server {server_id} did not release volume {volume_id} after "
                f"{self.detach_attempts} unplug request(s), {self.detach_timeout:g} s each: "
                f"the guest refused or ignored the unplug{problem}; the volume stays attached")

    def _request_unplug(self, dom: Any, alias: str) -> str:
        """Ask QEMU to unplug the disk (asynchronous: QEMU asks the guest, which may take its
        time or never answer); what libvirt objected to, if anything, for the logs."""
        try:
            dom.detachDeviceAlias(alias, self.lv.VIR_DOMAIN_AFFECT_LIVE)
        except self.lv.libvirtError as exc:  # e.g. an unplug still pending: keep waiting
            return f" ({exc.get_error_message()})"
        return ""

    def attached_volumes(self, server_id: str) -> dict[str, str]:
        dom = self._domain(server_id)
        if dom is None:
            return {}
        xml = self._xml(dom, inactive=not dom.isActive())
        return {alias[len(ALIAS_PREFIX):]: f"/dev/{target}"
                for alias, target in _disks(xml).items()}

    def servers(self) -> list[str]:
        found = []
        for dom in self._call("cannot list domains", self.connection().listAllDomains, 0):
            if not dom.name().startswith(PREFIX):
                continue
            with contextlib.suppress(self.lv.libvirtError):  # undefined meanwhile
                mine = self._xml(dom).find(f"metadata/{{{NAMESPACE}}}server")
                if mine is not None and mine.get("owner") == self.owner:
                    found.append(mine.get("id") or dom.UUIDString())
        return sorted(found)

    # --- for tests and tools ----------------------------------------------------------------

    def agent_socket(self, server_id: str) -> str:
        """The host end of the guest agent's virtio-serial port (a running server's)."""
        for channel in self._xml(self._require(server_id)).iterfind("devices/channel"):
            target = channel.find("target")
            source = channel.find("source")
            if (target is not None and target.get("name") == guest_image.AGENT_PORT
                    and source is not None and source.get("path")):
                return str(source.get("path"))
        raise ComputeError(f"server {server_id} has no agent channel (is it running?)")

    def qemu_pid(self, server_id: str) -> int | None:
        """The QEMU process of a running server (libvirt's PID file), else ``None``."""
        path = Path("/run/libvirt/qemu") / f"{PREFIX}{server_id}.pid"
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(path.read_text().strip())
        return None


def _disks(domain: ET.Element) -> dict[str, str]:
    """Volume disks of a domain XML: alias -> target dev."""
    found = {}
    for disk in domain.iterfind("devices/disk"):
        alias, target = disk.find("alias"), disk.find("target")
        name = alias.get("name", "") if alias is not None else ""
        if name.startswith(ALIAS_PREFIX) and target is not None:
            found[name] = target.get("dev", "")
    return found


def _target_name(device: str) -> str:
    name = device.removeprefix("/dev/")
    return name if name.startswith("vd") and name[2:].isalpha() else ""


def _free_target(domain: ET.Element) -> str:
    used = {t.get("dev") for t in domain.iterfind("devices/disk/target")}
    for letter in "bcdefghijklmnopqrstuvwxyz":
        if f"vd{letter}" not in used:
            return f"vd{letter}"
    raise ComputeError("no free virtio disk name")


def _wait(done: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if done():
                return True
        except Exception:  # libvirt errors while the domain changes: poll on
            log.debug("while waiting", exc_info=True)
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
