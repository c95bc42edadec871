"""Summary of a gpu_paper_check.sh cell: steps/s, peak GPU memory, PSNR; copies the cell's files.

    python benchmarks/gpu_paper_summary.py CELL_DIR OUT_DIR
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def main(cell: Path, out: Path) -> dict:
    m = json.loads((cell / "metrics.json").read_text())
    (fdn,) = [a for a in m["artifacts"] if a["kind"] == "fdn"]
    meta = json.loads((Path(fdn["path"]) / "meta.json").read_text())
    seconds = meta.get("training_seconds") or meta["seconds"]
    summary = {
        "device": (m.get("provenance") or {}).get("gpu") or (m.get("provenance") or {}).get("cpu"),
        "parameters": m["parameters"],
        "steps": meta["steps"],
        "training_seconds": round(seconds, 1),
        "steps_per_second": round(meta["steps"] / seconds, 2),
        "budget_minutes": meta.get("budget_minutes"),
        "peak_train_memory_mb": round((meta.get("peak_memory") or {}).get("bytes", 0) / 2**20, 1),
        "peak_test_memory_mb": round(m["peak_memory"]["bytes"] / 2**20, 1),
        "memory_kind": m["peak_memory"]["kind"],
        "n_images": m["n_images"],
        "psnr": round(m["psnr"]["mean"], 3),
        "ssim": round(m["ssim"]["mean"], 4),
        "test_seconds_per_image_median": m["timing"]["seconds_per_image_median"],
        "sigma": m["sigma"],
        "test_set": m["test_set"],
        "commit": (m.get("provenance") or {}).get("commit"),
        "versions": (m.get("provenance") or {}).get("versions"),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.json", "per_image.csv", "curve_fdn.csv", "samples.png"):
        if (cell / name).exists():
            shutil.copyfile(cell / name, out / name)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k, v in summary.items():
        if k != "versions":
            print(f"{k:32s} {v}")
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
