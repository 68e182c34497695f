"""Which package may import which, read from the source (every ``import`` statement, at any
depth, type-only ones too): a forbidden import fails here before it grows into a cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import stackvol

PACKAGE = Path(stackvol.__file__).resolve().parent
FACES = ("compute", "compute_legacy", "block_storage", "image", "identity")
# The legacy face serves Nova's v2 API with the v2.1 face's endpoints, schemas and views (as
# Nova itself does): it may import the compute face, never the reverse. Everything faces share
# beyond that lives in the shared modules of stackvol/http/.
ADAPTS = {"compute_legacy": {"compute"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> Iterator[str]:
    """Every module name ``path`` imports; ``from a import b`` names ``a.b`` too, since ``b``
    may be a module."""
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(folder: str, forbidden: set[str]) -> list[str]:
    """``file: module`` for each import below ``stackvol/<folder>`` of a module under one of
    the ``forbidden`` prefixes."""
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for module in sorted(set(_imported(path))):
            if any(_under(module, prefix) for prefix in forbidden):
                found.append(f"{path.relative_to(PACKAGE.parent)}: {module}")
    return found


@pytest.mark.parametrize("face", FACES)
def test_a_face_imports_no_other_face(face: str) -> None:
    others = {f"stackvol.http.{other}" for other in FACES
              if other != face and other not in ADAPTS.get(face, set())}
    assert violations(f"http/{face}", others) == []


def test_every_face_is_checked() -> None:
    # A new package below http/ is a face (add it to FACES) or shared code (then say so here).
    on_disk = {p.parent.name for p in (PACKAGE / "http").glob("*/__init__.py")}
    assert on_disk == set(FACES)


@pytest.mark.parametrize("folder", ["virt", "storage"])
def test_drivers_import_neither_http_nor_services(folder: str) -> None:
    assert violations(folder, {"stackvol.http", "stackvol.services"}) == []


def test_db_imports_no_services_http_or_tasks() -> None:
    assert violations("db", {"stackvol.services", "stackvol.http", "stackvol.tasks"}) == []


def test_services_import_no_http() -> None:
    assert violations("services", {"stackvol.http"}) == []


def test_the_scan_sees_imports() -> None:
    # The rules above pass vacuously if the scan finds nothing: it must see a known edge.
    assert "stackvol.http.compute.views.volumes" in set(
        _imported(PACKAGE / "http/compute_legacy/views/volumes.py"))
