"""Method registry, read off the method files: ``methods/<name>.py`` holding a class whose ``name`` is
``<name>`` is the method ``<name>`` (its defaults: ``conf/method/<name>.yaml``). A new method is one
Python file and one YAML. The files are parsed, not imported, so the registry costs nothing; a method's
module is imported when it is used. ``order`` (a class attribute) places it in tables and figures."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

from denoise_bench.errors import ConfigError

NOT_METHODS = {"__init__", "base", "ensemble"}  # helper modules of this package


def _declared(path: Path) -> tuple[str, int] | None:
    """(class name, order) of the class in ``path`` whose ``name = "<file stem>"``."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            attrs = {t.id: stmt.value.value for stmt in node.body if isinstance(stmt, ast.Assign)
                     for t in stmt.targets if isinstance(t, ast.Name) and isinstance(stmt.value, ast.Constant)}
            if attrs.get("name") == path.stem:
                return node.name, int(attrs.get("order", 100))
    return None


def _discover() -> dict[str, str]:
    found = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem not in NOT_METHODS and (declared := _declared(path)):
            found.append((declared[1], path.stem, f"denoise_bench.methods.{path.stem}:{declared[0]}"))
    return {name: target for _, name, target in sorted(found)}


# name -> "module:Class", in table order
METHODS = _discover()


def method_class(name: str):
    if name not in METHODS:
        raise ConfigError(f"method {name!r}: unknown; choose one of {sorted(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)
