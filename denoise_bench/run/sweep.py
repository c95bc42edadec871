"""A sweep never stops at a failing cell: cells record their outcome, the sweep counts them at the end.

Each invocation gets an id (``DENOISE_BENCH_SWEEP_ID``, inherited by launcher workers); every cell
writes ``outcome.json`` with it (``folder.py``). When the multirun ends, ``SweepOutcomeCallback``
counts this invocation's outcomes, adds the failed cells to the sweep table, prints a one-line
summary and sets the exit status that ``entry.main`` returns (non-zero when a cell failed).
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from hydra.experimental.callback import Callback

from denoise_bench.run.folder import SWEEP_ID_ENV, read_json

exit_status = 0


def outcomes(sweep_dir: Path, sweep_id: str | None) -> dict[str, list[tuple[Path, dict]]]:
    found: dict[str, list] = {"done": [], "skipped": [], "failed": []}
    for p in sorted(Path(sweep_dir).rglob("outcome.json")):
        o = read_json(p) or {}
        if sweep_id is None or o.get("sweep") == sweep_id:
            found.setdefault(o.get("status", "failed"), []).append((p.parent, o))
    return found


class SweepOutcomeCallback(Callback):
    def on_multirun_start(self, config, **kwargs) -> None:
        global exit_status
        exit_status = 0
        os.environ[SWEEP_ID_ENV] = uuid.uuid4().hex

    def on_multirun_end(self, config, **kwargs) -> None:
        global exit_status
        sweep_dir = Path(config.hydra.sweep.dir)
        found = outcomes(sweep_dir, os.environ.get(SWEEP_ID_ENV))
        failed = found["failed"]
        if failed:
            lines = ["", f"**Failed cells ({len(failed)})** — see each folder's error.json:", ""]
            lines += [f"- `{d.relative_to(sweep_dir) if d != sweep_dir else '.'}`: FAILED — {o.get('message', '?')}"
                      for d, o in failed]
            table = sweep_dir / "table.md"
            if table.exists():
                from denoise_bench.atomic import atomic_write_text

                atomic_write_text(table, table.read_text().rstrip("\n") + "\n" + "\n".join(lines) + "\n")
            print("\n".join(lines))
            (sweep_dir / "failed.json").write_text(json.dumps(
                [{"cell": str(d), **o} for d, o in failed], indent=2, default=str))
        else:
            (sweep_dir / "failed.json").unlink(missing_ok=True)
        summary = (f"[sweep] {sweep_dir}: {len(found['done'])} done, {len(found['skipped'])} skipped, "
                   f"{len(failed)} failed")
        print(summary, flush=True)
        exit_status = 1 if failed else 0


class OutputFolderCheck(Callback):
    """Before Hydra creates the run / sweep folder: an unwritable one is a one-line error, not a traceback."""

    @staticmethod
    def _check(folder) -> None:
        from denoise_bench.run.entry import one_line

        try:
            Path(str(folder)).mkdir(parents=True, exist_ok=True)
            probe = Path(str(folder)) / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            import sys

            print(f"error: {one_line(e)}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    def on_run_start(self, config, **kwargs) -> None:
        self._check(config.hydra.run.dir)

    def on_multirun_start(self, config, **kwargs) -> None:
        self._check(config.hydra.sweep.dir)
