"""Imports run one way only: phantoms <- simulate <- models <- trials."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["phantoms", "simulate", "models", "trials"]


def imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.split(".")[1] for n in names if n.startswith("spectrial.") and n.count(".") >= 1}


@pytest.mark.parametrize("package", ORDER)
def test_imports_only_point_down_the_stack(package):
    allowed = set(ORDER[: ORDER.index(package) + 1])
    for path in (ROOT / package).rglob("*.py"):
        wrong = imported_packages(path) - allowed
        assert not wrong, f"{path.relative_to(ROOT)} imports spectrial.{sorted(wrong)}"
