"""The test tree's own layout: test modules import helpers from tests/support (or get fixtures
from a conftest), never from another test module, so each one can move, split or run alone."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
TEST_PACKAGES = ("tests.functional", "tests.unit")


def package_of(path: Path) -> str:
    """``tests/functional/test_x.py`` -> ``tests.functional``."""
    return ".".join(path.relative_to(TESTS.parent).parent.parts)


def imported_modules(source: str, package: str) -> Iterator[str]:
    """Every module the source imports (as absolute names; relative imports resolved against
    ``package``), and for ``from M import N`` also ``M.N``, which may be a module too."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            if not node.level:
                module = node.module or ""
            else:
                module = f"{base}.{node.module}" if node.module else base
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def is_test_module(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in TEST_PACKAGES)


def test_no_module_under_tests_imports_a_test_module() -> None:
    offenders = sorted({f"{path.relative_to(TESTS.parent)} imports {module}"
                        for path in TESTS.rglob("*.py")
                        for module in imported_modules(path.read_text(), package_of(path))
                        if is_test_module(module)})
    assert not offenders, ("move shared helpers to tests/support (fixtures to a conftest):\n"
                           + "\n".join(offenders))


@pytest.mark.parametrize(("source", "caught"), [
    ("import tests.functional.test_servers", True),
    ("from tests.functional.test_servers import IMAGE", True),
    ("from tests.unit import test_test_layout", True),
    ("from tests import functional", True),
    ("from .test_servers import IMAGE", True),
    ("from ..unit.test_test_layout import TESTS", True),
    ("from ..support.servers import IMAGE", False),
    ("from tests.support.volumes import new_volume", False),
    ("import httpx", False),
])
def test_the_scan_sees_every_form_of_import(source: str, caught: bool) -> None:
    found = list(imported_modules(source, "tests.functional"))
    assert any(is_test_module(module) for module in found) is caught, found
