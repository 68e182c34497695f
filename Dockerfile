# stackvol in a container: `stackvol serve` on port 8774, state in the /data volume.
#   docker build -t stackvol .
#   docker run --rm -p 8774:8774 -v stackvol-data:/data stackvol
# The compute driver is the simulated one (no libvirt daemon in the container); clouds.yaml
# and the bootstrap credentials are written to /data (docker cp, or mount a host directory).
FROM debian:12-slim

# qemu-utils: qcow2 volumes and images; busybox-static, cpio, syslinux, mtools, dosfstools:
# the built-in guest image, built on first download. Debian's stable versions, not pinned (an
# exact version leaves the mirror with the next point release).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv qemu-utils busybox-static cpio syslinux mtools dosfstools \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/stackvol
COPY pyproject.toml constraints.txt README.md ./
COPY stackvol ./stackvol
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /data --create-home stackvol

USER 10001
VOLUME ["/data"]
EXPOSE 8774
ENV PATH=/opt/venv/bin:$PATH \
    STACKVOL_DATA_DIR=/data \
    STACKVOL_HOST=0.0.0.0 \
    STACKVOL_COMPUTE_DRIVER=simulated \
    STACKVOL_LOG_FORMAT=json
HEALTHCHECK --interval=30s --timeout=5s CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8774/healthcheck', timeout=4)"]
ENTRYPOINT ["stackvol"]
CMD ["serve"]
