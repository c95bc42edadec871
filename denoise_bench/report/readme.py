"""Provenance of a results dir (``PROVENANCE.md`` + ``provenance.json``) and the index of results/.

Provenance holds what must not be inside the tables (the report's date and command) next to what
the cells recorded (their commit, finish time, machine, scale), plus the sweep command reconstructed
from the cells' overrides. ``update_index`` rewrites the part of ``results/README.md`` between the
``report-index`` markers from every ``*/provenance.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

from denoise_bench.artifacts import atomic_write_text
from denoise_bench.report import provenance
from denoise_bench.report.cells import Cell

START, END = "<!-- report-index:start -->", "<!-- report-index:end -->"
SCALE_NOTE = {
    "smoke": "smoke scale: seconds-long runs for tests; the numbers mean nothing.",
    "quick": "quick scale: small models and short training on a 2-core CPU, a check of the pipeline. "
             "NOT the papers' scale: for every model trained here the 'ours' columns are not comparable to "
             "the 'paper' columns (training-free methods and published weights run the full test protocol).",
    "paper": "paper scale: the papers' hyperparameters.",
}


def sweep_command(cells: list[Cell]) -> str:
    """``python run.py -m name=... k=v1,v2 ...`` covering the cells' overrides (as a grid)."""
    keys: dict[str, list[str]] = {}
    for c in cells:
        for o in c.task_overrides:
            k, _, v = o.partition("=")
            keys.setdefault(k, [])
            if v not in keys[k]:
                keys[k].append(v)
    names = sorted({str(c.get("name")) for c in cells if c.get("name")})
    parts = ["python run.py -m"] + [f"name={n}" for n in names[:1] if "name" not in keys]
    parts += [f"{k}={','.join(v)}" for k, v in keys.items()]
    return " ".join(parts)


def _values(cells, fn) -> list[str]:
    return sorted({str(v) for v in map(fn, cells) if v})


def write_provenance(out: Path, command: str, sources: list[Path], cells: list[Cell],
                     tables: list[str], figures: list[str]) -> None:
    prov = [c.m.get("provenance") or {} for c in cells]
    scales = _values(cells, lambda c: c.m.get("scale"))
    info = {
        "report_command": command,
        "report_date": provenance.now(),
        "report_commit": provenance.git_commit(),
        "report_machine": provenance.machine(),
        "sources": [str(s) for s in sources],
        "n_cells": len(cells),
        "scale": scales,
        "cells_commit": sorted({p.get("commit") for p in prov if p.get("commit")}),
        "cells_finished": sorted(p.get("finished") for p in prov if p.get("finished")),
        "cells_machine": sorted({p.get("machine") for p in prov if p.get("machine")}),
        "sweep_command": sweep_command(cells) if cells else None,
        "tables": tables,
        "figures": figures,
    }
    paper_tables = [t.removesuffix(".md") for t in tables if t != "sweep_table.md"]
    info["regenerate"] = " ".join(["python -m denoise_bench.report", *map(str, sources), "--out", str(out)]
                                  + [f"--table {t}" for t in paper_tables])
    finished = info["cells_finished"]
    lines = [
        f"# Provenance of `{out.name}`", "",
        f"- Report command: `{command}`",
        f"- Regenerate (byte-identical tables and figures): `{info['regenerate']}`",
        f"- Report built: {info['report_date']} at commit {info['report_commit'] or 'unknown'}",
        f"- Cells: {len(cells)} from {', '.join(f'`{s}`' for s in info['sources'])}",
        f"- Sweep command (reconstructed from the cells' overrides, as a grid): `{info['sweep_command']}`",
        f"- Cells run at commit: {', '.join(info['cells_commit']) or 'unrecorded'}",
        f"- Cells finished: {finished[0] + ' … ' + finished[-1] if finished else 'unrecorded'}",
        f"- Machine: {'; '.join(info['cells_machine']) or 'unrecorded'}",
        f"- Scale: {', '.join(scales) or 'unrecorded'}",
    ]
    lines += [f"  - {SCALE_NOTE[s]}" for s in scales if s in SCALE_NOTE]
    lines += ["", "Tables: " + (", ".join(f"[{t}]({t})" for t in tables) or "none"),
              "", "Figures: " + (", ".join(f"[{f}](figures/{f})" for f in figures if f.endswith(".png")) or "none"),
              "", "Tables and figures are rebuilt byte for byte from the stored cells by the Regenerate command; "
                  "this file (dates, commands) is the only part that changes between rebuilds.", ""]
    atomic_write_text(out / "PROVENANCE.md", "\n".join(lines))
    atomic_write_text(out / "provenance.json", json.dumps(info, indent=2) + "\n")


def update_index(results: Path) -> bool:
    """Rewrite the index between the markers of ``results/README.md``; False when there is none."""
    readme = Path(results) / "README.md"
    if not readme.exists():
        return False
    text = readme.read_text()
    if START not in text or END not in text:
        return False
    rows = ["| results | tables | cells | scale | cells' commit | report built | report command |",
            "|---|---|---|---|---|---|---|"]
    for p in sorted(Path(results).glob("*/provenance.json")):
        info = json.loads(p.read_text())
        d = p.parent.name
        tables = ", ".join(f"[{t.rsplit('.', 1)[0]}]({d}/{t})" for t in info.get("tables", []))
        rows.append(f"| [{d}]({d}/PROVENANCE.md) | {tables} | {info.get('n_cells')} | {', '.join(info.get('scale') or [])} "
                    f"| {', '.join(info.get('cells_commit') or []) or 'unrecorded'} | {info.get('report_date')} "
                    f"| `{info.get('report_command')}` |")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    atomic_write_text(readme, head + START + "\n" + "\n".join(rows) + "\n" + END + tail)
    return True
