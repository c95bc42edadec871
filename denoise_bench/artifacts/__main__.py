"""``python -m denoise_bench.artifacts list|clear [--kind K] [--root DIR]``: see or delete trained models.

The default root is the config's ``paths.artifacts`` default: ``$DENOISE_BENCH_ARTIFACTS`` or
``./artifacts``. ``list --verify`` re-checks every checksum; ``clear`` removes artifacts (and the
folders moved aside as corrupt) so the next sweep retrains them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from denoise_bench.artifacts.store import ArtifactStore


def default_root() -> str:
    return os.environ.get("DENOISE_BENCH_ARTIFACTS", "artifacts")  # = conf/paths/default.yaml


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _summary(meta: dict) -> str:
    """A few identifying key values: data, training noise, steps."""
    c = meta.get("config") or {}
    data = (c.get("data") or {}).get("name")
    noise = (c.get("noise") or {}).get("sigma")
    method = c.get("method") or {}
    parts = [f"data={data}" if data else "", f"sigma={noise}" if noise is not None else "",
             f"steps={method.get('train_steps')}" if isinstance(method, dict) and method.get("train_steps") else "",
             f"seed={c.get('seed')}" if "seed" in c else ""]
    return " ".join(p for p in parts if p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m denoise_bench.artifacts",
                                     description="List or clear the trained models shared by sweep cells.")
    parser.add_argument("action", choices=["list", "clear"])
    parser.add_argument("--kind", default=None, help="only this kind (method or prior name, e.g. dncnn, glow_prior)")
    parser.add_argument("--root", default=None, help="store folder (default: $DENOISE_BENCH_ARTIFACTS or ./artifacts)")
    parser.add_argument("--verify", action="store_true", help="list: re-check each checksum")
    parser.add_argument("--json", action="store_true", help="list: one JSON object per line")
    args = parser.parse_args(argv)

    store = ArtifactStore(args.root or default_root())
    if args.action == "clear":
        n = store.clear(args.kind)
        what = f"{args.kind} artifacts" if args.kind else "artifacts"
        print(f"removed {n} {what} from {store.root}")
        return 0

    entries = store.entries(args.kind, verify=args.verify)
    if args.json:
        for e in entries:
            print(json.dumps(e, default=str))
        return 0
    if not entries:
        print(f"no artifacts in {store.root}" + (f" of kind {args.kind}" if args.kind else ""))
        return 0
    rows = [(e["kind"], e["key"], _size(e["bytes"]), e["status"], str(e.get("created", "")),
             f"{e['seconds']:.0f}s" if isinstance(e.get("seconds"), (int, float)) else "", _summary(e))
            for e in entries]
    header = ("KIND", "KEY", "SIZE", "STATUS", "CREATED", "TRAIN", "CONFIG")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    total = sum(e["bytes"] for e in entries)
    print(f"{len(entries)} artifacts, {_size(total)} in {store.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
