"""``python -m denoise_bench.report SWEEP_DIR... --out results/NAME [--table NAME ...]``

Rebuilds tables and figures from the cells' stored outputs (nothing is recomputed):
- the sweep table (``sweep_table.md/.csv/.tex``: rows method, columns sigma);
- each paper table (``<name>.md/.tex/.csv/.long.csv``): the ``--table`` names, else the names in the
  cells' ``report.tables``;
- next to each table, ``<table>.comparisons.md/.csv``: every pair of our methods it ranks, with the
  paired bootstrap CI and Wilcoxon p behind its bold marks;
- ``--channels y`` (or ``both``, sweep table only): Y-channel PSNR/SSIM; ``--timing on|off``: the
  seconds-per-image and peak-memory columns of the sweep table (default: when the cells recorded them);
- ``figures/*.png|pdf``; ``PROVENANCE.md`` (command, date, commit, scale, machine: kept out of the
  tables so that these are byte-for-byte reproducible).
``--store-cells DIR`` first copies the cells' small outputs to DIR (results/cells/<sweep>) and builds
from that copy, so that ``python -m denoise_bench.report DIR --out ...`` regenerates the same bytes.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    from denoise_bench.report.paper_tables import TABLES

    p = argparse.ArgumentParser(prog="python -m denoise_bench.report",
                                description="Rebuild tables and figures from stored cell outputs (no recomputation).")
    p.add_argument("sweep_dirs", nargs="+", help="sweep dirs (multirun/NAME) or stored cells (results/cells/NAME)")
    p.add_argument("--out", required=True, help="output dir, e.g. results/NAME")
    p.add_argument("--table", action="append", choices=sorted(TABLES), metavar="NAME",
                   help=f"paper table to build (repeatable; default: the cells' report.tables). One of: {', '.join(sorted(TABLES))}")
    p.add_argument("--all-tables", action="store_true", help="build every paper table")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.add_argument("--store-cells", metavar="DIR", help="copy the cells' outputs to DIR first and build from the copy")
    p.add_argument("--channels", choices=["rgb", "y", "both"], default="rgb",
                   help="PSNR/SSIM on all channels (rgb), on the Y channel (y) or both (sweep table; paper tables: y)")
    p.add_argument("--timing", choices=["auto", "on", "off"], default="auto",
                   help="s/img (median) and peak MB columns in the sweep table (auto: when the cells recorded them)")
    return p.parse_args(argv)


def tables_of(cells) -> list[str]:
    """The paper tables the cells' experiments ask for (config ``report.tables``), first-seen order."""
    names = []
    for c in cells:
        for n in (c.get("report.tables") or []):
            if str(n) not in names:
                names.append(str(n))
    return names


def main(argv=None) -> int:
    args = parse_args(argv)
    dirs = [Path(d) for d in args.sweep_dirs]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        print(f"error: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    from denoise_bench.report.cells import load_cells
    from denoise_bench.report.paper_tables import TABLES, build_table
    from denoise_bench.report.sweep_table import sweep_table, write_table_files
    if args.store_cells:
        from denoise_bench.report.store import store_cells

        n = store_cells(dirs, args.store_cells)
        print(f"[report] stored {n} cells under {args.store_cells}")
        dirs = [Path(args.store_cells)]
    cells = load_cells(*dirs)
    names = sorted(TABLES) if args.all_tables else (args.table or tables_of(cells))
    if not cells and not names:
        print(f"error: no finished cells (metrics.json) under {', '.join(map(str, dirs))}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if cells:
        timing = {"auto": None, "on": True, "off": False}[args.timing]
        write_table_files(sweep_table(cells, args.channels, timing), out, stem="sweep_table")
        written.append(out / "sweep_table.md")
    paper_channels = "y" if args.channels == "y" else "rgb"
    for name in names:
        written += build_table(name, dirs, out_dir=out, quiet=True, channels=paper_channels)[:1]
    figures = []
    if not args.no_figures and cells:
        from denoise_bench.report.figures import build_figures

        figures = build_figures(cells, out / "figures")
    command = "python -m denoise_bench.report " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    from denoise_bench.report.readme import write_provenance, update_index

    options = [a for a, on in ((f"--channels {args.channels}", args.channels != "rgb"),
                                (f"--timing {args.timing}", args.timing != "auto")) if on]
    write_provenance(out, command, dirs, cells, [p.name for p in written], [p.name for p in figures], options)
    update_index(out.parent)
    for p in written:
        print(f"[report] {p}")
    print(f"[report] {len(figures)} figure files in {out / 'figures'}; provenance in {out / 'PROVENANCE.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
