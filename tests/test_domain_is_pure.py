"""The domain package imports no Django and no database driver (import-linter checks it in CI
too; this test keeps the rule in the test suite a newcomer runs)."""

from __future__ import annotations

import ast
from pathlib import Path

import estafeta.domain

FORBIDDEN = ("django", "psycopg", "rest_framework")
DOMAIN = Path(estafeta.domain.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_domain_package_imports_no_django() -> None:
    files = sorted(DOMAIN.glob("*.py"))
    assert len(files) > 5
    for path in files:
        for name in imported_modules(path):
            root = name.split(".")[0]
            assert root not in FORBIDDEN, f"{path.name} imports {name}"
            assert not (root == "estafeta" and not name.startswith("estafeta.domain")), (
                f"{path.name} imports {name}")
