"""Fixtures shared by both tiers, every one lazy: nothing here runs unless a test asks for it.

The real stackvol server (one per test session, on a loopback port) and the clients on it serve
the functional tier (tests/functional); the unit tier (tests/unit) asks for none of them, so it
runs without a server process. What every functional test needs regardless (the PostgreSQL
cluster of a PostgreSQL run) is in tests/functional/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ceph as ceph_cluster
from tests.support import postgres
from tests.support.clients import cinder, image_client
from tests.support.identity_helpers import identity
from tests.support.server import StackvolProcess, running

# Nova's API samples the tests compare with, vendored (see tests/support/samples/README.md).
SAMPLES = Path(__file__).resolve().parent / "support" / "samples"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackvolProcess]:
    with running(tmp_path_factory.mktemp("stackvol") / "data") as proc:
        yield proc


@pytest.fixture(scope="session")
def admin(server: StackvolProcess) -> Iterator[httpx.Client]:
    with server.client("admin") as client:
        yield client


@pytest.fixture(scope="session")
def demo(server: StackvolProcess) -> Iterator[httpx.Client]:
    with server.client("demo") as client:
        yield client


@pytest.fixture(scope="module")
def vadmin(server: StackvolProcess) -> Iterator[httpx.Client]:
    """The admin on the Block Storage face (newest microversion, project in the path)."""
    with cinder(server, "admin") as client:
        yield client


@pytest.fixture(scope="module")
def vdemo(server: StackvolProcess) -> Iterator[httpx.Client]:
    """The demo member on the Block Storage face."""
    with cinder(server, "demo") as client:
        yield client


@pytest.fixture(scope="module")
def keystone(server: StackvolProcess) -> Iterator[httpx.Client]:
    """The admin on the Identity v3 API (to make projects, users and grants)."""
    token, _ = server.token("admin")
    with identity(server, token) as client:
        yield client


@pytest.fixture(scope="module")
def glance(server: StackvolProcess) -> Iterator[httpx.Client]:
    """The admin on the Image service (paths start with the version, ``/v2/...``)."""
    token, _ = server.token("admin")
    with image_client(server, token) as client:
        yield client


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.exists():
        pytest.fail(f"Nova's API samples are missing at {SAMPLES}")
    return SAMPLES


@pytest.fixture(scope="session")
def ceph() -> Iterator[ceph_cluster.CephCluster]:
    """A private single-node Ceph cluster (tests/support/ceph.py), started on first use; skips where
    Ceph is not installed."""
    yield ceph_cluster.cluster_or_skip()
    ceph_cluster.stop_shared_cluster()


def pytest_report_header() -> str:
    return f"stackvol database: {'postgresql' if postgres.wanted() else 'sqlite'}"
