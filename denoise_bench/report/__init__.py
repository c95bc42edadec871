"""Tables and figures built from the cells' stored outputs (never by recomputing).

cells.py (the one reader of metrics.json / per_image.csv, and the one method order) → paper_tables.py
(where each cell lands in a paper's table, with the published numbers of reference_numbers.yaml) →
layout.py (paper / ours / Δ as markdown, LaTeX, CSV); stats.py + comparisons.py (paired bootstrap CI and
Wilcoxon p of every pair of our methods: what may be bold); figures.py, curves.py, wandb_offline.py
(plots); store.py, readme.py, provenance.py (results/); sweep_table.py (the table printed when a sweep
ends); ``python -m denoise_bench.report`` runs it all.
"""
