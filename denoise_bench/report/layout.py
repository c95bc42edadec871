"""A paper table as data (rows × columns of paper / ours / Δ entries) and its three renderings.

A column is a method (or a β, a SoF count...). A column the paper reports *and* we run shows three
sub-columns: the published number, ours, and Δ = ours − paper; a paper-only column shows the
published number; an ours-only column (the noisy input, our variants) shows ours. Missing numbers
print as "—". Our best value of a row (or of a column / the whole block) is bold only when it is
significantly better than our runner-up, else marked "(≈ runner-up)": ``Block.marks``, filled by
comparisons.mark_table from the cells' per-image values. The paper's numbers are never bold (no
per-image values to test). Rendering is a pure function of the table, so the same cells always give
the same bytes.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from denoise_bench.report.reference import Ref

DASH = "—"


@dataclass(frozen=True)
class Column:
    key: str  # what a cell locates to, and the reference's last key
    label: str
    paper: bool = False  # the paper prints numbers here
    ours: bool = False  # we run this one
    optional: bool = False  # dropped when no cell landed in it


@dataclass(frozen=True)
class Row:
    key: tuple  # position a cell locates to (without the metric)
    labels: tuple  # shown in the row-header columns
    metric: str = "psnr"  # psnr | ssim | mse100 | params_m | gflops
    digits: int = 2
    higher_better: bool | None = True  # None: never bold


@dataclass
class Entry:
    paper: Ref | None = None
    ours: float | None = None
    ours_std: float | None = None
    n: int | None = None
    cell: str | None = None  # the cell's dir relative to its sweep
    source: object = field(default=None, repr=False, compare=False)  # the Cell (per-image values, timing)

    @property
    def delta(self) -> float | None:
        if self.paper is None or self.ours is None:
            return None
        return self.ours - self.paper.mean


@dataclass
class Block:
    """One tabular: rows of one kind (e.g. the PSNR rows of the Glow tables)."""

    row_header: tuple
    rows: list[Row]
    columns: list[Column]
    entries: dict = field(default_factory=dict)  # (row.key, row.metric, column.key) -> Entry
    title: str | None = None
    bold: str = "row"  # scope of the best value: "row" | "column" | "block" | "none"
    show_std: bool = False
    marks: dict = field(default_factory=dict)  # (row.key, row.metric, col.key) -> comparisons.Verdict

    def entry(self, row: Row, col: Column) -> Entry:
        return self.entries.get((row.key, row.metric, col.key)) or Entry()

    def visible_columns(self) -> list[Column]:
        used = {k[2] for k, e in self.entries.items() if e.ours is not None}
        return [c for c in self.columns if not c.optional or c.key in used]


@dataclass
class PaperTable:
    name: str
    title: str
    caption: str
    blocks: list[Block]
    comparisons: list = field(default_factory=list)  # comparisons.Pair of every ranked group
    channels: str = "rgb"  # "y": PSNR/SSIM of the luma channel


# -- formatting -------------------------------------------------------------------------------------
def fmt(x: float | None, digits: int, std: float | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    s = f"{x:.{digits}f}"
    return s if std is None else f"{s} ± {std:.{digits}f}"


def fmt_delta(d: float | None, digits: int) -> str:
    if d is None:
        return DASH
    s = f"{d:+.{digits}f}"
    return "±0." + "0" * digits if s in (f"+0.{'0' * digits}", f"-0.{'0' * digits}") else s


def sub_columns(col: Column) -> list[str]:
    if col.paper and col.ours:
        return ["paper", "ours", "Δ"]
    return ["paper"] if col.paper else ["ours"]


def scope_of(block: Block):
    """The group an entry is ranked in: ``row`` (methods side by side), ``column`` (methods stacked:
    per column and first row label, e.g. per dataset), ``block`` (a grid ablation); None: never ranked."""
    return {"row": lambda r, c: (r.key, r.metric), "column": lambda r, c: (c.key, r.metric, r.labels[0]),
            "block": lambda r, c: (r.metric,)}.get(block.bold)


def bold_marks(block: Block) -> set:
    """{(row.key, row.metric, col.key, 'ours')} of the entries printed in bold: our best of a scope when
    significantly better than our runner-up (see ``Block.marks``)."""
    return {k + ("ours",) for k, v in block.marks.items() if v.kind == "significant"}


def grid(block: Block) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """(header, rows of (text, bold)): the block in the paper's layout, row labels de-duplicated."""
    cols = block.visible_columns()
    header = list(block.row_header)
    for c in cols:
        header += [f"{c.label} {s}" for s in sub_columns(c)]
    marks = block.marks
    out, previous = [], None
    for r in block.rows:
        labels = list(r.labels)
        shown = [("" if previous and i < len(labels) - 1 and previous[: i + 1] == labels[: i + 1] else lab, False)
                 for i, lab in enumerate(labels)]
        previous = labels
        line = list(shown)
        for c in cols:
            e = block.entry(r, c)
            for s in sub_columns(c):
                if s == "paper":
                    p = e.paper
                    text = fmt(p.mean if p else None, r.digits, p.std if (p and block.show_std) else None)
                    line.append((text, False))
                elif s == "ours":
                    text = fmt(e.ours, r.digits, e.ours_std if (block.show_std and e.ours is not None) else None)
                    v = marks.get((r.key, r.metric, c.key))
                    line.append((text + (v.suffix() if v else ""), bool(v) and v.kind == "significant"))
                else:
                    line.append((fmt_delta(e.delta, r.digits), False))
        out.append(line)
    return header, out


# -- markdown -----------------------------------------------------------------------------------------
def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def to_markdown(table: PaperTable) -> str:
    parts = [f"### {table.title}", ""]
    for block in table.blocks:
        if block.title:
            parts += [f"**{block.title}**", ""]
        header, rows = grid(block)
        n_labels = len(block.row_header)
        parts.append(_md_row(header))
        parts.append("|" + "|".join(":---" if i < n_labels else "---:" for i in range(len(header))) + "|")
        for line in rows:
            parts.append(_md_row([f"**{t}**" if b and t != DASH else t for t, b in line]))
        parts.append("")
    parts.append(table.caption)
    return "\n".join(parts) + "\n"


# -- LaTeX -------------------------------------------------------------------------------------------
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_TEX_SYMBOLS = {"±": r"$\pm$", "—": "---", "–": "--", "Δ": r"$\Delta$", "σ": r"$\sigma$", "β": r"$\beta$",
                "λ": r"$\lambda$", "×": r"$\times$", "≈": r"$\approx$", "·": r"$\cdot$", "−": "-", "²": r"$^2$",
                "≤": r"$\le$", "≥": r"$\ge$"}


def tex_escape(s: str) -> str:
    out = "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(s))
    for k, v in _TEX_SYMBOLS.items():
        out = out.replace(k, v)
    return out


def to_latex(table: PaperTable) -> str:
    """booktabs tabulars, one per block; best values in \\textbf."""
    parts = [f"% {table.name}: generated by python -m denoise_bench.report (needs \\usepackage{{booktabs}})"]
    for b_i, block in enumerate(table.blocks):
        cols = block.visible_columns()
        n_labels = len(block.row_header)
        spec = "l" * n_labels + "".join("r" * len(sub_columns(c)) for c in cols)
        top, rules, pos = [""] * n_labels, [], n_labels + 1
        for c in cols:
            k = len(sub_columns(c))
            top.append(rf"\multicolumn{{{k}}}{{c}}{{{tex_escape(c.label)}}}")
            rules.append(rf"\cmidrule(lr){{{pos}-{pos + k - 1}}}")
            pos += k
        second = [tex_escape(h) for h in block.row_header]
        for c in cols:
            second += [tex_escape(s) for s in sub_columns(c)]
        _, rows = grid(block)
        caption = table.caption if b_i == len(table.blocks) - 1 else ""
        title = f"{table.title}" + (f" --- {block.title}" if block.title else "")
        parts += [r"\begin{table}[t]", r"\centering", r"\small",
                  rf"\caption{{{tex_escape(title)}. {tex_escape(caption)}}}" if caption else rf"\caption{{{tex_escape(title)}.}}",
                  rf"\label{{tab:{table.name}{'-' + str(b_i + 1) if len(table.blocks) > 1 else ''}}}",
                  rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                  " & ".join(top) + r" \\", " ".join(rules),
                  " & ".join(second) + r" \\", r"\midrule"]
        for line in rows:
            parts.append(" & ".join(rf"\textbf{{{tex_escape(t)}}}" if b and t != DASH else tex_escape(t)
                                    for t, b in line) + r" \\")
        parts += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(parts)


# -- CSV ---------------------------------------------------------------------------------------------
def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.6g}"


def to_csv(table: PaperTable) -> str:
    """The paper layout with plain numbers (one line per table row; std columns where printed)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header_written = None
    for block in table.blocks:
        cols = block.visible_columns()
        header = list(block.row_header) + ["metric"]
        for c in cols:
            for s in sub_columns(c):
                header.append(f"{c.label} {s}")
                if block.show_std and s != "Δ":
                    header.append(f"{c.label} {s} std")
        if header != header_written:
            w.writerow(header)
            header_written = header
        for r in block.rows:
            line = list(r.labels) + [r.metric]
            for c in cols:
                e = block.entry(r, c)
                for s in sub_columns(c):
                    if s == "paper":
                        line.append(_num(e.paper.mean if e.paper else None))
                        if block.show_std:
                            line.append(_num(e.paper.std if e.paper else None))
                    elif s == "ours":
                        line.append(_num(e.ours))
                        if block.show_std:
                            line.append(_num(e.ours_std))
                    else:
                        line.append(_num(e.delta))
            w.writerow(line)
    return buf.getvalue()


def to_long_csv(table: PaperTable) -> str:
    """Tidy form: one line per (row, column) entry, for pandas."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "block", "row", "column", "metric", "channels", "paper_mean", "paper_std", "ours_mean",
                "ours_std", "delta", "n_images", "cell", "mark", "s_per_img_median", "peak_mb"])
    for block in table.blocks:
        for r in block.rows:
            for c in block.visible_columns():
                e = block.entry(r, c)
                v = block.marks.get((r.key, r.metric, c.key))
                mark = "" if v is None else "best" if v.kind == "significant" else f"{v.kind}:{v.runner_up}"
                cost = [e.source.value(k)[0] if e.source is not None else None for k in ("s_per_img", "peak_mb")]
                w.writerow([table.name, block.title or "", " / ".join(map(str, r.labels)), c.label, r.metric,
                            table.channels if r.metric in ("psnr", "ssim") else "",
                            _num(e.paper.mean if e.paper else None), _num(e.paper.std if e.paper else None),
                            _num(e.ours), _num(e.ours_std), _num(e.delta), "" if e.n is None else e.n, e.cell or "",
                            mark, *map(_num, cost)])
    return buf.getvalue()


def write(table: PaperTable, out_dir: str | Path) -> list[Path]:
    """<name>.md, <name>.tex, <name>.csv (paper layout), <name>.long.csv and the paired comparisons
    behind its marks (<name>.comparisons.md/.csv) in ``out_dir``."""
    from denoise_bench.artifacts import atomic_write_text  # temp file + rename
    from denoise_bench.report import comparisons

    out_dir = Path(out_dir)
    files = {f"{table.name}.md": to_markdown(table), f"{table.name}.tex": to_latex(table),
             f"{table.name}.csv": to_csv(table), f"{table.name}.long.csv": to_long_csv(table)}
    for fname, text in files.items():
        atomic_write_text(out_dir / fname, text)
    extra = comparisons.write(table.comparisons, out_dir, table.name, f"{table.title}: paired comparisons",
                              channels=table.channels)
    return [out_dir / f for f in files] + extra
