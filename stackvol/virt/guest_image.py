"""The built-in guest: a Debian cloud kernel and a busybox initramfs, made from Debian packages.

Nothing is downloaded but from the package registry: ``apt-get download`` fetches the kernel
package that ``linux-image-cloud-amd64`` depends on, ``dpkg-deb -x`` unpacks it (nothing is
installed), and the initramfs is ``/bin/busybox`` (package ``busybox-static``), the virtio and
ACPI-button modules of that kernel, and an ``/init`` that:

* loads the modules (the kernel has virtio as modules) so hot-plugged virtio disks appear, with
  their serial in ``/sys/block/vdX/serial``;
* powers off on the ACPI power button (libvirt's graceful shutdown and soft reboot);
* runs a tiny shell agent on the virtio-serial port ``org.stackvol.agent``: each line the host
  sends is run by ``sh -c``, its output followed by a line ``<END-MARK> <exit status>``. The
  end-to-end test talks to it; it is no security boundary (only root on the host reaches it).

The image is built once into a cache directory (under a lock, renamed into place complete) and
reused; a second process waits for the first one's build.

``boot_disk`` makes the same guest a BIOS-bootable disk image, as a cloud image is: a FAT file
system over the whole disk (a "superfloppy", no partition table) with SYSLINUX in its boot sector
(``syslinux --install`` writes it through mtools: nothing is mounted), the kernel, the initramfs
and a ``syslinux.cfg`` whose kernel command line carries ``DISK_MARKER``, so a guest can tell it
was booted from the disk. Raw, or converted to qcow2 with ``qemu-img``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import lzma
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

META_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX = Path("/bin/busybox")
AGENT_PORT = "org.stackvol.agent"
END_MARK = "@@stackvol-agent-end@@"
# Loaded in this order; their own dependencies are read from each module's ``depends=``.
MODULES = ("virtio_pci", "virtio_blk", "virtio_console", "evdev", "button")
DISK_MARKER = "stackvol.boot=disk"  # on the kernel command line of a guest booted by SYSLINUX
DISK_MIB = 32  # the kernel and initramfs take ~17 MiB
SYSLINUX_CFG = """DEFAULT guest
PROMPT 0
TIMEOUT 0
LABEL guest
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND {cmdline}
"""

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /etc/acpi/PWRF /var/log /var/run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/stackvol/modules); do insmod /lib/stackvol/$m.ko; done
printf '#!/bin/sh\nsync\npoweroff -f\n' > /etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
acpid -c /etc/acpi
echo "stackvol guest: $(uname -r) up"
agent() {
    port=""
    while [ -z "$port" ]; do
        for p in /sys/class/virtio-ports/*; do
            [ "$(cat "$p/name" 2>/dev/null)" = "@PORT@" ] && port=/dev/${p##*/}
        done
        [ -n "$port" ] || sleep 0.2
    done
    echo "stackvol guest: agent on $port"
    # The port is opened once, read-write, and kept open. Reading it while no host has it
    # open gives end-of-file at once: then wait a little and read on.
    while true; do
        while IFS= read -r line; do
            sh -c "$line" </dev/null 2>&1
            printf '\n@END@ %s\n' "$?"
        done
        sleep 0.1
    done <>"$port" >&0
}
disks() {
    # Say on the console which virtio disks come and go, with their serial (the volume id):
    # what a user reads in `openstack console log show` to see an attached volume.
    seen=""
    while true; do
        now=""
        for d in /sys/block/vd*; do
            [ -e "$d" ] || continue
            n=${d##*/}
            now="$now $n"
            case "$seen " in *" $n "*) ;; *)
                echo "stackvol guest: disk $n serial $(cat "$d/serial" 2>/dev/null)" ;;
            esac
        done
        for n in $seen; do
            case "$now " in *" $n "*) ;; *) echo "stackvol guest: disk $n gone" ;; esac
        done
        seen=$now
        sleep 1
    done
}
agent &
disks &
while true; do sleep 3600; done
"""


class GuestImageError(Exception):
    """The guest image could not be built; the message says which step failed and why."""


# What a build runs, and the Debian package each comes from.
BUILD_TOOLS = {"apt-get": "apt", "apt-cache": "apt", "dpkg-deb": "dpkg", "cpio": "cpio"}
DISK_TOOLS = {"mkfs.fat": "dosfstools", "syslinux": "syslinux", "mcopy": "mtools",
              "qemu-img": "qemu-utils"}


def check_prerequisites(disk: bool = False) -> None:
    """Fail at once, naming every missing program and its package, rather than mid-build."""
    missing = {} if BUSYBOX.exists() else {str(BUSYBOX): "busybox-static"}
    tools = {**BUILD_TOOLS, **(DISK_TOOLS if disk else {})}
    missing.update({tool: package for tool, package in tools.items()
                    if shutil.which(tool) is None})
    if missing:
        names = ", ".join(f"{what} (package {package})" for what, package in missing.items())
        raise GuestImageError(f"cannot build the built-in guest: missing {names}; install "
                              f"them as root: apt-get install -y "
                              f"{' '.join(sorted(set(missing.values())))}")


@dataclass(frozen=True, slots=True)
class GuestImage:
    kernel: Path
    initrd: Path
    kernel_version: str


def ensure(cache_dir: Path) -> GuestImage:
    """The built-in guest image in ``cache_dir``, built first if it is not there yet."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and then reuse
        found = _cached(cache_dir)
        if found is None:
            check_prerequisites()
            started = time.monotonic()
            log.info("building the built-in guest in %s (first use)", cache_dir)
            _build(cache_dir)
            found = _cached(cache_dir)
            if found is not None:
                log.info("built the built-in guest (kernel %s) in %.1fs",
                         found.kernel_version, time.monotonic() - started)
        if found is None:
            raise GuestImageError(f"the guest image in {cache_dir} is incomplete after a build")
        return found


def _cached(cache_dir: Path) -> GuestImage | None:
    try:
        stamp = json.loads((cache_dir / "image.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    if stamp.get("init") != _init_digest():  # built by an older stackvol: rebuild
        return None
    image = GuestImage(cache_dir / "vmlinuz", cache_dir / "initrd.img", stamp["kernel_version"])
    return image if image.kernel.exists() and image.initrd.exists() else None


def _build(cache_dir: Path) -> None:
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        work = Path(tmp)
        log.info("built-in guest: finding the kernel package of %s", META_PACKAGE)
        package = _kernel_package()
        log.info("built-in guest: downloading %s from the package registry", package)
        _run(["apt-get", "download", "-q", package], cwd=work)
        debs = list(work.glob("*.deb"))
        if not debs:
            raise GuestImageError(f"apt-get download {package} produced no package")
        tree = work / "kernel"
        log.info("built-in guest: unpacking %s", debs[0].name)
        _run(["dpkg-deb", "-x", str(debs[0]), str(tree)])
        kernels = sorted((tree / "boot").glob("vmlinuz-*"))
        if not kernels:
            raise GuestImageError(f"{debs[0].name} holds no kernel")
        version = kernels[0].name.removeprefix("vmlinuz-")
        log.info("built-in guest: making the initramfs (busybox and %s's virtio modules)",
                 version)
        _initramfs(work / "root", tree / "lib" / "modules" / version, work / "initrd.img")
        shutil.copyfile(kernels[0], work / "vmlinuz")
        for name in ("vmlinuz", "initrd.img"):
            (work / name).chmod(0o644)
            (work / name).replace(cache_dir / name)
        for stale in cache_dir.glob("boot-disk.*"):  # made from the previous initramfs
            stale.unlink()
        (cache_dir / "image.json").write_text(json.dumps({"kernel_version": version,
                                                          "package": package,
                                                          "init": _init_digest()}))


def _init_digest() -> str:
    return hashlib.sha256(INIT.encode()).hexdigest()[:16]


def _kernel_package() -> str:
    """The versioned kernel package the cloud meta-package points at."""
    out = _run(["apt-cache", "depends", META_PACKAGE])
    match = re.search(r"Depends:\s*(linux-image-\S+)", out)
    if match is None:  # no package lists yet on a fresh machine
        _run(["apt-get", "update", "-qq"])
        match = re.search(r"Depends:\s*(linux-image-\S+)", _run(["apt-cache", "depends",
                                                                 META_PACKAGE]))
    if match is None:
        raise GuestImageError(f"cannot find the kernel package {META_PACKAGE} depends on")
    return match.group(1)


def _initramfs(root: Path, modules_dir: Path, target: Path) -> None:
    if not BUSYBOX.exists():
        raise GuestImageError(f"{BUSYBOX} is missing (apt-get install busybox-static)")
    (root / "bin").mkdir(parents=True)
    (root / "lib" / "stackvol").mkdir(parents=True)
    shutil.copyfile(BUSYBOX, root / "bin" / "busybox")
    (root / "bin" / "busybox").chmod(0o755)
    order = _module_order(_module_files(modules_dir))
    for name, path in order:
        data = path.read_bytes()
        if path.suffix == ".xz":
            data = lzma.decompress(data)
        (root / "lib" / "stackvol" / f"{name}.ko").write_bytes(data)
    (root / "lib" / "stackvol" / "modules").write_text(" ".join(n for n, _ in order) + "\n")
    init = INIT.replace("@PORT@", AGENT_PORT).replace("@END@", END_MARK)
    (root / "init").write_text(init)
    (root / "init").chmod(0o755)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    with open(target, "wb") as out:
        done = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "--owner=0:0"],
                              input="\n".join(files).encode(), stdout=out, cwd=root,
                              stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise GuestImageError(f"cpio failed: {done.stderr.decode(errors='replace').strip()}")


def _module_files(modules_dir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in (modules_dir / "kernel").rglob("*.ko*"):
        found[path.name.split(".ko")[0].replace("-", "_")] = path
    return found


def _depends(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.suffix == ".xz":
        data = lzma.decompress(data)
    match = re.search(rb"\x00depends=([^\x00]*)\x00", data)
    return [d.replace("-", "_") for d in match.group(1).decode().split(",") if d] if match else []


def _module_order(files: dict[str, Path]) -> list[tuple[str, Path]]:
    """The wanted modules and what they depend on, each after its dependencies."""
    order: list[tuple[str, Path]] = []

    def visit(name: str) -> None:
        if any(n == name for n, _ in order):
            return
        if name not in files:
            raise GuestImageError(f"kernel module {name} is not in the kernel package")
        for dep in _depends(files[name]):
            visit(dep)
        order.append((name, files[name]))

    for wanted in MODULES:
        visit(wanted)
    return order


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                              timeout=600)
    except FileNotFoundError as exc:
        raise GuestImageError(f"{argv[0]} is not installed") from exc
    if done.returncode != 0:
        raise GuestImageError(f"{' '.join(argv[:3])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def boot_disk(cache_dir: Path, disk_format: str = "qcow2",
              cmdline: str = "console=ttyS0 panic=-1 quiet loglevel=4") -> Path:
    """The built-in guest as a BIOS-bootable disk image (``raw`` or ``qcow2``), built once
    into ``cache_dir`` (beside the kernel and initramfs) and reused."""
    if disk_format not in ("raw", "qcow2"):
        raise GuestImageError(f"unsupported boot disk format {disk_format!r} (raw or qcow2)")
    guest = ensure(cache_dir)
    target = cache_dir / f"boot-disk.{disk_format}"
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            check_prerequisites(disk=True)
            log.info("built-in guest: making its bootable %s disk (SYSLINUX)", disk_format)
            with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".disk-") as tmp:
                raw = Path(tmp) / "boot-disk.raw"
                _syslinux_disk(guest, raw, f"{cmdline} {DISK_MARKER}")
                made = raw
                if disk_format == "qcow2":
                    made = Path(tmp) / "boot-disk.qcow2"
                    _run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw),
                          str(made)])
                made.chmod(0o644)
                made.replace(target)
    return target


def _syslinux_disk(guest: GuestImage, target: Path, cmdline: str) -> None:
    with open(target, "wb") as fh:
        fh.truncate(DISK_MIB * 1024 * 1024)
    _run(["mkfs.fat", "-n", "STACKVOL", str(target)])
    _run(["syslinux", "--install", str(target)])
    config = target.with_name("syslinux.cfg")
    config.write_text(SYSLINUX_CFG.format(cmdline=cmdline))
    _run(["mcopy", "-o", "-i", str(target), str(guest.kernel), str(guest.initrd), str(config),
          "::"])


def agent_run(socket_path: str, command: str, timeout: float = 30.0) -> tuple[int, str]:
    """Run one shell command in the guest through its agent: (exit status, output).

    The agent answers commands in order and keeps no ids, so the answer to an earlier command
    whose caller gave up (a timeout on a slow guest) can still be on its way. Each command is
    therefore preceded by a marker of its own, and everything before that marker is skipped.
    """
    begin = f"@@stackvol-agent-begin-{uuid.uuid4().hex}@@"
    line = f"echo {begin}; " + command.replace("\n", " ")
    begun = re.compile(re.escape(begin.encode()) + rb"\n")
    ended = re.compile(rb"\n" + re.escape(END_MARK.encode()) + rb" (\d+)\n")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(line.encode() + b"\n")
        data = b""
        while (start := begun.search(data)) is None or (
                match := ended.search(data, start.end())) is None:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the guest agent closed the connection")
            data += chunk
    return int(match.group(1)), data[start.end():match.start()].decode(errors="replace")


def main(argv: list[str]) -> int:
    """``python -m stackvol.virt.guest_image DIR [raw|qcow2]``: build the guest into DIR
    (and, with a format, its bootable disk image); progress on stderr, one line on failure."""
    if len(argv) not in (1, 2) or argv[0].startswith("-"):
        print("usage: python -m stackvol.virt.guest_image DIR [raw|qcow2]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if len(argv) == 2:
            check_prerequisites(disk=True)
        print(ensure(Path(argv[0])))
        if len(argv) == 2:  # also the bootable disk image, e.g. to upload to the Image service
            print(boot_disk(Path(argv[0]), argv[1]))
    except (GuestImageError, OSError) as exc:
        print(f"guest_image: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
