"""Floors: nothing below the runner imports the runner (``denoise_bench.run``), and the training floor
imports no method, so a method file can use it without a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "denoise_bench"
BELOW_THE_RUNNER = ["methods", "priors", "data", "models", "flows", "training", "artifacts", "report"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


@pytest.mark.parametrize("floor", BELOW_THE_RUNNER)
def test_nothing_below_the_runner_imports_it(floor):
    offenders = {str(p.relative_to(REPO)): sorted(m for m in imported_modules(p)
                                                  if m == "denoise_bench.run" or m.startswith("denoise_bench.run."))
                 for p in (PACKAGE / floor).rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_training_floor_imports_no_method():
    offenders = {str(p.relative_to(REPO)): sorted(m for m in imported_modules(p) if m.startswith("denoise_bench.methods"))
                 for p in (PACKAGE / "training").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_old_runner_is_gone():
    assert not (PACKAGE / "cli.py").exists() and not (PACKAGE / "ddp.py").exists()
