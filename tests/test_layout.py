"""The house rules that keep the layers apart (docs/design.md, "Topology and ownership")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _product_modules() -> list[Path]:
    return [
        path
        for folder in ("whatsapp", "pairing_site")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts
    ]


def test_nothing_outside_the_api_package_imports_from_it():
    api = ROOT / "whatsapp" / "api"
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imports(path) if m.startswith("whatsapp.api")
        )
        for path in _product_modules()
        if api not in path.parents
    }
    # pairing_site/urls.py mounts the API by name (include("whatsapp.api.urls")), not by import.
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_the_product_never_imports_the_emulator():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _product_modules()
        if any(m == "emulator" or m.startswith("emulator.") for m in _imports(path))
    ]
    assert offenders == []


def test_tests_import_no_helpers_from_conftest():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("*.py")
        if any(m.endswith("conftest") or m == "conftest" for m in _imports(path))
    ]
    assert offenders == []
