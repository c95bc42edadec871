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


def _count(n: int) -> str:
    return f"{n} cell{'s' if n != 1 else ''}"


def version_table(prov: list[dict]) -> dict[str, dict[str, int]]:
    """{package: {version: number of cells}} over the cells that recorded versions."""
    out: dict[str, dict[str, int]] = {}
    for p in prov:
        for name, v in (p.get("versions") or {}).items():
            out.setdefault(name, {})
            out[name][str(v) if v else "not installed"] = out[name].get(str(v) if v else "not installed", 0) + 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def weights_table(cells: list[Cell]) -> list[dict]:
    """One line per (role, file, sha256) read by the cells, with the cells that read it."""
    found: dict[tuple, list[str]] = {}
    for c in cells:
        for role, w in sorted(((c.m.get("provenance") or {}).get("weights") or {}).items()):
            found.setdefault((role, str(w.get("path")), w.get("sha256")), []).append(c.rel)
    return [{"role": r, "path": p, "sha256": h, "cells": cs} for (r, p, h), cs in sorted(found.items(), key=str)]


def machines_table(cells: list[Cell]) -> list[dict]:
    """One line per (CPU model, GPU, torch threads) the cells ran on (cells before these keys: skipped)."""
    found: dict[tuple, int] = {}
    for c in cells:
        p = c.m.get("provenance") or {}
        if "cpu" in p or "gpu" in p or "threads" in p:
            key = (str(p.get("cpu") or "unrecorded"), str(p.get("gpu") or "no GPU"), str(p.get("threads") or "?"))
            found[key] = found.get(key, 0) + 1
    return [{"cpu": k[0], "gpu": k[1], "threads": k[2], "cells": n} for k, n in sorted(found.items())]


def provenance_sections(cells: list[Cell], info: dict) -> list[str]:
    """Markdown: library versions, commits (with the dirty flag), weights with hashes, machines."""
    from denoise_bench.report.provenance import commit_of

    lines = ["", "## Library versions", ""]
    if info["cells_versions"]:
        lines += ["| package | version (cells) |", "|:---|:---|"]
        lines += [f"| {name} | {'; '.join(f'{v} ({_count(n)})' for v, n in vs.items())} |"
                  for name, vs in info["cells_versions"].items()]
    else:
        lines.append("Unrecorded (cells written before versions were stored).")
    commits: dict[tuple, int] = {}
    for c in cells:
        key = commit_of(c.m.get("provenance") or {})
        commits[key] = commits.get(key, 0) + 1
    lines += ["", "## Commits", "", "| commit | dirty (uncommitted changes to tracked files) | cells |",
              "|:---|:---|---:|"]
    lines += [f"| {k[0] or 'unrecorded'} | {'unrecorded' if k[1] is None else 'yes' if k[1] else 'no'} | {n} |"
              for k, n in sorted(commits.items(), key=str)]
    lines += ["", "## Weights read", ""]
    if info["cells_weights"]:
        lines += ["| role | file | sha256 | cells |", "|:---|:---|:---|---:|"]
        lines += [f"| {w['role']} | `{w['path']}` | `{w['sha256'] or 'unreadable'}` | {len(w['cells'])} |"
                  for w in info["cells_weights"]]
    else:
        lines.append("None recorded (no cell read a weights file, or the cells predate weight hashes).")
    lines += ["", "## Machines", ""]
    if info["cells_machines"]:
        lines += ["| CPU | GPU | torch threads | cells |", "|:---|:---|---:|---:|"]
        lines += [f"| {m['cpu']} | {m['gpu']} | {m['threads']} | {m['cells']} |" for m in info["cells_machines"]]
    else:
        lines.append("CPU / GPU / threads unrecorded; see Machine above.")
    return lines


def _values(cells, fn) -> list[str]:
    return sorted({str(v) for v in map(fn, cells) if v})


def write_provenance(out: Path, command: str, sources: list[Path], cells: list[Cell],
                     tables: list[str], figures: list[str], options: list[str] | None = None) -> None:
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
        "cells_commit": sorted({provenance.commit_label(p) for p in prov if p.get("commit")}),
        "cells_finished": sorted(p.get("finished") for p in prov if p.get("finished")),
        "cells_machine": sorted({p.get("machine") for p in prov if p.get("machine")}),
        "cells_versions": version_table(prov),
        "cells_weights": weights_table(cells),
        "cells_machines": machines_table(cells),
        "sweep_command": sweep_command(cells) if cells else None,
        "tables": tables,
        "figures": figures,
    }
    paper_tables = [t.removesuffix(".md") for t in tables if t != "sweep_table.md"]
    info["regenerate"] = " ".join(["python -m denoise_bench.report", *map(str, sources), "--out", str(out)]
                                  + [f"--table {t}" for t in paper_tables] + list(options or []))
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
    pairs = [f"{t.removesuffix('.md')}.comparisons.md" for t in tables]
    pairs = [f for f in pairs if (out / f).exists()]
    lines += ["", "Tables: " + (", ".join(f"[{t}]({t})" for t in tables) or "none"),
              "", "Paired comparisons behind the tables' bold marks: " + (", ".join(f"[{f}]({f})" for f in pairs)
                                                                        or "none"),
              "", "Figures: " + (", ".join(f"[{f}](figures/{f})" for f in figures if f.endswith(".png")) or "none")]
    lines += provenance_sections(cells, info)
    lines += ["", "Tables and figures are rebuilt byte for byte from the stored cells by the Regenerate command; "
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
