"""The exporter runs on old Windows machine PCs: Python 3.9 syntax, its four dependencies, nothing else."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT
# The exporter's install: its own package and the shared module it carries.
MODULES = sorted([*(ROOT / "exporter").rglob("*.py"), *(ROOT / "millwatch_common").rglob("*.py")])
ALLOWED_THIRD_PARTY = {"prometheus_client", "serial", "psutil", "ruamel"}
# Optional extras (millwatch[bcrypt]): imported only inside the function that needs them, never at
# module level, so that the base install starts without them.
OPTIONAL_EXTRAS = {"bcrypt"}
# Standard-library modules that only exist or only behave from 3.10 on.
OWN_PACKAGES = ("exporter", "millwatch_common", "__future__")
NEWER_STDLIB = {"tomllib", "zoneinfo._tzpath"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_python_39_compatible(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path), feature_version=(3, 9))
    body = [
        node
        for node in tree.body
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    ]
    if body:  # an empty __init__ needs nothing
        first = body[0]
        assert isinstance(first, ast.ImportFrom) and first.module == "__future__", (
            f"{path.name}: `from __future__ import annotations` must come first"
        )
    for node in ast.walk(tree):
        assert not isinstance(node, getattr(ast, "Match", ())), (
            f"{path.name}:{node.lineno}: match needs Python 3.10"
        )
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("isinstance", "issubclass"):
            for arg in node.args[1:]:
                assert not (isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.BitOr)), (
                    f"{path.name}:{node.lineno}: isinstance(x, A | B) needs Python 3.10"
                )
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "zip":
            assert not any(k.arg == "strict" for k in node.keywords), f"{path.name}: zip(strict=) is 3.10+"


@pytest.mark.skipif(sys.version_info < (3, 10), reason="needs sys.stdlib_module_names (Python 3.10+)")
@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_the_exporter_dependencies(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    stdlib = set(sys.stdlib_module_names)
    top_level = set(tree.body)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            assert name not in NEWER_STDLIB, f"{path.name}: {name}"
            if top in OPTIONAL_EXTRAS and node not in top_level:
                continue
            assert top in stdlib or top in ALLOWED_THIRD_PARTY or top in OWN_PACKAGES, (
                f"{path.name} imports {name}: the exporter may only use the standard library and "
                f"{', '.join(sorted(ALLOWED_THIRD_PARTY))} (and never scraper/server)"
            )
