"""Which entries of a table are significantly best, and every paired comparison behind it.

A *group* is a set of our cells a table ranks against each other: the methods of one (dataset, σ)
row of a paper table, the rows of one σ column of the sweep table, the cells of a grid ablation.
Within a group, every pair is compared image by image (stats.py) and written to
``<table>.comparisons.md/.csv``; the best entry is marked bold only when it is significantly better
than the runner-up (stats.RULE), else it is marked "≈ runner-up" (a tie), and nothing is marked when
the two cannot be paired (different images or noise seeds; the comparisons file says why).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from denoise_bench.errors import DataError
from denoise_bench.report import stats
from denoise_bench.report.cells import Cell

METRICS = ("psnr", "ssim")
LABELS = {"psnr": "ΔPSNR", "ssim": "ΔSSIM", "psnr_y": "ΔPSNR-Y", "ssim_y": "ΔSSIM-Y", "mse": "ΔMSE",
          "mse100": "ΔMSE×100"}
DIGITS = {"psnr": 2, "ssim": 4, "psnr_y": 2, "ssim_y": 4, "mse100": 3}


@dataclass
class Group:
    names: tuple[str, ...]  # e.g. ("dataset", "σ")
    values: tuple[str, ...]  # e.g. ("celeba", "50")
    members: list[tuple[str, Cell]] = field(default_factory=list)  # (label, cell), table order

    def add(self, label: str, cell: Cell) -> None:
        if all(c.path != cell.path for _, c in self.members) and label not in (m for m, _ in self.members):
            self.members.append((label, cell))


@dataclass(frozen=True)
class Pair:
    group: Group
    a: str
    b: str
    diffs: dict  # metric -> stats.Diff (a − b); empty when not paired
    reason: str = ""  # why not compared


@dataclass(frozen=True)
class Verdict:
    """The mark of a group's best entry: significant (bold), tie (≈ runner-up) or untested (no mark)."""

    kind: str  # "significant" | "tie" | "untested"
    runner_up: str
    diff: stats.Diff | None = None
    reason: str = ""

    def suffix(self) -> str:
        return f" (≈ {self.runner_up})" if self.kind == "tie" else ""


def compare(groups: list[Group], metrics=METRICS) -> list[Pair]:
    """Every pair (i < j, table order) of every group with ≥ 2 members."""
    out = []
    for g in groups:
        for (la, ca), (lb, cb) in combinations(g.members, 2):
            try:
                diffs = {m: stats.paired_diff(ca, cb, m) for m in metrics}
                out.append(Pair(g, la, lb, diffs))
            except DataError as e:
                out.append(Pair(g, la, lb, {}, str(e)))
    return out


def verdict(candidates: list[tuple[object, str, float, Cell]], metric: str,
            higher: bool) -> tuple[object, Verdict] | None:
    """(key of the best candidate, its verdict against the runner-up); None with < 2 candidates.

    ``candidates``: (key, label, shown value, cell) in table order; ranking by the shown value, ties of
    the value broken by table order."""
    vals = [c for c in candidates if c[2] is not None and not (isinstance(c[2], float) and math.isnan(c[2]))]
    if len(vals) < 2:
        return None
    ranked = sorted(vals, key=lambda c: -c[2] if higher else c[2])
    (key, _, _, best), (_, runner_label, _, runner) = ranked[0], ranked[1]
    try:
        d = stats.paired_diff(best, runner, metric)
    except DataError as e:
        return key, Verdict("untested", runner_label, None, str(e))
    right_side = d.ci[0] > 0 if higher else d.ci[1] < 0
    return key, Verdict("significant" if d.significant and right_side else "tie", runner_label, d)


# -- rendering ---------------------------------------------------------------------------------------
def _fmt(x: float, digits: int, sign: bool = True) -> str:
    if x is None or math.isnan(x):
        return "—"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _fmt_p(p: float) -> str:
    return "NaN" if p is None or math.isnan(p) else f"{p:.2g}"


def _key_names(pairs: list[Pair]) -> list[str]:
    names: list[str] = []
    for p in pairs:
        for n in p.group.names:
            if n not in names:
                names.append(n)
    return names


def _key_values(p: Pair, names: list[str]) -> list[str]:
    given = dict(zip(p.group.names, p.group.values))
    return [given.get(n, "") for n in names]


def caption(channels: str = "rgb") -> str:
    y = " on the Y (luma) channel (per_image psnr_y/ssim_y)" if channels == "y" else ""
    return (f"Paired comparisons{y}: Δ = A − B, the mean over images of the per-image difference (every method "
            "sees the identical noisy image: noise seeded per image id; pairs need the same image ids and seed). "
            f"95% CI: percentile bootstrap over images, {stats.N_RESAMPLES:,} resamples, seed {stats.SEED}. "
            "p: two-sided Wilcoxon signed-rank (scipy, zero differences dropped); p = 1 when the two are identical "
            f"on every image; p = NaN when fewer than {stats.MIN_WILCOXON_N} differences are non-zero (the test "
            f"cannot reach 0.05). * = significant: {stats.RULE}.")


def to_markdown(pairs: list[Pair], title: str, metrics=METRICS, channels: str = "rgb") -> str:
    names = _key_names(pairs)
    header = [*names, "A", "B", "n"]
    for m in metrics:
        suffix = "-Y" if channels == "y" and not m.endswith("_y") else ""
        header += [f"{LABELS.get(m, m)}{suffix} [95% CI]", "p"]
    header.append("note")
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join(":---" if i < len(names) + 2 else "---:" for i in range(len(header) - 1)) + "|:---|"]
    for p in pairs:
        row = [*_key_values(p, names), p.a, p.b]
        if p.diffs:
            d0 = next(iter(p.diffs.values()))
            row.append(str(d0.n))
            notes = []
            for m in metrics:
                d = p.diffs[m]
                k = DIGITS.get(m, 4)
                star = "*" if d.significant else ""
                row += [f"{_fmt(d.mean, k)} [{_fmt(d.ci[0], k)}, {_fmt(d.ci[1], k)}]{star}", _fmt_p(d.p)]
                if d.note and d.note not in notes:
                    notes.append(d.note)
            row.append("; ".join(notes))
        else:
            row += ["—"] + ["—", "—"] * len(metrics) + [p.reason]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    if not pairs:
        lines.append("| " + " | ".join(["—"] * len(header)) + " |")
    lines += ["", caption(channels), ""]
    return "\n".join(lines)


def _num(x) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.6g}"


def to_csv(pairs: list[Pair], metrics=METRICS) -> str:
    names = _key_names(pairs)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = [*names, "method_a", "method_b", "n"]
    for m in metrics:
        header += [f"d_{m}", f"d_{m}_ci_low", f"d_{m}_ci_high", f"p_{m}", f"significant_{m}"]
    w.writerow(header + ["note"])
    for p in pairs:
        row = [*_key_values(p, names), p.a, p.b]
        if p.diffs:
            row.append(next(iter(p.diffs.values())).n)
            notes = []
            for m in metrics:
                d = p.diffs[m]
                row += [_num(d.mean), _num(d.ci[0]), _num(d.ci[1]), _num(d.p), int(d.significant)]
                if d.note and d.note not in notes:
                    notes.append(d.note)
            row.append("; ".join(notes))
        else:
            row += [""] + [""] * 5 * len(metrics) + [p.reason]
        w.writerow(row)
    return buf.getvalue()


def write(pairs: list[Pair], out_dir: str | Path, stem: str, title: str, metrics=METRICS,
          channels: str = "rgb") -> list[Path]:
    """``<stem>.comparisons.md`` and ``<stem>.comparisons.csv`` in ``out_dir``."""
    from denoise_bench.artifacts import atomic_write_text

    out_dir = Path(out_dir)
    files = {f"{stem}.comparisons.md": to_markdown(pairs, title, metrics, channels),
             f"{stem}.comparisons.csv": to_csv(pairs, metrics)}
    for name, text in files.items():
        atomic_write_text(out_dir / name, text)
    return [out_dir / n for n in files]


# -- paper tables ------------------------------------------------------------------------------------
def _member(block, r, c) -> tuple[tuple, tuple[str, ...], tuple[str, ...], str]:
    """(group key, group names, group values, member label) of an entry under the block's scope."""
    labels = [str(x) for x in r.labels]
    if block.bold == "column":
        rest = labels[1:]
        label = rest[0] + (f" ({', '.join(rest[1:])})" if len(rest) > 1 else "") if rest else c.label
        return ("column", c.key, labels[0]), (block.row_header[0], "column"), (labels[0], c.label), label
    if block.bold == "block":
        return ("block",), (), (), ", ".join(labels + [c.label])
    names, values = (tuple(block.row_header), tuple(labels)) if r.key else ((), ())
    return ("row", r.key), names, values, c.label


def mark_table(table, metrics=METRICS) -> None:
    """Fill ``block.marks`` of every block and ``table.comparisons`` from the entries' cells."""
    from denoise_bench.report.layout import scope_of

    groups: dict[tuple, Group] = {}
    for block in table.blocks:
        scope = scope_of(block)
        ranked: dict[tuple, list] = {}
        for r in block.rows:
            for c in block.visible_columns():
                e = block.entry(r, c)
                if not c.ours or e.source is None or e.ours is None:
                    continue
                gkey, names, values, label = _member(block, r, c)
                groups.setdefault(gkey, Group(names, values)).add(label, e.source)
                if scope is not None and r.higher_better is not None:
                    ranked.setdefault(scope(r, c), []).append(((r.key, r.metric, c.key), label, e.ours, e.source, r))
        block.marks = {}
        for cands in ranked.values():
            r = cands[0][4]
            got = verdict([x[:4] for x in cands], r.metric, r.higher_better)
            if got is not None:
                block.marks[got[0]] = got[1]
    table.comparisons = compare(list(groups.values()), metrics)
