"""Shared fixtures: one real stackvol server per test session, on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ceph as ceph_cluster
from tests.support import postgres
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
    from tests.functional.test_cinder_api import cinder
    with cinder(server, "admin") as client:
        yield client


@pytest.fixture(scope="module")
def vdemo(server: StackvolProcess) -> Iterator[httpx.Client]:
    """The demo member on the Block Storage face."""
    from tests.functional.test_cinder_api import cinder
    with cinder(server, "demo") as client:
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


@pytest.fixture(scope="session", autouse=True)
def database_cluster() -> Iterator[None]:
    """On a PostgreSQL run, one private cluster serves every test server's database."""
    if postgres.wanted():
        postgres.shared_cluster()
    yield
    postgres.stop_shared_cluster()
