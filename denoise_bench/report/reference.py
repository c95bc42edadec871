"""The papers' published numbers (``reference_numbers.yaml``), flattened for table building.

The YAML nests each table's values in the order of its ``keys``; ``values(name)`` flattens that to
``{(k1, k2, ...): Ref(mean, std)}`` and drops the entries the paper leaves empty ("—").
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

REFERENCE_FILE = Path(__file__).with_name("reference_numbers.yaml")


@dataclass(frozen=True)
class Ref:
    """One published number: the mean the paper prints and, when it prints one, its ± std."""

    mean: float
    std: float | None = None


@lru_cache(maxsize=1)
def load() -> dict:
    return yaml.safe_load(REFERENCE_FILE.read_text())


def table_info(name: str) -> dict:
    """The table's source fields (paper, table, metric, units, sigma convention, protocol)."""
    tables = load()["tables"]
    if name not in tables:
        raise KeyError(f"no reference entry for table {name!r}; known: {', '.join(sorted(tables))}")
    return tables[name]


def paper_info(name: str) -> dict | None:
    """The paper (citation, url, seed file) a table comes from; None for our own tables."""
    key = table_info(name).get("paper")
    return load()["papers"][key] if key else None


def _flatten(node, prefix: tuple, depth: int, out: dict) -> None:
    if depth == 0:
        if node is None:
            return  # the paper prints "—"
        if isinstance(node, (list, tuple)):
            out[prefix] = Ref(float(node[0]), float(node[1]))
        else:
            out[prefix] = Ref(float(node))
        return
    for key, child in node.items():
        _flatten(child, prefix + (str(key),), depth - 1, out)


def values(name: str) -> dict[tuple[str, ...], Ref]:
    """``{(key1, key2, ...): Ref}`` for the table, keys as strings in the order of its ``keys``."""
    info = table_info(name)
    out: dict = {}
    if info.get("keys"):
        _flatten(info["values"], (), len(info["keys"]), out)
    return out


def source_line(name: str) -> str:
    """'Paper: <cite>, <table>; <metric units>; noise: <sigma convention>.' for captions."""
    info, paper = table_info(name), paper_info(name)
    if paper is None:
        return "No published numbers (ours only)."
    return f"Paper numbers: {paper['cite']}, {info['table']}. Paper noise convention: {' '.join(str(info['sigma']).split())}."
