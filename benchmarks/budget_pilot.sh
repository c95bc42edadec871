#!/usr/bin/env bash
# Model choice for experiment=budget_celeba50 (issue: "the model sizes and schedules that do best within
# the budget, chosen by experiment"): each candidate trains for PILOT_MINUTES (default 5) with one thread,
# two candidates side by side, on the CelebA subset at sigma=50; the choice is read off the validation
# PSNR (100 images of the val partition; the test images are never looked at) at the end of the pilot,
# printed by benchmarks/budget_pilot_summary.py.
#   ROOT=../shared/data/CelebA_subset bash benchmarks/budget_pilot.sh
# STAGE=fdn_lr (with PILOT_MINUTES=15): the second stage, FDN's learning rate for the chosen network (the first
# stage kept the paper's 2e-4, which is set for 200k+ steps, while the budget allows ~10k), and the moving
# average of the weights (trainer.ema_decay) at lr 5e-4 (both 5e-4 runs are in one stage, so it cannot wait for
# the choice).
set -u
STAGE=${STAGE:-models}
ROOT=${ROOT:-../shared/data/CelebA_subset}
MIN=${PILOT_MINUTES:-5}
OUT=${OUT:-multirun/budget_pilot}
ART=${ART:-/tmp/artifacts_budget_pilot}
common="data=celeba data.root=$ROOT sigma=50 threads=1 logger=csv progress=false scale=budget paths.artifacts=$ART
        trainer.budget_minutes=$MIN trainer.run.val_check_interval=0.005 data.test.limit=1 name=budget_pilot"
run() {  # label, overrides...
  local label=$1; shift
  python run.py $common hydra.run.dir=$OUT/$label "$@" > $OUT/$label.log 2>&1
  echo "$label rc=$?"
}
mkdir -p $OUT
if [ "$STAGE" = fdn_lr ]; then
  fdn="method=fdn method.sof_blocks=4 method.growth=16 data.patch_size=32 data.batch_size=8"
  run fdn_lr5e-4 $fdn method.lr=5e-4 &
  run fdn_lr1e-3 $fdn method.lr=1e-3 &
  wait
  run fdn_lr2e-4 $fdn method.lr=2e-4 &
  run fdn_lr5e-4_ema0.999 $fdn method.lr=5e-4 trainer.ema_decay=0.999 &
  wait
  python benchmarks/budget_pilot_summary.py $OUT
  exit 0
fi
run fdn_s4_g16_p32_b8 method=fdn method.sof_blocks=4 method.growth=16 data.patch_size=32 data.batch_size=8 &
run fdn_s8_g16_p32_b8 method=fdn method.sof_blocks=8 method.growth=16 data.patch_size=32 data.batch_size=8 &
wait
run fdn_s4_g32_p32_b8 method=fdn method.sof_blocks=4 method.growth=32 data.patch_size=32 data.batch_size=8 &
run fdn_s4_g16_p64_b8 method=fdn method.sof_blocks=4 method.growth=16 data.patch_size=64 data.batch_size=8 &
wait
run dncnn_d8_f32 method=dncnn method.depth=8 method.features=32 &
run dncnn_d17_f64 method=dncnn method.depth=17 method.features=64 &
wait
run dncnn_d12_f48 method=dncnn method.depth=12 method.features=48 &
run fdn_s4_g16_p32_b16 method=fdn method.sof_blocks=4 method.growth=16 data.patch_size=32 data.batch_size=16 &
wait
run dncnn_d8_f32_p40_b16 method=dncnn method.depth=8 method.features=32 data.patch_size=40 data.batch_size=16 &
run dncnn_d8_f32_p32_b8 method=dncnn method.depth=8 method.features=32 data.patch_size=32 data.batch_size=8 &
wait
python benchmarks/budget_pilot_summary.py $OUT
