"""Table of the budget pilot (benchmarks/budget_pilot.sh): per candidate, steps, training seconds and the
validation PSNR at the end of its curve (and the best along it)."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate


def main(folder: str) -> None:
    rows = []
    for cell in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        curves = sorted(cell.glob("curve_*.csv"))
        if not curves:
            rows.append([cell.name, "-", "-", "-", "-"])
            continue
        c = pd.read_csv(curves[0])
        val = c.dropna(subset=["val_psnr"])
        rows.append([cell.name, int(c.step.max()), f"{c.seconds.max():.0f}",
                     f"{val.val_psnr.iloc[-1]:.2f}" if len(val) else "-",
                     f"{val.val_psnr.max():.2f}" if len(val) else "-"])
    print(tabulate(rows, headers=["candidate", "steps", "train s", "last val PSNR", "best val PSNR"],
                   tablefmt="github"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "multirun/budget_pilot")
