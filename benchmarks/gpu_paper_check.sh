#!/usr/bin/env bash
# FDN at the paper's configuration on a CUDA machine (issue: paper scale ready for a GPU).
#   benchmarks/gpu_paper_check.sh CELEBA_ROOT OUT_DIR [MINUTES=6] [WHEELS_DIR]
# Trains FDN (2 DownScale Flow blocks x 8 SoF, 4.38 M parameters, 64x64 crops, batch 16, Adam 2e-4)
# on the CelebA folder at sigma=50 for MINUTES of wall-clock (trainer.budget_minutes, <= 8), evaluates
# the 500 test faces (64x64 centre crops), and prints steps/s, peak GPU memory and PSNR; the cell
# (metrics.json, per_image.csv, curve_fdn.csv) and a summary.json are copied to OUT_DIR.
# WHEELS_DIR: wheels of what the machine lacks (hydra-core, omegaconf, antlr4, albumentations...),
# installed with --no-index into /tmp/site. TRAINER=cpu EXTRA="data.test.limit=20" runs it on a CPU.
set -euo pipefail
DATA=${1:?usage: gpu_paper_check.sh CELEBA_ROOT OUT_DIR [MINUTES] [WHEELS_DIR]}
OUT=${2:?usage: gpu_paper_check.sh CELEBA_ROOT OUT_DIR [MINUTES] [WHEELS_DIR]}
MINUTES=${3:-6}
WHEELS=${4:-}
TRAINER=${TRAINER:-gpu}
cd "$(dirname "$0")/.."
if [ -n "$WHEELS" ] && compgen -G "$WHEELS/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
python3 - "$MINUTES" <<'PY'
import sys
m = float(sys.argv[1])
if not 0 < m <= 8:
    sys.exit(f"error: MINUTES={m}: give 0 < MINUTES <= 8")
PY
WORK=$(mktemp -d)
python3 run.py method=fdn scale=paper data=celeba "data.root=$DATA" sigma=50 "trainer=$TRAINER" \
  "trainer.budget_minutes=$MINUTES" trainer.run.val_check_interval=500 trainer.run.checkpoint_every=2000 \
  logger=none progress=false "hydra.run.dir=$WORK/cell" "paths.artifacts=$WORK/artifacts" ${EXTRA:-} \
  || { mkdir -p "$OUT"; cp "$WORK/cell/error.traceback.txt" "$OUT/" 2>/dev/null; exit 1; }
mkdir -p "$OUT"
python3 benchmarks/gpu_paper_summary.py "$WORK/cell" "$OUT"
